"""One Markdown report, with PNG charts and a displaCy page, from the metrics JSONs
that `python -m spacy_domain_ner evaluate` writes for every (model, test set).

Naming convention of a metrics directory (what `collect_metrics` reads):
- `<model>_on_<testset>.json`: the metrics of pipeline `<model>` on test set
  `<testset>` (names must not contain "_on_"), e.g. `news_on_legal.json`;
- `<model>.json`: the same, on the default test set (`default_test`, "dev");
- `<model>.time.json`: optional training time of `<model>`, `{"seconds": 812.5}`
  (spaCy's meta.json has no training time; see `load_times`).
A metrics file must be a JSON object with `ents_f` (0..1, or null when there
was no entity at all); anything else is an error naming the file.

The report has these sections; each one whose inputs are missing is left out,
with a line saying so:
- cross-domain matrix: rows models, columns test sets, cells entity F1, for the
  models whose in-domain test set is known (by default the test set named like
  the model: `news_on_news.json`, `legal_on_legal.json`). Per model: in-domain
  F1, cross-domain F1 (the mean over the other in-domain test sets of the
  matrix) and the gap = in-domain F1 - cross-domain F1. The capability
  misalignment = the general model's F1 on its own domain minus its F1 on the
  legal test set;
- ablation: entity F1 per variant (every model, or `variants`) and test set;
- per-label F1 per variant, one heatmap per test set;
- robustness F1 per perturbation per variant, one chart per test set;
- training: dev F1 at training (the `training_performance` that `evaluate` copies
  from the pipeline's meta.json into each metrics file, or, with `training_dir`,
  `training/<variant>/model-best/meta.json`) and training time;
- learning curves: dev F1 against training step and training minutes, one line per
  variant, from the training logs (`<variant>.train_log.jsonl` in a metrics directory;
  see `curves`);
- entity confidence: the calibration report of `add-confidence` (ECE before, after the
  temperature, after the isotonic map in sample and cross-validated; precision above
  thresholds) with the cross-validated reliability diagram.
Scores are shown in % (gaps in points); the functions return fractions.
"""
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from spacy import displacy
from spacy.language import Language

from ..io.atomic import replace_directory
from ..io.jsonl import parse_jsonl, read_utf8, split_lines
from .calibration import reliability_png
from .charts import grouped_bars_png, heatmap_png
from .curves import CURVES_PNG, CurvePoint, curve_summary, learning_curves_png
from .markdown import pct, points, safe_name, table
from .results import VARIANT_TITLES, Key, cross_domain_matrix, order_variants

# displaCy has no colours for the legal labels
LEGAL_COLORS = {
    "COURT": "#f4a582", "GOVERNMENT": "#92c5de", "BUSINESS": "#b8e186", "LEGISLATION/ACT": "#fee08b",
    "MISCELLANEOUS": "#d9d9d9", "PERSON": "#aa9cfc", "LOCATION": "#ff9561",
}
# Original sentences (not from any corpus) for the predictions page.
DEFAULT_SENTENCES = (
    "The United States Court of Appeals for the Ninth Circuit affirmed the judgment against "
    "Harborview Logistics, Inc. on March 3, 2021.",
    "On May 14, 2019, the Securities and Exchange Commission filed a complaint in the Southern District "
    "of New York alleging violations of Section 10(b) of the Securities Exchange Act of 1934.",
    "Pursuant to the Delaware General Corporation Law, Brightwater Capital Partners LLC may assign this "
    "Agreement to any affiliate without the consent of Tessaly Holdings Corp.",
    "Judge Miriam Okafor denied the motion to dismiss filed by Northgate Pharmaceuticals and its chief "
    "executive officer, Daniel Reyes.",
    "The Environmental Protection Agency issued a compliance order requiring Coastal Refining Company to "
    "cease discharges into the Sabine River near Port Arthur, Texas.",
    "This Lease shall be governed by the laws of the State of Illinois, and any dispute shall be resolved "
    "exclusively in the Circuit Court of Cook County.",
    "The registration statement of Lumen Ridge Software Corp. on Form S-1 was declared effective under the "
    "Securities Act of 1933, and its shares began trading on the Nasdaq Global Market.",
    "Counsel for the Federal Trade Commission argued that the merger of Alder Health Systems and Pinecrest "
    "Medical Group would violate Section 7 of the Clayton Act.",
)
Files = Dict[str, Union[str, bytes]]  # file name in the report directory -> content


