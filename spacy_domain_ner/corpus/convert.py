"""Convert NER corpora to spaCy DocBin files, with reconciled statistics.

Every entity read is either written or listed as dropped with its source
location, and `entities_read == entities_written + entities_dropped` is checked
before anything is written. Outputs appear atomically: all files of a run are
serialized to temporary files first and renamed into place only when every one
of them is complete, so a failed run leaves no partial output behind.
"""
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
import srsly
from spacy.tokens import Doc, DocBin

from ..io.atomic import write_all_atomically
from .documents import ConversionStats, ConvertedDocument, convert_span_record, convert_token_document
from .formats.base import ConversionError
from .formats.columns import all_tags, read_conll, read_ener_csv
from .formats.spans import read_jsonl, read_label_studio
from .formats.tags import SCHEMES, TagError, detect_scheme
from .labels import LabelMap

FORMATS = ("auto", "ener", "conll", "jsonl", "labelstudio")
SPLIT_NAMES = ("train", "dev", "test")


def detect_format(path: Path) -> str:
    """Guess a file's format from its suffix: .csv E-NER, .jsonl JSONL, .json Label Studio, else CoNLL."""
    return {".csv": "ener", ".jsonl": "jsonl", ".json": "labelstudio"}.get(path.suffix.lower(), "conll")


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
    counts, total, previous = [], 0.0, 0
    for fraction in fractions:
        total += fraction
        bound = round(total * len(ordered))
        counts.append(bound - previous)
        previous = bound
    # A corpus of a few long documents (FIN5: 5 loan agreements) would round a part with a positive
    # fraction down to no document, and train with an empty dev set: each such part gets one, from the largest.
    names = SPLIT_NAMES[: len(fractions)]
    for index, fraction in enumerate(fractions):
        if fraction > 0 and counts[index] == 0:
            largest = max(range(len(counts)), key=lambda i: counts[i])
            if counts[largest] < 2:
                wanted = [name for name, f in zip(names, fractions) if f > 0]
                raise ValueError(f"cannot split {len(ordered)} document(s) into {', '.join(wanted)} by document: "
                                 "give the dev (and test) corpus as files, or more documents")
            counts[largest] -= 1
            counts[index] = 1
    assignment, start = {}, 0
    for name, count in zip(names, counts):
        for doc_id in ordered[start:start + count]:
            assignment[doc_id] = name
        start += count
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
    split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, file_format: str = "auto", scheme: str = "auto",
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
