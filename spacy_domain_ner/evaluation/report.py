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
  see `curves`).
Scores are shown in % (gaps in points); the functions return fractions.
"""
import io
import math
import re
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import srsly
from spacy import displacy
from spacy.language import Language

from ..io.atomic import replace_directory
from .curves import CURVES_PNG, CurvePoint, curve_summary, learning_curves_png
from ..io.jsonl import parse_jsonl, read_utf8, split_lines

# The workflow's variants, in ablation order, with the step each one adds.
VARIANT_TITLES = {
    "news": "baseline: general model (news)",
    "baseline": "baseline",
    "legal": "+ domain data (legal)",
    "domain": "+ domain data",
    "dapt": "+ domain-adaptive pretraining",
    "adversarial": "+ adversarial training",
    "multitask": "+ multi-task (shared transformer, news head)",
    "mixed": "+ mixed-domain data (news mapped to legal labels)",
    "fusion": "+ knowledge fusion",
}
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
Key = Tuple[str, str]  # (model, test set)
Files = Dict[str, Union[str, bytes]]  # file name in the report directory -> content


def load_metrics(path: Path) -> Dict[str, Any]:
    """Read and check one metrics JSON.

    path (Path): The file.
    RETURNS (Dict[str, Any]): The metrics, with `ents_f` a fraction or None.
    """
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or "ents_f" not in data:
        raise ValueError(f"{path}: not a metrics file (no 'ents_f' key)")
    f = data["ents_f"]
    if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1):
        raise ValueError(f"{path}: ents_f must be a fraction in [0, 1] or null, not {f!r}")
    for key, kind in (("ents_per_type", dict), ("robustness", dict), ("training_performance", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise ValueError(f"{path}: '{key}' must be a JSON object")
    return data


def parse_name(stem: str, *, default_test: str = "dev") -> Key:
    """(model, test set) of a metrics file stem: `<model>_on_<testset>` or `<model>`.

    stem (str): The file name without `.json`.
    default_test (str): The test set of a plain `<model>`.
    RETURNS (Key): (model, test set).
    """
    parts = stem.split("_on_")
    if len(parts) == 1 and stem:
        return stem, default_test
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValueError(f"{stem}: expected <model>_on_<testset> or <model>")


def collect_metrics(
    *, dirs: Sequence[Path] = (), specs: Sequence[str] = (), default_test: str = "dev"
) -> Tuple[Dict[Key, Dict[str, Any]], Dict[Key, Path], Dict[str, float]]:
    """Load the metrics of directories (see the module docstring) and of explicit specs.

    dirs (Sequence[Path]): Metrics directories.
    specs (Sequence[str]): `MODEL=PATH` or `MODEL:TESTSET=PATH`; they override the directories.
    default_test (str): The test set of `<model>.json` and of `MODEL=PATH`.
    RETURNS (Tuple): metrics and source file per (model, test set); training seconds per model.
    """
    found: Dict[Key, Path] = {}
    times: Dict[str, float] = {}
    for directory in dirs:
        if not Path(directory).is_dir():
            raise ValueError(f"{directory}: no such metrics directory")
        for path in sorted(Path(directory).glob("*.json")):
            if path.name.endswith(".time.json"):
                times.update(load_times(path, model=path.name[: -len(".time.json")]))
                continue
            try:
                key = parse_name(path.stem, default_test=default_test)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
            if key in found:
                raise ValueError(f"{path}: {key[0]} on {key[1]} is also in {found[key]}")
            found[key] = path
    for spec in specs:
        name, sep, path = spec.partition("=")
        model, _, test = name.partition(":")
        if not sep or not model or not path or "_on_" in model:
            raise ValueError(f"--metrics {spec!r}: expected MODEL=PATH or MODEL:TESTSET=PATH")
        found[(model, test or default_test)] = Path(path)
    metrics = {}
    for key, path in found.items():
        if not path.is_file():
            raise ValueError(f"{path}: no such metrics file")
        metrics[key] = load_metrics(path)
    return metrics, found, times


def load_times(path: Path, *, model: Optional[str] = None) -> Dict[str, float]:
    """Training seconds: `{"seconds": N}` (or a bare number) for one model, else `{model: N, ...}`.

    path (Path): The JSON file.
    model (Optional[str]): The model of a one-model file (`<model>.time.json`).
    RETURNS (Dict[str, float]): model -> seconds.
    """
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if model is not None:
        data = {model: data.get("seconds") if isinstance(data, dict) else data}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of model -> seconds")
    for name, seconds in data.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{path}: the training time of {name!r} must be a number of seconds, not {seconds!r}")
    return {name: float(seconds) for name, seconds in data.items()}


def load_training_meta(training_dir: Path, models: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The `performance` of `training_dir/<model>/model-best/meta.json`, for the models that have one.

    training_dir (Path): spaCy's training output root.
    models (Sequence[str]): The models.
    RETURNS (Dict[str, Dict[str, Any]]): model -> performance (ents_f etc. as fractions).
    """
    result = {}
    for model in models:
        path = Path(training_dir) / model / "model-best" / "meta.json"
        if path.is_file():
            try:
                meta = srsly.read_json(path)
            except ValueError as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from None
            if not isinstance(meta, dict) or not isinstance(meta.get("performance") or {}, dict):
                raise ValueError(f"{path}: expected a spaCy meta.json with a 'performance' object")
            result[model] = meta.get("performance") or {}
    return result


