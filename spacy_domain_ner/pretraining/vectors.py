"""Domain static vectors: cased floret vectors trained on raw legal text, as a spaCy vectors directory.

Three steps, one function each, and `build_vectors`, which runs them with atomic output:

1. `write_training_text`: raw text from JSONL files (a "text" string per record), .txt files or
   folders of them, and .spacy DocBins (the texts of their Docs, e.g. the NER training corpus),
   tokenized by the blank spaCy tokenizer of the language plus the legal suffix rule
   (`tokenizer.add_legal_suffixes`: `Form 10-K.` gives `Form 10 - K .`, not `K.`, as in the hybrid pipeline), case
   kept, tokens separated by single spaces: one line per paragraph (text between blank lines) of
   JSONL and .txt input, one line per Doc of a DocBin. Streaming: one file line, record or Doc at a
   time (a DocBin is read whole, as spaCy reads it).
2. `train_floret`: floret CBOW vectors (fastText with every word and subword hashed into `bucket`
   rows, `mode="floret"`, `hash_count` hashes per entry): every token, seen or not, gets a vector,
   and `SCBV` and `scbv` get different ones.
3. `floret_to_spacy`: `spacy init vectors LANG FILE DIR --mode floret`, through its Python API.

Determinism: the tokenized text is a function of the inputs. floret's Python API trains with
its fixed seed (0; `train_unsupervised` takes no seed), and with `threads=1` the same text and
settings give the same vectors; with more threads
the lock-free (Hogwild) updates of the threads interleave differently on every run, so vectors
differ slightly between runs (the quality does not), for a near-linear speed-up. The workflow's
default is 1 thread on the sample; pass more for a real corpus.
"""
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import spacy
from spacy.language import Language

from ..corpus.formats.base import ConversionError
from ..io.atomic import replace_directory, write_json_atomic
from ..io.jsonl import iter_jsonl
from ..models.tokenizer import add_legal_suffixes
from .raw_text import find_files, record_text

TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl",)
DOCBIN_SUFFIXES = (".spacy",)
INPUT_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + DOCBIN_SUFFIXES
# A paragraph longer than this (e.g. a .txt file without blank lines) is written in pieces, so
# memory stays bounded; fastText reads lines in chunks of 1,024 tokens anyway.
MAX_PARAGRAPH_CHARS = 100_000
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
STATS_FILE = "vectors_stats.json"
# (location, text) units of one input, before paragraph splitting.
Units = Iterator[Tuple[str, str]]


@dataclass
class InputCounts:
    """What one input contributed to the training text."""

    path: str
    kind: str
    docs: int = 0
    lines: int = 0
    tokens: int = 0
    characters: int = 0


@dataclass
class TextCounts:
    """What `write_training_text` wrote: totals and one entry per input file."""

    docs: int = 0
    lines: int = 0
    tokens: int = 0
    characters: int = 0
    inputs: List[InputCounts] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def make_tokenizer(lang: str = "en") -> Language:
    """The blank pipeline whose tokenizer splits the training text: spaCy's rules plus the legal suffix.

    lang (str): The language code.
    RETURNS (Language): The blank pipeline.
    """
    try:
        nlp = spacy.blank(lang)
    except (ImportError, KeyError) as err:
        raise ValueError(f"{lang!r}: not a spaCy language ({err})") from None
    return add_legal_suffixes(nlp)


def find_inputs(paths: Sequence[Union[str, Path]]) -> List[Tuple[Path, str]]:
    """Expand the inputs: files stay, folders give their .txt, .jsonl and .spacy files (recursively, sorted).

    paths (Sequence[Union[str, Path]]): Files or folders.
    RETURNS (List[Tuple[Path, str]]): (file, kind), kind "jsonl", "docbin" or "text" (any other suffix).
    """
    if not paths:
        raise ValueError("no inputs")
    return [(path, input_kind(path)) for path in find_files(paths, INPUT_SUFFIXES)]


def input_kind(path: Path) -> str:
    """"jsonl", "docbin" or "text", by suffix."""
    suffix = path.suffix.lower()
    return "jsonl" if suffix in JSONL_SUFFIXES else "docbin" if suffix in DOCBIN_SUFFIXES else "text"


