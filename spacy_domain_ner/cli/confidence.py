"""`add-confidence`: add the entity_confidence component to a trained pipeline, calibrated on a dev DocBin."""
from pathlib import Path
from typing import Optional

import typer

from ..io.atomic import replace_directory, write_json_atomic
from ._app import app, fail


@app.command("add-confidence")
def add_confidence_cli(
    model_dir: Path = typer.Argument(..., help="Trained pipeline directory with a transition-based ner"),
    dev: Path = typer.Argument(..., help="Gold DocBin (.spacy) the temperature is fitted on"),
    output_dir: Path = typer.Argument(..., help="Output pipeline directory (replaced atomically)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Calibration JSON: temperature, map, ECE and bins before, after and cross-validated, precision above thresholds"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Reliability diagram (PNG), cross-validated (in sample the isotonic map is perfect by construction)"),
    aggregate: str = typer.Option("gmean", "--aggregate", help="gmean or min of the entity's action probabilities"),
    ner: str = typer.Option("ner", "--ner", help="The ner component to score"),
    n_bins: int = typer.Option(10, "--bins", help="Bins of the expected calibration error"),
    whole_documents: bool = typer.Option(True, "--whole-documents/--no-whole-documents", help="Fit on whole source documents (the Docs of one doc_id joined), as applications feed them (a dev set of one document: on its Docs)"),
) -> None:
    """ent._.confidence for every NER entity: a temperature and an isotonic map fitted on dev; reports the ECE (in sample and cross-validated)."""
    import spacy

    from ..evaluation.calibration import calibrate, plot_reliability
    from ..evaluation.evaluate import load_gold, whole_documents as join_documents

    try:
        nlp = spacy.load(model_dir)
        if ner not in nlp.pipe_names:
            raise ValueError(f"{model_dir}: no component '{ner}' (components: {nlp.pipe_names})")
        if "entity_confidence" in nlp.pipe_names:
            nlp.remove_pipe("entity_confidence")
        nlp.add_pipe("entity_confidence", before=ner, config={"ner": ner, "aggregate": aggregate})
        gold = load_gold(dev)
        joined = join_documents(gold) if whole_documents else gold
        # the cross-validation needs two halves: a dev set of one document is fitted on its parts
        result = calibrate(nlp, joined if len(joined) >= 2 else gold, n_bins=n_bins)
        replace_directory(output_dir, nlp.to_disk)
        if report is not None:
            write_json_atomic(report, result)  # exact floats: the report's map is the saved one
        if plot is not None:
            plot_reliability(result["cross_validated"], plot, title="Entity confidence (cross-validated)")
    except (OSError, ValueError) as err:
        fail(err)
    ece = {k: "-" if result[k]["ece"] is None else f"{result[k]['ece']:.3f}" for k in ("before", "after", "cross_validated")}
    default = next(r for r in result["thresholds"] if r["threshold"] == result["default_threshold"])
    precision = "-" if default["precision"] is None else f"{default['precision']:.3f}"
    typer.echo(f"{output_dir}: temperature {result['temperature']:.3g}, ECE {ece['before']} -> {ece['after']} "
               f"(cross-validated {ece['cross_validated']}) on {result['after']['n']} predicted entities; "
               f"precision {precision} of the {default['kept']} at confidence >= {result['default_threshold']} (cross-validated)")
