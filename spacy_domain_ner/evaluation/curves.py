"""Learning curves: dev F1 against training step and against training minutes, one line per variant.

The input is the JSONL log that the training logger (`spacy_domain_ner.ConsoleLogger.v1`,
`output_file`) writes, one line per evaluation: `step`, `scores` (in %, `ents_f` among them),
`score` (the weighted score, a fraction) and `seconds` since training started (evaluations
included). spaCy's own ConsoleLogger.v2 writes the same lines without `seconds`: such a log
gives the curve against steps only. The workflow writes `metrics/<variant>.train_log.jsonl`,
next to the metrics files, so the report's dependency on the metrics folder covers the logs.
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..io.jsonl import read_jsonl
from .charts import new_figure, to_png

LOG_SUFFIX = ".train_log.jsonl"
CURVES_PNG = "learning_curves.png"


@dataclass(frozen=True)
class CurvePoint:
    """One evaluation during training."""

    step: int
    f: Optional[float]  # dev entity F1, a fraction (None when the log has no score)
    seconds: Optional[float]  # since training started; None when the log has no time


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_training_log(path: Union[str, Path]) -> List[CurvePoint]:
    """Read a training log: one point per line, in step order.

    The F1 is `scores.ents_f` (in %, divided by 100) when the line has it, else `score`.

    path (Union[str, Path]): The JSONL log.
    RETURNS (List[CurvePoint]): The points.
    RAISES (ValueError): For a line that is no evaluation record, naming file:line, or a log without lines.
    """
    points = []
    for _, location, record in read_jsonl(path):
        if not isinstance(record, dict) or not _number(record.get("step")):
            raise ValueError(f"{location}: expected a training log record with a numeric 'step'")
        scores = record.get("scores") if isinstance(record.get("scores"), dict) else {}
        if _number(scores.get("ents_f")):
            f: Optional[float] = scores["ents_f"] / 100
        elif _number(record.get("score")):
            f = float(record["score"])
        else:
            f = None
        seconds = record.get("seconds")
        points.append(CurvePoint(step=int(record["step"]), f=f, seconds=float(seconds) if _number(seconds) else None))
    if not points:
        raise ValueError(f"{path}: an empty training log")
    return sorted(points, key=lambda point: point.step)


def find_training_logs(dirs: Sequence[Union[str, Path]]) -> Dict[str, Path]:
    """The `<variant>.train_log.jsonl` files of directories (later directories override earlier ones).

    dirs (Sequence[Union[str, Path]]): The directories (the report's metrics directories).
    RETURNS (Dict[str, Path]): variant -> log file.
    """
    found = {}
    for directory in dirs:
        for path in sorted(Path(directory).glob(f"*{LOG_SUFFIX}")):
            found[path.name[: -len(LOG_SUFFIX)]] = path
    return found


def load_curves(logs: Mapping[str, Union[str, Path]]) -> Dict[str, List[CurvePoint]]:
    """Read several logs.

    logs (Mapping[str, Union[str, Path]]): variant -> log file.
    RETURNS (Dict[str, List[CurvePoint]]): variant -> points.
    """
    return {variant: load_training_log(path) for variant, path in logs.items()}


def line_style(index: int) -> Dict[str, str]:
    """The colour and dash of the index-th line: matplotlib's 10 colours, then dashed, then dotted.

    index (int): The line's position (0-based).
    RETURNS (Dict[str, str]): `color` and `linestyle` keyword arguments of `plot`; the first 30 differ.
    """
    return {"color": f"C{index % 10}", "linestyle": ("-", "--", ":")[index // 10 % 3]}


def learning_curves_png(curves: Mapping[str, Sequence[CurvePoint]]) -> bytes:
    """Two panels side by side, dev F1 (%) against step and against training minutes, one line per variant.

    curves (Mapping[str, Sequence[CurvePoint]]): variant -> points; points without a time are left
        out of the second panel, as are variants without any.
    RETURNS (bytes): The PNG.
    """

    fig = new_figure(11.0, 4.0)
    by_step, by_time = fig.subplots(1, 2, sharey=True)
    for index, (variant, points) in enumerate(curves.items()):
        # past 10 variants the colours repeat: the dash tells them apart
        style = line_style(index)
        scored = [p for p in points if p.f is not None]
        by_step.plot([p.step for p in scored], [100 * p.f for p in scored], marker="o", markersize=3,
                     label=variant, **style)
        timed = [p for p in scored if p.seconds is not None]
        if timed:
            by_time.plot([p.seconds / 60 for p in timed], [100 * p.f for p in timed], marker="o", markersize=3,
                         label=variant, **style)
    by_step.set(title="Dev F1 by training step", xlabel="step", ylabel="dev entity F1 (%)", ylim=(0, 100))
    by_time.set(title="Dev F1 by training time", xlabel="training minutes (evaluations included)")
    by_step.grid(alpha=0.3)
    by_time.grid(alpha=0.3)
    by_time.legend(*by_step.get_legend_handles_labels(), title="variant", fontsize="small", loc="upper left",
                   bbox_to_anchor=(1.0, 1.0))
    return to_png(fig)


def curve_summary(points: Sequence[CurvePoint]) -> Dict[str, Any]:
    """The numbers of one curve that the report's table shows.

    points (Sequence[CurvePoint]): The points, in step order.
    RETURNS (Dict[str, Any]): evaluations, best_f and best_step (the earliest step of the best F1),
        last_f, last_step and minutes (of the last evaluation; None without a time).
    """
    scored = [p for p in points if p.f is not None]
    best = max(scored, key=lambda p: (p.f, -p.step)) if scored else None
    last = points[-1]
    return {"evaluations": len(points), "best_f": best.f if best else None, "best_step": best.step if best else None,
            "last_f": last.f, "last_step": last.step, "minutes": None if last.seconds is None else last.seconds / 60}
