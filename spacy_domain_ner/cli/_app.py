"""The typer app that every command module adds itself to."""
import typer

app = typer.Typer(name="spacy-domain-ner", add_completion=False, no_args_is_help=True)


@app.callback()
def main() -> None:
    """Corpus conversion, pretraining, training helpers, evaluation and annotation for legal-domain spaCy NER."""


def fail(err: Exception) -> None:
    """Print an error in red and exit with status 1 (no traceback for bad input)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)
