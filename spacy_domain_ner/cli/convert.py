"""`convert`: corpora to DocBin."""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ..corpus.formats.base import ConversionError
from ._app import app, fail


def _print_results(results: Dict[Path, Dict[str, Any]]) -> None:
    for path, stats in results.items():
        typer.echo(
            f"{path}: {stats['documents']} documents, {stats['sentences']} sentences, {stats['tokens']} tokens, "
            f"{stats['entities_written']} entities written, {stats['entities_dropped']} dropped, "
            f"{len(stats['repaired'])} repaired, {stats.get('tokens_unspaced', 0)} tokens not followed by a space"
        )


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
    natural_spacing: bool = typer.Option(
        True, "--natural-spacing/--no-natural-spacing",
        help="Token formats: rebuild written spacing ('Inc., filed'); --no-natural-spacing: a space after every token",
    ),
) -> None:
    """Convert NER corpora to DocBin, writing a stats JSON next to each output."""
    from ..corpus.convert import convert
    from ..corpus.labels import load_label_map

    try:
        fractions = [float(x) for x in split.split(",")] if split else None
        results = convert(
            inputs, output, file_format=file_format, scheme=scheme, label_map=load_label_map(label_map),
            n_sents=n_sents, lang=lang, split=fractions, seed=seed, text_key=text_key, natural_spacing=natural_spacing,
        )
    except (ConversionError, ValueError) as err:
        fail(err)
    _print_results(results)

@app.command("corpus")
def corpus_cli(
    train: List[Path] = typer.Option(..., "--train", help="Training corpus file (repeat for several)"),
    output_dir: Path = typer.Option(..., "--output", "-o", help="Directory for train.spacy, dev.spacy and test.spacy"),
    dev: List[Path] = typer.Option([], "--dev", help="Dev corpus file; without one the training corpus is split"),
    test: List[Path] = typer.Option([], "--test", help="Test corpus file (needs --dev)"),
    split: str = typer.Option("0.7,0.15,0.15", "--split", help="Document-level split fractions used when no --dev is given"),
    seed: int = typer.Option(0, "--seed", help="Seed of the split"),
    file_format: str = typer.Option("auto", "--format", "-f", help="auto, ener, conll, jsonl or labelstudio"),
    scheme: str = typer.Option("auto", "--scheme", help="Tag scheme of token formats: auto, iob1, iob2, io, biluo, iobes"),
    label_map: Optional[Path] = typer.Option(None, "--label-map", "-m", help="JSON label map (rename, merge, drop)"),
    n_sents: int = typer.Option(10, "--n-sents", "-n", help="Sentences per Doc for token formats (0: whole documents)"),
    lang: str = typer.Option("en", "--lang", help="spaCy language of the tokenizer"),
    natural_spacing: bool = typer.Option(
        True, "--natural-spacing/--no-natural-spacing",
        help="Token formats: rebuild written spacing ('Inc., filed'); --no-natural-spacing: a space after every token",
    ),
) -> None:
    """Build a training corpus (train, dev and test DocBins) from given splits or by splitting documents."""
    from ..corpus.convert import convert_corpus
    from ..corpus.labels import load_label_map

    # Project variables pass "" for an unused corpus.
    dev, test = [p for p in dev if str(p) not in ("", ".")], [p for p in test if str(p) not in ("", ".")]
    try:
        results = convert_corpus(
            train=train, dev=dev, test=test, output_dir=output_dir, split=[float(x) for x in split.split(",")],
            seed=seed, file_format=file_format, scheme=scheme, label_map=load_label_map(label_map),
            n_sents=n_sents, lang=lang, natural_spacing=natural_spacing,
        )
    except (ConversionError, ValueError) as err:
        fail(err)
    _print_results(results)
