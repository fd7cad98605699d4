"""Raw-text inputs shared by masked-LM pretraining and the static vectors: files found in folders, and the
text of a JSONL record."""
from pathlib import Path
from typing import Any, List, Sequence, Union

from ..corpus.formats.base import ConversionError


def find_files(paths: Sequence[Union[str, Path]], suffixes: Sequence[str]) -> List[Path]:
    """Expand inputs: files stay (whatever their suffix), folders give their files with one of
    `suffixes` (recursively, sorted).

    paths (Sequence[Union[str, Path]]): Files or folders.
    suffixes (Sequence[str]): The lower-case suffixes taken from folders, e.g. (".txt", ".jsonl").
    RETURNS (List[Path]): The files to read.
    """
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise ConversionError(str(path), f"the folder has no {_listed(suffixes)} files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConversionError(str(path), "no such file or folder")
    return files


def _listed(suffixes: Sequence[str]) -> str:
    return suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"


def record_text(record: Any, *, location: str, text_key: str) -> str:
    """The text of a JSONL record, which must be an object with a string under `text_key`.

    record (Any): The parsed JSON value.
    location (str): file:line, for the error.
    text_key (str): The key of the text.
    RETURNS (str): The text (possibly empty).
    """
    if not isinstance(record, dict):
        raise ConversionError(location, f"expected a JSON object with a '{text_key}' string, got {type(record).__name__}")
    value = record.get(text_key)
    if not isinstance(value, str):
        found = "no such key" if value is None else f"a {type(value).__name__}"
        raise ConversionError(location, f"the record has no '{text_key}' string ({found})")
    return value
