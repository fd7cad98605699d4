"""The commit point of an annotation run (see `runner` for the exactly-once protocol): its files, the
input fingerprint, the checkpoint, and resuming or starting fresh.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..io import atomic
from .output import new_counts


@dataclass
class RunPaths:
    """The files of a run: final output, errors and summary, and the partial files and commit point."""

    output: Path
    errors: Path
    summary: Path
    partial: Path
    errors_partial: Path
    checkpoint: Path
    ids: Path
    review: Path
    review_partial: Path

    @classmethod
    def for_output(
        cls, output: Path, errors: Optional[Path] = None, summary: Optional[Path] = None, review: Optional[Path] = None
    ) -> "RunPaths":
        """out.jsonl -> out.errors.jsonl, out.summary.json, out.review.jsonl, out.jsonl.partial, out.jsonl.checkpoint.json, out.jsonl.ids.sqlite."""
        output = Path(output)
        errors = Path(errors) if errors else output.with_name(f"{output.stem}.errors.jsonl")
        summary = Path(summary) if summary else output.with_name(f"{output.stem}.summary.json")
        review = Path(review) if review else output.with_name(f"{output.stem}.review.jsonl")
        return cls(
            output, errors, summary, output.with_name(f"{output.name}.partial"), errors.with_name(f"{errors.name}.partial"),
            output.with_name(f"{output.name}.checkpoint.json"), output.with_name(f"{output.name}.ids.sqlite"),
            review, review.with_name(f"{review.name}.partial"),
        )


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically and fsync it: the checkpoint is the commit point."""
    atomic.write_json_atomic(path, data, fsync=True)


def input_fingerprint(path: Path) -> Dict[str, Any]:
    """The input's resolved path and kind, and for JSONL its size, mtime and a hash of its first 64 KiB, compared on resume."""
    if path.is_dir():
        return {"path": str(path.resolve()), "kind": "folder"}
    with path.open("rb") as file:
        head = file.read(65536)
    stat = path.stat()
    return {
        "path": str(path.resolve()), "kind": "jsonl", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "head_sha256": hashlib.sha256(head).hexdigest(),
    }


def partial_files(paths: RunPaths, review: bool) -> List[Tuple[Path, Path, str]]:
    """(partial file, final file, checkpoint size key) of the appended outputs of a run."""
    files = [(paths.partial, paths.output, "output_bytes"), (paths.errors_partial, paths.errors, "errors_bytes")]
    return files + [(paths.review_partial, paths.review, "review_bytes")] if review else files


def open_run(
    paths: RunPaths, fingerprint: Dict[str, Any], *, resume: bool, overwrite: bool, review: bool = False
) -> Optional[Dict[str, Any]]:
    """Resume from the checkpoint or start fresh. RETURNS: the checkpoint state, or None if the run is complete."""
    if resume and paths.checkpoint.exists():
        state = json.loads(paths.checkpoint.read_text(encoding="utf-8"))
        differing = sorted(k for k in set(fingerprint) | set(state["fingerprint"]) if fingerprint.get(k) != state["fingerprint"].get(k))
        if differing:
            raise ValueError(f"{paths.checkpoint}: cannot resume, the settings or input differ: {', '.join(differing)}")
        for partial, _, key in partial_files(paths, review):
            if state["done"] and not partial.exists():
                continue  # renamed into place before the kill
            size = partial.stat().st_size if partial.exists() else -1
            if size < state[key]:
                raise ValueError(f"{partial}: {size} bytes, fewer than the {state[key]} committed; cannot resume")
            with partial.open("r+b") as file:
                file.truncate(state[key])  # drop what a killed run wrote after its last commit
                os.fsync(file.fileno())
        return state
    leftovers = [p for p in (paths.checkpoint, paths.partial, paths.errors_partial, paths.ids, paths.review_partial) if p.exists()]
    if resume and not leftovers and paths.output.exists() and paths.summary.exists():
        try:
            if json.loads(paths.summary.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
                return None  # already complete with these settings
        except ValueError:
            pass
    if leftovers and not (overwrite or (resume and not paths.checkpoint.exists())):
        raise ValueError(f"an interrupted run left {leftovers[0]}: resume it (--resume) or start over (--overwrite)")
    if paths.output.exists() and not overwrite:
        raise ValueError(f"{paths.output} exists: pass --overwrite to replace it")
    state = {"version": 1, "fingerprint": fingerprint, "position": None, "output_bytes": 0, "errors_bytes": 0, "counts": new_counts(), "done": False}
    if review:
        state["review_bytes"] = 0
    return state


def start_fresh(paths: RunPaths, state: Dict[str, Any], *, review: bool = False) -> None:
    """Discard what an earlier run left and create the empty partial files and first checkpoint."""
    for leftover in (paths.checkpoint, paths.partial, paths.errors_partial, paths.ids, paths.review_partial):
        leftover.unlink(missing_ok=True)
    for partial, final, _ in partial_files(paths, review):
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"")
    write_json_atomic(paths.checkpoint, state)
