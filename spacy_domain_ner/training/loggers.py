"""Training loggers.

`spacy_domain_ner.ConsoleLogger.v1` is spaCy's console logger (its table) plus the training's
progress between evaluations (`progress.py`: steps done of max_steps, words/s, time left) and
one loss column per trainable
component for the adversarial pass ("Loss adv_ner"), when adversarial training
(`spacy_domain_ner.adversarial_training.v1`) wraps the pipeline. spaCy's logger
only prints the losses of trainable pipes, so it is shown a view of the
pipeline with those columns added; without adversarial training it prints
exactly what spaCy's does.

`output_file` (one JSON line per evaluation, the learning curves of the report) is written
here, not by spaCy's logger, for two reasons: spaCy's writes no time (its lines hold epoch,
step, losses, scores and score only) and, when the file already exists, disables logging with
a warning, so a rerun of a training command would keep the previous run's log. The lines have
spaCy's keys and values (`scores` in % as in the table, `score` the weighted fraction) plus
`seconds` (since training started, evaluations included) and `words` (training words seen);
an existing file is replaced when training starts, and each line is flushed when written.
"""
import sys
from functools import partial
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

import srsly
from spacy.language import Language
from spacy.util import ensure_path, registry
from wasabi import Printer

from .adversarial.settings import adversarial_loss_key
from .adversarial.update import get_adversarial_state
from .progress import TrainingProgress

LogStep = Callable[[Optional[Dict[str, Any]]], None]


@registry.loggers("spacy_domain_ner.ConsoleLogger.v1")
def console_logger_v1(
    *,
    progress_bar: bool = True,
    progress_interval: float = 60.0,
    console_output: bool = True,
    output_file: Optional[Path] = None,
) -> Callable[..., Tuple[LogStep, Callable[[], None]]]:
    """spaCy's console logger with the training's progress, and the adversarial losses as their own columns.

    progress_bar (bool): On a terminal, a bar over all steps (steps done of max_steps, words/s, time left).
    progress_interval (float): Off a terminal (a log file), a progress line at most every this many
        seconds; 0: none.
    console_output (bool): Print the table (and the progress).
    output_file (Optional[Path]): Also write one JSON line per evaluation.
    RETURNS (Callable): The logger setup function spaCy's training loop calls.
    """
    if progress_interval < 0:
        raise ValueError(f"progress_interval must be >= 0, not {progress_interval}")
    base = registry.get("loggers", "spacy.ConsoleLogger.v2")(
        progress_bar=False, console_output=console_output, output_file=None
    )
    return partial(setup_console_logger, base=base, output_file=output_file,
                   progress_bar=progress_bar and console_output, progress_interval=progress_interval if console_output else 0.0)


class _LossColumn:
    """Stands for an extra loss column in the pipeline view: spaCy's logger
    prints a "Loss <name>" column for each pipe that is trainable."""

    is_trainable = True


class _PipelineView:
    """Forwards everything to nlp, with extra entries in `pipeline`."""

    def __init__(self, nlp: Language, extra: List[str]) -> None:
        self._nlp = nlp
        self.pipeline = list(nlp.pipeline) + [(name, _LossColumn()) for name in extra]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nlp, name)


def adversarial_columns(nlp: Language) -> List[str]:
    """The loss keys of the adversarial pass, one per trainable component.

    nlp (Language): The pipeline.
    RETURNS (List[str]): The keys, empty when adversarial training is not installed.
    """
    if get_adversarial_state(nlp) is None:
        return []
    return [
        adversarial_loss_key(name)
        for name, proc in nlp.pipeline
        if getattr(proc, "is_trainable", False)
    ]


