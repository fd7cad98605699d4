"""`mine-name-designators`: the words that close each label's long names, for the `name_spans` component."""
from pathlib import Path
from typing import List

import typer

from ..io.atomic import write_json_atomic
from ._app import app, fail


@app.command("mine-name-designators")
def mine_name_designators_cli(
    inputs: List[Path] = typer.Argument(..., help="Annotated .spacy files to mine (the training corpus)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output designators .json (for add-knowledge --name-designators)"),
    min_count: int = typer.Option(3, "--min-count", help="Least number of entities of a label that a word ends"),
    min_share: float = typer.Option(0.5, "--min-share", help="Least share of the label among the entities the word ends"),
    common_only: bool = typer.Option(True, "--common-only/--no-common-only", help="Keep only words also written in lower case outside entities (fund, bank), and company suffixes"),
) -> None:
    """Mine each label's designators: the last words of its multi-token entities (Fund, Bank, Inc.)."""
    from ..evaluation.evaluate import load_gold
    from ..knowledge.names import mine_name_designators

    try:
        docs = [doc for path in inputs for doc in load_gold(path)]
        designators = mine_name_designators(docs, min_count=min_count, min_share=min_share, common_only=common_only)
        write_json_atomic(output, designators)
    except ValueError as err:
        fail(err)
    counts = ", ".join(f"{label} {len(words)}" for label, words in designators.items()) or "none"
    typer.echo(f"{output}: designators per label: {counts} (from {len(docs)} docs)")
