"""Convert NER corpora to spaCy DocBin files, with reconciled statistics.

Every entity read is either written or listed as dropped with its source
location, and `entities_read == entities_written + entities_dropped` is checked
before anything is written. Outputs appear atomically: all files of a run are
serialized to temporary files first and renamed into place only when every one
of them is complete, so a failed run leaves no partial output behind.
"""
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span

from ..io.atomic import write_all_atomically
from .formats.base import ConversionError, SpanRecord, TokenDocument
from .formats.columns import all_tags, read_conll, read_ener_csv
from .formats.spacing import count_changed, natural_spaces
from .formats.spans import read_jsonl, read_label_studio
from .formats.tags import SCHEMES, TagError, detect_scheme, tags_to_spans
from .labels import LabelMap

FORMATS = ("auto", "ener", "conll", "jsonl", "labelstudio")
SPLIT_NAMES = ("train", "dev", "test")


@dataclass
class ConversionStats:
    """Counts of one output file. `dropped` and `repaired` list every affected span."""

    documents: int = 0
    output_docs: int = 0
    sentences: int = 0
    tokens: int = 0
    # tokens not followed by a space once natural spacing is rebuilt (formats/spacing.py)
    tokens_unspaced: int = 0
    entities_read: Counter = field(default_factory=Counter)
    entities_written: Counter = field(default_factory=Counter)
    dropped: List[Dict[str, Any]] = field(default_factory=list)
    repaired: List[Dict[str, Any]] = field(default_factory=list)

    def add(self, other: "ConversionStats") -> None:
        for name in ("documents", "output_docs", "sentences", "tokens", "tokens_unspaced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.entities_read.update(other.entities_read)
        self.entities_written.update(other.entities_written)
        self.dropped.extend(other.dropped)
        self.repaired.extend(other.repaired)

    def to_dict(self) -> Dict[str, Any]:
        n_read, n_written = sum(self.entities_read.values()), sum(self.entities_written.values())
        return {
            "documents": self.documents,
            "output_docs": self.output_docs,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "tokens_unspaced": self.tokens_unspaced,
            "entities_read": n_read,
            "entities_written": n_written,
            "entities_dropped": len(self.dropped),
            "reconciled": n_read == n_written + len(self.dropped),
            "entities_read_per_label": dict(sorted(self.entities_read.items())),
            "entities_written_per_label": dict(sorted(self.entities_written.items())),
            "dropped": self.dropped,
            "repaired": self.repaired,
        }


@dataclass
class ConvertedDocument:
    """One source document: its id, the Docs made from it and their stats."""

    doc_id: str
    docs: List[Doc]
    stats: ConversionStats


def detect_format(path: Path) -> str:
    """Guess a file's format from its suffix: .csv E-NER, .jsonl JSONL, .json Label Studio, else CoNLL."""
    return {".csv": "ener", ".jsonl": "jsonl", ".json": "labelstudio"}.get(path.suffix.lower(), "conll")


def _map_span(
    label: str, label_map: LabelMap, location: str, text: str, stats: ConversionStats
) -> Optional[str]:
    """Count a read span and map its label; a dropped span is recorded."""
    stats.entities_read[label] += 1
    try:
        target = label_map.map(label)
    except ValueError as err:
        raise ConversionError(location, str(err)) from None
    if target is None:
        stats.dropped.append({"source": location, "label": label, "text": text, "reason": "dropped by the label map"})
    return target


def convert_token_document(
    document: TokenDocument, *, vocab: Any, scheme: str, label_map: LabelMap, n_sents: int,
    natural_spacing: bool = True,
) -> ConvertedDocument:
    """Turn a token-per-line document into Docs of `n_sents` sentences (0: one Doc).

    document (TokenDocument): The source document.
    vocab (Vocab): The vocab of the output Docs.
    scheme (str): The tag scheme ("iob1", "iob2", "io", "biluo", "iobes").
    label_map (LabelMap): Label renames, merges and drops, and raw tag fixes.
    n_sents (int): Sentences per output Doc; 0 keeps the document whole.
    natural_spacing (bool): Rebuild the spacing of written text ("Inc., filed") with the rules
        of `formats.spacing`; False puts a space after every token.
    RETURNS (ConvertedDocument): The Docs and their stats.
    """
    stats = ConversionStats(documents=1)
    sentences = document.sentences
    size = n_sents if n_sents > 0 else max(len(sentences), 1)
    docs = []
    for first in range(0, len(sentences), size):
        group = sentences[first : first + size]
        words: List[str] = []
        spaces: List[bool] = []
        sent_starts: List[bool] = []
        entities: List[Tuple[int, int, str]] = []
        for sentence in group:
            offset = len(words)
            tags = []
            for tag, line in zip(sentence.tags, sentence.lines):
                fixed = label_map.tags.get(tag, tag)
                if fixed != tag:
                    stats.repaired.append({"source": f"{document.source}:{line}", "reason": f"tag {tag!r} read as {fixed!r}"})
                tags.append(fixed)
            try:
                spans, repairs = tags_to_spans(tags, scheme=scheme)
            except TagError as err:
                raise ConversionError(f"{document.source}:{sentence.lines[err.index]}", str(err)) from None
            for index, reason in repairs:
                line = sentence.lines[min(index, len(sentence.lines) - 1)]
                stats.repaired.append({"source": f"{document.source}:{line}", "reason": reason})
            for start, end, label in spans:
                location = f"{document.source}:{sentence.lines[start]}"
                target = _map_span(label, label_map, location, " ".join(sentence.words[start:end]), stats)
                if target is not None:
                    entities.append((offset + start, offset + end, target))
            words.extend(sentence.words)
            spaces.extend(natural_spaces(sentence.words) if natural_spacing else [True] * len(sentence.words))
            sent_starts.extend([True] + [False] * (len(sentence.words) - 1))
        doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
        doc.ents = [Span(doc, start, end, label=label) for start, end, label in entities]
        doc.user_data["doc_id"] = document.doc_id
        docs.append(doc)
        stats.sentences += len(group)
        stats.tokens += len(words)
        stats.tokens_unspaced += count_changed(spaces)
        stats.entities_written.update(label for _, _, label in entities)
    stats.output_docs = len(docs)
    return ConvertedDocument(document.doc_id, docs, stats)


def convert_span_record(record: SpanRecord, *, nlp: Language, label_map: LabelMap) -> ConvertedDocument:
    """Tokenize a character-offset record and align its spans to tokens.

    A span whose edges fall inside a token is expanded to whole tokens, and one with
    surrounding whitespace is trimmed; both are written and reported as repaired. A
    span that cannot be aligned at all is dropped and reported.

    record (SpanRecord): The source record.
    nlp (Language): Provides the tokenizer and a sentencizer.
    label_map (LabelMap): Label renames, merges and drops.
    RETURNS (ConvertedDocument): One Doc and its stats.
    """
    stats = ConversionStats(documents=1, output_docs=1)
    doc = nlp(record.text)
    for span, reason in record.repairs:
        stats.repaired.append({"source": record.location, "span": list(span), "reason": reason})
    entities = []
    for start, end, label in record.spans:
        text = record.text[start:end]
        target = _map_span(label, label_map, record.location, text, stats)
        if target is None:
            continue
        trimmed_start = start + len(text) - len(text.lstrip())
        trimmed_end = end - (len(text) - len(text.rstrip()))
        entity = doc.char_span(trimmed_start, trimmed_end, label=target) if trimmed_start < trimmed_end else None
        if entity is None and trimmed_start < trimmed_end:
            entity = doc.char_span(trimmed_start, trimmed_end, label=target, alignment_mode="expand")
        if entity is None:
            stats.dropped.append(
                {"source": record.location, "label": label, "text": text, "reason": f"span [{start}, {end}] has no token to align to"}
            )
            continue
        if (entity.start_char, entity.end_char) != (start, end):
            stats.repaired.append(
                {
                    "source": record.location,
                    "span": [start, end, label],
                    "reason": f"misaligned with the tokens: {text!r} became {entity.text!r}",
                }
            )
        entities.append(entity)
    try:
        doc.ents = entities
    except ValueError:
        raise ConversionError(record.location, "two spans overlap once aligned to token boundaries") from None
    doc.user_data["doc_id"] = record.doc_id
    stats.sentences = sum(1 for _ in doc.sents)
    stats.tokens = len(doc)
    stats.entities_written.update(ent.label_ for ent in doc.ents)
    return ConvertedDocument(record.doc_id, [doc], stats)


def convert_file(
    path: Path, *, file_format: str = "auto", scheme: str = "auto", label_map: Optional[LabelMap] = None,
    n_sents: int = 10, lang: str = "en", text_key: str = "text", natural_spacing: bool = True,
) -> List[ConvertedDocument]:
    """Convert one corpus file.

    path (Path): The input file.
    file_format (str): One of FORMATS; "auto" decides by the file suffix.
    scheme (str): The tag scheme of token formats, one of SCHEMES; "auto" detects it
        (E-NER defaults to IOB1, as documented by its authors).
    label_map (Optional[LabelMap]): Label renames, merges and drops.
    n_sents (int): Sentences per Doc for token formats; 0 keeps documents whole.
    lang (str): The spaCy language whose tokenizer reads character-offset formats.
    text_key (str): The text key of Label Studio tasks.
    natural_spacing (bool): Token formats: rebuild the spacing of written text (see
        `formats.spacing`) instead of a space after every token.
    RETURNS (List[ConvertedDocument]): The converted documents, in input order.
    """
    if file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r}: expected one of {', '.join(FORMATS)}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    if n_sents < 0:
        raise ValueError(f"n_sents must be 0 (whole documents) or positive, not {n_sents}")
    if not path.is_file():
        raise ConversionError(str(path), "no such file")
    label_map = label_map or LabelMap()
    file_format = detect_format(path) if file_format == "auto" else file_format
    nlp = spacy.blank(lang)
    if file_format in ("ener", "conll"):
        documents = list(read_ener_csv(path) if file_format == "ener" else read_conll(path))
        if not documents:
            raise ConversionError(str(path), "the file has no tokens")
        if scheme == "auto":
            if file_format == "ener":
                scheme = "iob1"
            else:
                try:
                    scheme = detect_scheme(label_map.tags.get(t, t) for t in all_tags(documents))
                except TagError as err:
                    raise ConversionError(str(path), str(err)) from None
        return [
            convert_token_document(
                doc, vocab=nlp.vocab, scheme=scheme, label_map=label_map, n_sents=n_sents, natural_spacing=natural_spacing
            )
            for doc in documents
        ]
    nlp.add_pipe("sentencizer")
    records = read_jsonl(path) if file_format == "jsonl" else read_label_studio(path, text_key=text_key)
    converted = [convert_span_record(record, nlp=nlp, label_map=label_map) for record in records]
    if not converted:
        raise ConversionError(str(path), "the file has no records")
    return converted