def _cross_section(cross: Dict[str, Any], files: Files) -> List[str]:
    models, tests, matrix = cross["models"], cross["test_sets"], cross["matrix"]
    files["cross_domain.png"] = heatmap_png(models, tests, [[matrix[m][t] for t in tests] for m in models],
                                            title="Entity F1 (%)", xlabel="test set", ylabel="model")
    lines = ["## Cross-domain matrix", "", "Entity F1 (%), rows: models, columns: test sets.", "",
             "![Cross-domain F1 heatmap](cross_domain.png)", ""]
    lines += table(["model \\ test set"] + tests, [[m] + [pct(matrix[m][t]) for t in tests] for m in models])
    lines += table(["model", "in-domain test set", "in-domain F1", "cross-domain F1", "gap (points)"], [
        [m, s["in_domain_test"], pct(s["in_domain_f"]), pct(s["cross_domain_f"]), points(s["gap"])]
        for m, s in cross["per_model"].items()])
    mis = cross["misalignment"]
    if mis is not None:
        lines += [f"**Capability misalignment**: {points(mis['value'])} points: the general model "
                  f"`{mis['model']}` scores {pct(mis['own_f'])} F1 on its own domain (`{mis['own_test']}`) "
                  f"and {pct(mis['legal_f'])} on legal text (`{mis['legal_test']}`).", ""]
    return lines


def _curves_section(curves: Mapping[str, Sequence[CurvePoint]], variants: Sequence[str], files: Files,
                    notes: List[str]) -> List[str]:
    shown = {v: curves[v] for v in variants if curves.get(v)}
    if not shown:
        notes.append("No learning curves (`<variant>.train_log.jsonl` in the metrics directory, written by the "
                     "training logger's `output_file`, or `--train-log`).")
        return []
    missing = [v for v in variants if v not in shown]
    if missing:
        notes.append(f"No learning curve (no training log) for: {', '.join(missing)}.")
    untimed = [v for v, points in shown.items() if all(p.seconds is None for p in points)]
    if untimed:
        notes.append(f"Learning curves against steps only (the log has no time): {', '.join(untimed)}.")
    files[CURVES_PNG] = learning_curves_png(shown)
    lines = ["## Learning curves", "", "Dev entity F1 (%) at each evaluation during training, against the training "
             "step and against minutes since training started (evaluations included).", "",
             f"![Learning curves]({CURVES_PNG})", ""]
    summaries = {v: curve_summary(points) for v, points in shown.items()}
    return lines + table(["variant", "evaluations", "best dev F1", "at step", "last dev F1", "last step", "minutes"], [
        [v, s["evaluations"], pct(s["best_f"]), "–" if s["best_step"] is None else s["best_step"], pct(s["last_f"]),
         s["last_step"], "–" if s["minutes"] is None else f"{s['minutes']:.1f}"] for v, s in summaries.items()])


