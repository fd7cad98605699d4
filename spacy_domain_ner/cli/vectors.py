"""`vectors`: cased floret vectors trained on raw domain text, as a spaCy vectors directory."""
from pathlib import Path
from typing import List

import typer

from ..corpus.formats.base import ConversionError
from ._app import app, fail


@app.command("vectors")
def vectors_cli(
    inputs: List[Path] = typer.Argument(..., help="Raw text: .jsonl files ({\"text\": ...} a line), .txt files, .spacy DocBins (their Doc texts), or folders of them"),
    output: Path = typer.Option(..., "--output", "-o", help="spaCy vectors directory (for --paths.vectors), with vectors_stats.json; replaced as a whole"),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer and the pipeline"),
    dim: int = typer.Option(300, "--dim", help="Vector width"),
    epochs: int = typer.Option(5, "--epochs", help="Passes over the text"),
    bucket: int = typer.Option(200_000, "--bucket", help="Hash rows shared by words and subwords (rows of the vectors table)"),
    threads: int = typer.Option(1, "--threads", help="Training threads (1: the same vectors on every run; more: faster, slightly different vectors)"),
    min_count: int = typer.Option(5, "--min-count", help="Words seen fewer times are trained through their subwords only"),
    minn: int = typer.Option(4, "--minn", help="Shortest character n-gram"),
    maxn: int = typer.Option(5, "--maxn", help="Longest character n-gram"),
    hash_count: int = typer.Option(2, "--hash-count", help="Hash rows per word or subword (1-4)"),
    text_key: str = typer.Option("text", "--text-key", help="Text key of JSONL records"),
    verbose: int = typer.Option(2, "--verbose", help="floret's verbosity (0: quiet, 2: progress)"),
) -> None:
    """Tokenize raw text (cased, spaCy's tokenizer plus the legal suffix rule), train floret CBOW vectors
    on it and convert them with `spacy init vectors --mode floret`."""
    from ..pretraining.vectors import build_vectors

    try:
        stats = build_vectors(
            inputs, output, lang=lang, text_key=text_key, dim=dim, epochs=epochs, bucket=bucket, threads=threads,
            minn=minn, maxn=maxn, hash_count=hash_count, min_count=min_count, verbose=verbose,
        )
    except (ConversionError, ValueError, OSError) as err:
        fail(err)
    text = stats["text"]
    typer.echo(f"{text['docs']:,} documents, {text['lines']:,} lines, {text['tokens']:,} tokens; "
               f"{stats['words_trained']:,} words trained; vectors {tuple(stats['vectors']['shape'])} "
               f"({stats['vectors']['mode']}) written to {output} in {sum(stats['seconds'].values()):.0f} s")
