"""The local engine of `annotate`: one process, or a spawn pool of CPU processes that load the pipeline
once each, fed a bounded window of batches and read back in order.

Each pool process gets its share of the CPUs as torch and BLAS threads: torch (and numpy's BLAS)
would start as many threads as the machine has cores in every process, and on 2 cores two
processes of 2 threads each annotated at 0.42x the speed of one process (`docs/lab/speed.md`).
"""
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language

from .pipeline import DEFAULT_MAX_CHARS, ChunkResult, Job, annotate_texts, check_max_chars, load_pipeline

_WORKER: Dict[str, Any] = {}


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count where they differ)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process(n_process: int, threads: Optional[int] = None) -> int:
    """Torch and BLAS threads for each of `n_process` processes: `threads` if given, else the available
    CPUs divided among the processes (at least 1).

    n_process (int): Processes that run side by side.
    threads (Optional[int]): An explicit count (>= 1), or None.
    RETURNS (int): The threads per process.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        return threads
    return max(1, available_cpus() // n_process)


def set_threads(threads: int) -> None:
    """Set the threads of numpy's BLAS and of torch (where torch is installed) in this process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def _init_worker(model: str, code_paths: Sequence[Path], max_chars: int, threads: int) -> None:
    # A load error is kept and raised by the first task, so the driver sees it (not a broken pool).
    try:
        set_threads(threads)
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
    threads (Optional[int]): Torch and BLAS threads per process; None: the available CPUs divided
        among the processes (one process: the libraries' own defaults).
    """

    def __init__(
        self, *, model: str, n_process: int = 1, gpu_id: int = -1, batch_size: int = 64,
        max_chars: int = DEFAULT_MAX_CHARS, code_paths: Sequence[Path] = (), threads: Optional[int] = None,
    ) -> None:
        if n_process < 1:
            raise ValueError(f"n_process must be at least 1, not {n_process}")
        if gpu_id >= 0 and n_process > 1:
            raise ValueError("GPU annotation batches in one process: use n_process=1 with gpu_id")
        self.model, self.n_process, self.gpu_id, self.batch_size = model, n_process, gpu_id, batch_size
        self.max_chars, self.code_paths = max_chars, list(code_paths)
        self.threads = threads_per_process(n_process, threads) if threads is not None or n_process > 1 else None
        self.nlp: Optional[Language] = None
        self.pool: Optional[ProcessPoolExecutor] = None

    def __enter__(self) -> "LocalExecutor":
        if self.n_process == 1:
            if self.threads is not None:
                set_threads(self.threads)
            self.nlp = load_pipeline(self.model, gpu_id=self.gpu_id, code_paths=self.code_paths)
            check_max_chars(self.nlp, self.max_chars)
        else:
            self.pool = ProcessPoolExecutor(
                self.n_process, mp_context=get_context("spawn"), initializer=_init_worker,
                initargs=(self.model, self.code_paths, self.max_chars, self.threads),
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