def split_documents(
    doc_ids: Sequence[str], *, fractions: Sequence[float], seed: int = 0
) -> Dict[str, str]:
    """Assign documents to train/dev/test deterministically, by a seeded hash of their id.

    The same ids, fractions and seed always give the same split, whatever the input order.

    doc_ids (Sequence[str]): Unique document ids.
    fractions (Sequence[float]): Two or three fractions (train, dev[, test]) summing to 1.
    seed (int): Changes the split.
    RETURNS (Dict[str, str]): Document id -> split name.
    """
    if len(fractions) not in (2, 3) or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be 2 or 3 non-negative numbers summing to 1, got {list(fractions)}")
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError("document ids must be unique to split by document")
    ordered = sorted(doc_ids, key=lambda d: hashlib.sha256(f"{seed}:{d}".encode("utf8")).hexdigest())
    bounds, total = [], 0.0
    for fraction in fractions:
        total += fraction
        bounds.append(round(total * len(ordered)))
    assignment, start = {}, 0
    for name, end in zip(SPLIT_NAMES, bounds):
        for doc_id in ordered[start:end]:
            assignment[doc_id] = name
        start = end
    return assignment


def _atomic_write_all(outputs: Dict[Path, Tuple[List[Doc], ConversionStats]]) -> None:
    """Write every DocBin and its stats JSON; all files appear together or not at all."""
    targets = []
    for path, (docs, stats) in outputs.items():
        targets.append((path, lambda p, docs=docs: DocBin(docs=docs, store_user_data=True).to_disk(p)))
        targets.append((stats_path_for(path), lambda p, stats=stats: srsly.write_json(p, stats.to_dict())))
    write_all_atomically(targets)


