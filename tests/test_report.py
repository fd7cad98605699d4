"""Tests of spacy_domain_ner.evaluation.report and the `report` CLI, from tiny hand-made metrics JSONs."""
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import Doc, Span
from typer.testing import CliRunner

import spacy_domain_ner.cli.report  # noqa: F401  (registers the command)
from spacy_domain_ner.cli import app
from spacy_domain_ner.evaluation.evaluate import evaluate_pipeline
from spacy_domain_ner.evaluation.charts import grouped_bars_png, heatmap_png
from spacy_domain_ner.evaluation.report import DEFAULT_SENTENCES, build_report, load_sentences, render_predictions, write_report_dir
from spacy_domain_ner.evaluation.results import collect_metrics, cross_domain_matrix, load_metrics, load_times, load_training_meta, order_variants, parse_name
from spacy_domain_ner.evaluation.robustness import evaluate_robustness

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def metrics(f: Optional[float], per_type: Optional[Dict[str, float]] = None,
            robustness: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
    """A metrics dict shaped like `evaluate`'s output; robustness: perturbation -> F1 (clean first)."""
    data: Dict[str, Any] = {"ents_p": f, "ents_r": f, "ents_f": f,
                            "ents_per_type": {k: {"p": v, "r": v, "f": v} for k, v in (per_type or {}).items()}}
    if robustness is not None:
        clean = robustness["clean"]
        data["robustness"] = {"seed": 0, "noise_rate": 0.2, "skipped": {}, "rows": [
            {"perturbation": k, "ents_p": v, "ents_r": v, "ents_f": v, "delta_f": v - clean,
             "entities_changed": 0, "entities": 4} for k, v in robustness.items()]}
    return data


# The 2x2 cross-domain fixture; hand-computed: news gap 0.90 - 0.40 = 0.50, legal gap 0.80 - 0.50 = 0.30,
# capability misalignment = news on news - news on legal = 0.50.
CROSS = {
    ("news", "news"): metrics(0.90, {"PER": 0.95, "ORG": 0.85}),
    ("news", "legal"): metrics(0.40, {"PER": 0.60, "ORG": 0.20}, robustness={"clean": 0.40, "upper": 0.25, "typos": 0.30}),
    ("legal", "legal"): metrics(0.80, {"PER": 0.70, "ORG": 0.90}),
    ("legal", "news"): metrics(0.50),
}


def write_metrics(directory: Path, data: Dict[tuple, Dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for (model, test), m in data.items():
        srsly.write_json(directory / f"{model}_on_{test}.json", m)


def png_names(markdown: str) -> List[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", markdown)


@pytest.fixture(scope="module")
def ruler_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Blank English + EntityRuler, saved to disk."""
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "COURT", "pattern": "Ninth Circuit"},
        {"label": "GOVERNMENT", "pattern": "Securities and Exchange Commission"},
        {"label": "ORG", "pattern": "Acme"},
        {"label": "PER", "pattern": "Bob"},
    ])
    path = tmp_path_factory.mktemp("pipe") / "ruler"
    nlp.to_disk(path)
    return path


def test_parse_name() -> None:
    assert parse_name("news_on_legal") == ("news", "legal")
    assert parse_name("ner_trf") == ("ner_trf", "dev")
    assert parse_name("ner_trf", default_test="legal7") == ("ner_trf", "legal7")
    for bad in ("a_on_b_on_c", "_on_legal", "news_on_", ""):
        with pytest.raises(ValueError, match="expected <model>_on_<testset>"):
            parse_name(bad)


def test_cross_domain_matrix_hand_computed() -> None:
    cross = cross_domain_matrix(CROSS)
    assert cross["models"] == ["legal", "news"] and cross["test_sets"] == ["legal", "news"]
    assert cross["matrix"] == {"legal": {"legal": 0.80, "news": 0.50}, "news": {"legal": 0.40, "news": 0.90}}
    news, legal = cross["per_model"]["news"], cross["per_model"]["legal"]
    assert news["in_domain_test"] == "news" and news["in_domain_f"] == 0.90 and news["cross_domain_f"] == 0.40
    assert news["gap"] == pytest.approx(0.50)
    assert legal["in_domain_f"] == 0.80 and legal["cross_domain_f"] == 0.50 and legal["gap"] == pytest.approx(0.30)
    mis = cross["misalignment"]
    assert (mis["model"], mis["own_test"], mis["legal_test"]) == ("news", "news", "legal")
    assert (mis["own_f"], mis["legal_f"]) == (0.90, 0.40) and mis["value"] == pytest.approx(0.50)


def test_cross_domain_matrix_explicit_homes_mean_and_missing() -> None:
    data = {
        ("general", "conll"): metrics(0.92), ("general", "ener4"): metrics(0.35), ("general", "fin"): metrics(0.45),
        ("trf", "ener4"): metrics(0.81), ("trf", "conll"): metrics(0.55),
        ("cnn", "fin"): metrics(0.70),
        ("trf", "dev7"): metrics(0.77),  # not anybody's in-domain test set: not a column
    }
    homes = {"general": "conll", "trf": "ener4", "cnn": "fin"}
    cross = cross_domain_matrix(data, in_domain=homes, general="general", legal_test="ener4")
    assert cross["test_sets"] == ["conll", "ener4", "fin"]
    assert cross["matrix"]["trf"]["fin"] is None and "dev7" not in cross["matrix"]["trf"]
    # general: cross-domain = mean(0.35, 0.45) = 0.40, gap 0.52; trf: only conll known, gap 0.26; cnn: none
    assert cross["per_model"]["general"]["cross_domain_f"] == pytest.approx(0.40)
    assert cross["per_model"]["general"]["gap"] == pytest.approx(0.52)
    assert cross["per_model"]["trf"]["gap"] == pytest.approx(0.26)
    assert cross["per_model"]["cnn"]["cross_domain_f"] is None and cross["per_model"]["cnn"]["gap"] is None
    assert cross["misalignment"]["value"] == pytest.approx(0.92 - 0.35)
    # no legal cell for the general model, or the general model unknown: no misalignment
    assert cross_domain_matrix(data, in_domain=homes, general="general", legal_test="nope")["misalignment"] is None
    assert cross_domain_matrix(data, in_domain=homes, general="nobody", legal_test="ener4")["misalignment"] is None
    # fewer than two models on their own test set: no matrix (ents_f None counts as missing)
    assert cross_domain_matrix({("news", "news"): metrics(0.9), ("legal", "legal"): metrics(None)}) is None
    assert cross_domain_matrix({("a", "b"): metrics(0.5)}) is None


def test_cross_domain_matrix_explicit_home_adds_to_the_named_ones() -> None:
    # the study's report names one home (legal's) while news is matched by name: both are columns
    data = {
        ("news", "news"): metrics(0.90), ("news", "ener"): metrics(0.40),
        ("legal", "ener"): metrics(0.70), ("legal", "news"): metrics(0.50),
    }
    cross = cross_domain_matrix(data, in_domain={"legal": "ener"}, general="news", legal_test="ener")
    assert cross["test_sets"] == ["ener", "news"]
    assert cross["per_model"]["legal"]["in_domain_test"] == "ener"
    assert cross["per_model"]["news"]["gap"] == pytest.approx(0.50)


def test_order_variants() -> None:
    assert order_variants(["zeta", "fusion", "news", "alpha", "dapt", "legal", "adversarial"]) == [
        "news", "legal", "dapt", "adversarial", "fusion", "alpha", "zeta"]


def test_load_metrics_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    srsly.write_json(good, metrics(None))
    assert load_metrics(good)["ents_f"] is None
    cases = {
        "broken.json": ("{not json", "not valid JSON"),
        "nof.json": (json.dumps({"ents_p": 0.5}), "no 'ents_f' key"),
        "list.json": ("[1, 2]", "no 'ents_f' key"),
        "percent.json": (json.dumps({"ents_f": 85.3}), "fraction in"),
        "text.json": (json.dumps({"ents_f": "0.8"}), "fraction in"),
        "types.json": (json.dumps({"ents_f": 0.5, "ents_per_type": [1]}), "'ents_per_type' must be"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content, encoding="utf8")
        with pytest.raises(ValueError, match=message) as err:
            load_metrics(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)


def test_collect_metrics(tmp_path: Path) -> None:
    write_metrics(tmp_path / "m", {("news", "news"): metrics(0.9), ("news", "legal"): metrics(0.4)})
    srsly.write_json(tmp_path / "m" / "ner_trf.json", metrics(0.7))
    srsly.write_json(tmp_path / "m" / "ner_trf.time.json", {"seconds": 90})
    srsly.write_json(tmp_path / "other.json", metrics(0.33))
    found, sources, times = collect_metrics(dirs=[tmp_path / "m"], specs=[f"news:legal={tmp_path / 'other.json'}",
                                                                            f"fusion={tmp_path / 'other.json'}"])
    assert set(found) == {("news", "news"), ("news", "legal"), ("ner_trf", "dev"), ("fusion", "dev")}
    assert found[("news", "legal")]["ents_f"] == 0.33  # the explicit spec wins
    assert sources[("ner_trf", "dev")] == tmp_path / "m" / "ner_trf.json"
    assert times == {"ner_trf": 90.0}
    for spec in ("noequals", "=x.json", "a_on_b=x.json", "m="):
        with pytest.raises(ValueError, match="expected MODEL=PATH"):
            collect_metrics(specs=[spec])
    with pytest.raises(ValueError, match="no such metrics file"):
        collect_metrics(specs=[f"x={tmp_path / 'missing.json'}"])
    with pytest.raises(ValueError, match="no such metrics directory"):
        collect_metrics(dirs=[tmp_path / "nope"])
    (tmp_path / "m2").mkdir()
    srsly.write_json(tmp_path / "m2" / "news_on_news.json", metrics(0.1))
    with pytest.raises(ValueError, match="is also in"):
        collect_metrics(dirs=[tmp_path / "m", tmp_path / "m2"])
    srsly.write_json(tmp_path / "m2" / "a_on_b_on_c.json", metrics(0.1))
    with pytest.raises(ValueError, match="a_on_b_on_c.json"):
        collect_metrics(dirs=[tmp_path / "m2"])


def test_load_times_and_training_meta(tmp_path: Path) -> None:
    srsly.write_json(tmp_path / "t.json", {"legal": 600, "dapt": 1200.5})
    assert load_times(tmp_path / "t.json") == {"legal": 600.0, "dapt": 1200.5}
    (tmp_path / "one.json").write_text("42", encoding="utf8")
    assert load_times(tmp_path / "one.json", model="news") == {"news": 42.0}
    for content, message in (("[1]", "expected a JSON object"), ('{"a": -1}', "number of seconds"),
                             ('{"a": "1"}', "number of seconds"), ("{oops", "not valid JSON")):
        (tmp_path / "bad.json").write_text(content, encoding="utf8")
        with pytest.raises(ValueError, match=message):
            load_times(tmp_path / "bad.json")
    meta_dir = tmp_path / "training" / "legal" / "model-best"
    meta_dir.mkdir(parents=True)
    srsly.write_json(meta_dir / "meta.json", {"lang": "en", "performance": {"ents_f": 0.77, "speed": 1000}})
    assert load_training_meta(tmp_path / "training", ["legal", "news"]) == {"legal": {"ents_f": 0.77, "speed": 1000}}
    (meta_dir / "meta.json").write_text("{", encoding="utf8")
    with pytest.raises(ValueError, match="meta.json: not valid JSON"):
        load_training_meta(tmp_path / "training", ["legal"])
    srsly.write_json(meta_dir / "meta.json", {"performance": [1]})
    with pytest.raises(ValueError, match="'performance' object"):
        load_training_meta(tmp_path / "training", ["legal"])


def keep_figures(monkeypatch: pytest.MonkeyPatch) -> List[tuple]:
    """(Figure, PNG) of every heatmap and bar chart drawn from now on (the PNG is still rendered)."""
    import spacy_domain_ner.evaluation.charts as charts

    drawn: List[tuple] = []
    render = charts.to_png

    def keep(fig: Any) -> bytes:
        drawn.append((fig, render(fig)))
        return drawn[-1][1]

    monkeypatch.setattr(charts, "to_png", keep)
    return drawn


def heatmap_cells(ax: Any) -> List[List[Optional[float]]]:
    grid = ax.images[0].get_array()
    return [[None if numpy.ma.is_masked(v) or numpy.isnan(v) else round(float(v), 6) for v in row] for row in grid]


def bar_heights(ax: Any) -> Dict[str, List[Optional[float]]]:
    return {c.get_label(): [None if numpy.isnan(r.get_height()) else round(r.get_height(), 6) for r in c]
            for c in ax.containers}


def tick_texts(labels: Any) -> List[str]:
    return [label.get_text() for label in labels]


def pixels_near(png: bytes, rgb: tuple, tolerance: float = 2 / 255) -> int:
    """How many pixels of the PNG have the colour `rgb` (fractions)."""
    import io

    from matplotlib.image import imread

    image = imread(io.BytesIO(png), format="png")[..., :3]
    return int((abs(image - numpy.array(rgb)) <= tolerance).all(axis=-1).sum())


def test_charts_draw_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    drawn = keep_figures(monkeypatch)
    heat = heatmap_png(["a", "b"], ["x", "y"], [[0.5, 0.25], [None, 1.0]], title="t", xlabel="test", ylabel="model")
    bars = grouped_bars_png(["a", "b"], {"s1": [0.1, None], "s2": [0.3, 0.4]}, title="t2", ylabel="F1", legend="set")
    minutes = grouped_bars_png(["legal"], {"minutes": [12.5]}, title="Training time", ylabel="minutes", scale=1.0)
    assert [png for _, png in drawn] == [heat, bars, minutes] and all(p.startswith(PNG_MAGIC) for p in (heat, bars, minutes))
    (heat_fig, _), (bars_fig, _), (minutes_fig, _) = drawn
    # heatmap: the fractions in %, the missing cell blank, one text per present cell, 0-100 colour scale
    ax = heat_fig.axes[0]
    assert heatmap_cells(ax) == [[50.0, 25.0], [None, 100.0]]
    assert [t.get_text() for t in ax.texts] == ["50.0", "25.0", "100.0"]
    assert [t.get_color() for t in ax.texts] == ["white", "white", "black"]
    assert tick_texts(ax.get_xticklabels()) == ["x", "y"] and tick_texts(ax.get_yticklabels()) == ["a", "b"]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("t", "test", "model")
    assert ax.images[0].get_clim() == (0, 100) and heat_fig.axes[1].get_ylabel() == "F1 (%)"
    # the rendered PNG shows each cell in its colour of viridis (the colour bar alone has a few pixels of each)
    for value in (0.25, 0.5, 1.0):
        assert pixels_near(heat, colormaps["viridis"](value)[:3]) > 1000, value
    # grouped bars: one bar per series and category in %, a gap for None, the series side by side in each group
    ax = bars_fig.axes[0]
    assert bar_heights(ax) == {"s1": [10.0, None], "s2": [30.0, 40.0]}
    centres = [[round(r.get_x() + r.get_width() / 2, 6) for r in c] for c in ax.containers]
    assert centres == [[-0.2, 0.8], [0.2, 1.2]]
    assert tick_texts(ax.get_xticklabels()) == ["a", "b"] and ax.get_ylim() == (0, 100)
    assert ax.get_legend().get_title().get_text() == "set"
    assert tick_texts(ax.get_legend().get_texts()) == ["s1", "s2"]
    # the PNG: the second series' bars (30 + 40) cover about seven times the first's (10)
    first, second = (pixels_near(bars, to_rgb(colour)) for colour in ("C0", "C1"))
    assert first > 50 and 4 * first < second < 10 * first
    # scale 1: the values as they are, the axis fitted to them, no legend
    ax = minutes_fig.axes[0]
    assert bar_heights(ax) == {"minutes": [12.5]} and ax.get_ylim()[1] > 12.5 and ax.get_legend() is None


def test_report_charts_show_the_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = keep_figures(monkeypatch)
    files = build_report(CROSS, times={"legal": 600.0})
    axes = {name: fig.axes[0] for name, content in files.items() for fig, png in drawn if png == content}
    assert set(axes) == {n for n in files if n.endswith(".png")} == {
        "cross_domain.png", "ablation_f1.png", "labels_legal.png", "labels_news.png", "robustness_legal.png",
        "training_time.png"}
    # the cross-domain matrix: rows models, columns test sets, F1 in %
    ax = axes["cross_domain.png"]
    assert tick_texts(ax.get_yticklabels()) == tick_texts(ax.get_xticklabels()) == ["legal", "news"]
    assert heatmap_cells(ax) == [[80.0, 50.0], [40.0, 90.0]]
    # ablation: variants in workflow order, one series per test set
    ax = axes["ablation_f1.png"]
    assert tick_texts(ax.get_xticklabels()) == ["news", "legal"]
    assert bar_heights(ax) == {"legal": [40.0, 80.0], "news": [90.0, 50.0]}
    # per label: the variants with per-label scores on that test set, labels sorted
    ax = axes["labels_legal.png"]
    assert tick_texts(ax.get_yticklabels()) == ["news", "legal"] and tick_texts(ax.get_xticklabels()) == ["ORG", "PER"]
    assert heatmap_cells(ax) == [[20.0, 60.0], [90.0, 70.0]]
    assert heatmap_cells(axes["labels_news.png"]) == [[85.0, 95.0]]
    # robustness: the perturbations of news on legal; training time in minutes
    ax = axes["robustness_legal.png"]
    assert tick_texts(ax.get_xticklabels()) == ["clean", "upper", "typos"]
    assert bar_heights(ax) == {"news": [40.0, 25.0, 30.0]}
    assert bar_heights(axes["training_time.png"]) == {"minutes": [10.0]}


def test_build_report_sections_numbers_and_pngs() -> None:
    files = build_report(CROSS, times={"legal": 600.0, "unused": 1.0},
                         training_meta={"news": {"ents_f": 0.88}}, predictions_html="<html>page</html>")
    md = files["report.md"]
    assert md.startswith("# Legal-domain NER: evaluation report")
    pngs = png_names(md)
    assert sorted(pngs) == sorted(n for n in files if n.endswith(".png"))
    assert set(pngs) == {"cross_domain.png", "ablation_f1.png", "labels_legal.png", "labels_news.png",
                         "robustness_legal.png", "training_time.png"}
    for name in pngs:
        assert isinstance(files[name], bytes) and files[name].startswith(PNG_MAGIC)
    # the matrix and gaps in %: hand-computed above
    assert "| legal | 80.00 | 50.00 |" in md and "| news | 40.00 | 90.00 |" in md
    assert "| news | news | 90.00 | 40.00 | +50.00 |" in md and "| legal | legal | 80.00 | 50.00 | +30.00 |" in md
    assert "**Capability misalignment**: +50.00 points" in md
    # ablation rows in workflow order, per-label and robustness tables (robustness only for news on legal)
    assert md.index("| news | baseline") < md.index("| legal | + domain data")
    assert "| variant | ORG | PER |" in md and "| news | 20.00 | 60.00 |" in md
    assert "| news | 40.00 (+0.00) | 25.00 (-15.00) | 30.00 (-10.00) |" in md
    assert "- No robustness results on `legal` for: legal." in md
    assert "- No robustness results on `news` (evaluate with `--robustness`)." in md
    # training: time for legal (10 min), meta F1 for news; "unused" is not a variant
    assert "| legal | – | 10.0 |" in md and "| news | 88.00 | – |" in md and "unused" not in md
    assert files["predictions.html"] == "<html>page</html>" and "(predictions.html)" in md


def test_build_report_missing_pieces_are_notes() -> None:
    files = build_report({("ner_trf", "dev"): metrics(0.7)}, variants=["news", "ner_trf"])
    md = files["report.md"]
    assert set(files) == {"report.md", "ablation_f1.png"}
    for note in ("No cross-domain matrix", "Variants without metrics, left out: news.", "No per-label scores on `dev`.",
                 "No robustness results on `dev`", "No training times", "No training meta.json",
                 "No predictions page", "No entity-confidence calibration"):
        assert note in md
    assert "## Cross-domain matrix" not in md and "## Training" not in md and "predictions.html" not in md
    with pytest.raises(ValueError, match="no metrics files"):
        build_report({})


def test_build_report_inputs_show_the_bootstrap_interval() -> None:
    with_interval = {**metrics(0.7), "ents_f_interval": {"f": 0.7, "low": 0.6, "high": 0.8, "n_units": 8}}
    one_document = {**metrics(0.5), "ents_f_interval": {"f": 0.5, "low": None, "high": None, "n_units": 1}}
    md = build_report({("legal", "dev"): with_interval, ("news", "dev"): one_document, ("trf", "dev"): metrics(0.4)})["report.md"]
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "| dev |" in line}
    assert "| 70.00 | 60.00–80.00 (8) |" in rows["legal"]
    assert "| 50.00 | – |" in rows["news"] and "| 40.00 | – |" in rows["trf"]


def test_load_sentences(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("The Court ruled.\n\n  Bob sued Acme.  \n", encoding="utf8")
    assert load_sentences(tmp_path / "s.txt") == ["The Court ruled.", "Bob sued Acme."]
    (tmp_path / "s.jsonl").write_text('{"text": "One."}\n\n{"text": "Two.", "meta": 1}\n', encoding="utf8")
    assert load_sentences(tmp_path / "s.jsonl") == ["One.", "Two."]
    (tmp_path / "bad.jsonl").write_text('{"text": "One."}\n{"text": 3}\n', encoding="utf8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected an object"):
        load_sentences(tmp_path / "bad.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"text": "One."}\n{oops\n', encoding="utf8")
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not valid JSON"):
        load_sentences(tmp_path / "broken.jsonl")
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf8")
    with pytest.raises(ValueError, match="empty.txt: no sentences"):
        load_sentences(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="no such file"):
        load_sentences(tmp_path / "missing.txt")


def test_render_predictions(ruler_pipeline: Path) -> None:
    assert 6 <= len(DEFAULT_SENTENCES) <= 10
    nlp = spacy.load(ruler_pipeline)
    html = render_predictions(nlp)
    assert html.lstrip().lower().startswith("<!doctype html>") and html.count("<figure") == len(DEFAULT_SENTENCES)
    assert "Ninth Circuit" in html and ">COURT</span>" in html and ">GOVERNMENT</span>" in html
    html = render_predictions(nlp, ["Bob works at Acme."])
    assert ">PER</span>" in html and ">ORG</span>" in html and html.count("<figure") == 1


def test_write_report_dir_atomic(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "report"
    write_report_dir({"report.md": "v1\n", "stale.png": PNG_MAGIC}, out)
    assert (out / "report.md").read_text() == "v1\n" and (out / "stale.png").read_bytes() == PNG_MAGIC
    write_report_dir({"report.md": "v2\n"}, out)
    assert sorted(p.name for p in out.iterdir()) == ["report.md"] and (out / "report.md").read_text() == "v2\n"
    with pytest.raises(ValueError, match="not a plain file name"):
        write_report_dir({"report.md": "v3\n", "../escape.md": "x"}, out)
    assert (out / "report.md").read_text() == "v2\n"  # the failed run left the old report in place
    assert sorted(p.name for p in out.parent.iterdir()) == ["report"]  # and no temp dirs
    other = tmp_path / "docs"
    with pytest.raises(ValueError, match="without report.md"):
        write_report_dir({"report.md": "x"}, other)
    assert (out / "report.md").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        write_report_dir({"report.md": "x"}, tmp_path / "file")


def test_real_evaluate_output_with_robustness(tmp_path: Path, ruler_pipeline: Path) -> None:
    """The report reads what `evaluate` writes (here with the robustness suite) without adaptation."""
    nlp = spacy.load(ruler_pipeline)
    nlp.meta["performance"] = {"ents_p": 0.5, "ents_r": 0.7, "ents_f": 0.61, "speed": 900.0}  # as spacy train writes it
    gold = []
    for words, ents in ((["Acme", "hired", "Bob", "."], [(0, 1, "ORG"), (2, 3, "PER")]),
                        (["Bob", "left", "Acme", "Corp", "."], [(0, 1, "PER"), (2, 4, "ORG")])):
        doc = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
        gold.append(doc)
    result = evaluate_pipeline(nlp, gold, progress=False)
    result["robustness"] = evaluate_robustness(nlp, gold, perturbations=["upper"], clean=result, progress=False)
    srsly.write_json(tmp_path / "ruler_on_toy.json", result)
    found, sources, _ = collect_metrics(dirs=[tmp_path])
    assert found[("ruler", "toy")]["ents_f"] == pytest.approx(0.75)  # 3 of 4 predicted, 3 of 4 gold
    md = build_report(found, sources=sources)["report.md"]
    assert "| ruler | toy | 75.00 |" in md and "## Robustness on `toy`" in md and "| ruler | 75.00 (+0.00) |" in md
    # the training scores travel in the metrics file: the report needs no training directory
    assert found[("ruler", "toy")]["training_performance"] == pytest.approx({"ents_p": 0.5, "ents_r": 0.7, "ents_f": 0.61})
    result = runner.invoke(app, ["report", "--metrics-dir", str(tmp_path), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "| ruler | 61.00 | – |" in (tmp_path / "report" / "report.md").read_text(encoding="utf8")


def calibration_report() -> Dict[str, Any]:
    """What add-confidence --report writes (calibration.calibrate), for two entities."""
    from spacy_domain_ner.evaluation.calibration import expected_calibration_error, precision_above

    stage = expected_calibration_error([0.9, 0.4], [True, False])
    return {"temperature": 2.0, "calibration": {"x": [0.4, 0.9], "y": [0.0, 1.0]}, "before": stage,
            "after_temperature": stage, "after": expected_calibration_error([1.0, 0.0], [True, False]),
            "cross_validated": stage, "default_threshold": 0.8, "thresholds": precision_above([0.9, 0.4], [True, False])}


def test_build_report_calibration_section() -> None:
    files = build_report({("legal", "dev"): metrics(0.7)}, calibration=calibration_report())
    md = files["report.md"]
    assert "## Entity confidence" in md and "![Reliability diagram](reliability.png)" in md
    assert files["reliability.png"].startswith(PNG_MAGIC)
    assert "| ECE | 0.250 | 0.250 | 0.000 | 0.250 |" in md  # ECE raw, tempered, in sample, cross-validated
    assert "| 0.80 | 1 | 50.00 | 100.00 |" in md and "| 0.90 | 1 | 50.00 | 100.00 |" in md
    with pytest.raises(ValueError, match="not a report of add-confidence"):
        build_report({("legal", "dev"): metrics(0.7)}, calibration={"temperature": 1.0})


def test_cli_end_to_end(tmp_path: Path, ruler_pipeline: Path) -> None:
    write_metrics(tmp_path / "metrics", CROSS)
    srsly.write_json(tmp_path / "metrics" / "legal.time.json", {"seconds": 300})
    srsly.write_json(tmp_path / "times.json", {"news": 1800})
    meta_dir = tmp_path / "training" / "legal" / "model-best"
    meta_dir.mkdir(parents=True)
    srsly.write_json(meta_dir / "meta.json", {"performance": {"ents_f": 0.83}})
    (tmp_path / "s.txt").write_text("The Ninth Circuit affirmed.\n", encoding="utf8")
    out = tmp_path / "docs" / "report"
    args = ["report", "--metrics-dir", str(tmp_path / "metrics"), "--times", str(tmp_path / "times.json"),
            "--training-dir", str(tmp_path / "training"), "--displacy-model", str(ruler_pipeline),
            "--sentences", str(tmp_path / "s.txt"), "--variants", "legal,news", "-o", str(out)]
    srsly.write_json(tmp_path / "calibration.json", calibration_report())
    result = runner.invoke(app, args + ["--calibration", str(tmp_path / "calibration.json")])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text(encoding="utf8")
    for name in png_names(md):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    assert len(png_names(md)) == 7 and "reliability.png" in png_names(md)
    assert md.index("| legal | + domain data") < md.index("| news | baseline")  # --variants order
    assert "| legal | 83.00 | 5.0 |" in md and "| news | – | 30.0 |" in md
    html = (out / "predictions.html").read_text(encoding="utf8")
    assert ">COURT</span>" in html and html.count("<figure") == 1
    # --in-domain names the homes explicitly; without the general model's legal cell: a note, no number
    result = runner.invoke(app, ["report", "--metrics", f"gen:conll={tmp_path / 'metrics' / 'news_on_news.json'}",
                                 "--metrics", f"trf:ener4={tmp_path / 'metrics' / 'legal_on_legal.json'}",
                                 "--in-domain", "gen=conll", "--in-domain", "trf=ener4", "--general", "gen",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text(encoding="utf8")
    assert "| gen | conll | 90.00 | – | – |" in md and "No capability misalignment" in md
    assert not (out / "predictions.html").exists()  # the directory was replaced as a whole


def test_cli_errors(tmp_path: Path) -> None:
    write_metrics(tmp_path / "metrics", {("news", "news"): metrics(0.9)})
    (tmp_path / "metrics" / "legal_on_legal.json").write_text('{"ents_p": 0.5}', encoding="utf8")
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--metrics-dir", str(tmp_path / "metrics"), "-o", str(out)])
    assert result.exit_code == 1 and "legal_on_legal.json" in result.output and "ents_f" in result.output
    assert not out.exists() and not list(tmp_path.glob(".report*"))
    for extra, message in ((["--sentences", "x.txt"], "only used with --displacy-model"),
                           (["--in-domain", "news"], "expected NAME=VALUE"),
                           (["--displacy-model", str(tmp_path / "nope")], "cannot load the pipeline")):
        result = runner.invoke(app, ["report", "--metrics", f"news={tmp_path / 'metrics' / 'news_on_news.json'}",
                                     "-o", str(out)] + extra)
        assert result.exit_code == 1 and message in result.output, result.output
    assert not out.exists()


def test_build_report_has_the_boundary_classes_of_each_variant() -> None:
    from spacy_domain_ner.evaluation.boundaries import CLASSES

    with_boundaries = metrics(0.5)
    with_boundaries["boundaries"] = {"classes": list(CLASSES), "totals": {c: i for i, c in enumerate(CLASSES)}}
    files = build_report({("legal", "dev"): with_boundaries, ("fusion", "dev"): metrics(0.6)}, variants=["legal", "fusion"])
    report = files["report.md"]
    assert "## Entity boundaries on `dev`" in report
    assert "| legal | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 |" in report and "| fusion |" not in report.split("## Entity boundaries")[1].split("##")[0]
