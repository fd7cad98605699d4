"""What every reader yields, and the errors they raise."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

from ...io.errors import LocatedError


class ConversionError(LocatedError):
    """Bad corpus or text input. The message starts with the source location (file:line or file record N)."""


@dataclass
class TokenSentence:
    """A tokenized sentence with one tag and one source line per token."""

    words: List[str] = field(default_factory=list)
    tags: List[str] = field(default_factory=list)
    lines: List[int] = field(default_factory=list)


@dataclass
class TokenDocument:
    """A document of a token-per-line corpus (the rows between two -DOCSTART- markers)."""

    doc_id: str
    source: str
    sentences: List[TokenSentence] = field(default_factory=list)


@dataclass
class SpanRecord:
    """A text with character-offset spans (end exclusive), from JSONL or Label Studio."""

    doc_id: str
    location: str
    text: str
    spans: List[Tuple[int, int, str]]
    meta: Dict[str, Any] = field(default_factory=dict)
    # Spans the reader already had to fix (e.g. UTF-16 offsets), as (span, what was done).
    repairs: List[Tuple[Tuple[int, int, str], str]] = field(default_factory=list)


def read_text(path: Path) -> str:
    """Read a UTF-8 file, failing with the file and line of the first bad byte.

    path (Path): The file.
    RETURNS (str): Its text.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConversionError(
            f"{path}:{line}", f"not valid UTF-8 (byte {data[err.start]:#04x} at offset {err.start}); re-encode the file as UTF-8"
        ) from None
    if not text.strip():
        raise ConversionError(str(path), "the file is empty")
    return text
