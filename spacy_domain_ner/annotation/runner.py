"""Annotate JSONL or a folder of .txt files with a spaCy pipeline, every record exactly once.

Input. JSONL is read as bytes, one line at a time (never the whole file): each line is a
JSON object with the text under `text_key` and an id under `id_key` (a string or an
integer; a record without one gets its 1-based line number as id). A folder input reads
every `*.txt` file below it, the files of a folder in name order before its subfolders in
name order; the id is the path relative to the folder ("/"-separated) and a record's "line"
is its 1-based position in that order. A leading byte order mark is dropped.

Output. One JSON line per annotated record, in input order: all fields of the input, its
id, and `"entities": [{"start", "end", "label", "text"}, ...]` (an input field of that name
is replaced); an entity also has `"confidence"` when the pipeline gives it `ent._.confidence`
(the `entity_confidence` component, the `legal_knowledge` KB) and `"kb_id"` when it is linked.
With `min_confidence`, entities whose confidence is below it are left out of the output and
written to the review file (OUT_STEM.review.jsonl): one line per record with such entities,
with the same fields as its output line and only those entities under "entities". Entities
without a confidence stay in the output (counted as `entities_unscored`). Entities found =
kept + sent to review. Offsets are Python `str` offsets (Unicode code points) into the text exactly
as decoded: nothing is normalized, `\\r\\n` counts as two characters, an emoji as one (not
UTF-16 units, not bytes). A text longer than `max_chars` is split into chunks at the last
blank line, else line break, else sentence end, else space in the second half of the
window (a hard cut if none); each chunk is annotated alone and its offsets are shifted
back, so an entity cannot span a cut.

Outcomes. Every record yields one output line or one line in the errors file
(`{"line", "id", "error", "reason"}`), never a crash: invalid UTF-8 -> "invalid_utf8";
not JSON (NaN and Infinity included) -> "invalid_json"; JSON but no object ->
"not_an_object"; no text -> "missing_text"; text not a string -> "text_not_string"; id not
a string or integer -> "bad_id"; unpaired surrogate escapes (not encodable as UTF-8) ->
"unencodable"; an id already taken -> "duplicate_id" (the first record that passes the
checks above keeps its id, later ones go to errors); the pipeline raises on the record ->
"annotation_failed". Empty and whitespace-only texts are annotated (no entities). Blank
JSONL lines are not records; they are only counted. Records = annotated + errors.

Exactly-once protocol. A run writes OUT.partial and ERRORS.partial (append only; with
`min_confidence` also REVIEW.partial, handled exactly like ERRORS.partial throughout),
OUT.ids.sqlite (ids taken, with their line) and OUT.checkpoint.json (the commit point).
After each batch, in input order: (1) its output and error lines are appended to the
partial files, which are flushed and fsynced; (2) the id store is committed; (3) the
checkpoint is replaced atomically (temp file, fsync, os.replace) with the input position
after the batch (line and byte offset), the sizes of both partial files and the running
counts. `resume` reads the checkpoint, checks that settings and input are the same,
truncates both partial files to the committed sizes (dropping what a killed run wrote after
its last commit), deletes ids recorded after the committed line and continues reading at
the committed byte offset (folder: after the committed number of files). At the end the
checkpoint is marked done, the partial files are renamed to OUT and ERRORS (os.replace),
the summary JSON is written (temp + rename) and the checkpoint and id store are removed; a
run killed during that step is finished by `resume`. A record's outcome depends only on the
record, the ids before it and the settings, so a resumed run writes the same bytes as an
uninterrupted one, whatever the batch size, process count or engine.

Resume requires the same settings and the same, unchanged input (path, size, mtime, first
64 KiB); batch size, process count and engine may change.

Workers. One process (CPU, or a GPU with `gpu_id`: nlp.pipe batches on the device), or a
spawn pool of CPU processes that load the pipeline once each, fed a bounded window of
batches (2 per process) and read back in order. The pool replaces `nlp.pipe(n_process=...)`,
which ships whole Docs back and fails the entire stream when one text raises; here a failing
batch is retried text by text so only the bad record fails. Memory is bounded by the batch
(`batch_chars`), the window and the page cache of the on-disk id store, not by the input.

Safe loading. Pipelines are loaded by `spacy.load` only and nothing here reads a pickle or
enables `trust_remote_code`. spacy-transformers weights go through `torch.load`, whose default
(torch >= 2.6) is the restricted weights-only unpickler; a run refuses to start if
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD forces the unrestricted one. `code_paths` (--code) imports
Python files the user names, as spaCy's own --code does: trusted code only.
"""
import hashlib
import json
import os
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Span
from tqdm import tqdm

