"""Training loggers.

`spacy_domain_ner.ConsoleLogger.v1` is spaCy's console logger (ConsoleLogger.v2,
whose `progress_bar = false` matches v1) plus one loss column per trainable
component for the adversarial pass ("Loss adv_ner"), when adversarial training
(`spacy_domain_ner.adversarial_training.v1`) wraps the pipeline. spaCy's logger
only prints the losses of trainable pipes, so it is shown a view of the
pipeline with those columns added; without adversarial training it prints
exactly what spaCy's does.
"""
import sys
from functools import partial
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.util import registry

from .adversarial import adversarial_loss_key, get_adversarial_state

LogStep = Callable[[Optional[Dict[str, Any]]], None]


@registry.loggers("spacy_domain_ner.ConsoleLogger.v1")
def console_logger_v1(
    *,
    progress_bar: bool = False,
    console_output: bool = True,
    output_file: Optional[Path] = None,
) -> Callable[..., Tuple[LogStep, Callable[[], None]]]:
    """spaCy's console logger, with the adversarial losses as their own columns.

    progress_bar (bool): Show a progress bar until the next evaluation.
    console_output (bool): Print the table.
    output_file (Optional[Path]): Also write one JSON line per evaluation.
    RETURNS (Callable): The logger setup function spaCy's training loop calls.
    """
    base = registry.get("loggers", "spacy.ConsoleLogger.v2")(
        progress_bar=progress_bar, console_output=console_output, output_file=output_file
    )
    return partial(setup_console_logger, base=base)


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
) -> Tuple[LogStep, Callable[[], None]]:
    """Set up spaCy's console logger over the pipeline view.

    nlp (Language): The pipeline being trained.
    stdout (IO): Where the table goes.
    stderr (IO): Where the progress bar goes.
    base (Callable): spaCy's logger setup function.
    RETURNS (Tuple[LogStep, Callable[[], None]]): log_step and finalize.
    """
    columns = adversarial_columns(nlp)
    if not columns:
        return base(nlp, stdout, stderr)
    log_step, finalize = base(_PipelineView(nlp, columns), stdout, stderr)
    return partial(_log_with_defaults, log_step=log_step, columns=columns), finalize


def _log_with_defaults(
    info: Optional[Dict[str, Any]], *, log_step: LogStep, columns: List[str]
) -> None:
    # Before start_step (or with no gradient) there is no adversarial loss yet.
    if info is not None:
        losses = {key: 0.0 for key in columns}
        losses.update(info["losses"])
        info = {**info, "losses": losses}
    log_step(info)
