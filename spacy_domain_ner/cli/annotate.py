"""`annotate`: a spaCy pipeline over JSONL or a folder of .txt files, to JSONL entity spans, exactly once."""
from pathlib import Path
from typing import List, Optional

import typer

from ._app import app, fail


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name (loaded with spacy.load)"),
    input_path: Path = typer.Argument(..., help="JSONL ({'id', 'text', ...} per line) or a folder of .txt files"),
    output: Path = typer.Argument(..., help="Output JSONL: the input's fields plus 'entities' as character spans"),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Errors JSONL (default OUT_STEM.errors.jsonl)"),
    summary: Optional[Path] = typer.Option(None, "--summary", help="Summary JSON (default OUT_STEM.summary.json)"),
    text_key: str = typer.Option("text", "--text-key", help="Text field of JSONL records"),
    id_key: str = typer.Option("id", "--id-key", help="Id field (a record without one gets its line number)"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Records per batch (and per checkpoint)"),
    batch_chars: int = typer.Option(1_000_000, "--batch-chars", help="Characters after which a batch closes early"),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longer texts are annotated in chunks of at most this"),
    n_process: int = typer.Option(1, "--n-process", help="CPU processes (local engine)"),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="Torch and BLAS threads per process (local engine; default: the CPUs divided among the processes)"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to batch on (local engine, one process); -1: CPU"),
    engine: str = typer.Option("local", "--engine", help="local, or ray (needs the ray extra of spacy-domain-ner)"),
    n_actors: int = typer.Option(2, "--n-actors", help="Ray actors, each loading the pipeline once"),
    num_gpus: float = typer.Option(0.0, "--num-gpus", help="GPUs per Ray actor (0: CPU actors)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (default: a local Ray)"),
    window_chars: int = typer.Option(50_000_000, "--window-chars", help="Characters per Ray dataset (driver memory bound)"),
    code: Optional[List[Path]] = typer.Option(None, "--code", "-c", help="Python file with custom components to import first"),
    min_confidence: Optional[float] = typer.Option(
        None, "--min-confidence", help="Entities with ent._.confidence below this go to the review file, not the output"
    ),
    review: Optional[Path] = typer.Option(None, "--review", help="Review JSONL with --min-confidence (default OUT_STEM.review.jsonl)"),
    text: bool = typer.Option(True, "--text/--no-text", help="Keep the text in the output records (--no-text: leave it out)"),
    resume: bool = typer.Option(False, "--resume/--no-resume", help="Continue an interrupted run from its last committed batch"),
    overwrite: bool = typer.Option(False, "--overwrite/--no-overwrite", help="Replace an existing output or discard an interrupted run"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar"),
) -> None:
    """Annotate texts with a spaCy pipeline; every record ends in the output or the errors file, once."""
    from ..annotation.runner import annotate

    try:
        result = annotate(
            input_path, output, model=model, engine=engine, n_process=n_process, threads=threads, gpu_id=gpu_id, n_actors=n_actors,
            num_gpus=num_gpus, ray_address=ray_address, window_chars=window_chars, code_paths=code or (),
            batch_size=batch_size, max_chars=max_chars, batch_chars=batch_chars, errors_path=errors, summary_path=summary,
            text_key=text_key, id_key=id_key, keep_text=text, resume=resume, overwrite=overwrite,
            progress=progress, min_confidence=min_confidence, review_path=review,
        )
    except (ValueError, OSError) as err:
        fail(err)
    reasons = ", ".join(f"{code_} {n}" for code_, n in result["errors_by_reason"].items()) or "none"
    typer.echo(
        f"{result['records']} records = {result['annotated']} annotated + {result['errors']} errors ({reasons}); "
        f"{result['blank_lines']} blank lines, {result['entities']} entities, {result['words']} words; "
        f"{result['docs_per_second']} docs/s, {result['words_per_second']} words/s this run"
    )
    typer.echo(f"output {result['output']}, errors {result['errors_file']}")
    if result.get("review_file"):
        typer.echo(
            f"{result['entities']} entities = {result['entities_kept']} kept + {result['entities_review']} below "
            f"{result['min_confidence']} in review {result['review_file']} ({result['review_records']} records)"
        )
        if result["entities_unscored"]:
            typer.echo(f"warning: {result['entities_unscored']} entities had no confidence and were kept", err=True)
