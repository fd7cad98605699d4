"""`mine-case-forms`: how an annotated corpus writes its words, for the `case_restorer` component."""
from pathlib import Path
from typing import List

import typer

from ..io.atomic import write_json_atomic
from ._app import app, fail


@app.command("mine-case-forms")
def mine_case_forms_cli(
    inputs: List[Path] = typer.Argument(..., help=".spacy files of ordinary text (e.g. the training corpus)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output case forms .json (for add-knowledge --case-forms)"),
    min_share: float = typer.Option(0.99, "--min-share", help="Docs with at least this share of words in one case pattern are left out"),
) -> None:
    """Mine each word's most frequent form mid-sentence, alone and next to its neighbours."""
    from ..casing.forms import mine_case_forms
    from ..evaluation.evaluate import load_gold

    try:
        docs = [doc for path in inputs for doc in load_gold(path)]
        forms = mine_case_forms(docs, min_share=min_share)
        write_json_atomic(output, forms)
    except ValueError as err:
        fail(err)
    typer.echo(f"{output}: {len(forms['words'])} words, {len(forms['after']) + len(forms['before'])} contexts "
               f"from {len(docs)} docs")
