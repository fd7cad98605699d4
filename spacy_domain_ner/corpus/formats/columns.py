"""Token-per-line corpora: E-NER CSV (`token,TAG`) and CoNLL column files."""
import csv
import io
from pathlib import Path
from typing import Iterator, List, Optional

from .base import ConversionError, TokenDocument, TokenSentence, read_text

DOCSTART = "-DOCSTART-"


class _DocumentBuilder:
    """Collects rows into sentences and documents; shared by both column formats."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc: Optional[TokenDocument] = None
        self.sentence = TokenSentence()
        self.n_docs = 0

    def add(self, word: str, tag: str, line: int) -> None:
        if self.doc is None:
            self.start_document()
        self.sentence.words.append(word)
        self.sentence.tags.append(tag)
        self.sentence.lines.append(line)

    def end_sentence(self) -> None:
        if self.sentence.words:
            assert self.doc is not None
            self.doc.sentences.append(self.sentence)
            self.sentence = TokenSentence()

    def start_document(self) -> Optional[TokenDocument]:
        """Close the current document and open a new one; returns the closed one if it has text."""
        self.end_sentence()
        finished = self.doc if self.doc is not None and self.doc.sentences else None
        self.doc = TokenDocument(doc_id=f"{self.path.name}#{self.n_docs}", source=str(self.path))
        self.n_docs += 1
        return finished


def read_ener_csv(path: Path) -> Iterator[TokenDocument]:
    """Read an E-NER CSV file: `token,TAG` rows; an empty token ends a sentence,
    a `-DOCSTART-` token starts a document. Tokens with commas are CSV-quoted.

    path (Path): The CSV file.
    YIELDS (TokenDocument): The documents, in file order.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    builder = _DocumentBuilder(path)
    for row in reader:
        row_line = reader.line_num  # the physical line the row ends on
        if not row:  # a blank line: treat like the empty-token sentence break
            builder.end_sentence()
            continue
        if len(row) != 2:
            raise ConversionError(f"{path}:{row_line}", f"expected 2 CSV fields (token,TAG), found {len(row)}: {row!r}")
        word, tag = row[0], row[1].strip()
        if word == DOCSTART:
            finished = builder.start_document()
            if finished is not None:
                yield finished
        elif word == "":
            builder.end_sentence()
        elif not tag:
            raise ConversionError(f"{path}:{row_line}", f"token {word!r} has no tag")
        else:
            builder.add(word, tag, row_line)
    finished = builder.start_document()
    if finished is not None:
        yield finished


def read_conll(path: Path) -> Iterator[TokenDocument]:
    """Read a CoNLL column file: whitespace-separated columns with the token first and
    the NER tag last (2 or 4 columns, the same count on every line), a blank line
    between sentences, and `-DOCSTART-` lines between documents.

    path (Path): The column file.
    YIELDS (TokenDocument): The documents, in file order.
    """
    builder = _DocumentBuilder(path)
    n_columns = 0
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        columns = line.split()
        if not columns:
            builder.end_sentence()
            continue
        if columns[0] == DOCSTART:
            finished = builder.start_document()
            if finished is not None:
                yield finished
            continue
        if len(columns) < 2:
            raise ConversionError(f"{path}:{line_no}", f"expected a token and a tag, found one column: {line!r}")
        if n_columns and len(columns) != n_columns:
            raise ConversionError(
                f"{path}:{line_no}", f"expected {n_columns} columns like the lines before, found {len(columns)}: {line!r}"
            )
        n_columns = len(columns)
        builder.add(columns[0], columns[-1], line_no)
    finished = builder.start_document()
    if finished is not None:
        yield finished


def all_tags(documents: List[TokenDocument]) -> Iterator[str]:
    """Every tag of the documents, with an "O" between sentences (for scheme detection)."""
    for doc in documents:
        for sentence in doc.sentences:
            yield from sentence.tags
            yield "O"
