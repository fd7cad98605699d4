"""Tests of spacy_domain_ner.evaluation.bootstrap, the per-document counts of `evaluate` and the `compare` CLI."""
import json

import numpy
import pytest
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_domain_ner.cli import app
from spacy_domain_ner.cli.compare import compare_files, read_units
from spacy_domain_ner.evaluation.bootstrap import f1_difference_interval, f1_interval, micro_f1, unit_counts
from spacy_domain_ner.evaluation.evaluate import evaluate_docs, report_markdown

VOCAB = Vocab()


def doc(words, ents, doc_id=None):
    d = Doc(VOCAB, words=words)
    d.ents = [Span(d, s, e, label=label) for s, e, label in ents]
    if doc_id is not None:
        d.user_data["doc_id"] = doc_id
    return d


def corpus(doc_ids=("f1", "f1", "f2", "f3")):
    """Four Docs of three source documents; the prediction gets 1 of 2, 1 of 1, 0 of 1, 2 of 2 right."""
    w = "Acme sued Beta in Ohio .".split()
    gold = [doc(w, [(0, 1, "ORG"), (2, 3, "ORG")], doc_ids[0]), doc(w, [(4, 5, "LOC")], doc_ids[1]),
            doc(w, [(0, 1, "ORG")], doc_ids[2]), doc(w, [(0, 1, "ORG"), (4, 5, "LOC")], doc_ids[3])]
    pred = [doc(w, [(0, 1, "ORG"), (2, 4, "ORG")]), doc(w, [(4, 5, "LOC"), (0, 1, "PER")]),
            doc(w, [(0, 1, "LOC")]), doc(w, [(0, 1, "ORG"), (4, 5, "LOC")])]
    return pred, gold


def test_unit_counts_sum_per_unit_and_check_counts():
    units = unit_counts([("a", 1, 2, 2), ("b", 0, 1, 1), ("a", 1, 1, 3)])
    assert units == {"a": {"tp": 2, "n_pred": 3, "n_gold": 5}, "b": {"tp": 0, "n_pred": 1, "n_gold": 1}}
    assert list(units) == ["a", "b"]
    for bad in (("x", 2, 1, 3), ("x", -1, 0, 0), ("x", 1, 3, 0)):
        with pytest.raises(ValueError, match="impossible counts"):
            unit_counts([bad])


def test_micro_f1_over_an_axis_and_zero_division():
    tp, p, g = numpy.array([[1, 2], [0, 0]]), numpy.array([[2, 2], [0, 0]]), numpy.array([[2, 3], [0, 0]])
    assert micro_f1(tp, p, g, axis=-1) == pytest.approx([6 / 9, 0.0])
    assert micro_f1(numpy.array([1, 0]), numpy.array([1, 0]), numpy.array([1, 1])) == pytest.approx(2 / 3)


def test_evaluate_keeps_spacys_counts_per_source_document():
    pred, gold = corpus()
    result = evaluate_docs(pred, gold)
    assert result["units"] == {"f1": {"tp": 2, "n_pred": 4, "n_gold": 3}, "f2": {"tp": 0, "n_pred": 1, "n_gold": 1},
                               "f3": {"tp": 2, "n_pred": 2, "n_gold": 2}}
    tp, n_pred, n_gold = (sum(u[k] for u in result["units"].values()) for k in ("tp", "n_pred", "n_gold"))
    spacy_scores = get_ner_prf([Example(p, g) for p, g in zip(pred, gold)])
    assert micro_f1(tp, n_pred, n_gold) == pytest.approx(spacy_scores["ents_f"]) == pytest.approx(result["ents_f"])
    assert "ents_f_interval" not in result
    # without doc_id every Doc is its own unit
    pred, gold = corpus(doc_ids=(None,) * 4)
    assert list(evaluate_docs(pred, gold)["units"]) == ["doc 0", "doc 1", "doc 2", "doc 3"]


