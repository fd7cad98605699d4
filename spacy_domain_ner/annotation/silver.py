"""Silver training data: the pipeline's own confident annotations of unlabeled text (self-training).

A legal team holds far more unlabeled documents than annotated ones. `make_silver` annotates a raw
collection (JSONL with a text field, or a folder of .txt files, read as `annotate` reads them) with
a pipeline that scores its entities (`ent._.confidence`) and keeps, as a DocBin, the units whose
entities all clear `min_confidence`:

- `unit = "record"`: a whole record, when every entity in it clears the threshold;
- `unit = "sentence"`: each sentence whose entities all clear it (one Doc per sentence), so a
  long contract gives its confident sentences even when another sentence is unsure.

An entity without a confidence never clears it. A unit needs at least `min_entities` entities
(default 1): a collection is mostly text without entities, and all-O silver would teach the model
to find nothing. Long records are cut as `annotate` cuts them (`max_chars`). Each kept Doc has
`user_data["doc_id"]` = "<record id>" (or "<record id>#<sentence>"), and only the entities as
annotation. The stats JSON reconciles: records read = used + bad; units seen = kept + unsure +
without entities. Training mixes silver with gold through `spacy_domain_ner.MixedCorpus.v1`
(`configs/ner_mixed.cfg`, silver as its general corpus with the identity label map); silver never
enters dev.
"""
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span

from ..evaluation import confidence as _confidence  # noqa: F401  (registers Span._.confidence)
from ..io.atomic import write_all_atomically
from .records import read_items, split_text

UNITS = ("record", "sentence")


def confident(ents: List[Span], *, min_confidence: float) -> bool:
    """Whether every entity has a confidence of at least `min_confidence`.

    ents (List[Span]): The entities.
    min_confidence (float): The threshold.
    RETURNS (bool): True for no entities as well.
    """
    return all(getattr(e._, "confidence", None) is not None and e._.confidence >= min_confidence for e in ents)


def _annotation_only(span_or_doc: Any, doc_id: str) -> Doc:
    """A Doc with the words, spaces and entities of a Doc or sentence, nothing else."""
    doc = span_or_doc.as_doc() if isinstance(span_or_doc, Span) else span_or_doc
    spaces = [bool(t.whitespace_) for t in doc]
    spaces[-1:] = [False]  # a sentence ends at its last word, not at the space before the next sentence
    out = Doc(doc.vocab, words=[t.text for t in doc], spaces=spaces)
    out.ents = [Span(out, e.start, e.end, label=e.label_) for e in doc.ents]
    out.user_data["doc_id"] = doc_id
    return out


def silver_units(doc: Doc, *, doc_id: str, unit: str, min_confidence: float,
                 min_entities: int) -> Iterator[Tuple[str, Optional[Doc]]]:
    """Judge the units of one annotated Doc.

    doc (Doc): A Doc the pipeline annotated.
    doc_id (str): Its record id (and chunk, for a long record).
    unit (str): "record" or "sentence".
    min_confidence (float): Every entity of a kept unit has at least this confidence.
    min_entities (int): A kept unit has at least this many entities.
    YIELDS (Tuple[str, Optional[Doc]]): ("kept", the silver Doc), ("unsure", None) or ("empty", None).
    """
    if unit == "record":
        parts = [(doc_id, doc, list(doc.ents))]
    else:
        parts = [(f"{doc_id}#{i}", sent, list(sent.ents)) for i, sent in enumerate(doc.sents)]
    for part_id, part, ents in parts:
        if len(ents) < min_entities:
            yield "empty", None
        elif not confident(ents, min_confidence=min_confidence):
            yield "unsure", None
        else:
            yield "kept", _annotation_only(part, part_id)


def make_silver(nlp: Language, input_path: Path, output: Path, *, min_confidence: float = 0.9, unit: str = "sentence",
                min_entities: int = 1, limit: int = 0, batch_size: int = 16, max_chars: int = 100_000,
                text_key: str = "text", id_key: str = "id") -> Dict[str, Any]:
    """Annotate raw text and write the confident part as a silver DocBin with its stats JSON.

    nlp (Language): A pipeline whose entities carry `ent._.confidence`.
    input_path (Path): JSONL with `text_key` or a folder of .txt files.
    output (Path): The .spacy file; `<stem>.stats.json` is written beside it (both atomically).
    min_confidence (float): See `silver_units`.
    unit (str): "record" or "sentence".
    min_entities (int): See `silver_units`.
    limit (int): Read at most this many records (0: all).
    batch_size (int): Texts per `nlp.pipe` batch.
    max_chars (int): Longer texts are annotated in chunks of at most this many characters.
    text_key (str): The text field.
    id_key (str): The id field.
    RETURNS (Dict[str, Any]): The stats.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    if not 0 < min_confidence <= 1:
        raise ValueError(f"min_confidence must be in (0, 1], not {min_confidence}")
    if min_entities < 0:
        raise ValueError(f"min_entities must be at least 0, not {min_entities}")
    if unit == "sentence" and not any(nlp.has_pipe(name) for name in ("parser", "senter", "sentencizer")):
        nlp.add_pipe("sentencizer", first=True)  # silver sentences need boundaries; the NER has none of its own
    counts: Counter = Counter()
    labels: Counter = Counter()
    docs: List[Doc] = []

    def texts() -> Iterator[Tuple[str, str]]:
        for item in read_items(input_path, text_key=text_key, id_key=id_key):
            if item.blank:
                continue
            if limit and counts["records"] >= limit:
                return
            counts["records"] += 1
            if item.error is not None:
                counts["records_bad"] += 1
                continue
            counts["records_used"] += 1
            chunks = split_text(item.text, max_chars=max_chars)
            for i, (start, end) in enumerate(chunks):
                yield item.text[start:end], str(item.doc_id) if len(chunks) == 1 else f"{item.doc_id}@{start}"

    stream = texts()
    for doc, doc_id in nlp.pipe(((t, i) for t, i in stream), as_tuples=True, batch_size=batch_size):
        for outcome, silver in silver_units(doc, doc_id=doc_id, unit=unit, min_confidence=min_confidence,
                                            min_entities=min_entities):
            counts[f"units_{outcome}"] += 1
            if silver is not None:
                docs.append(silver)
                labels.update(e.label_ for e in silver.ents)
    stats = {
        "input": str(input_path), "unit": unit, "min_confidence": min_confidence, "min_entities": min_entities,
        "records": counts["records"], "records_used": counts["records_used"], "records_bad": counts["records_bad"],
        "units": counts["units_kept"] + counts["units_unsure"] + counts["units_empty"],
        "units_kept": counts["units_kept"], "units_unsure": counts["units_unsure"], "units_empty": counts["units_empty"],
        "tokens": sum(len(d) for d in docs), "entities": sum(labels.values()), "entities_per_label": dict(sorted(labels.items())),
    }
    write_all_atomically([
        (output, lambda p: DocBin(docs=docs, store_user_data=True).to_disk(p)),
        (output.with_suffix(".stats.json"), lambda p: srsly.write_json(p, stats)),
    ])
    return stats