def _calibration_section(calibration: Mapping[str, Any], files: Files) -> List[str]:
    try:
        stages = {k: calibration[k] for k in ("before", "after_temperature", "after", "cross_validated")}
        rows = calibration["thresholds"]
    except (KeyError, TypeError):
        raise ValueError("calibration: not a report of add-confidence (before, after_temperature, after, "
                         "cross_validated, thresholds)") from None
    files["reliability.png"] = reliability_png(stages["cross_validated"], title="Entity confidence (cross-validated)")
    ece = {k: "–" if v.get("ece") is None else f"{v['ece']:.3f}" for k, v in stages.items()}
    lines = ["## Entity confidence", "",
             f"`ent._.confidence` of {stages['after']['n']} predicted entities against exact-match correctness: "
             f"temperature {calibration.get('temperature', float('nan')):.3g}, then an isotonic map. Cross-validated: "
             "fitted on one half of the dev docs, measured on the other.", "",
             "![Reliability diagram](reliability.png)", ""]
    lines += table(["", "raw", "temperature", "isotonic (in sample)", "isotonic (cross-validated)"],
                   [["ECE", ece["before"], ece["after_temperature"], ece["after"], ece["cross_validated"]]])
    lines += ["Precision above a threshold (cross-validated), from which to choose `annotate --min-confidence`:", ""]
    lines += table(["threshold", "kept", "share", "precision"], [
        [f"{r['threshold']:.2f}", r["kept"], pct(r["share"]), pct(r["precision"])] for r in rows])
    return lines + [""]


def _interval(result: Mapping[str, Any]) -> str:
    """`evaluate`'s bootstrap interval of the F1 as text, "–" where the metrics file has none."""
    interval = result.get("ents_f_interval") or {}
    if interval.get("low") is None:
        return "–"
    return f"{pct(interval['low'])}–{pct(interval['high'])} ({interval['n_units']})"


