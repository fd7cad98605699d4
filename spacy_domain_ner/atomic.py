"""Atomic file output: a failed run leaves no half-written file behind.

Every writer here writes to a temporary file in the target's directory (so that
`os.replace` is a rename on one file system) and renames it into place only
when it is complete; on any error the temporary files are removed.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, List, Sequence, Tuple

Writer = Callable[[Path], None]


def temp_path_for(path: Path) -> Path:
    """The temporary sibling of `path` that this process writes before renaming."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_all_atomically(targets: Sequence[Tuple[Path, Writer]]) -> None:
    """Write several files so that they appear together or not at all.

    All files are written to temporary siblings first and renamed only once every
    one of them is complete, so an error while writing the last file leaves none.

    targets (Sequence[Tuple[Path, Writer]]): Each output path with a function that
        writes the content to the path it is given.
    """
    for path, _ in targets:  # os.replace would fail only after the other files are in place
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path}: is a directory")
    staged: List[Tuple[Path, Path]] = []
    try:
        for path, write in targets:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path_for(path)
            staged.append((tmp, path))
            write(tmp)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()


def write_json_atomic(path: Path, data: Any, *, fsync: bool = False) -> None:
    """Write JSON atomically.

    path (Path): The output file.
    data (Any): JSON-serializable data.
    fsync (bool): Flush to disk before the rename, for commit points that must
        survive a crash of the machine, not only of the process.
    """

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf8") as handle:
            json.dump(data, handle, indent=1, ensure_ascii=False)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())

    write_all_atomically([(Path(path), write)])


def replace_directory(output: Path, write: Writer) -> None:
    """Build a directory in a temporary sibling and swap it in for `output` as a whole.

    A previous `output` is moved aside first (a directory cannot be renamed over a
    non-empty one) and put back if anything fails, so `output` is always either the
    old directory or the complete new one.

    output (Path): The directory to create or replace; its parents are created.
    write (Writer): Fills the (not yet existing) temporary directory it is given.
    """
    output = Path(output).resolve()
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"{output}: exists and is not a directory")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(output)
    old = output.with_name(f".{output.name}.{os.getpid()}.old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    try:
        write(tmp)
        if output.exists():
            os.replace(output, old)
        os.replace(tmp, output)
    except BaseException:
        if old.exists() and not output.exists():
            os.replace(old, output)
        raise
    finally:
        for path in (tmp, old):
            if path.exists():
                shutil.rmtree(path)
