"""Training progress: the steps done of the total, words/s and the time left.

A long training (2,000 steps, about 90 minutes on two CPU cores) evaluates every few hundred
steps; spaCy's table is silent in between. `TrainingProgress` is called once per step by the
logger (`loggers.py`): on a terminal it draws a tqdm bar over all steps; elsewhere (a log file,
`spacy project run` in CI) it prints a line at most every `interval` seconds. Words/s come from
the training loop's word count at the last two evaluations (spaCy gives the logger nothing between
them), so they are known from the second evaluation on.
"""
import time
from typing import IO, Any, Callable, Dict, Optional, Tuple


def format_seconds(seconds: float) -> str:
    """Seconds as "1h02m", "12m05s" or "45s".

    seconds (float): A duration.
    RETURNS (str): The duration, short.
    """
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(*, step: int, total: int, elapsed: float, words_per_second: Optional[float]) -> str:
    """One progress line: "step 345/2000 (17%), 1,234 words/s, 12m00s elapsed, about 57m00s left".

    step (int): Steps done.
    total (int): Steps in all (0: unknown, as with epoch-bounded training).
    elapsed (float): Seconds since training started.
    words_per_second (Optional[float]): Training words per second, None before it is known.
    RETURNS (str): The line.
    """
    parts = [f"step {step}/{total} ({100 * step / total:.0f}%)" if total else f"step {step}"]
    if words_per_second is not None:
        parts.append(f"{words_per_second:,.0f} words/s")
    parts.append(f"{format_seconds(elapsed)} elapsed")
    if total and step:
        parts.append(f"about {format_seconds(elapsed / step * max(total - step, 0))} left")
    return ", ".join(parts)


class TrainingProgress:
    """Counts the steps the logger sees and reports them (see the module docstring).

    total (int): max_steps (0: unknown).
    stream (IO): Where the bar or the lines go.
    interval (float): Least seconds between two lines off a terminal; 0 turns the lines off.
    bar (Optional[bool]): Draw a tqdm bar; None: when `stream` is a terminal.
    clock (Optional[Callable[[], float]]): The time source; None: time.monotonic.
    """

    def __init__(self, *, total: int, stream: IO, interval: float = 60.0, bar: Optional[bool] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, not {total}")
        if interval < 0:
            raise ValueError(f"interval must be >= 0, not {interval}")
        self.total, self.stream, self.interval = total, stream, interval
        self.clock = clock if clock is not None else time.monotonic
        self.start = self.clock()
        self.last_line = self.start
        self.step = 0
        self.words_per_second: Optional[float] = None
        self._last_eval: Optional[Tuple[int, float]] = None
        use_bar = bar if bar is not None else bool(getattr(stream, "isatty", lambda: False)())
        self._bar = None
        if use_bar:
            import tqdm

            self._bar = tqdm.tqdm(total=total or None, unit="step", file=stream, leave=False, dynamic_ncols=True)

    def update(self, info: Optional[Dict[str, Any]]) -> None:
        """Count one training step; `info` is the logger's (an evaluation) or None.

        info (Optional[Dict[str, Any]]): spaCy's evaluation info (`words`, `seconds`), or None.
        """
        now = self.clock()
        if info is not None:
            self.step = int(info.get("step", self.step))
            words, seconds = info.get("words"), info.get("seconds")
            # between two evaluations: the first one (step 0) also holds the pipeline's initialization
            if words is not None and seconds is not None:
                if self._last_eval is not None and seconds > self._last_eval[1]:
                    self.words_per_second = (words - self._last_eval[0]) / (seconds - self._last_eval[1])
                self._last_eval = (words, seconds)
        else:
            self.step += 1
        if self._bar is not None:
            self._bar.n = self.step
            if self.words_per_second is not None:
                self._bar.set_postfix_str(f"{self.words_per_second:,.0f} words/s", refresh=False)
            self._bar.refresh()
        elif self.interval and now - self.last_line >= self.interval and info is None:
            self.last_line = now
            print(progress_line(step=self.step, total=self.total, elapsed=now - self.start,
                                words_per_second=self.words_per_second), file=self.stream, flush=True)

    def close(self) -> None:
        """Remove the bar (the lines stay)."""
        if self._bar is not None:
            self._bar.close()
