"""`evaluate`: score a pipeline on a gold DocBin (JSON + Markdown), optionally with the robustness suite."""
from pathlib import Path
from typing import Optional

import typer

from ._app import app, fail


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline to evaluate: a package name or a directory"),
    gold: Path = typer.Argument(..., help="Gold DocBin (.spacy)"),
    output: Path = typer.Option(..., "--output", "-o", help="Metrics JSON file"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Markdown report file"),
    gold_map: Optional[Path] = typer.Option(None, "--gold-map", help="JSON label map applied to the gold entities"),
    pred_map: Optional[Path] = typer.Option(None, "--pred-map", help="JSON label map applied to the predicted entities"),
    spans_key: Optional[str] = typer.Option(None, "--spans-key", help="Score doc.spans[KEY] instead of doc.ents (the multi-task general head: general)"),
    robustness: bool = typer.Option(False, "--robustness/--no-robustness", help="Also score seeded perturbations of the gold set"),
    pool: Optional[Path] = typer.Option(None, "--pool", help="DocBin whose entities the 'swap' perturbation draws from"),
    perturbations: Optional[str] = typer.Option(None, "--perturbations", help="Comma-separated perturbations of --robustness (default: all), e.g. upper,lower,title"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Batch size of nlp.pipe"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    quantize: Optional[bool] = typer.Option(None, "--quantize/--no-quantize", help="--quantize: load the transformer int8 (CPU), --no-quantize: float32, whatever the pipeline says; default: as the pipeline's config says (its transformer's quantize setting, which package --int8 sets)"),
    n_errors: int = typer.Option(20, "--n-errors", help="Errors to sample into the report"),
    seed: int = typer.Option(0, "--seed", help="Seed of the error sample, the perturbations and the bootstrap"),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Resamples of the F1's 95% interval over source documents (doc_id); 0: none"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars"),
    whole_documents: bool = typer.Option(True, "--whole-documents/--no-whole-documents", help="Join the Docs of one source document (a token corpus cut every --n-sents sentences) and annotate it whole, as annotate and applications do; --no-whole-documents: each Doc of the file alone"),
) -> None:
    """Entity P/R/F (overall, per label), BIO token report, confusion table, error sample and speed."""
    import spacy

    from ..evaluation.evaluate import evaluate_pipeline, load_gold, whole_documents as join_documents, write_report
    from ..corpus.labels import load_label_map
    from ..models.quantize import load_with_quantization, quantized_components
    from ..evaluation.robustness import build_entity_pool, evaluate_robustness

    if spans_key is not None and robustness:
        fail(ValueError("--spans-key and --robustness cannot be combined: the robustness suite scores doc.ents"))
    if pool is not None and not robustness:
        fail(ValueError("--pool is only used with --robustness"))
    if perturbations is not None and not robustness:
        fail(ValueError("--perturbations is only used with --robustness"))
    if bootstrap < 0:
        fail(ValueError(f"--bootstrap must be >= 0, not {bootstrap}"))
    kinds = None if perturbations is None else [k.strip() for k in perturbations.split(",") if k.strip()]
    try:
        maps = {"gold_map": load_label_map(gold_map), "pred_map": load_label_map(pred_map)}
        gold_docs = load_gold(gold)
        if whole_documents:
            gold_docs = join_documents(gold_docs)
        entity_pool = build_entity_pool(load_gold(pool)) if pool is not None else None
        if gpu_id >= 0:
            if quantize:
                raise ValueError("--quantize runs on CPU only: leave out --gpu-id")
            spacy.require_gpu(gpu_id)
        try:
            # the load-time path of the config's quantize setting, forced on or off by the flag
            nlp = load_with_quantization(model, quantize=quantize)
        except (OSError, IOError) as err:
            raise ValueError(f"{model}: cannot load the pipeline ({err})") from None
        except ValueError as err:
            raise ValueError(f"{model}: {err}") from None
        result = evaluate_pipeline(nlp, gold_docs, batch_size=batch_size, n_errors=n_errors, seed=seed, progress=progress,
                                   spans_key=spans_key, n_resamples=bootstrap, **maps)
        result["speed"]["quantized"] = quantized_components(nlp)  # which setting the speed and scores are of
        if robustness:
            if entity_pool is None and (kinds is None or "swap" in kinds):
                typer.secho("warning: no --pool, so the 'swap' perturbation is left out", fg=typer.colors.YELLOW, err=True)
            result["robustness"] = evaluate_robustness(
                nlp, gold_docs, pool=entity_pool, perturbations=kinds, seed=seed, batch_size=batch_size, clean=result,
                progress=progress, **maps
            )
        write_report(result, output=output, markdown=markdown)
    except ValueError as err:
        fail(err)

    def pct(value: Optional[float]) -> str:
        return "-" if value is None else f"{100 * value:.2f}"

    precision = "int8" if result["speed"]["quantized"] else "float"
    typer.echo(f"{gold}: P {pct(result['ents_p'])}  R {pct(result['ents_r'])}  F {pct(result['ents_f'])}  "
               f"({result['speed']['words_per_second'] or 0:,.0f} words/s, {precision})")
    interval = result.get("ents_f_interval")
    if interval and interval["low"] is not None:
        typer.echo(f"  F {interval['confidence']:.0%} interval {pct(interval['low'])}-{pct(interval['high'])} "
                   f"(bootstrap over {interval['n_units']} source documents)")
    for label, scores in result["ents_per_type"].items():
        typer.echo(f"  {label:<20} P {pct(scores['p'])}  R {pct(scores['r'])}  F {pct(scores['f'])}  support {scores['support']}")
    for row in result.get("robustness", {}).get("rows", []):
        typer.echo(f"  robustness {row['perturbation']:<12} F {pct(row['ents_f'])}")
    typer.echo(f"wrote {output}" + (f" and {markdown}" if markdown else ""))