from ..io import atomic
from .records import Batch, IdStore, claim_ids, make_batches, read_items, split_text

DEFAULT_MAX_CHARS = 100_000
ENGINES = ("local", "ray")
_TRUE = ("1", "y", "yes", "true", "on")
# (entities as (start, end, label, confidence or None, kb_id or ""), words, error); None entities with an error message.
ChunkResult = Tuple[Optional[List[Tuple[int, int, str, Optional[float], str]]], int, Optional[str]]
Job = Tuple[Any, List[str]]


def load_pipeline(model: str, *, gpu_id: int = -1, code_paths: Sequence[Path] = ()) -> Language:
    """Load a pipeline with `spacy.load` (a directory or an installed package name).

    model (str): The pipeline.
    gpu_id (int): The GPU to run on; -1 for CPU.
    code_paths (Sequence[Path]): Python files to import first (custom components), trusted like the pipeline.
    RETURNS (Language): The pipeline.
    """
    if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").lower() in _TRUE:
        raise ValueError("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set: refusing to load pipelines with unrestricted pickle")
    for number, code_path in enumerate(code_paths):
        if not Path(code_path).is_file():
            raise ValueError(f"{code_path}: no such code file")
        spacy.util.import_file(f"spacy_domain_ner_annotate_code_{number}", code_path)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def check_max_chars(nlp: Language, max_chars: int) -> None:
    if max_chars > nlp.max_length:
        raise ValueError(f"max_chars {max_chars} exceeds the pipeline's max_length {nlp.max_length}")


def _confidence(ent: Any) -> Optional[float]:
    # The extension exists only where a component that scores entities was imported.
    if not Span.has_extension("confidence"):
        return None
    value = ent._.confidence
    return None if value is None else float(value)


def _doc_result(doc: Any) -> ChunkResult:
    ents = [(ent.start_char, ent.end_char, ent.label_, _confidence(ent), ent.kb_id_) for ent in doc.ents]
    return ents, sum(1 for token in doc if not token.is_space), None


def annotate_texts(nlp: Language, texts: Sequence[str], *, batch_size: int) -> List[ChunkResult]:
    """Annotate texts; if the batch raises, retry one by one so that only failing texts get an error.

    nlp (Language): The pipeline.
    texts (Sequence[str]): The chunk texts.
    batch_size (int): The nlp.pipe batch size.
    RETURNS (List[ChunkResult]): One result per text, in order.
    """
    try:
        return [_doc_result(doc) for doc in nlp.pipe(texts, batch_size=batch_size)]
    except Exception:
        results: List[ChunkResult] = []
        for text in texts:
            try:
                results.append(_doc_result(nlp(text)))
            except Exception as err:
                results.append((None, 0, f"{type(err).__name__}: {err}"[:500]))
        return results


_WORKER: Dict[str, Any] = {}


def _init_worker(model: str, code_paths: Sequence[Path], max_chars: int) -> None:
    # A load error is kept and raised by the first task, so the driver sees it (not a broken pool).
    try:
        _WORKER["nlp"] = load_pipeline(model, code_paths=code_paths)
        check_max_chars(_WORKER["nlp"], max_chars)
    except Exception as err:
        _WORKER["error"] = err


def _worker_annotate(texts: List[str], batch_size: int) -> List[ChunkResult]:
    if "error" in _WORKER:
        raise _WORKER["error"]
    return annotate_texts(_WORKER["nlp"], texts, batch_size=batch_size)