def stats_path_for(output: Path) -> Path:
    """The stats JSON written next to an output: corpus/train.spacy -> corpus/train.stats.json."""
    return output.with_suffix(".stats.json")


def _convert_all(paths: Iterable[Path], settings: Dict[str, Any]) -> List[ConvertedDocument]:
    documents: List[ConvertedDocument] = []
    for path in paths:
        documents.extend(convert_file(Path(path), **settings))
    return documents


def _collect(
    outputs: Dict[Path, Tuple[List[Doc], ConversionStats]], documents: List[ConvertedDocument],
    targets: Dict[str, Path], assignment: Optional[Dict[str, str]] = None,
) -> None:
    """Add converted documents to their output (by split name when `assignment` is given)."""
    for converted in documents:
        target = targets[assignment[converted.doc_id]] if assignment is not None else targets[""]
        docs, stats = outputs.setdefault(target, ([], ConversionStats()))
        docs.extend(converted.docs)
        stats.add(converted.stats)


def _split(documents: List[ConvertedDocument], fractions: Sequence[float], seed: int) -> Dict[str, str]:
    ids = [doc.doc_id for doc in documents]
    duplicates = sorted(d for d, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ValueError(f"cannot split by document: duplicate document ids {duplicates[:5]}")
    return split_documents(ids, fractions=fractions, seed=seed)


def _write(outputs: Dict[Path, Tuple[List[Doc], ConversionStats]]) -> Dict[Path, Dict[str, Any]]:
    for path, (_, stats) in outputs.items():
        if not stats.to_dict()["reconciled"]:  # a bug guard: never write unreconciled output
            raise RuntimeError(f"{path}: entity counts do not reconcile: {stats.to_dict()}")
    _atomic_write_all(outputs)
    return {path: stats.to_dict() for path, (_, stats) in outputs.items()}


def convert(
    inputs: Iterable[Path], output: Path, *, file_format: str = "auto", scheme: str = "auto",
    label_map: Optional[LabelMap] = None, n_sents: int = 10, lang: str = "en",
    split: Optional[Sequence[float]] = None, seed: int = 0, text_key: str = "text", natural_spacing: bool = True,
) -> Dict[Path, Dict[str, Any]]:
    """Convert corpus files into one DocBin, or into train/dev[/test] DocBins with `split`.

    inputs (Iterable[Path]): Input files (all read with the same settings).
    output (Path): The .spacy file; with `split`, the directory that receives
        train.spacy, dev.spacy and test.spacy.
    file_format, scheme, label_map, n_sents, lang, text_key, natural_spacing: See `convert_file`.
    split (Optional[Sequence[float]]): Document-level split fractions, e.g. (0.8, 0.1, 0.1).
    seed (int): The split's seed.
    RETURNS (Dict[Path, Dict[str, Any]]): The stats of each written file.
    """
    settings = dict(
        file_format=file_format, scheme=scheme, label_map=label_map, n_sents=n_sents, lang=lang, text_key=text_key,
        natural_spacing=natural_spacing,
    )
    if split is not None:
        return convert_corpus(train=list(inputs), output_dir=output, split=split, seed=seed, **settings)
    outputs: Dict[Path, Tuple[List[Doc], ConversionStats]] = {}
    _collect(outputs, _convert_all(inputs, settings), {"": output})
    return _write(outputs)


def convert_corpus(
    *, train: Sequence[Path], output_dir: Path, dev: Sequence[Path] = (), test: Sequence[Path] = (),
    split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, file_format: str = "auto", scheme: str = "auto",
    label_map: Optional[LabelMap] = None, n_sents: int = 10, lang: str = "en", text_key: str = "text",
    natural_spacing: bool = True,
) -> Dict[Path, Dict[str, Any]]:
    """Build output_dir/train.spacy and dev.spacy (and test.spacy when there is a test part).

    With no dev files, the train files are split by document with `split`
    (train/dev or train/dev/test); with dev files, train and dev (and test, if
    given) are converted as they are. All files appear together or not at all.

    train (Sequence[Path]): Training corpus files.
    output_dir (Path): The directory that receives the DocBins and their stats.
    dev (Sequence[Path]): Development corpus files, if the corpus has a split.
    test (Sequence[Path]): Test corpus files, if any.
    split (Sequence[float]): Fractions for the split when no dev files are given.
    seed (int): The split's seed.
    file_format, scheme, label_map, n_sents, lang, text_key, natural_spacing: See `convert_file`.
    RETURNS (Dict[Path, Dict[str, Any]]): The stats of each written file.
    """
    if not train:
        raise ValueError("no training corpus given")
    if test and not dev:
        raise ValueError("a test corpus needs a dev corpus too (or give neither and split the training corpus)")
    settings = dict(
        file_format=file_format, scheme=scheme, label_map=label_map, n_sents=n_sents, lang=lang, text_key=text_key,
        natural_spacing=natural_spacing,
    )
    outputs: Dict[Path, Tuple[List[Doc], ConversionStats]] = {}
    if dev:
        for name, paths in (("train", train), ("dev", dev), ("test", test)):
            if paths:
                target = output_dir / f"{name}.spacy"
                outputs[target] = ([], ConversionStats())
                _collect(outputs, _convert_all(paths, settings), {"": target})
    else:
        documents = _convert_all(train, settings)
        targets = {name: output_dir / f"{name}.spacy" for name in SPLIT_NAMES[: len(split)]}
        for path in targets.values():  # a split part may get no document; it is still written
            outputs[path] = ([], ConversionStats())
        _collect(outputs, documents, targets, _split(documents, split, seed))
    return _write(outputs)
