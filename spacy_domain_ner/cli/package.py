"""`package`: the model wheel plus the spacy-domain-ner wheel it requires, in one dist/ folder."""
from pathlib import Path

import typer

from ._app import app, fail


@app.command("package")
def package_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory"),
    output_dir: Path = typer.Argument(..., help="Output parent directory (wheels go to <lang>_<name>-<version>/dist/)"),
    name: str = typer.Option(..., "--name", "-n", help="Package name without the language prefix, e.g. legal_ner"),
    version: str = typer.Option(..., "--version", "-v", help="Package version"),
    source: Path = typer.Option(Path("."), "--source", help="Source tree of spacy-domain-ner (setup.cfg, spacy_domain_ner/)"),
) -> None:
    """Build the model wheel and the plugin wheel into one folder: `pip install DIST/*.whl` installs both,
    with spacy-domain-ner pinned to exactly the wheel shipped next to the model."""
    from ..packaging import package_pipeline

    try:
        wheels = package_pipeline(model, output_dir, name=name, version=version, source=source)
    except (RuntimeError, ValueError) as err:
        fail(err)
    typer.echo(f"model wheel  {wheels['model']}\nplugin wheel {wheels['plugin']}\n"
               f"install both: pip install {wheels['model'].parent}/*.whl")