def setup_console_logger(
    nlp: Language,
    stdout: IO = sys.stdout,
    stderr: IO = sys.stderr,
    *,
    base: Callable[..., Tuple[LogStep, Callable[[], None]]],
    output_file: Optional[Path] = None,
    progress_bar: bool = False,
    progress_interval: float = 0.0,
) -> Tuple[LogStep, Callable[[], None]]:
    """Set up spaCy's console logger over the pipeline view, the progress and the JSONL log.

    nlp (Language): The pipeline being trained.
    stdout (IO): Where the table goes.
    stderr (IO): Where the progress bar goes.
    base (Callable): spaCy's logger setup function.
    output_file (Optional[Path]): The JSONL log (see the module docstring); replaced if it exists.
    progress_bar (bool): A bar on stderr when it is a terminal.
    progress_interval (float): Otherwise a line on stdout at most every this many seconds (0: none).
    RETURNS (Tuple[LogStep, Callable[[], None]]): log_step and finalize.
    """
    if output_file:  # before the table header, where spaCy's logger says it
        path = ensure_path(output_file)
        print(Printer(no_print=True).info(f"Saving results to {path}"), file=stdout, flush=True)
    columns = adversarial_columns(nlp)
    if not columns:
        log_step, finalize = base(nlp, stdout, stderr)
    else:
        log_step, finalize = base(_PipelineView(nlp, columns), stdout, stderr)
        log_step = partial(_log_with_defaults, log_step=log_step, columns=columns)
    if progress_bar or progress_interval:
        bar = progress_bar and bool(getattr(stderr, "isatty", lambda: False)())
        progress = TrainingProgress(total=int(nlp.config["training"]["max_steps"] or 0), stream=stderr if bar else stdout,
                                    interval=progress_interval, bar=bar)
        log_step, finalize = (partial(_log_with_progress, log_step=log_step, progress=progress),
                              partial(_finalize_with_progress, finalize=finalize, progress=progress))
    if not output_file:
        return log_step, finalize
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = path.open("w", encoding="utf8")
    score_cols = [col for col, weight in nlp.config["training"]["score_weights"].items() if weight is not None]

    def log_and_write(info: Optional[Dict[str, Any]]) -> None:
        log_step(info)  # first: the losses it prints get the adversarial defaults
        if info is not None:
            stream.write(srsly.json_dumps(log_record(info, score_cols=score_cols, columns=columns)) + "\n")
            stream.flush()

    def finalize_all() -> None:
        finalize()
        stream.close()

    return log_and_write, finalize_all


def log_record(info: Dict[str, Any], *, score_cols: Sequence[str], columns: Sequence[str] = ()) -> Dict[str, Any]:
    """One line of the JSONL log: spaCy ConsoleLogger.v2's keys plus `seconds` and `words`.

    info (Dict[str, Any]): What spaCy's training loop gives the logger at an evaluation.
    score_cols (Sequence[str]): The scores with a weight (spaCy's table columns).
    columns (Sequence[str]): Extra loss keys (adversarial), 0.0 until they appear.
    RETURNS (Dict[str, Any]): epoch, step, losses, scores (in %, `speed` as is), score, seconds, words.
    """
    losses = {key: 0.0 for key in columns}
    losses.update({key: float(value) for key, value in info["losses"].items()})
    other = info.get("other_scores") or {}
    scores = {}
    for col in score_cols:
        value = other.get(col, 0.0)
        scores[col] = None if value is None else float(value) if col == "speed" else 100 * float(value)
    return {"epoch": info["epoch"], "step": info["step"], "losses": losses, "scores": scores,
            "score": float(info["score"]), "seconds": info.get("seconds"), "words": info.get("words")}


def _log_with_defaults(
    info: Optional[Dict[str, Any]], *, log_step: LogStep, columns: List[str]
) -> None:
    # Before start_step (or with no gradient) there is no adversarial loss yet.
    if info is not None:
        losses = {key: 0.0 for key in columns}
        losses.update(info["losses"])
        info = {**info, "losses": losses}
    log_step(info)


def _log_with_progress(info: Optional[Dict[str, Any]], *, log_step: LogStep, progress: TrainingProgress) -> None:
    log_step(info)
    progress.update(info)


def _finalize_with_progress(*, finalize: Callable[[], None], progress: TrainingProgress) -> None:
    progress.close()
    finalize()
