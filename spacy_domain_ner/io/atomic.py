"""Atomic file output: a failed run leaves no half-written file behind.

Every writer here writes to a temporary file in the target's directory (so that
`os.replace` is a rename on one file system) and renames it into place only
when it is complete; on any error the temporary files are removed.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

Writer = Callable[[Path], None]


def temp_path_for(path: Path) -> Path:
    """The temporary sibling of `path` that this process writes before renaming."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def backup_path_for(path: Path) -> Path:
    """The sibling that keeps the previous version of `path` while several files are swapped in."""
    return path.with_name(f".{path.name}.{os.getpid()}.bak")


def _keep_previous(path: Path) -> Optional[Path]:
    """Link (or, where links are unsupported, copy) the current `path` aside; None if it does not exist."""
    if not path.exists():
        return None
    backup = backup_path_for(path)
    if backup.exists():
        backup.unlink()
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup


def write_all_atomically(targets: Sequence[Tuple[Path, Writer]]) -> None:
    """Write several files so that they appear together or not at all.

    All files are written to temporary siblings first and renamed only once every
    one of them is complete, so an error while writing any file leaves every
    target as it was. The renames themselves are one per file (POSIX has no
    rename of several files at once), so the previous version of each target is
    kept aside (a hard link) first: if a rename fails, the files already renamed
    get their previous version back (or are removed if they were new) before the
    error is raised. The guarantee, precisely: each target is always a complete
    file, never a partial one; after an exception the targets are all as they were
    (unless undoing a rename fails as well, e.g. the disk is gone); only a crash of
    the process or the machine during the rename phase (a few renames long) can
    leave some targets new and others old.

    targets (Sequence[Tuple[Path, Writer]]): Each output path with a function that
        writes the content to the path it is given.
    """
    for path, _ in targets:  # os.replace would fail only after the other files are in place
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path}: is a directory")
    staged: List[Tuple[Path, Path]] = []
    backups: List[Tuple[Path, Optional[Path]]] = []
    try:
        for path, write in targets:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path_for(path)
            staged.append((tmp, path))
            write(tmp)
        for _, path in staged:  # one file needs no undo: its rename is atomic
            backups.append((path, _keep_previous(path) if len(staged) > 1 else None))
        renamed: List[Tuple[Path, Optional[Path]]] = []
        try:
            for (tmp, path), kept in zip(staged, backups):
                os.replace(tmp, path)
                renamed.append(kept)
        except BaseException:
            for path, previous in reversed(renamed):
                if previous is None:
                    path.unlink()
                else:
                    os.replace(previous, path)
            raise
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
        for _, backup in backups:
            if backup is not None and backup.exists():
                backup.unlink()


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
