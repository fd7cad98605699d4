"""`export-review`: annotated records as review tasks for Label Studio, doccano or Prodigy, most useful first."""
from pathlib import Path
from typing import Optional

import typer

from ..io.atomic import write_json_atomic
from ._app import app, fail


@app.command("export-review")
def export_review_cli(
    annotated: Path = typer.Argument(..., help="Output JSONL of annotate (with its texts)"),
    output: Path = typer.Option(..., "--output", "-o", help="Tasks: .json for Label Studio, .jsonl for doccano and Prodigy"),
    review: Optional[Path] = typer.Option(None, "--review", help="The review JSONL of the same annotate run (--min-confidence): its entities go back into their records"),
    fmt: str = typer.Option("labelstudio", "--format", "-f", help="labelstudio, doccano or prodigy"),
    strategy: str = typer.Option("lowest-mean", "--strategy", help="Order: lowest-mean, lowest-min (entity confidence), most-uncertain (entities under --threshold) or random"),
    threshold: float = typer.Option(0.8, "--threshold", help="Confidence under which an entity is uncertain (most-uncertain)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Export the first N records of the order (default: all)"),
    seed: int = typer.Option(0, "--seed", help="Seed of the random order"),
    text_key: str = typer.Option("text", "--text-key", help="Text field of the records"),
    id_key: str = typer.Option("id", "--id-key", help="Id field of the records"),
    model_version: str = typer.Option("", "--model-version", help="Label Studio: the predictions' model_version (e.g. the package name and version)"),
    summary: Optional[Path] = typer.Option(None, "--summary", help="Summary JSON (default OUTPUT_STEM.summary.json)"),
) -> None:
    """Export annotated records as review tasks, the records the model is least sure of first."""
    from ..annotation.review import ReviewError, export_review

    try:
        result = export_review(annotated, output, review=review, fmt=fmt, strategy=strategy, threshold=threshold,
                               seed=seed, limit=limit, text_key=text_key, id_key=id_key, model_version=model_version)
        write_json_atomic(summary or output.with_name(f"{output.stem}.summary.json"), result)
    except (ReviewError, ValueError, OSError) as err:
        fail(err)
    typer.echo(f"{output}: {result['records_exported']} of {result['records']} records ({result['entities_exported']} "
               f"entities) as {fmt} tasks, order {strategy}; {result['records_left']} left")