def build_report(
    metrics: Mapping[Key, Mapping[str, Any]], *, sources: Optional[Mapping[Key, Path]] = None,
    in_domain: Optional[Mapping[str, str]] = None, general: str = "news", legal_test: str = "legal",
    variants: Optional[Sequence[str]] = None, times: Optional[Mapping[str, float]] = None,
    training_meta: Optional[Mapping[str, Mapping[str, Any]]] = None, predictions_html: Optional[str] = None,
    title: str = "Legal-domain NER: evaluation report",
    learning_curves: Optional[Mapping[str, Sequence[CurvePoint]]] = None,
    calibration: Optional[Mapping[str, Any]] = None,
) -> Files:
    """The report's files: report.md, the PNG charts and predictions.html (when given).

    metrics (Mapping[Key, Mapping[str, Any]]): Metrics per (model, test set), checked by `load_metrics`.
    sources (Optional[Mapping[Key, Path]]): The file of each, listed in the report.
    in_domain, general, legal_test: See `cross_domain_matrix`.
    variants (Optional[Sequence[str]]): The ablation's variants in order; all models by default.
    times (Optional[Mapping[str, float]]): Training seconds per model.
    training_meta (Optional[Mapping[str, Mapping[str, Any]]]): `performance` of meta.json per model.
    predictions_html (Optional[str]): The displaCy page.
    title (str): The report's title.
    learning_curves (Optional[Mapping[str, Sequence[CurvePoint]]]): Training-log points per model
        (`curves.load_curves`); the variants without one are skipped with a note.
    calibration (Optional[Mapping[str, Any]]): The JSON of `add-confidence --report`.
    RETURNS (Files): file name -> text (report.md, predictions.html) or PNG bytes.
    """
    if not metrics:
        raise ValueError("no metrics files: nothing to report")
    files: Files = {}
    notes: List[str] = []
    lines = [f"# {title}", "", "Scores are entity-level (exact span and label), in %.", ""]
    lines += ["## Inputs", ""]
    lines += table(["model", "test set", "F1", "95% interval (source documents)", "file"], [
        [m, t, pct(metrics[(m, t)]["ents_f"]), _interval(metrics[(m, t)]), (sources or {}).get((m, t), "–")]
        for m, t in sorted(metrics)])

    cross = cross_domain_matrix(metrics, in_domain=in_domain, general=general, legal_test=legal_test)
    if cross is None:
        notes.append("No cross-domain matrix: it needs two models each scored on its own test set "
                     "(`<model>_on_<testset>.json`, in-domain by name or `--in-domain`).")
    else:
        lines += _cross_section(cross, files)
        missing = [f"{m}_on_{t}" for m in cross["models"] for t in cross["test_sets"] if cross["matrix"][m][t] is None]
        if missing:
            notes.append(f"Cross-domain cells without metrics: {', '.join(missing)}.")
        if cross["misalignment"] is None:
            notes.append(f"No capability misalignment: it needs `{general}` on its own test set and on `{legal_test}`.")

    all_models = {m for m, _ in metrics}
    names = order_variants(all_models) if variants is None else list(variants)
    unknown = [v for v in names if v not in all_models]
    if unknown:
        notes.append(f"Variants without metrics, left out: {', '.join(unknown)}.")
    names = [v for v in names if v in all_models]
    tests = sorted({t for m, t in metrics if m in names})
    if names:
        files["ablation_f1.png"] = grouped_bars_png(
            names, {t: [(metrics.get((v, t)) or {}).get("ents_f") for v in names] for t in tests},
            title="Entity F1 per variant and test set", ylabel="F1 (%)", legend="test set")
        lines += ["## Ablation: entity F1 per variant and test set", "",
                  "![Entity F1 per variant](ablation_f1.png)", ""]
        lines += table(["variant", "step"] + tests, [
            [v, VARIANT_TITLES.get(v, "")] + [pct((metrics.get((v, t)) or {}).get("ents_f")) for t in tests]
            for v in names])

    for t in tests:
        per_type = {v: metrics[(v, t)].get("ents_per_type") or {} for v in names if (v, t) in metrics}
        per_type = {v: s for v, s in per_type.items() if s}
        if not per_type:
            notes.append(f"No per-label scores on `{t}`.")
            continue
        labels = sorted({label for s in per_type.values() for label in s})
        values = [[(s.get(label) or {}).get("f") for label in labels] for s in per_type.values()]
        png = f"labels_{safe_name(t)}.png"
        files[png] = heatmap_png(list(per_type), labels, values, title=f"Per-label F1 (%) on {t}",
                                 xlabel="label", ylabel="variant")
        lines += [f"## Per-label F1 on `{t}`", "", f"![Per-label F1 on {t}]({png})", ""]
        lines += table(["variant"] + labels, [[v] + [pct(f) for f in row] for v, row in zip(per_type, values)])

    for t in tests:
        found = {v: metrics[(v, t)]["boundaries"] for v in names if (v, t) in metrics and metrics[(v, t)].get("boundaries")}
        if found:
            classes = next(iter(found.values()))["classes"]
            lines += [f"## Entity boundaries on `{t}`", "",
                      "Each gold entity by what the predictions overlapping it did (spurious: predictions overlapping "
                      "none), all labels; per label in each metrics file's Markdown report.", ""]
            lines += table(["variant"] + list(classes), [[v] + [b["totals"][c] for c in classes] for v, b in found.items()])

    for t in tests:
        rows = {v: (metrics[(v, t)].get("robustness") or {}).get("rows") or [] for v in names if (v, t) in metrics}
        rows = {v: {r["perturbation"]: r for r in rs} for v, rs in rows.items() if rs}
        if not rows:
            notes.append(f"No robustness results on `{t}` (evaluate with `--robustness`).")
            continue
        without = [v for v in names if (v, t) in metrics and v not in rows]
        if without:
            notes.append(f"No robustness results on `{t}` for: {', '.join(without)}.")
        kinds = list(dict.fromkeys(k for rs in rows.values() for k in rs))
        png = f"robustness_{safe_name(t)}.png"
        series = {v: [(rs.get(k) or {}).get("ents_f") for k in kinds] for v, rs in rows.items()}
        files[png] = grouped_bars_png(kinds, series, title=f"Robustness: entity F1 per perturbation on {t}",
                                      ylabel="F1 (%)", legend="variant")
        lines += [f"## Robustness on `{t}`", "",
                  "Entity F1 (%) on perturbed copies of the gold set, ΔF vs clean in points.", "",
                  f"![Robustness on {t}]({png})", ""]
        lines += table(["variant"] + kinds, [
            [v] + [f"{pct(rs[k]['ents_f'])} ({points(rs[k].get('delta_f'))})" if k in rs else "–" for k in kinds]
            for v, rs in rows.items()])

    times = {v: times[v] for v in names if v in (times or {})}
    meta = {v: training_meta[v] for v in names if v in (training_meta or {})}
    if times or meta:
        lines += ["## Training", ""]
        if times:
            files["training_time.png"] = grouped_bars_png(list(times), {"minutes": [s / 60 for s in times.values()]},
                                                          title="Training time", ylabel="minutes", scale=1.0)
            lines += ["![Training time](training_time.png)", ""]
        lines += table(["variant", "dev F1 at training (meta.json)", "training time (min)"], [
            [v, pct((meta.get(v) or {}).get("ents_f")), f"{times[v] / 60:.1f}" if v in times else "–"]
            for v in names if v in times or v in meta])
    if not times:
        notes.append("No training times (`<model>.time.json` in the metrics directory, or `--times`).")
    if not meta:
        notes.append("No training meta.json scores (`training_performance` in the metrics files, or `--training-dir`).")
    curve_variants = list(variants) if variants is not None else order_variants(all_models | set(learning_curves or {}))
    lines += _curves_section(learning_curves or {}, curve_variants, files, notes)
    if calibration is not None:
        lines += _calibration_section(calibration, files)
    else:
        notes.append("No entity-confidence calibration (`--calibration`, the report of `add-confidence`).")

    if predictions_html is not None:
        files["predictions.html"] = predictions_html
        lines += ["## Predictions", "", "[displaCy page of the pipeline's entities on sample legal sentences]"
                  "(predictions.html)", ""]
    else:
        notes.append("No predictions page (`--displacy-model`).")
    if notes:
        lines += ["## Not in this report", ""] + [f"- {n}" for n in notes] + [""]
    files["report.md"] = "\n".join(lines).rstrip() + "\n"
    return files


