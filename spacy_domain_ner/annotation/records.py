"""Input records of `annotate`: reading JSONL lines or .txt files one at a time, validating
each record into a text or an error code, claiming ids exactly once, splitting long texts
and grouping records into batches. See `annotate` for the outcomes and the protocol.
"""
import json
import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ..io.jsonl import is_blank, loads_line

_BREAKS = ("\n\n", "\r\n\r\n", "\n", ". ", "? ", "! ", " ")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass
class Item:
    """One input line or file. `record` is set for a valid record, `error` (code, reason) for a bad one."""

    line: int
    position: Dict[str, int]
    record: Optional[Dict[str, Any]] = None
    doc_id: Any = None
    text: str = ""
    error: Optional[Tuple[str, str]] = None
    blank: bool = False


@dataclass
class Batch:
    """Items committed together, and the chunk texts their valid records were split into."""

    items: List[Item] = field(default_factory=list)
    texts: List[str] = field(default_factory=list)
    spans: List[List[Tuple[int, int]]] = field(default_factory=list)
    chars: int = 0


def split_text(text: str, *, max_chars: int) -> List[Tuple[int, int]]:
    """Split a text into chunks of at most `max_chars`, preferring paragraph, line and sentence breaks.

    text (str): The text.
    max_chars (int): The longest chunk.
    RETURNS (List[Tuple[int, int]]): Contiguous (start, end) offsets covering the text.
    """
    if max_chars < 2:
        raise ValueError(f"max_chars must be at least 2, not {max_chars}")
    spans, start = [], 0
    while len(text) - start > max_chars:
        low, high, cut = start + max_chars // 2, start + max_chars, -1
        for sep in _BREAKS:
            found = text.rfind(sep, low, high)
            if found != -1:
                cut = found + len(sep)
                break
        cut = high if cut == -1 else cut
        spans.append((start, cut))
        start = cut
    spans.append((start, len(text)))
    return spans


def _has_surrogates(record: Dict[str, Any]) -> bool:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_record(record: Any, *, line: int, position: Dict[str, int], text_key: str, id_key: str, raw: str = "") -> Item:
    """Check a decoded record: an object with a string text and a string or integer id.

    record (Any): The decoded JSON value.
    line (int): Its line (or file) number, the id of a record without one.
    position (Dict[str, int]): The input position after it.
    text_key (str): The text field.
    id_key (str): The id field.
    raw (str): The source line, to look for surrogate escapes cheaply.
    RETURNS (Item): The valid record, or its error.
    """
    item = Item(line=line, position=position)
    if not isinstance(record, dict):
        item.error = ("not_an_object", f"expected a JSON object, got {type(record).__name__}")
        return item
    doc_id = record.get(id_key, line)
    item.doc_id = doc_id if isinstance(doc_id, (str, int)) and not isinstance(doc_id, bool) else None
    if item.doc_id is None:
        item.error = ("bad_id", f"{id_key!r} must be a string or an integer, not {type(doc_id).__name__}")
    elif text_key not in record:
        item.error = ("missing_text", f"no {text_key!r} field")
    elif not isinstance(record[text_key], str):
        item.error = ("text_not_string", f"{text_key!r} is {type(record[text_key]).__name__}, not a string")
    elif _SURROGATE_ESCAPE.search(raw) and _has_surrogates(record):
        item.error = ("unencodable", "unpaired UTF-16 surrogate escapes cannot be written as UTF-8")
    else:
        item.record, item.text = record, record[text_key]
    return item


def parse_line(raw: bytes, *, line: int, position: Dict[str, int], text_key: str, id_key: str) -> Item:
    """Decode and validate one JSONL line.

    raw (bytes): The line, with its line break.
    line (int): Its 1-based line number.
    position (Dict[str, int]): The input position after it.
    text_key (str): The text field.
    id_key (str): The id field.
    RETURNS (Item): The record, its error, or a blank line.
    """
    try:
        string = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Item(line, position, error=("invalid_utf8", f"not valid UTF-8: byte {raw[err.start]:#04x} at byte {err.start + 1} of the line"))
    if line == 1 and string.startswith("\ufeff"):
        string = string[1:]
    if is_blank(string):
        return Item(line, position, blank=True)
    try:
        # The package's JSONL decoding; lines come from a binary file, split on b"\n" only.
        record = loads_line(string)
    except ValueError as err:
        return Item(line, position, error=("invalid_json", f"not JSON: {err}"))
    return validate_record(record, line=line, position=position, text_key=text_key, id_key=id_key, raw=string)