def _check_text(location: str, text: str) -> None:
    if "\x00" in text:
        raise ConversionError(location, "binary data (NUL byte); expected UTF-8 text")


def jsonl_units(path: Path, *, text_key: str = "text") -> Units:
    """The texts of a JSONL file, a record at a time.

    path (Path): The file.
    text_key (str): The key of the text.
    YIELDS (Tuple[str, str]): (file:line, text) per record.
    """
    for number, location, record in iter_jsonl(path, error=ConversionError):
        value = record_text(record, location=location, text_key=text_key)
        _check_text(location, value)
        yield location, value


def text_file_units(path: Path) -> Units:
    """The paragraphs of a UTF-8 text file (lines between blank lines, joined by spaces), read a line at a time.

    path (Path): The file.
    YIELDS (Tuple[str, str]): (file:first line, paragraph); long paragraphs in pieces of about MAX_PARAGRAPH_CHARS.
    """
    lines: List[str] = []
    size, start = 0, 1
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            location = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise ConversionError(location, f"not valid UTF-8 (byte {raw[err.start]:#04x})") from None
            _check_text(location, line)
            if line.strip():
                if not lines:
                    start = number
                lines.append(line.strip())
                size += len(line)
            if lines and (not line.strip() or size >= MAX_PARAGRAPH_CHARS):
                yield f"{path}:{start}", " ".join(lines)
                lines, size = [], 0
    if lines:
        yield f"{path}:{start}", " ".join(lines)


def docbin_units(path: Path, *, lang: str = "en") -> Units:
    """The texts of the Docs of a .spacy DocBin.

    path (Path): The DocBin.
    lang (str): The language of the vocabulary the Docs are read into.
    YIELDS (Tuple[str, str]): (file doc N, text) per Doc (N from 1).
    """
    from spacy.tokens import DocBin

    try:
        doc_bin = DocBin().from_disk(path)
        docs = doc_bin.get_docs(spacy.blank(lang).vocab)
        for number, doc in enumerate(docs, start=1):
            yield f"{path} doc {number}", doc.text
    except (OSError, ValueError, KeyError) as err:
        raise ConversionError(str(path), f"not a readable .spacy DocBin ({err})") from None


def paragraphs(text: str) -> Iterator[str]:
    """The paragraphs of a text: the parts between blank lines, without surrounding whitespace.

    text (str): The text.
    YIELDS (str): The non-empty paragraphs.
    """
    for part in PARAGRAPH_BREAK.split(text):
        part = part.strip()
        while len(part) > MAX_PARAGRAPH_CHARS:
            cut = part.rfind(" ", 0, MAX_PARAGRAPH_CHARS)
            cut = cut if cut > 0 else MAX_PARAGRAPH_CHARS
            yield part[:cut]
            part = part[cut:].strip()
        if part:
            yield part


def tokenized_lines(nlp: Language, texts: Iterable[str], *, batch_size: int = 256) -> Iterator[Tuple[str, int]]:
    """Tokenize texts: each becomes its tokens, separated by single spaces (whitespace tokens dropped).

    nlp (Language): The pipeline whose tokenizer is used (see `make_tokenizer`).
    texts (Iterable[str]): The texts.
    batch_size (int): Texts per tokenizer batch.
    YIELDS (Tuple[str, int]): The line (without newline) and its number of tokens; empty lines are skipped.
    """
    for doc in nlp.tokenizer.pipe(texts, batch_size=batch_size):
        tokens = [token.text for token in doc if not token.is_space]
        if tokens:
            yield " ".join(tokens), len(tokens)


def _input_texts(path: Path, kind: str, counts: InputCounts, *, text_key: str, lang: str) -> Iterator[str]:
    """The texts one input gives to the tokenizer (paragraphs of JSONL records, .txt paragraphs, Doc texts), counted."""
    if kind == "text":
        counts.docs += 1
        units = text_file_units(path)
    else:
        units = jsonl_units(path, text_key=text_key) if kind == "jsonl" else docbin_units(path, lang=lang)
    for _, text in units:
        if kind != "text":
            counts.docs += 1
        for part in paragraphs(text) if kind == "jsonl" else [text]:
            counts.characters += len(part)
            yield part


