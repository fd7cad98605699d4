"""Reviewers' corrections back into a training corpus.

The reviewers' exports (Label Studio JSON, doccano or Prodigy JSONL; the tasks `export-review`
wrote, corrected) are read by the corpus readers (`convert_file`), so every format, label map and
repair of `convert` applies. Then, per record id:

- a record corrected more than once keeps its latest correction: the last one read, files in the
  order given and records in file order (within a Label Studio task, its latest annotation);
- a record that is in the dev corpus (same id, or one text containing the other) is left out, so
  that dev stays a measurement of text the model did not learn from;
- a record that is in the training corpus is kept (the correction replaces what the model learned
  from) and reported; with `merged`, the training corpus is also written with the corrections in
  place of the training Docs they cover (same id, or one text containing the other) and the other
  corrected records added, the corpus that continued training (configs/ner_update.cfg) reads.

The DocBin keeps each record's id (`doc.user_data["doc_id"]`); its stats JSON has the counts of
`convert` for the records written, and the records read = written + superseded + left out.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import spacy
import srsly
from spacy.tokens import DocBin

from ..io.atomic import write_all_atomically
from .convert import convert_file, stats_path_for
from .documents import ConversionStats, ConvertedDocument
from .labels import LabelMap

MIN_CONTAINED_CHARS = 50  # shorter texts ("Item 1.") occur everywhere: only equal ids or texts count


def corpus_index(paths: Sequence[Path], *, lang: str = "en") -> Tuple[Set[str], List[str]]:
    """The document ids and texts of DocBin corpora.

    paths (Sequence[Path]): .spacy files.
    lang (str): The language of their vocab.
    RETURNS (Tuple[Set[str], List[str]]): The ids (`user_data["doc_id"]`) and the texts.
    """
    vocab = spacy.blank(lang).vocab
    ids: Set[str] = set()
    texts: List[str] = []
    for path in paths:
        for doc in DocBin().from_disk(path).get_docs(vocab):
            if doc.user_data.get("doc_id") is not None:
                ids.add(str(doc.user_data["doc_id"]))
            texts.append(doc.text)
    return ids, texts


def matches(doc_id: Optional[str], text: str, ids: Set[str], texts: List[str]) -> Optional[str]:
    """How a record (its id and text) is among others, or None.

    doc_id (Optional[str]): The record's id.
    text (str): Its text.
    ids (Set[str]): The others' ids.
    texts (List[str]): The others' texts.
    RETURNS (Optional[str]): "id", "text" (equal, or one containing the other where both are long
        enough to mean it) or None.
    """
    if doc_id is not None and str(doc_id) in ids:
        return "id"
    text = text.strip()
    for other in texts:
        other = other.strip()
        if text == other or (min(len(text), len(other)) >= MIN_CONTAINED_CHARS and (text in other or other in text)):
            return "text"
    return None


def overlaps(document: ConvertedDocument, ids: Set[str], texts: List[str]) -> Optional[str]:
    """How a converted record is in a corpus (`matches`), or None.

    document (ConvertedDocument): The record.
    ids (Set[str]): The corpus's document ids.
    texts (List[str]): The corpus's texts.
    RETURNS (Optional[str]): "id", "text" or None.
    """
    return matches(document.doc_id, "".join(doc.text_with_ws for doc in document.docs), ids, texts)


def merge_into_training(train: Sequence[Path], corrections: Sequence[ConvertedDocument], *, lang: str = "en") -> Tuple[list, Dict[str, int]]:
    """The training corpus with the corrected records: the training Docs that a correction covers
    (`matches`) replaced, the corrections after the Docs kept.

    train (Sequence[Path]): The training corpus (.spacy).
    corrections (Sequence[ConvertedDocument]): The corrected records kept.
    lang (str): The language of the corpus's vocab.
    RETURNS (Tuple[list, Dict[str, int]]): The Docs, and counts that reconcile: `train_docs_read` =
        `train_docs_kept` + `train_docs_replaced`; `docs_written` = kept + `correction_docs`.
    """
    ids = {document.doc_id for document in corrections}
    texts = ["".join(doc.text_with_ws for doc in document.docs) for document in corrections]
    vocab = spacy.blank(lang).vocab
    kept, read = [], 0
    for path in train:
        for doc in DocBin().from_disk(path).get_docs(vocab):
            read += 1
            if matches(doc.user_data.get("doc_id"), doc.text, ids, texts) is None:
                kept.append(doc)
    added = [doc for document in corrections for doc in document.docs]
    counts = {"train_docs_read": read, "train_docs_kept": len(kept), "train_docs_replaced": read - len(kept),
              "correction_docs": len(added), "docs_written": len(kept) + len(added)}
    return kept + added, counts


def import_corrections(
    inputs: Sequence[Path], output: Path, *, train: Sequence[Path] = (), dev: Sequence[Path] = (),
    file_format: str = "auto", label_map: Optional[LabelMap] = None, lang: str = "en", text_key: str = "text",
    merged: Optional[Path] = None,
) -> Dict[str, Any]:
    """Convert the reviewers' exports into one DocBin of corrected records and its stats JSON.

    inputs (Sequence[Path]): The exports, oldest first.
    output (Path): The .spacy file; its stats JSON is written beside it, both atomically.
    train (Sequence[Path]): The training corpus (.spacy), to report the records it holds.
    dev (Sequence[Path]): The dev corpus (.spacy), whose records are left out.
    file_format, label_map, lang, text_key: See `convert_file`.
    merged (Optional[Path]): Also write the training corpus with the corrections in it
        (`merge_into_training`) here, with its stats JSON; needs `train`.
    RETURNS (Dict[str, Any]): The stats: `convert`'s for the records written, plus `records_read`,
        `records_written`, `superseded`, `in_dev` (left out) and `in_train` (kept), by record id, and
        with `merged` its counts under "merged".
    """
    if merged is not None and not train:
        raise ValueError(f"{merged}: the merged training corpus needs the training corpus (train)")
    latest: Dict[str, ConvertedDocument] = {}
    superseded: List[str] = []
    read = 0
    for path in inputs:
        for document in convert_file(Path(path), file_format=file_format, label_map=label_map, n_sents=0, lang=lang,
                                     text_key=text_key):
            read += 1
            if document.doc_id in latest:
                superseded.append(document.doc_id)
                del latest[document.doc_id]  # re-inserted below: the output follows the latest order
            latest[document.doc_id] = document
    dev_ids, dev_texts = corpus_index(dev, lang=lang)
    train_ids, train_texts = corpus_index(train, lang=lang)
    kept: List[ConvertedDocument] = []
    in_dev: List[Dict[str, str]] = []
    in_train: List[Dict[str, str]] = []
    for doc_id, document in latest.items():
        how = overlaps(document, dev_ids, dev_texts)
        if how is not None:
            in_dev.append({"id": doc_id, "match": how})
            continue
        how = overlaps(document, train_ids, train_texts)
        if how is not None:
            in_train.append({"id": doc_id, "match": how})
        kept.append(document)
    stats = ConversionStats()
    docs = []
    for document in kept:
        stats.add(document.stats)
        docs.extend(document.docs)
    result = {**stats.to_dict(), "records_read": read, "records_written": len(kept), "superseded": superseded,
              "in_dev": in_dev, "in_train": in_train}
    if read != len(kept) + len(superseded) + len(in_dev):  # a bug guard: never write counts that do not add up
        raise RuntimeError(f"{output}: record counts do not reconcile: {result}")
    writes = [
        (output, lambda p: DocBin(docs=docs, store_user_data=True).to_disk(p)),
        (stats_path_for(output), lambda p: srsly.write_json(p, result)),
    ]
    if merged is not None:
        merged_docs, counts = merge_into_training(train, kept, lang=lang)
        result["merged"] = {"path": str(merged), **counts}
        writes += [
            (merged, lambda p: DocBin(docs=merged_docs, store_user_data=True).to_disk(p)),
            (stats_path_for(merged), lambda p: srsly.write_json(p, result["merged"])),
        ]
    write_all_atomically(writes)
    return result