def training_meta_from_metrics(metrics: Mapping[Key, Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The dev scores at training per model, from the `training_performance` of its metrics files.

    metrics (Mapping[Key, Mapping[str, Any]]): Metrics per (model, test set).
    RETURNS (Dict[str, Dict[str, Any]]): model -> performance, for the models that have one.
    """
    result: Dict[str, Dict[str, Any]] = {}
    for (model, _), data in sorted(metrics.items()):
        if data.get("training_performance"):
            result.setdefault(model, dict(data["training_performance"]))
    return result


def cross_domain_matrix(
    metrics: Mapping[Key, Mapping[str, Any]], *, in_domain: Optional[Mapping[str, str]] = None,
    general: str = "news", legal_test: str = "legal",
) -> Optional[Dict[str, Any]]:
    """Entity F1 of each model on each in-domain test set, the gaps and the capability misalignment.

    metrics (Mapping[Key, Mapping[str, Any]]): Metrics per (model, test set).
    in_domain (Optional[Mapping[str, str]]): model -> its own test set; by default each model
        with a test set of its own name.
    general (str): The general (news) model.
    legal_test (str): The legal test set.
    RETURNS (Optional[Dict[str, Any]]): None without two models on their in-domain test sets; else
        models, test_sets, matrix {model: {test: F1 or None}}, per_model {model: in_domain_test,
        in_domain_f, cross_domain_f, gap} and misalignment (None when its cells are missing).
    """
    f1 = {key: m.get("ents_f") for key, m in metrics.items()}
    if in_domain is None:
        in_domain = {model: model for model, test in f1 if model == test}
    homes = {m: t for m, t in in_domain.items() if f1.get((m, t)) is not None}
    if len(homes) < 2:
        return None
    models = sorted(homes)
    tests = sorted(set(homes.values()))
    matrix = {m: {t: f1.get((m, t)) for t in tests} for m in models}
    per_model = {}
    for m in models:
        others = [matrix[m][t] for t in tests if t != homes[m] and matrix[m][t] is not None]
        cross = sum(others) / len(others) if others else None
        per_model[m] = {
            "in_domain_test": homes[m], "in_domain_f": matrix[m][homes[m]], "cross_domain_f": cross,
            "gap": None if cross is None else matrix[m][homes[m]] - cross,
        }
    misalignment = None
    own = homes.get(general)
    if own is not None and own != legal_test and f1.get((general, legal_test)) is not None:
        own_f, legal_f = f1[(general, own)], f1[(general, legal_test)]
        misalignment = {"model": general, "own_test": own, "legal_test": legal_test,
                        "own_f": own_f, "legal_f": legal_f, "value": own_f - legal_f}
    return {"models": models, "test_sets": tests, "matrix": matrix, "per_model": per_model,
            "misalignment": misalignment}


def order_variants(models: Sequence[str]) -> List[str]:
    """The workflow's variants in ablation order (VARIANT_TITLES), then the others alphabetically."""
    known = list(VARIANT_TITLES)
    return sorted(set(models), key=lambda m: (known.index(m) if m in known else len(known), m))


def _figure(width: float, height: float) -> Any:
    # Agg canvas, no pyplot: no global backend state, works without a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def heatmap_png(
    rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[Optional[float]]], *,
    title: str, xlabel: str, ylabel: str,
) -> bytes:
    """A heatmap of fractions (shown in %), missing cells blank.

    rows, columns (Sequence[str]): The labels.
    values (Sequence[Sequence[Optional[float]]]): One row of fractions (or None) per row label.
    title, xlabel, ylabel (str): The texts.
    RETURNS (bytes): The PNG.
    """
    grid = [[math.nan if v is None else 100 * v for v in row] for row in values]
    fig = _figure(1.6 + 1.1 * len(columns), 1.2 + 0.6 * len(rows))
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < 60 else "black")
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, label="F1 (%)")
    return _png(fig)