def write_training_text(
    inputs: Sequence[Union[str, Path]], output: TextIO, *, lang: str = "en", text_key: str = "text",
    nlp: Optional[Language] = None,
) -> TextCounts:
    """Write the tokenized, cased training text of the inputs, one line per paragraph (or Doc of a DocBin).

    inputs (Sequence[Union[str, Path]]): JSONL files, .txt files, .spacy DocBins, or folders of them.
    output (TextIO): Where the lines go (UTF-8 text).
    lang (str): The language of the tokenizer.
    text_key (str): The text key of JSONL records.
    nlp (Optional[Language]): The tokenizer's pipeline (default: `make_tokenizer(lang)`).
    RETURNS (TextCounts): Documents (records, .txt files, Docs), lines, tokens and characters, per input.
    RAISES (ConversionError): For bad input, naming file:line (JSONL, .txt) or the DocBin; also when an
        input gives no text at all.
    """
    nlp = nlp if nlp is not None else make_tokenizer(lang)
    totals = TextCounts()
    for path, kind in find_inputs(inputs):
        counts = InputCounts(path=str(path), kind=kind)
        for line, n_tokens in tokenized_lines(nlp, _input_texts(path, kind, counts, text_key=text_key, lang=nlp.lang)):
            output.write(line + "\n")
            counts.lines += 1
            counts.tokens += n_tokens
        if counts.tokens == 0:
            raise ConversionError(str(path), "no text to train vectors on")
        totals.inputs.append(counts)
        for name in ("docs", "lines", "tokens", "characters"):
            setattr(totals, name, getattr(totals, name) + getattr(counts, name))
    return totals


def train_floret(
    text_path: Union[str, Path], output: Union[str, Path], *, dim: int = 300, epochs: int = 5,
    bucket: int = 200_000, threads: int = 1, minn: int = 4, maxn: int = 5, hash_count: int = 2,
    min_count: int = 5, verbose: int = 0,
) -> Dict[str, Any]:
    """Train floret CBOW vectors and save them in floret's text format (`save_floret_vectors`).

    text_path (Union[str, Path]): The tokenized text, one line per paragraph.
    output (Union[str, Path]): The .floret file: a header (bucket dim minn maxn hash_count ...) and one row per bucket.
    dim (int): Vector width.
    epochs (int): Passes over the text.
    bucket (int): Rows of the hash table that words and subwords share (the vectors table's size).
    threads (int): Training threads; 1 is deterministic (see the module docstring).
    minn, maxn (int): Shortest and longest character n-gram (subword).
    hash_count (int): Rows each word or subword is hashed to (floret: 1 to 4).
    min_count (int): Words seen fewer times are not trained as words (their subwords still are).
    verbose (int): floret's verbosity (0 quiet, 2 progress).
    RETURNS (Dict[str, Any]): words (the vocabulary trained as words), tokens read and the settings.
    """
    import floret

    for name, value, low in (("dim", dim, 1), ("epochs", epochs, 1), ("bucket", bucket, 1), ("threads", threads, 1),
                             ("min_count", min_count, 1), ("minn", minn, 1)):
        if value < low:
            raise ValueError(f"{name} must be at least {low}, not {value}")
    if maxn < minn or not 1 <= hash_count <= 4:
        raise ValueError(f"need minn <= maxn and 1 <= hash_count <= 4 (got minn {minn}, maxn {maxn}, hash_count {hash_count})")
    model = floret.train_unsupervised(
        str(text_path), model="cbow", mode="floret", hashCount=hash_count, bucket=bucket, minn=minn, maxn=maxn,
        dim=dim, epoch=epochs, thread=threads, minCount=min_count, verbose=verbose,
    )
    model.save_floret_vectors(str(output))
    settings = {"model": "cbow", "mode": "floret", "dim": dim, "epochs": epochs, "bucket": bucket, "threads": threads,
                "minn": minn, "maxn": maxn, "hash_count": hash_count, "min_count": min_count, "seed": 0}
    return {"words": len(model.words), "settings": settings}


