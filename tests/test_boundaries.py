"""Boundary classes of entity errors: each gold entity by what the predictions overlapping it did."""
import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_domain_ner.evaluation.boundaries import CLASSES, boundary_errors, boundary_table, classify_entity
from spacy_domain_ner.evaluation.evaluate import evaluate_docs, report_markdown

WORDS = "Acme Delaware Growth Fund 2 sued Zed Trust in Ohio and Beta Corp .".split()


@pytest.mark.parametrize("predicted, expected", [
    ([], "missed"),
    ([(0, 5, "BUS")], "correct"),
    ([(0, 5, "LOC")], "wrong_label"),
    ([(0, 1, "BUS")], "too_short"),
    ([(0, 7, "BUS")], "too_long"),
    ([(3, 7, "BUS")], "crossing"),
    ([(0, 1, "BUS"), (1, 2, "LOC")], "split"),  # the sponsor and the state inside a fund's name
])
def test_classify_entity(predicted, expected):
    assert classify_entity((0, 5, "BUS"), predicted) == expected


def test_boundary_errors_counts_per_label_with_examples():
    doc = Doc(spacy.blank("en").vocab, words=WORDS)
    gold = [(0, 5, "BUS"), (6, 8, "BUS"), (9, 10, "LOC"), (11, 13, "BUS")]
    predicted = [(0, 1, "BUS"), (1, 2, "LOC"), (6, 8, "BUS"), (11, 12, "BUS"), (5, 6, "MISC")]
    result = boundary_errors([(doc, gold, predicted)], n_examples=1)
    assert result["per_label"]["BUS"] == {**{name: 0 for name in CLASSES}, "split": 1, "correct": 1, "too_short": 1}
    assert result["per_label"]["LOC"]["missed"] == 1 and result["per_label"]["MISC"]["spurious"] == 1
    assert result["totals"]["correct"] == 1 and sum(result["totals"].values()) == 5
    assert result["same_label"] == {"too_short": 1, "too_long": 0, "crossing": 0, "split": 1}
    assert result["examples"]["split"] == [{"gold": "Acme Delaware Growth Fund 2 (BUS)",
                                            "predicted": ["Acme (BUS)", "Delaware (LOC)"]}]
    assert result["examples"]["spurious"] == [{"gold": None, "predicted": ["sued (MISC)"]}]
    header, rows = boundary_table(result)
    assert header[0] == "label" and rows[-1][0] == "all" and len(rows) == 4
    with pytest.raises(ValueError):
        boundary_errors([], n_examples=-1)


def test_evaluate_writes_the_boundary_classes():
    nlp = spacy.blank("en")
    gold = Doc(nlp.vocab, words=WORDS)
    gold.ents = [Span(gold, 0, 5, "BUS"), Span(gold, 9, 10, "LOC")]
    pred = Doc(nlp.vocab, words=WORDS)
    pred.ents = [Span(pred, 0, 1, "BUS"), Span(pred, 1, 2, "LOC"), Span(pred, 9, 10, "LOC")]
    result = evaluate_docs([pred], [gold])
    assert result["boundaries"]["per_label"]["BUS"]["split"] == 1 and result["boundaries"]["totals"]["correct"] == 1
    markdown = report_markdown(result)
    assert "## Boundaries" in markdown and "split: Acme Delaware Growth Fund 2 (BUS) → Acme (BUS) + Delaware (LOC)" in markdown
