"""The command-line end of a generator of checked-in files (the config variants, the reference docs)."""
import sys
from pathlib import Path
from typing import Callable, List


def run_generator(write: Callable[[], List[Path]], *, check: bool, regenerate: str, nothing: str = "up to date") -> int:
    """Run a writer of generated files and report, as a command's exit status, what it did.

    write (Callable[[], List[Path]]): Writes the files (or, when checking, only compares them) and
        returns the paths written (or stale); raises ValueError on bad input.
    check (bool): Whether `write` only checks: the stale files are listed and make the status 1.
    regenerate (str): The command that rewrites the files, named next to each stale one.
    nothing (str): What is printed when nothing was written.
    RETURNS (int): 0, 1 (stale files under `check`) or 2 (an error).
    """
    try:
        paths = write()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if check:
        for path in paths:
            print(f"stale: {path} (regenerate: {regenerate})")
        return 1 if paths else 0
    print(("wrote " + ", ".join(str(path) for path in paths)) if paths else nothing)
    return 0