def grouped_bars_png(
    categories: Sequence[str], series: Mapping[str, Sequence[Optional[float]]], *, title: str, ylabel: str,
    legend: Optional[str] = None, scale: float = 100.0,
) -> bytes:
    """Grouped bars: one group per category, one bar per series; missing values leave a gap.

    categories (Sequence[str]): The x-axis groups.
    series (Mapping[str, Sequence[Optional[float]]]): name -> one value per category.
    title, ylabel (str): The texts.
    legend (Optional[str]): The legend's title; None for no legend.
    scale (float): Multiplies the values (100 turns fractions into % on a 0-100 axis).
    RETURNS (bytes): The PNG.
    """
    fig = _figure(max(4.0, 1.0 + 0.45 * len(categories) * max(1, len(series))), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        xs = [i - 0.4 + width * (n + 0.5) for i in range(len(categories))]
        ax.bar(xs, [math.nan if v is None else scale * v for v in values], width, label=name)
    ax.set_xticks(range(len(categories)), labels=list(categories), rotation=20, ha="right")
    ax.set(title=title, ylabel=ylabel)
    if scale == 100.0:
        ax.set_ylim(0, 100)
    if legend is not None:
        ax.legend(title=legend, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _points(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _cross_section(cross: Dict[str, Any], files: Files) -> List[str]:
    models, tests, matrix = cross["models"], cross["test_sets"], cross["matrix"]
    files["cross_domain.png"] = heatmap_png(models, tests, [[matrix[m][t] for t in tests] for m in models],
                                            title="Entity F1 (%)", xlabel="test set", ylabel="model")
    lines = ["## Cross-domain matrix", "", "Entity F1 (%), rows: models, columns: test sets.", "",
             "![Cross-domain F1 heatmap](cross_domain.png)", ""]
    lines += _table(["model \\ test set"] + tests, [[m] + [_pct(matrix[m][t]) for t in tests] for m in models])
    lines += _table(["model", "in-domain test set", "in-domain F1", "cross-domain F1", "gap (points)"], [
        [m, s["in_domain_test"], _pct(s["in_domain_f"]), _pct(s["cross_domain_f"]), _points(s["gap"])]
        for m, s in cross["per_model"].items()])
    mis = cross["misalignment"]
    if mis is not None:
        lines += [f"**Capability misalignment**: {_points(mis['value'])} points: the general model "
                  f"`{mis['model']}` scores {_pct(mis['own_f'])} F1 on its own domain (`{mis['own_test']}`) "
                  f"and {_pct(mis['legal_f'])} on legal text (`{mis['legal_test']}`).", ""]
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
    return lines + _table(["variant", "evaluations", "best dev F1", "at step", "last dev F1", "last step", "minutes"], [
        [v, s["evaluations"], _pct(s["best_f"]), "–" if s["best_step"] is None else s["best_step"], _pct(s["last_f"]),
         s["last_step"], "–" if s["minutes"] is None else f"{s['minutes']:.1f}"] for v, s in summaries.items()])


def build_report(
    metrics: Mapping[Key, Mapping[str, Any]], *, sources: Optional[Mapping[Key, Path]] = None,
    in_domain: Optional[Mapping[str, str]] = None, general: str = "news", legal_test: str = "legal",
    variants: Optional[Sequence[str]] = None, times: Optional[Mapping[str, float]] = None,
    training_meta: Optional[Mapping[str, Mapping[str, Any]]] = None, predictions_html: Optional[str] = None,
    title: str = "Legal-domain NER: evaluation report",
    learning_curves: Optional[Mapping[str, Sequence[CurvePoint]]] = None,
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
    RETURNS (Files): file name -> text (report.md, predictions.html) or PNG bytes.
    """
    if not metrics:
        raise ValueError("no metrics files: nothing to report")
    files: Files = {}
    notes: List[str] = []
    lines = [f"# {title}", "", "Scores are entity-level (exact span and label), in %.", ""]
    lines += ["## Inputs", ""]
    lines += _table(["model", "test set", "F1", "file"], [
        [m, t, _pct(metrics[(m, t)]["ents_f"]), (sources or {}).get((m, t), "–")] for m, t in sorted(metrics)])

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
        lines += _table(["variant", "step"] + tests, [
            [v, VARIANT_TITLES.get(v, "")] + [_pct((metrics.get((v, t)) or {}).get("ents_f")) for t in tests]
            for v in names])

    for t in tests:
        per_type = {v: metrics[(v, t)].get("ents_per_type") or {} for v in names if (v, t) in metrics}
        per_type = {v: s for v, s in per_type.items() if s}
        if not per_type:
            notes.append(f"No per-label scores on `{t}`.")
            continue
        labels = sorted({label for s in per_type.values() for label in s})
        values = [[(s.get(label) or {}).get("f") for label in labels] for s in per_type.values()]
        png = f"labels_{_safe(t)}.png"
        files[png] = heatmap_png(list(per_type), labels, values, title=f"Per-label F1 (%) on {t}",
                                 xlabel="label", ylabel="variant")
        lines += [f"## Per-label F1 on `{t}`", "", f"![Per-label F1 on {t}]({png})", ""]
        lines += _table(["variant"] + labels, [[v] + [_pct(f) for f in row] for v, row in zip(per_type, values)])

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
        png = f"robustness_{_safe(t)}.png"
        series = {v: [(rs.get(k) or {}).get("ents_f") for k in kinds] for v, rs in rows.items()}
        files[png] = grouped_bars_png(kinds, series, title=f"Robustness: entity F1 per perturbation on {t}",
                                      ylabel="F1 (%)", legend="variant")
        lines += [f"## Robustness on `{t}`", "",
                  "Entity F1 (%) on perturbed copies of the gold set, ΔF vs clean in points.", "",
                  f"![Robustness on {t}]({png})", ""]
        lines += _table(["variant"] + kinds, [
            [v] + [f"{_pct(rs[k]['ents_f'])} ({_points(rs[k].get('delta_f'))})" if k in rs else "–" for k in kinds]
            for v, rs in rows.items()])

    times = {v: times[v] for v in names if v in (times or {})}
    meta = {v: training_meta[v] for v in names if v in (training_meta or {})}
    if times or meta:
        lines += ["## Training", ""]
        if times:
            files["training_time.png"] = grouped_bars_png(list(times), {"minutes": [s / 60 for s in times.values()]},
                                                          title="Training time", ylabel="minutes", scale=1.0)
            lines += ["![Training time](training_time.png)", ""]
        lines += _table(["variant", "dev F1 at training (meta.json)", "training time (min)"], [
            [v, _pct((meta.get(v) or {}).get("ents_f")), f"{times[v] / 60:.1f}" if v in times else "–"]
            for v in names if v in times or v in meta])
    if not times:
        notes.append("No training times (`<model>.time.json` in the metrics directory, or `--times`).")
    if not meta:
        notes.append("No training meta.json scores (`training_performance` in the metrics files, or `--training-dir`).")
    curve_variants = list(variants) if variants is not None else order_variants(all_models | set(learning_curves or {}))
    lines += _curves_section(learning_curves or {}, curve_variants, files, notes)

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
