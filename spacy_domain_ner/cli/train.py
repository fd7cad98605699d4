"""`train`: spaCy's `train`, run through this package's command line.

The project's steps all run as `python -m spacy_domain_ner ...`, which writes no bytecode
into the source tree (`__main__`): the steps declare subpackage directories as deps, and weasel
checksums every file in them, so a `.pyc` written by one step would make another look stale.
"""
from pathlib import Path

import typer

from ._app import app, fail


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Training config (.cfg)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (model-best, model-last)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Train a pipeline as `spacy train` does; extra `--section.key value` options override the config."""
    from spacy.cli._util import parse_config_overrides, setup_gpu
    from spacy.cli.train import train

    if not config_path.is_file():
        fail(ValueError(f"{config_path}: no such config file"))
    overrides = parse_config_overrides(ctx.args)
    setup_gpu(gpu_id)
    train(config_path, output, use_gpu=gpu_id, overrides=overrides)
