"""Tests of the learning curves (spacy_domain_ner.evaluation.curves), their report section and the training
logger's JSONL log they read, from tiny synthetic logs."""
import io
import json
import re
from pathlib import Path

import pytest
import srsly
from spacy.util import load_config, load_model_from_config, registry
from typer.testing import CliRunner

import spacy_domain_ner.training.loggers  # noqa: F401  (registers the logger)
from spacy_domain_ner.cli import app
from spacy_domain_ner.evaluation.curves import (
    CURVES_PNG, CurvePoint, curve_summary, find_training_logs, learning_curves_png, line_style, load_curves, load_training_log,
)
from spacy_domain_ner.evaluation.report import build_report

ROOT = Path(__file__).parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def log_lines(points, *, seconds=True):
    """ConsoleLogger.v1 lines for (step, F1 in %) points; 30 s per evaluation."""
    return [{"epoch": 0, "step": step, "losses": {"ner": 1.0}, "scores": {"ents_f": f, "ents_p": f, "ents_r": f},
             "score": f / 100, **({"seconds": 30 * i, "words": 100 * i} if seconds else {})}
            for i, (step, f) in enumerate(points)]


def write_log(path: Path, records) -> Path:
    srsly.write_jsonl(path, records)
    return path


def test_load_training_log_reads_f1_and_time(tmp_path):
    path = write_log(tmp_path / "legal.train_log.jsonl", log_lines([(0, 0.0), (200, 35.5), (100, 10.0)]))
    points = load_training_log(path)
    assert points == [CurvePoint(0, 0.0, 0.0), CurvePoint(100, 0.1, 60.0), CurvePoint(200, 0.355, 30.0)]
    spacy_style = write_log(tmp_path / "spacy.jsonl", [{"epoch": 0, "step": 5, "losses": {}, "scores": {}, "score": 0.25}])
    assert load_training_log(spacy_style) == [CurvePoint(5, 0.25, None)]
    assert curve_summary(points) == {"evaluations": 3, "best_f": 0.355, "best_step": 200, "last_f": 0.355,
                                     "last_step": 200, "minutes": 0.5}


@pytest.mark.parametrize("content,where", [('{"step": 1, "score": 0.1}\n{"score": 0.2}\n', ":2"),
                                            ('{"step": 1}\nnot json\n', ":2"), ("\n", "")])
def test_bad_logs_name_file_and_line(tmp_path, content, where):
    path = tmp_path / "x.train_log.jsonl"
    path.write_text(content, encoding="utf8")
    with pytest.raises(ValueError, match=re.escape(f"{path}{where}:")):
        load_training_log(path)


def test_find_logs_in_metrics_dirs(tmp_path):
    write_log(tmp_path / "legal.train_log.jsonl", log_lines([(0, 1.0)]))
    write_log(tmp_path / "news.train_log.jsonl", log_lines([(0, 1.0)]))
    (tmp_path / "legal.json").write_text("{}", encoding="utf8")
    assert find_training_logs([tmp_path]) == {"legal": tmp_path / "legal.train_log.jsonl",
                                              "news": tmp_path / "news.train_log.jsonl"}


def test_png_has_two_panels_and_a_line_per_variant(monkeypatch):
    curves = {"legal": [CurvePoint(0, 0.0, 0.0), CurvePoint(100, 0.5, 60.0)],
              "legal_cnn": [CurvePoint(0, 0.1, None), CurvePoint(100, 0.3, None)]}
    drawn = {}
    from spacy_domain_ner.evaluation import curves as curves_module

    real_png = curves_module.to_png

    def spy(fig):
        drawn["axes"] = [[line.get_label() for line in ax.get_lines()] for ax in fig.axes]
        return real_png(fig)

    monkeypatch.setattr(curves_module, "to_png", spy)
    png = learning_curves_png(curves)
    assert png.startswith(PNG_MAGIC)
    assert drawn["axes"] == [["legal", "legal_cnn"], ["legal"]]  # no time: left out of the minutes panel


