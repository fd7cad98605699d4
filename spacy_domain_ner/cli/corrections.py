"""`import-corrections`: the reviewers' exports as a DocBin of corrected records, by record id."""
from pathlib import Path
from typing import List, Optional

import typer

from ._app import app, fail


@app.command("import-corrections")
def import_corrections_cli(
    inputs: List[Path] = typer.Argument(..., help="Reviewers' exports, oldest first (Label Studio JSON, doccano or Prodigy JSONL)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output .spacy (a stats JSON is written next to it)"),
    train: Optional[List[Path]] = typer.Option(None, "--train", help="Training corpus .spacy: records in it are reported (and kept)"),
    dev: Optional[List[Path]] = typer.Option(None, "--dev", help="Dev corpus .spacy: records in it are reported and left out"),
    file_format: str = typer.Option("auto", "--format", "-f", help="auto, jsonl or labelstudio"),
    label_map: Optional[Path] = typer.Option(None, "--label-map", "-m", help="JSON label map (as convert's)"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer reads the texts"),
    text_key: str = typer.Option("text", "--text-key", help="Text key of Label Studio tasks' data"),
    merged: Optional[Path] = typer.Option(
        None, "--merged", help="Also write the training corpus (--train) with the corrections in place of the records they cover (.spacy, with a stats JSON)"
    ),
) -> None:
    """Convert reviewers' corrections into a DocBin that keeps the record ids: a record corrected twice keeps the latest, records of the dev corpus stay out."""
    from ..corpus.corrections import import_corrections
    from ..corpus.formats.base import ConversionError
    from ..corpus.labels import load_label_map

    try:
        result = import_corrections(
            inputs, output, train=train or [], dev=dev or [], file_format=file_format,
            label_map=load_label_map(label_map), lang=lang, text_key=text_key, merged=merged,
        )
    except (ConversionError, ValueError, OSError) as err:
        fail(err)
    typer.echo(f"{output}: {result['records_written']} of {result['records_read']} records ({result['entities_written']} entities); "
               f"{len(result['superseded'])} superseded by a later correction, {len(result['in_dev'])} in dev left out, "
               f"{len(result['in_train'])} also in the training corpus")
    if merged is not None:
        counts = result["merged"]
        typer.echo(f"{merged}: {counts['docs_written']} docs = {counts['train_docs_kept']} of {counts['train_docs_read']} training docs "
                   f"({counts['train_docs_replaced']} replaced) + {counts['correction_docs']} corrected")