def _walk_txt(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(".txt"):
                yield Path(dirpath) / name


def read_items(path: Path, *, text_key: str, id_key: str, position: Optional[Dict[str, int]] = None) -> Iterator[Item]:
    """Stream the items of a JSONL file or a folder of .txt files from a position.

    path (Path): The JSONL file or folder.
    text_key (str): The text field (and the field .txt texts are stored under).
    id_key (str): The id field.
    position (Optional[Dict[str, int]]): Where to continue ({"line", "offset"}); None: the start.
    YIELDS (Item): One per line (JSONL) or file (folder).
    """
    line = (position or {}).get("line", 0)
    if path.is_dir():
        for number, file_path in enumerate(_walk_txt(path), start=1):
            if number <= line:
                continue
            rel, data, pos = file_path.relative_to(path).as_posix(), file_path.read_bytes(), {"line": number, "offset": 0}
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as err:
                bad_line = data[: err.start].count(b"\n") + 1
                reason = f"not valid UTF-8: byte {data[err.start]:#04x} at line {bad_line}"
                yield Item(number, pos, doc_id=rel, error=("invalid_utf8", reason))
                continue
            yield validate_record({id_key: rel, text_key: text}, line=number, position=pos, text_key=text_key, id_key=id_key)
        return
    offset = (position or {}).get("offset", 0)
    with path.open("rb") as file:
        file.seek(offset)
        for raw in file:
            line, offset = line + 1, offset + len(raw)
            yield parse_line(raw, line=line, position={"line": line, "offset": offset}, text_key=text_key, id_key=id_key)


class IdStore:
    """The ids taken so far, on disk (memory stays bounded), rolled back to a checkpoint on resume."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path))
        self.conn.execute("CREATE TABLE IF NOT EXISTS ids (key TEXT PRIMARY KEY, line INTEGER)")
        self.conn.commit()

    def claim(self, doc_id: Any, line: int) -> Optional[int]:
        """Take an id; RETURNS (Optional[int]): None, or the line that took it first."""
        key = json.dumps(doc_id)
        if self.conn.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", (key, line)).rowcount == 1:
            return None
        return self.conn.execute("SELECT line FROM ids WHERE key = ?", (key,)).fetchone()[0]

    def rollback_after(self, line: int) -> None:
        """Forget the ids taken after `line` (claimed by a killed run past its last checkpoint)."""
        self.conn.execute("DELETE FROM ids WHERE line > ?", (line,))
        self.conn.commit()

    def commit(self) -> None:
        """Make the ids claimed so far durable (before the checkpoint that covers them)."""
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def claim_ids(items: Iterable[Item], ids: IdStore) -> Iterator[Item]:
    """Send a record whose id an earlier record took to errors as "duplicate_id"."""
    for item in items:
        if item.record is not None:
            first = ids.claim(item.doc_id, item.line)
            if first is not None:
                item.record, item.text = None, ""
                item.error = ("duplicate_id", f"id {item.doc_id!r} already taken by line {first}")
        yield item


def make_batches(items: Iterable[Item], *, batch_size: int, batch_chars: int, max_chars: int) -> Iterator[Batch]:
    """Group items into batches of at most `batch_size` items, closed early past `batch_chars` characters."""
    batch = Batch()
    for item in items:
        batch.items.append(item)
        spans = split_text(item.text, max_chars=max_chars) if item.record is not None else []
        batch.spans.append(spans)
        batch.texts.extend(item.text[start:end] for start, end in spans)
        batch.chars += len(item.text)
        if len(batch.items) >= batch_size or batch.chars >= batch_chars:
            yield batch
            batch = Batch()
    if batch.items:
        yield batch
