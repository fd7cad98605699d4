"""`compare`: is one pipeline better than another on the same gold set, or is the gap noise?

Reads metrics JSON files that `evaluate` wrote (their `units`: entity counts per source document)
and gives, for each file after the first, F1 minus the first file's F1 with a paired
percentile-bootstrap interval over the source documents (`evaluation.bootstrap`).
"""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ._app import app, fail


def read_units(path: Path) -> Dict[str, Dict[str, int]]:
    """The per-document entity counts of an `evaluate` metrics file.

    path (Path): The metrics JSON.
    RETURNS (Dict[str, Dict[str, int]]): unit -> tp, n_pred, n_gold.
    """
    from ..evaluation.results import load_metrics

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    units = load_metrics(path).get("units")
    if not isinstance(units, dict) or not units:
        raise ValueError(f"{path}: no per-document counts ('units'); rescore it with this version's `evaluate`")
    return units


def compare_files(paths: List[Path], *, n_resamples: int = 1000, seed: int = 0) -> Dict[str, Any]:
    """Paired F1 differences of every file against the first.

    paths (List[Path]): Two or more metrics JSON files of the same gold set; the first is the baseline.
    n_resamples (int): Bootstrap resamples.
    seed (int): Seed of the resampling.
    RETURNS (Dict[str, Any]): baseline (its path and F1) and rows: path and `f1_difference_interval`.
    """
    from ..evaluation.bootstrap import f1_difference_interval, f1_interval

    if len(paths) < 2:
        raise ValueError("compare needs a baseline and at least one other metrics file")
    units = [read_units(p) for p in paths]
    rows = []
    for path, other in zip(paths[1:], units[1:]):
        try:
            row = f1_difference_interval(units[0], other, n_resamples=n_resamples, seed=seed)
        except ValueError as err:
            raise ValueError(f"{paths[0]} vs {path}: {err}") from None
        rows.append({"path": str(path), **row})
    base = f1_interval(units[0], n_resamples=n_resamples, seed=seed)
    return {"baseline": {"path": str(paths[0]), **base}, "rows": rows}


@app.command("compare")
def compare_cli(
    metrics: List[Path] = typer.Argument(..., help="Metrics JSON files of `evaluate` on the same gold set; the first is the baseline"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the comparison as JSON"),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples"),
    seed: int = typer.Option(0, "--seed", help="Seed of the resampling"),
) -> None:
    """F1 differences against the first file, with paired 95% bootstrap intervals over source documents."""
    from ..evaluation.markdown import points
    from ..io.atomic import write_json_atomic

    try:
        result = compare_files(metrics, n_resamples=bootstrap, seed=seed)
        if output is not None:
            write_json_atomic(output, result)
    except ValueError as err:
        fail(err)

    base = result["baseline"]
    typer.echo(f"baseline {base['path']}: F {100 * base['f']:.2f} over {base['n_units']} source documents")
    for row in result["rows"]:
        interval = "no interval (one document)" if row["low"] is None else f"95% interval {points(row['low'])} to {points(row['high'])}"
        typer.echo(f"{row['path']}: F {100 * row['other_f']:.2f}, difference {points(row['difference'])} ({interval})")
    if output is not None:
        typer.echo(f"wrote {output}")