def load_sentences(path: Path) -> List[str]:
    """Sentences of a .txt file (one per non-empty line) or a JSONL file (a "text" per record).

    path (Path): The file.
    RETURNS (List[str]): The sentences.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    text = read_utf8(path)
    if path.suffix != ".jsonl":
        texts = [stripped for stripped in (line.strip() for _, line in split_lines(text)) if stripped]
    else:
        texts = []
        for _, location, record in parse_jsonl(text, source=path):
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{location}: expected an object with a string 'text'")
            texts.append(record["text"])
    if not texts:
        raise ValueError(f"{path}: no sentences")
    return texts


def render_predictions(nlp: Language, texts: Optional[Sequence[str]] = None) -> str:
    """A standalone displaCy HTML page of the pipeline's entities.

    nlp (Language): The pipeline.
    texts (Optional[Sequence[str]]): The sentences; DEFAULT_SENTENCES by default.
    RETURNS (str): The HTML page.
    """
    docs = list(nlp.pipe(DEFAULT_SENTENCES if texts is None else texts))
    with warnings.catch_warnings():
        # W006 (a Doc without entities) is expected for some sentences of a page
        warnings.filterwarnings("ignore", message=r"\[W006\]")
        return displacy.render(docs, style="ent", page=True, jupyter=False, options={"colors": LEGAL_COLORS})


def write_report_dir(files: Mapping[str, Union[str, bytes]], output: Path) -> None:
    """Write the files into `output`, replacing a previous report directory as a whole, atomically.

    files (Mapping[str, Union[str, bytes]]): File name -> text or bytes.
    output (Path): The directory; when it exists and is not empty it must hold a report.md
        (so a wrong path never deletes unrelated files).
    """
    output = Path(output).resolve()
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output}: exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / "report.md").is_file():
        raise ValueError(f"{output}: a non-empty directory without report.md; not replacing it")

    def write(tmp: Path) -> None:
        tmp.mkdir()
        for name, content in files.items():
            if Path(name).name != name:
                raise ValueError(f"{name!r}: not a plain file name")
            if isinstance(content, bytes):
                (tmp / name).write_bytes(content)
            else:
                (tmp / name).write_text(content, encoding="utf8")

    replace_directory(output, write)
