"""`report`: one Markdown report (cross-domain matrix, ablation, per-label, robustness, training,
learning curves) with PNG charts and a displaCy page, from the metrics JSONs of `evaluate`."""
from pathlib import Path
from typing import Dict, List, Optional

import typer

from ._app import app, fail


def _pairs(values: List[str], option: str) -> Dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key or not target:
            raise ValueError(f"{option} {value!r}: expected NAME=VALUE")
        pairs[key] = target
    return pairs


@app.command("report")
def report_cli(
    output: Path = typer.Option(..., "--output", "-o", help="Report directory (report.md, *.png, predictions.html); replaced as a whole"),
    metrics_dir: Optional[List[Path]] = typer.Option(None, "--metrics-dir", help="Directory of <model>_on_<testset>.json, <model>.json and <model>.time.json (repeatable)"),
    metrics: Optional[List[str]] = typer.Option(None, "--metrics", help="Extra metrics file: MODEL=PATH or MODEL:TESTSET=PATH (repeatable; overrides --metrics-dir)"),
    default_test: str = typer.Option("dev", "--default-test", help="Test set of <model>.json and MODEL=PATH"),
    in_domain: Optional[List[str]] = typer.Option(None, "--in-domain", help="MODEL=TESTSET: a model's own test set (default: the test set named like the model)"),
    general: str = typer.Option("news", "--general", help="The general (news) model of the capability misalignment"),
    legal_test: str = typer.Option("legal", "--legal-test", help="The legal test set of the capability misalignment"),
    variants: Optional[str] = typer.Option(None, "--variants", help="Comma-separated ablation variants, in order (default: every model)"),
    training_dir: Optional[Path] = typer.Option(None, "--training-dir", help="spaCy training root: reads <dir>/<variant>/model-best/meta.json (default: the training scores evaluate writes into each metrics file)"),
    times: Optional[Path] = typer.Option(None, "--times", help='JSON {"variant": seconds} of training times'),
    train_log: Optional[List[str]] = typer.Option(None, "--train-log", help="VARIANT=PATH: a training log (JSONL of the training logger) for the learning curves (repeatable; overrides the <variant>.train_log.jsonl files of --metrics-dir)"),
    displacy_model: Optional[str] = typer.Option(None, "--displacy-model", help="Pipeline whose predictions go into predictions.html"),
    sentences: Optional[Path] = typer.Option(None, "--sentences", help="Sentences for the page: .txt (one per line) or .jsonl ('text'); default: built-in legal sentences"),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration JSON of add-confidence --report: the entity-confidence section"),
    title: str = typer.Option("Legal-domain NER: evaluation report", "--title", help="Report title"),
) -> None:
    """Cross-domain F1 matrix and gap, ablation F1, per-label F1, robustness, training time and learning curves in one report."""
    import srsly

    from ..evaluation.curves import find_training_logs, load_curves
    from ..evaluation.report import build_report, load_sentences, render_predictions, write_report_dir
    from ..evaluation.results import collect_metrics, load_times, load_training_meta, training_meta_from_metrics

    if sentences is not None and displacy_model is None:
        fail(ValueError("--sentences is only used with --displacy-model"))
    try:
        found, sources, found_times = collect_metrics(dirs=metrics_dir or [], specs=metrics or [], default_test=default_test)
        if times is not None:
            found_times.update(load_times(times))
        names = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
        models = sorted({m for m, _ in found} | set(names or []))
        # Each metrics file carries its model's training scores; --training-dir reads meta.json over them.
        meta = {**training_meta_from_metrics(found), **(load_training_meta(training_dir, models) if training_dir is not None else {})}
        logs = {**find_training_logs(metrics_dir or []), **{k: Path(v) for k, v in _pairs(train_log or [], "--train-log").items()}}
        curves = load_curves(logs)
        html = None
        if displacy_model is not None:
            import spacy

            texts = load_sentences(sentences) if sentences is not None else None
            try:
                nlp = spacy.load(displacy_model)
            except (OSError, IOError) as err:
                raise ValueError(f"{displacy_model}: cannot load the pipeline ({err})") from None
            html = render_predictions(nlp, texts)
        files = build_report(
            found, sources=sources, in_domain=_pairs(in_domain or [], "--in-domain") or None, general=general,
            legal_test=legal_test, variants=names, times=found_times, training_meta=meta, predictions_html=html,
            title=title, learning_curves=curves,
            calibration=srsly.read_json(calibration) if calibration is not None else None,
        )
        write_report_dir(files, output)
    except (ValueError, OSError) as err:
        fail(err)
    typer.echo(f"wrote {output}: {', '.join(sorted(files))} ({len(found)} metrics files)")
