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
uninterrupted one with the same batch size (a resumed run restarts at a batch boundary, so its
batches are the same), and whatever the batch size, process count or engine when the pipeline's
output for a text does not depend on the other texts of its batch. A transformer pipeline
quantized to int8 at load is such a pipeline too (`spacy_domain_ner.models.int8`: a scale per word
piece, spans padded to a length of their own); with torch's per-tensor dynamic quantization, used
before, some CUAD contracts came out differently with batches of 8 and of 16
(docs/lab/annotation.md).

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
import json
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from tqdm import tqdm

from .journal import RunPaths, input_fingerprint, open_run, partial_files, start_fresh, write_json_atomic
from .local_executor import LocalExecutor
from .output import reconciled, render_batch
from .pipeline import DEFAULT_MAX_CHARS
from .records import IdStore, claim_ids, make_batches, read_items, split_text

ENGINES = ("local", "ray")


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
    state = open_run(paths, fingerprint, resume=resume, overwrite=overwrite, review=review)
    if state is None:
        return json.loads(paths.summary.read_text(encoding="utf-8"))
    resumed, counts = state["position"] is not None or state["done"], state["counts"]
    started = loaded = time.perf_counter()
    run_records = run_words = 0
    if not state["done"]:
        with executor:  # the pipeline loads before any file changes: a failed load leaves everything as it was
            if state["position"] is None:
                start_fresh(paths, state, review=review)
            loaded = time.perf_counter()
            ids = IdStore(paths.ids)
            ids.rollback_after((state["position"] or {}).get("line", 0))
            items = claim_ids(read_items(input_path, text_key=text_key, id_key=id_key, position=state["position"]), ids)
            batches = make_batches(items, batch_size=batch_size, batch_chars=batch_chars, max_chars=max_chars)
            bar = tqdm(desc="annotate", unit="doc", initial=counts["records"], disable=not progress, dynamic_ncols=True)
            try:
                with ExitStack() as stack:
                    files = [stack.enter_context(partial.open("ab")) for partial, _, _ in partial_files(paths, review)]
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
                        state.update({key: file.tell() for file, (_, _, key) in zip(files, partial_files(paths, review))})
                        write_json_atomic(paths.checkpoint, state)  # the commit point
                        run_records += counts["records"] - records
                        run_words += counts["words"] - words
                        bar.update(counts["records"] - records)
                        bar.set_postfix_str(f"{run_words / max(time.perf_counter() - loaded, 1e-9):,.0f} words/s")
            finally:
                bar.close()
                ids.close()
        if not reconciled(counts):  # a bug guard: never publish unreconciled output
            raise RuntimeError(f"counts do not reconcile: {counts}")
        state["done"] = True
        write_json_atomic(paths.checkpoint, state)
    for partial, final, _ in partial_files(paths, review):
        if partial.exists():
            os.replace(partial, final)
    elapsed = time.perf_counter() - loaded
    summary = {
        "input": str(input_path), "output": str(paths.output), "errors_file": str(paths.errors), "model": model,
        "review_file": str(paths.review) if review else None, "min_confidence": min_confidence,
        **counts, "reconciled": reconciled(counts), "resumed": resumed,
        "run_records": run_records, "run_words": run_words,
        "load_seconds": round(loaded - started, 3), "seconds": round(elapsed, 3),
        "docs_per_second": round(run_records / elapsed, 2) if elapsed > 0 else 0.0,
        "words_per_second": round(run_words / elapsed, 1) if elapsed > 0 else 0.0, "fingerprint": fingerprint,
    }
    write_json_atomic(paths.summary, summary)
    paths.ids.unlink(missing_ok=True)
    paths.checkpoint.unlink()
    return summary


def annotate(
    input_path: Path, output_path: Path, *, model: str, engine: str = "local", n_process: int = 1, gpu_id: int = -1,
    n_actors: int = 2, num_gpus: float = 0.0, ray_address: Optional[str] = None, window_chars: int = 50_000_000,
    code_paths: Sequence[Path] = (), batch_size: int = 64, max_chars: int = DEFAULT_MAX_CHARS,
    threads: Optional[int] = None, **options: Any,
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
    threads (Optional[int]): Local engine: torch threads per process (None: the CPUs shared out).
    **options: The remaining keyword arguments of `run_annotation`.
    RETURNS (Dict[str, Any]): The summary.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    executor: Any
    if engine == "ray":
        if n_process != 1 or gpu_id >= 0 or threads is not None:
            raise ValueError("the ray engine uses n_actors and num_gpus, not n_process, gpu_id and threads")
        from .ray_executor import RayExecutor

        executor = RayExecutor(
            model=model, n_actors=n_actors, num_gpus=num_gpus, batch_size=batch_size, max_chars=max_chars,
            code_paths=code_paths, address=ray_address, window_chars=window_chars,
        )
    else:
        executor = LocalExecutor(
            model=model, n_process=n_process, gpu_id=gpu_id, batch_size=batch_size, max_chars=max_chars, code_paths=code_paths,
            threads=threads,
        )
    return run_annotation(input_path, output_path, executor=executor, model=model, batch_size=batch_size, max_chars=max_chars, **options)