class LocalExecutor:
    """Annotate jobs in this process (one CPU or a GPU) or in a pool of CPU processes, in order.

    model (str): The pipeline.
    n_process (int): CPU processes; 1 annotates in this process.
    gpu_id (int): The GPU for in-process annotation; -1 for CPU.
    batch_size (int): The nlp.pipe batch size.
    max_chars (int): The longest chunk, checked against the pipeline's max_length.
    code_paths (Sequence[Path]): Python files to import before loading.
    """

    def __init__(
        self, *, model: str, n_process: int = 1, gpu_id: int = -1, batch_size: int = 64,
        max_chars: int = DEFAULT_MAX_CHARS, code_paths: Sequence[Path] = (),
    ) -> None:
        if n_process < 1:
            raise ValueError(f"n_process must be at least 1, not {n_process}")
        if gpu_id >= 0 and n_process > 1:
            raise ValueError("GPU annotation batches in one process: use n_process=1 with gpu_id")
        self.model, self.n_process, self.gpu_id, self.batch_size = model, n_process, gpu_id, batch_size
        self.max_chars, self.code_paths = max_chars, list(code_paths)
        self.nlp: Optional[Language] = None
        self.pool: Optional[ProcessPoolExecutor] = None

    def __enter__(self) -> "LocalExecutor":
        if self.n_process == 1:
            self.nlp = load_pipeline(self.model, gpu_id=self.gpu_id, code_paths=self.code_paths)
            check_max_chars(self.nlp, self.max_chars)
        else:
            self.pool = ProcessPoolExecutor(
                self.n_process, mp_context=get_context("spawn"), initializer=_init_worker,
                initargs=(self.model, self.code_paths, self.max_chars),
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def map(self, jobs: Iterable[Job]) -> Iterator[Tuple[Any, List[ChunkResult]]]:
        """Annotate (key, texts) jobs. YIELDS (Tuple[Any, List[ChunkResult]]): key and results, in job order."""
        if self.pool is None:
            assert self.nlp is not None, "use the executor as a context manager"
            for key, texts in jobs:
                yield key, annotate_texts(self.nlp, texts, batch_size=self.batch_size)
            return
        window: Deque[Tuple[Any, Any]] = deque()
        for key, texts in jobs:
            window.append((key, self.pool.submit(_worker_annotate, texts, self.batch_size)))
            if len(window) >= 2 * self.n_process:
                done_key, future = window.popleft()
                yield done_key, future.result()
        while window:
            done_key, future = window.popleft()
            yield done_key, future.result()


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


def new_counts() -> Dict[str, Any]:
    return {
        "records": 0, "annotated": 0, "errors": 0, "blank_lines": 0, "chunked_records": 0, "chunks": 0,
        "words": 0, "entities": 0, "entities_kept": 0, "entities_review": 0, "entities_unscored": 0, "review_records": 0,
        "errors_by_reason": {}, "entities_per_label": {},
    }


def render_batch(
    batch: Batch, results: Sequence[ChunkResult], *, counts: Dict[str, Any], text_key: str, id_key: str, keep_text: bool,
    min_confidence: Optional[float] = None,
) -> Tuple[bytes, bytes, bytes]:
    """Turn a batch and its chunk results into output, error and review lines, updating `counts`.

    min_confidence (Optional[float]): Entities with a confidence below it go to the review lines.
    RETURNS (Tuple[bytes, bytes, bytes]): The output, error and review lines, UTF-8.
    """
    # A checkpoint written before these counts existed: every entity so far was kept.
    counts.setdefault("entities_kept", counts["entities"])
    for key in ("entities_review", "entities_unscored", "review_records"):
        counts.setdefault(key, 0)
    out, err, review, cursor = [], [], [], 0
    by_reason, per_label = Counter(counts["errors_by_reason"]), Counter(counts["entities_per_label"])
    for item, spans in zip(batch.items, batch.spans):
        if item.blank:
            counts["blank_lines"] += 1
            continue
        counts["records"] += 1
        chunk_results, cursor = results[cursor : cursor + len(spans)], cursor + len(spans)
        failure = next((result[2] for result in chunk_results if result[2] is not None), None)
        if item.error is None and failure is not None:
            item.error = ("annotation_failed", failure)
        if item.error is not None:
            counts["errors"] += 1
            by_reason[item.error[0]] += 1
            # ASCII escapes: an id of an unencodable record must still be writable.
            err.append(json.dumps({"line": item.line, "id": item.doc_id, "error": item.error[0], "reason": item.error[1]}) + "\n")
            continue
        entities, uncertain = [], []
        for (start, _), (ents, words, _) in zip(spans, chunk_results):
            counts["words"] += words
            for ent_start, ent_end, label, *extra in ents or []:
                begin, end = start + ent_start, start + ent_end
                entity = {"start": begin, "end": end, "label": label, "text": item.text[begin:end]}
                confidence, kb_id = (extra + [None, ""])[:2]
                if confidence is not None:
                    entity["confidence"] = confidence
                else:
                    counts["entities_unscored"] += 1
                if kb_id:
                    entity["kb_id"] = kb_id
                below = min_confidence is not None and confidence is not None and confidence < min_confidence
                (uncertain if below else entities).append(entity)
                per_label[label] += 1
        assert item.record is not None
        record = dict(item.record)
        record.setdefault(id_key, item.doc_id)
        record["entities"] = entities
        if not keep_text:
            record.pop(text_key, None)
        out.append(json.dumps(record, ensure_ascii=False) + "\n")
        if uncertain:
            review.append(json.dumps({**record, "entities": uncertain}, ensure_ascii=False) + "\n")
            counts["review_records"] += 1
        counts["annotated"] += 1
        counts["entities"] += len(entities) + len(uncertain)
        counts["entities_kept"] += len(entities)
        counts["entities_review"] += len(uncertain)
        counts["chunks"] += len(spans)
        counts["chunked_records"] += len(spans) > 1
    counts["errors_by_reason"], counts["entities_per_label"] = dict(sorted(by_reason.items())), dict(sorted(per_label.items()))
    return "".join(out).encode("utf-8"), "".join(err).encode("utf-8"), "".join(review).encode("utf-8")


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


def _partials(paths: RunPaths, review: bool) -> List[Tuple[Path, Path, str]]:
    """(partial file, final file, checkpoint size key) of the appended outputs of a run."""
    files = [(paths.partial, paths.output, "output_bytes"), (paths.errors_partial, paths.errors, "errors_bytes")]
    return files + [(paths.review_partial, paths.review, "review_bytes")] if review else files


def _open_run(
    paths: RunPaths, fingerprint: Dict[str, Any], *, resume: bool, overwrite: bool, review: bool = False
) -> Optional[Dict[str, Any]]:
    """Resume from the checkpoint or start fresh. RETURNS: the checkpoint state, or None if the run is complete."""
    if resume and paths.checkpoint.exists():
        state = json.loads(paths.checkpoint.read_text(encoding="utf-8"))
        differing = sorted(k for k in set(fingerprint) | set(state["fingerprint"]) if fingerprint.get(k) != state["fingerprint"].get(k))
        if differing:
            raise ValueError(f"{paths.checkpoint}: cannot resume, the settings or input differ: {', '.join(differing)}")
        for partial, _, key in _partials(paths, review):
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


def _start_fresh(paths: RunPaths, state: Dict[str, Any], *, review: bool = False) -> None:
    """Discard what an earlier run left and create the empty partial files and first checkpoint."""
    for leftover in (paths.checkpoint, paths.partial, paths.errors_partial, paths.ids, paths.review_partial):
        leftover.unlink(missing_ok=True)
    for partial, final, _ in _partials(paths, review):
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"")
    write_json_atomic(paths.checkpoint, state)


