"""The Ray Data engine of `annotate` (optional extra: `pip install spacy-domain-ner[ray]`).

The driver still reads, validates, deduplicates, chunks and commits exactly as the local
engine does (see `annotate`); only the chunk texts travel. Batches are gathered into windows
of about `window_chars` characters, which bounds the driver's memory; each window becomes a
`ray.data.from_items` dataset of (index, text) rows, annotated by `map_batches` with an
actor pool whose actors load the pipeline once (CPU actors, or GPU actors with `num_gpus`),
and its results are put back in input order by index before they are committed. The output
is therefore byte for byte that of the local engine. Each window starts its own actor pool,
so keep windows large (the default 50 M characters holds all of CUAD) when the pipeline is
slow to load. A pipeline given as a path must exist at that path on every node.
"""
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

from .pipeline import DEFAULT_MAX_CHARS, ChunkResult, Job, annotate_texts, check_max_chars, load_pipeline


class RayAnnotator:
    """A Ray Data actor: loads the pipeline once, then annotates batches of (index, text) rows.

    model (str): The pipeline.
    code_paths (Sequence[str]): Python files with custom components.
    use_gpu (bool): Run on the GPU Ray assigned to this actor.
    batch_size (int): The nlp.pipe batch size.
    max_chars (int): The longest chunk, checked against the pipeline's max_length.
    """

    def __init__(self, *, model: str, code_paths: Sequence[str], use_gpu: bool, batch_size: int, max_chars: int) -> None:
        # Ray sets CUDA_VISIBLE_DEVICES per actor, so the assigned GPU is always device 0.
        self.nlp = load_pipeline(model, gpu_id=0 if use_gpu else -1, code_paths=[Path(p) for p in code_paths])
        check_max_chars(self.nlp, max_chars)
        self.batch_size = batch_size

    def __call__(self, batch: Any) -> Any:
        import pyarrow

        # pyarrow batches: numpy string arrays would drop trailing NUL characters.
        texts = batch.column("text").to_pylist()
        results = annotate_texts(self.nlp, texts, batch_size=self.batch_size)
        return pyarrow.table({"index": batch.column("index"), "result": pyarrow.array([json.dumps(r) for r in results], pyarrow.string())})


class RayExecutor:
    """Annotate jobs on Ray Data, yielding results in job order (see the module docstring).

    model (str): The pipeline.
    n_actors (int): Actors per window.
    num_gpus (float): GPUs per actor; 0 for CPU actors.
    batch_size (int): Rows per actor call and nlp.pipe batch size.
    max_chars (int): The longest chunk.
    code_paths (Sequence[Path]): Python files with custom components.
    address (Optional[str]): The Ray cluster address; None joins an initialized or starts a local Ray.
    window_chars (int): Characters per dataset.
    """

    def __init__(
        self, *, model: str, n_actors: int = 2, num_gpus: float = 0.0, batch_size: int = 64,
        max_chars: int = DEFAULT_MAX_CHARS, code_paths: Sequence[Path] = (), address: Optional[str] = None,
        window_chars: int = 50_000_000,
    ) -> None:
        if n_actors < 1 or num_gpus < 0 or window_chars < 1:
            raise ValueError(f"need n_actors >= 1, num_gpus >= 0, window_chars >= 1; got {n_actors}, {num_gpus}, {window_chars}")
        self.model, self.n_actors, self.num_gpus, self.batch_size = model, n_actors, num_gpus, batch_size
        self.max_chars, self.code_paths, self.address, self.window_chars = max_chars, [str(p) for p in code_paths], address, window_chars
        self.started_ray = False

    def __enter__(self) -> "RayExecutor":
        try:
            import ray
        except ImportError:
            raise ValueError("the ray engine needs Ray Data: pip install 'spacy-domain-ner[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            self.started_ray = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False

    def map(self, jobs: Iterable[Job]) -> Iterator[Tuple[Any, List[ChunkResult]]]:
        """Annotate (key, texts) jobs. YIELDS (Tuple[Any, List[ChunkResult]]): key and results, in job order."""
        window: List[Job] = []
        chars = 0
        for key, texts in jobs:
            window.append((key, texts))
            chars += sum(len(text) for text in texts)
            if chars >= self.window_chars:
                yield from self._run_window(window)
                window, chars = [], 0
        if window:
            yield from self._run_window(window)

    def _run_window(self, window: List[Job]) -> Iterator[Tuple[Any, List[ChunkResult]]]:
        import ray

        rows = [{"index": index, "text": text} for index, text in enumerate(t for _, texts in window for t in texts)]
        results: List[Any] = [None] * len(rows)
        if rows:
            n_actors = min(self.n_actors, -(-len(rows) // self.batch_size))
            dataset = ray.data.from_items(rows).map_batches(
                RayAnnotator, batch_format="pyarrow", batch_size=self.batch_size,
                compute=ray.data.ActorPoolStrategy(size=n_actors), num_gpus=self.num_gpus or None,
                fn_constructor_kwargs={
                    "model": self.model, "code_paths": self.code_paths, "use_gpu": self.num_gpus > 0,
                    "batch_size": self.batch_size, "max_chars": self.max_chars,
                },
            )
            for row in dataset.iter_rows():
                results[row["index"]] = json.loads(row["result"])
        cursor = 0
        for key, texts in window:
            yield key, results[cursor : cursor + len(texts)]
            cursor += len(texts)

