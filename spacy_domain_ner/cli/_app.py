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


def true_or_false(value: str, option: str) -> bool:
    """Parse a `true|false` option (a string, so that a project variable can fill it).

    value (str): The option's value, any case.
    option (str): The option's name, for the error.
    RETURNS (bool): Whether it is "true".
    """
    if value.lower() not in ("true", "false"):
        raise ValueError(f"{option} takes true or false, not {value!r}")
    return value.lower() == "true"
