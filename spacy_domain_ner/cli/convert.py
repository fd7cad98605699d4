"""`convert`: corpora to DocBin."""
from pathlib import Path
from typing import List, Optional

import typer

from ..formats.base import ConversionError
from ._app import app, fail


@app.command("convert")
def convert_cli(
    inputs: List[Path] = typer.Argument(..., help="Corpus files (E-NER .csv, CoNLL columns, .jsonl, Label Studio .json)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output .spacy file, or a directory with --split"),
    file_format: str = typer.Option("auto", "--format", "-f", help="auto, ener, conll, jsonl or labelstudio"),
    scheme: str = typer.Option("auto", "--scheme", help="Tag scheme of token formats: auto, iob1, iob2, io, biluo, iobes"),
    label_map: Optional[Path] = typer.Option(None, "--label-map", "-m", help="JSON label map (rename, merge, drop)"),
    n_sents: int = typer.Option(10, "--n-sents", "-n", help="Sentences per Doc for token formats (0: whole documents)"),
    split: Optional[str] = typer.Option(None, "--split", help="Document-level split fractions, e.g. 0.8,0.1,0.1"),
    seed: int = typer.Option(0, "--seed", help="Seed of the split"),
    lang: str = typer.Option("en", "--lang", help="spaCy language of the tokenizer"),
    text_key: str = typer.Option("text", "--text-key", help="Text key of Label Studio tasks"),
) -> None:
    """Convert NER corpora to DocBin, writing a stats JSON next to each output."""
    from ..convert import convert
    from ..labels import load_label_map

    try:
        fractions = [float(x) for x in split.split(",")] if split else None
        results = convert(
            inputs, output, file_format=file_format, scheme=scheme, label_map=load_label_map(label_map),
            n_sents=n_sents, lang=lang, split=fractions, seed=seed, text_key=text_key,
        )
    except (ConversionError, ValueError) as err:
        fail(err)
    for path, stats in results.items():
        typer.echo(
            f"{path}: {stats['documents']} documents, {stats['sentences']} sentences, {stats['tokens']} tokens, "
            f"{stats['entities_written']} entities written, {stats['entities_dropped']} dropped, "
            f"{len(stats['repaired'])} repaired"
        )