def test_f1_interval_brackets_the_f1_and_is_seeded():
    pred, gold = corpus()
    result = evaluate_docs(pred, gold, n_resamples=500, seed=3)
    interval = result["ents_f_interval"]
    assert interval["f"] == pytest.approx(result["ents_f"])
    assert interval["low"] <= interval["f"] <= interval["high"] and interval["low"] < interval["high"]
    assert interval["n_units"] == 3 and interval["n_resamples"] == 500 and interval["method"] == "percentile"
    assert f1_interval(result["units"], n_resamples=500, seed=3) == interval
    # a resample of the 3 documents can hold f2 alone (F 0) or f3 alone (F 1): the extremes of the statistic
    wide = f1_interval(result["units"], n_resamples=2000, confidence=0.999, seed=0)
    assert wide["low"] == pytest.approx(0.0) and wide["high"] == pytest.approx(1.0)
    assert "bootstrap interval" in report_markdown(result)
    # one document: no interval
    one = f1_interval({"a": {"tp": 1, "n_pred": 2, "n_gold": 2}})
    assert one["f"] == pytest.approx(0.5) and one["low"] is None and one["high"] is None
    for kwargs, message in (({"n_resamples": 0}, "n_resamples"), ({"confidence": 1.0}, "confidence")):
        with pytest.raises(ValueError, match=message):
            f1_interval(result["units"], **kwargs)


def test_paired_difference_is_narrower_than_the_single_intervals():
    # B fixes one entity in each of 10 documents that A gets half right: same hard documents, steady gain
    a = {f"d{i}": {"tp": 1 + i % 3, "n_pred": 4, "n_gold": 4 + i % 2} for i in range(10)}
    b = {k: {**v, "tp": v["tp"] + 1} for k, v in a.items()}
    diff = f1_difference_interval(a, b, n_resamples=1000, seed=0)
    single_a, single_b = f1_interval(a, seed=0), f1_interval(b, seed=0)
    assert diff["difference"] == pytest.approx(diff["other_f"] - diff["baseline_f"]) and diff["difference"] > 0
    assert 0 < diff["low"] <= diff["difference"] <= diff["high"]
    assert single_b["low"] < single_a["high"]  # the single intervals overlap...
    assert diff["high"] - diff["low"] < (single_a["high"] - single_a["low"]) / 2  # ...the paired one is narrow
    # identical scorings: a zero-width interval at 0
    same = f1_difference_interval(a, a, n_resamples=200)
    assert same["difference"] == 0.0 and same["low"] == pytest.approx(0.0) and same["high"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="different documents"):
        f1_difference_interval(a, {**b, "extra": {"tp": 0, "n_pred": 0, "n_gold": 1}})
    with pytest.raises(ValueError, match="not the same gold set"):
        f1_difference_interval(a, {**b, "d0": {"tp": 0, "n_pred": 0, "n_gold": 9}})


def test_compare_cli(tmp_path):
    pred, gold = corpus()
    base = evaluate_docs(pred, gold)
    better = evaluate_docs(gold, gold)  # the gold itself: F 1.0
    paths = [tmp_path / "base.json", tmp_path / "better.json"]
    for path, result in zip(paths, (base, better)):
        path.write_text(json.dumps(result))
    out = tmp_path / "cmp.json"
    res = CliRunner().invoke(app, ["compare", *map(str, paths), "-o", str(out), "--bootstrap", "300"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data == compare_files(paths, n_resamples=300)
    row = data["rows"][0]
    assert row["other_f"] == 1.0 and row["difference"] == pytest.approx(1.0 - base["ents_f"])
    # a resample of f3 alone (1 in 27) scores 1.0 for both: the lower end is 0, never below
    assert row["low"] == pytest.approx(0.0) and row["high"] > row["difference"]
    assert "difference +" in res.output and "95% interval" in res.output
    # bad input: a clear error, exit status 1, nothing written
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"ents_f": 0.5}))
    other_gold = {**base, "units": {"f1": {"tp": 0, "n_pred": 0, "n_gold": 1}}}
    (tmp_path / "other.json").write_text(json.dumps(other_gold))
    (tmp_path / "broken.json").write_text("{")
    for args, message in (([paths[0]], "at least one other"), ([paths[0], tmp_path / "missing.json"], "no such file"),
                          ([paths[0], old], "no per-document counts"), ([paths[0], tmp_path / "broken.json"], "not valid JSON"),
                          ([paths[0], tmp_path / "other.json"], "different documents")):
        res = CliRunner().invoke(app, ["compare", *map(str, args), "-o", str(tmp_path / "never.json")])
        assert res.exit_code == 1 and message in res.output, res.output
        assert not (tmp_path / "never.json").exists()
    assert read_units(paths[0]) == base["units"]