def floret_to_spacy(floret_path: Union[str, Path], output: Union[str, Path], *, lang: str = "en",
                    name: Optional[str] = None) -> Language:
    """`spacy init vectors LANG FILE OUTPUT --mode floret`: a blank pipeline holding the vectors, saved to `output`.

    floret_path (Union[str, Path]): The .floret file of `train_floret`.
    output (Union[str, Path]): The pipeline directory, for `[initialize] vectors` (`--paths.vectors`).
    lang (str): The language.
    name (Optional[str]): The vectors' name (default: spaCy's, `LANG_pipeline.vectors`).
    RETURNS (Language): The pipeline.
    """
    from spacy.training.initialize import convert_vectors

    nlp = spacy.blank(lang)
    convert_vectors(nlp, Path(floret_path), truncate=0, prune=-1, name=name, mode="floret")
    nlp.to_disk(output)
    return nlp


def build_vectors(
    inputs: Sequence[Union[str, Path]], output: Union[str, Path], *, lang: str = "en", text_key: str = "text",
    dim: int = 300, epochs: int = 5, bucket: int = 200_000, threads: int = 1, minn: int = 4, maxn: int = 5,
    hash_count: int = 2, min_count: int = 5, name: Optional[str] = None, verbose: int = 0,
) -> Dict[str, Any]:
    """Text, floret training and conversion in one go: `output` becomes a spaCy vectors directory, atomically.

    The work files (the tokenized text, the .floret file) are written inside the new directory
    while it is built and removed before it replaces `output`; a failed run leaves `output` as it
    was. `output/vectors_stats.json` records the counts, settings and seconds of each step.

    inputs (Sequence[Union[str, Path]]): See `write_training_text`.
    output (Union[str, Path]): The vectors directory; an existing non-empty one must be a spaCy
        pipeline directory (meta.json), so a wrong path never deletes unrelated files.
    lang, text_key: See `write_training_text`.
    dim, epochs, bucket, threads, minn, maxn, hash_count, min_count, verbose: See `train_floret`.
    name (Optional[str]): The vectors' name (default: "<lang>_<output dir name>").
    RETURNS (Dict[str, Any]): What vectors_stats.json holds.
    """
    output = Path(output)
    if output.is_dir() and any(output.iterdir()) and not (output / "meta.json").is_file():
        raise ValueError(f"{output}: a non-empty directory that is no spaCy pipeline (no meta.json); not replacing it")
    nlp = make_tokenizer(lang)
    found = find_inputs(inputs)  # fail on a missing input before any work
    stats: Dict[str, Any] = {}

    def write(tmp: Path) -> None:
        work = tmp / ".work"
        work.mkdir(parents=True)
        text_path, floret_path = work / "text.txt", work / "vectors.floret"
        start = time.perf_counter()
        with text_path.open("w", encoding="utf8", newline="\n") as handle:
            counts = write_training_text([path for path, _ in found], handle, lang=lang, text_key=text_key, nlp=nlp)
        seconds = {"text": time.perf_counter() - start}
        start = time.perf_counter()
        trained = train_floret(text_path, floret_path, dim=dim, epochs=epochs, bucket=bucket, threads=threads,
                               minn=minn, maxn=maxn, hash_count=hash_count, min_count=min_count, verbose=verbose)
        seconds["train"] = time.perf_counter() - start
        start = time.perf_counter()
        vectors_nlp = floret_to_spacy(floret_path, tmp, lang=lang, name=name or f"{lang}_{output.name}")
        seconds["convert"] = time.perf_counter() - start
        shutil.rmtree(work)
        stats.update({
            "text": counts.to_dict(), "words_trained": trained["words"],
            "settings": {**trained["settings"], "lang": lang, "text_key": text_key, "tokenizer": "blank + legal suffixes"},
            "vectors": {"name": vectors_nlp.vocab.vectors.name, "mode": vectors_nlp.vocab.vectors.mode,
                        "shape": list(vectors_nlp.vocab.vectors.shape)},
            "seconds": {key: round(value, 2) for key, value in seconds.items()},
        })
        write_json_atomic(tmp / STATS_FILE, stats)

    replace_directory(output, write)
    return stats