def run_annotation(
    input_path: Path, output_path: Path, *, executor: Any, model: str, errors_path: Optional[Path] = None,
    summary_path: Optional[Path] = None, text_key: str = "text", id_key: str = "id", batch_size: int = 64,
    batch_chars: int = 1_000_000, max_chars: int = DEFAULT_MAX_CHARS, keep_text: bool = True,
    resume: bool = False, overwrite: bool = False, progress: bool = True, min_confidence: Optional[float] = None,
    review_path: Optional[Path] = None,
) -> Dict[str, Any]:
    """Annotate an input with an executor, following the exactly-once protocol of the module docstring.

    input_path (Path): A JSONL file or a folder of .txt files.
    output_path (Path): The output JSONL.
    executor (Any): A context manager with `map(jobs)` (LocalExecutor or annotate_ray.RayExecutor), entered only if work is left.
    model (str): The pipeline's name or path (part of the resume check).
    errors_path (Optional[Path]): The errors JSONL; default OUT_STEM.errors.jsonl.
    summary_path (Optional[Path]): The summary JSON; default OUT_STEM.summary.json.
    text_key (str): The text field.
    id_key (str): The id field.
    batch_size (int): Records per batch (the commit unit).
    batch_chars (int): Characters after which a batch closes early.
    max_chars (int): The longest chunk annotated at once.
    keep_text (bool): Copy the text to the output.
    resume (bool): Continue an interrupted run (or finish a fresh one).
    overwrite (bool): Replace an existing output or discard an interrupted run.
    progress (bool): Show a progress bar.
    min_confidence (Optional[float]): Entities with a lower confidence go to the review file, not the output.
    review_path (Optional[Path]): The review JSONL (with min_confidence); default OUT_STEM.review.jsonl.
    RETURNS (Dict[str, Any]): The summary (counts, speed), also written to the summary JSON.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise ValueError(f"{input_path}: no such file or folder")
    if batch_size < 1 or batch_chars < 1:
        raise ValueError(f"batch_size and batch_chars must be positive, not {batch_size} and {batch_chars}")
    split_text("", max_chars=max_chars)  # checks max_chars
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}")
    paths = RunPaths.for_output(output_path, errors_path, summary_path, review_path)
    review = min_confidence is not None
    fingerprint = {
        "input": input_fingerprint(input_path), "model": str(Path(model).resolve()) if Path(model).exists() else model,
        "text_key": text_key, "id_key": id_key, "max_chars": max_chars, "keep_text": keep_text, "errors": str(paths.errors.resolve()),
    }
    if review:  # only then: a run without it keeps the fingerprint (and checkpoints) of earlier versions
        fingerprint.update(min_confidence=min_confidence, review=str(paths.review.resolve()))
    state = _open_run(paths, fingerprint, resume=resume, overwrite=overwrite, review=review)
    if state is None:
        return json.loads(paths.summary.read_text(encoding="utf-8"))
    resumed, counts = state["position"] is not None or state["done"], state["counts"]
    started = loaded = time.perf_counter()
    session_records = session_words = 0
    if not state["done"]:
        with executor:  # the pipeline loads before any file changes: a failed load leaves everything as it was
            if state["position"] is None:
                _start_fresh(paths, state, review=review)
            loaded = time.perf_counter()
            ids = IdStore(paths.ids)
            ids.rollback_after((state["position"] or {}).get("line", 0))
            items = claim_ids(read_items(input_path, text_key=text_key, id_key=id_key, position=state["position"]), ids)
            batches = make_batches(items, batch_size=batch_size, batch_chars=batch_chars, max_chars=max_chars)
            bar = tqdm(desc="annotate", unit="doc", initial=counts["records"], disable=not progress, dynamic_ncols=True)
            try:
                with ExitStack() as stack:
                    files = [stack.enter_context(partial.open("ab")) for partial, _, _ in _partials(paths, review)]
                    for batch, results in executor.map((batch, batch.texts) for batch in batches):
                        records, words = counts["records"], counts["words"]
                        rendered = render_batch(
                            batch, results, counts=counts, text_key=text_key, id_key=id_key, keep_text=keep_text,
                            min_confidence=min_confidence,
                        )
                        for file, data in zip(files, rendered):
                            file.write(data)
                            file.flush()
                            os.fsync(file.fileno())
                        ids.commit()
                        state.update(position=batch.items[-1].position)
                        state.update({key: file.tell() for file, (_, _, key) in zip(files, _partials(paths, review))})
                        write_json_atomic(paths.checkpoint, state)  # the commit point
                        session_records += counts["records"] - records
                        session_words += counts["words"] - words
                        bar.update(counts["records"] - records)
                        bar.set_postfix_str(f"{session_words / max(time.perf_counter() - loaded, 1e-9):,.0f} words/s")
            finally:
                bar.close()
                ids.close()
        if not _reconciled(counts):  # a bug guard: never publish unreconciled output
            raise RuntimeError(f"counts do not reconcile: {counts}")
        state["done"] = True
        write_json_atomic(paths.checkpoint, state)
    for partial, final, _ in _partials(paths, review):
        if partial.exists():
            os.replace(partial, final)
    elapsed = time.perf_counter() - loaded
    summary = {
        "input": str(input_path), "output": str(paths.output), "errors_file": str(paths.errors), "model": model,
        "review_file": str(paths.review) if review else None, "min_confidence": min_confidence,
        **counts, "reconciled": _reconciled(counts), "resumed": resumed,
        "session_records": session_records, "session_words": session_words,
        "load_seconds": round(loaded - started, 3), "seconds": round(elapsed, 3),
        "docs_per_second": round(session_records / elapsed, 2) if elapsed > 0 else 0.0,
        "words_per_second": round(session_words / elapsed, 1) if elapsed > 0 else 0.0, "fingerprint": fingerprint,
    }
    write_json_atomic(paths.summary, summary)
    paths.ids.unlink(missing_ok=True)
    paths.checkpoint.unlink()
    return summary


def _reconciled(counts: Dict[str, Any]) -> bool:
    """Records = annotated + errors, and entities found = kept + sent to review."""
    entities_ok = counts["entities"] == counts.get("entities_kept", counts["entities"]) + counts.get("entities_review", 0)
    return counts["records"] == counts["annotated"] + counts["errors"] and entities_ok


def annotate(
    input_path: Path, output_path: Path, *, model: str, engine: str = "local", n_process: int = 1, gpu_id: int = -1,
    n_actors: int = 2, num_gpus: float = 0.0, ray_address: Optional[str] = None, window_chars: int = 50_000_000,
    code_paths: Sequence[Path] = (), batch_size: int = 64, max_chars: int = DEFAULT_MAX_CHARS, **options: Any,
) -> Dict[str, Any]:
    """Annotate a JSONL file or a folder of .txt files into JSONL with entity spans, exactly once.

    input_path (Path): The input.
    output_path (Path): The output JSONL.
    model (str): A pipeline directory or installed package name.
    engine (str): "local" (this process, a GPU, or n_process CPU processes) or "ray" (Ray Data actors).
    n_process (int): Local CPU processes.
    gpu_id (int): Local GPU; -1 for CPU.
    n_actors (int): Ray actors, each loading the pipeline once.
    num_gpus (float): GPUs per Ray actor; 0 for CPU actors.
    ray_address (Optional[str]): The Ray cluster; None starts or joins a local one.
    window_chars (int): Characters sent to Ray per dataset (bounds the driver's memory).
    code_paths (Sequence[Path]): Python files with custom components, imported before loading.
    batch_size (int): Records per batch.
    max_chars (int): The longest chunk annotated at once.
    **options: The remaining keyword arguments of `run_annotation`.
    RETURNS (Dict[str, Any]): The summary.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    executor: Any
    if engine == "ray":
        if n_process != 1 or gpu_id >= 0:
            raise ValueError("the ray engine uses n_actors and num_gpus, not n_process and gpu_id")
        from .ray_executor import RayExecutor

        executor = RayExecutor(
            model=model, n_actors=n_actors, num_gpus=num_gpus, batch_size=batch_size, max_chars=max_chars,
            code_paths=code_paths, address=ray_address, window_chars=window_chars,
        )
    else:
        executor = LocalExecutor(
            model=model, n_process=n_process, gpu_id=gpu_id, batch_size=batch_size, max_chars=max_chars, code_paths=code_paths,
        )
    return run_annotation(input_path, output_path, executor=executor, model=model, batch_size=batch_size, max_chars=max_chars, **options)
