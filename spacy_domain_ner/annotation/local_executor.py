"""The local engine of `annotate`: one process, or a spawn pool of CPU processes that load the pipeline
once each, fed a bounded window of batches and read back in order.
"""
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language

from .pipeline import DEFAULT_MAX_CHARS, ChunkResult, Job, annotate_texts, check_max_chars, load_pipeline

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
