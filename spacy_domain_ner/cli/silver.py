"""`silver`: the pipeline's confident annotations of unlabeled text as a silver training corpus."""
from pathlib import Path
from typing import List, Optional

import typer

from ._app import app, fail


@app.command("silver")
def silver_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package whose entities carry ent._.confidence"),
    input_path: Path = typer.Argument(..., help="Unlabeled text: JSONL ({'id', 'text'} per line) or a folder of .txt files"),
    output: Path = typer.Option(..., "--output", "-o", help="Output .spacy (a stats JSON is written next to it)"),
    min_confidence: float = typer.Option(0.9, "--min-confidence", help="Every entity of a kept unit has at least this confidence"),
    unit: str = typer.Option("sentence", "--unit", help="sentence (each confident sentence) or record (whole records)"),
    min_entities: int = typer.Option(1, "--min-entities", help="Least number of entities in a kept unit (0 keeps text without entities)"),
    limit: int = typer.Option(0, "--limit", help="Read at most this many records (0: all)"),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Texts per batch"),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longer texts are annotated in chunks of at most this"),
    text_key: str = typer.Option("text", "--text-key", help="Text field of JSONL records"),
    id_key: str = typer.Option("id", "--id-key", help="Id field (a record without one gets its line number)"),
    code: Optional[List[Path]] = typer.Option(None, "--code", "-c", help="Python file with custom components to import first"),
) -> None:
    """Annotate unlabeled text and keep the units whose entities all clear a confidence threshold, as silver training data."""
    from ..annotation.pipeline import load_pipeline
    from ..annotation.silver import make_silver
    from ..corpus.formats.base import ConversionError

    try:
        if not input_path.exists():
            raise ValueError(f"{input_path}: no such file or folder")
        nlp = load_pipeline(model, code_paths=code or [])
        stats = make_silver(nlp, input_path, output, min_confidence=min_confidence, unit=unit, min_entities=min_entities,
                            limit=limit, batch_size=batch_size, max_chars=max_chars, text_key=text_key, id_key=id_key)
    except (ConversionError, ValueError, OSError) as err:
        fail(err)
    typer.echo(f"{output}: {stats['units_kept']} of {stats['units']} {unit}s kept ({stats['entities']} entities) from "
               f"{stats['records_used']} records; {stats['units_unsure']} unsure, {stats['units_empty']} without entities, "
               f"{stats['records_bad']} bad records")