def test_report_section_links_the_png_and_skips_variants_without_a_log():
    metrics = {("legal", "dev"): {"ents_f": 0.5}, ("fusion", "dev"): {"ents_f": 0.6}, ("news", "dev"): {"ents_f": 0.4}}
    curves = {"legal": [CurvePoint(0, 0.0, 0.0), CurvePoint(40, 0.52, 90.0), CurvePoint(80, 0.5, 180.0)],
              "news": [CurvePoint(0, 0.2, None)]}
    files = build_report(metrics, variants=["news", "legal", "fusion"], learning_curves=curves)
    md = files["report.md"]
    assert files[CURVES_PNG].startswith(PNG_MAGIC) and f"![Learning curves]({CURVES_PNG})" in md
    assert "| legal | 3 | 52.00 | 40 | 50.00 | 80 | 3.0 |" in md
    assert "| news | 1 | 20.00 | 0 | 20.00 | 0 | – |" in md
    assert "No learning curve (no training log) for: fusion." in md
    assert "against steps only (the log has no time): news." in md
    files = build_report(metrics, learning_curves={})
    assert CURVES_PNG not in files and "No learning curves" in files["report.md"]


def test_report_cli_reads_logs_from_the_metrics_dir(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name in ("legal", "fusion"):
        (metrics / f"{name}.json").write_text(json.dumps({"ents_f": 0.5}), encoding="utf8")
    write_log(metrics / "legal.train_log.jsonl", log_lines([(0, 0.0), (40, 30.0)]))
    extra = write_log(tmp_path / "cnn.jsonl", log_lines([(0, 5.0), (40, 20.0)], seconds=False))
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--metrics-dir", str(metrics), "-o", str(out), "--train-log",
                                 f"legal_cnn={extra}", "--variants", "legal,legal_cnn,fusion"])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text(encoding="utf8")
    assert (out / CURVES_PNG).read_bytes().startswith(PNG_MAGIC)
    assert "| legal | 2 |" in md and "| legal_cnn | 2 |" in md and "for: fusion." in md
    bad = write_log(tmp_path / "bad.jsonl", [{"no": "step"}])
    result = runner.invoke(app, ["report", "--metrics-dir", str(metrics), "-o", str(out), "--train-log", f"x={bad}"])
    assert result.exit_code == 1 and f"{bad}:1" in result.output


def test_logger_writes_time_and_replaces_an_old_log(tmp_path):
    nlp = load_model_from_config(load_config(ROOT / "configs" / "ner_cnn.cfg"), auto_fill=True)
    log_file = tmp_path / "sub" / "legal.train_log.jsonl"
    log_file.parent.mkdir()
    log_file.write_text('{"step": 999}\n', encoding="utf8")  # a previous run's: spaCy's logger would keep it
    create = registry.loggers.get("spacy_domain_ner.ConsoleLogger.v1")
    out = io.StringIO()
    log_step, finalize = create(progress_bar=False, output_file=log_file)(nlp, out, io.StringIO())
    info = {"epoch": 0, "step": 200, "score": 0.4, "other_scores": {"ents_f": 0.4, "ents_p": 0.5, "ents_r": 0.3},
            "losses": {"tok2vec": 1.0, "ner": 2.5}, "checkpoints": [], "seconds": 75, "words": 4000}
    log_step(None)
    log_step(info)
    finalize()
    assert "Saving results to" in out.getvalue()
    assert list(srsly.read_jsonl(log_file)) == [{
        "epoch": 0, "step": 200, "losses": {"tok2vec": 1.0, "ner": 2.5},
        "scores": {"ents_f": 40.0, "ents_p": 50.0, "ents_r": 30.0}, "score": 0.4, "seconds": 75, "words": 4000}]
    assert load_curves({"legal": log_file}) == {"legal": [CurvePoint(200, 0.4, 75.0)]}


def test_line_styles_stay_apart_past_ten_variants():
    styles = [tuple(sorted(line_style(i).items())) for i in range(30)]
    assert len(set(styles)) == 30
    assert line_style(0) == {"color": "C0", "linestyle": "-"} and line_style(10) == {"color": "C0", "linestyle": "--"}
