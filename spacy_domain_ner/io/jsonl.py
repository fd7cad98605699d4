"""The one JSONL reader of the package: every module that reads JSON lines goes through here.

Lines are split on "\\n" only (a trailing "\\r" is dropped): `str.splitlines()` also splits on
U+2028, U+2029, U+0085 and form feeds, which `json.dumps(ensure_ascii=False)` writes raw inside
strings (common in text pasted from PDFs). Blank lines are skipped; errors name "file:line".
"""
import json
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Tuple, Union

# JSON's own whitespace: a line of only these is blank (str.strip would also eat U+2028 & co).
JSON_WHITESPACE = " \t\r\n"
ErrorFactory = Callable[[str, str], Exception]


class JsonlError(ValueError):
    """A bad JSONL line or file. The message starts with its location (file:line)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location


class JsonlLine(NamedTuple):
    """One decoded non-blank line."""

    number: int
    location: str
    value: Any


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def loads_line(line: str) -> Any:
    """Decode one JSON line the way every reader of the package does.

    Raw control characters inside strings are accepted (strict=False: tabs pasted into text
    are data, not errors); NaN and Infinity are not JSON and are rejected.

    line (str): The line.
    RETURNS (Any): The decoded value.
    RAISES (ValueError): json.JSONDecodeError or the rejected constant.
    """
    return json.loads(line, strict=False, parse_constant=_reject_constant)


def describe_error(err: ValueError) -> str:
    """A short reason for a decode error: "Expecting value at column 3", or the message itself."""
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at column {err.colno}"
    return str(err)


def is_blank(line: str) -> bool:
    """Whether a line holds only JSON whitespace."""
    return not line.strip(JSON_WHITESPACE)


def split_lines(text: str) -> Iterator[Tuple[int, str]]:
    """The non-blank lines of a text, split on "\\n" only, without a trailing "\\r".

    text (str): The text.
    YIELDS (Tuple[int, str]): The 1-based line number and the line.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if not is_blank(line):
            yield number, line


def parse_jsonl(text: str, *, source: Union[str, Path], error: ErrorFactory = JsonlError) -> Iterator[JsonlLine]:
    """Decode the non-blank lines of a JSONL text.

    text (str): The text.
    source (Union[str, Path]): The file name, for locations.
    error (ErrorFactory): Builds the exception from (location, message), e.g. the caller's error class.
    YIELDS (JsonlLine): One per non-blank line.
    RAISES: `error("source:line", "not valid JSON (...)")` for the first line that is not JSON.
    """
    for number, line in split_lines(text):
        location = f"{source}:{number}"
        try:
            value = loads_line(line)
        except ValueError as err:
            raise error(location, f"not valid JSON ({describe_error(err)})") from None
        yield JsonlLine(number=number, location=location, value=value)


def read_utf8(path: Union[str, Path], *, error: ErrorFactory = JsonlError) -> str:
    """Read a UTF-8 file (a BOM is dropped), failing with the line of the first bad byte.

    path (Union[str, Path]): The file.
    error (ErrorFactory): Builds the exception from (location, message).
    RETURNS (str): Its text.
    """
    path = Path(path)
    if not path.is_file():
        raise error(str(path), "no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{path}:{line}", f"not valid UTF-8 (byte {data[err.start]:#04x} at offset {err.start})") from None


def read_jsonl(path: Union[str, Path], *, error: ErrorFactory = JsonlError) -> Iterator[JsonlLine]:
    """Read and decode a JSONL file.

    path (Union[str, Path]): The file.
    error (ErrorFactory): Builds the exception from (location, message).
    YIELDS (JsonlLine): One per non-blank line.
    """
    yield from parse_jsonl(read_utf8(path, error=error), source=path, error=error)


def iter_jsonl(path: Union[str, Path], *, error: ErrorFactory = JsonlError) -> Iterator[JsonlLine]:
    """Read and decode a JSONL file one line at a time: `read_jsonl` in bounded memory, for large corpora.

    The same rules: lines end at "\\n" only (a trailing "\\r" is dropped), a BOM is dropped,
    blank lines are skipped, errors name "file:line".

    path (Union[str, Path]): The file.
    error (ErrorFactory): Builds the exception from (location, message).
    YIELDS (JsonlLine): One per non-blank line.
    """
    path = Path(path)
    if not path.is_file():
        raise error(str(path), "no such file")
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):  # binary lines end at b"\n" only
            location = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                bad = offset + err.start
                raise error(location, f"not valid UTF-8 (byte {raw[err.start]:#04x} at offset {bad})") from None
            offset += len(raw)
            line = line[:-1] if line.endswith("\n") else line
            line = line[:-1] if line.endswith("\r") else line
            if is_blank(line):
                continue
            try:
                value = loads_line(line)
            except ValueError as err:
                raise error(location, f"not valid JSON ({describe_error(err)})") from None
            yield JsonlLine(number=number, location=location, value=value)
