"""Silver data: the confident units of a pipeline's annotation of unlabeled text."""
import json

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin, Span
from typer.testing import CliRunner

import spacy_domain_ner.evaluation.confidence  # noqa: F401  (registers Doc._.ent_confidences and Span._.confidence)
from spacy_domain_ner.annotation.silver import confident, make_silver, silver_units
from spacy_domain_ner.cli import app
from conftest import save_ruler_pipeline

PATTERNS = [{"label": "ORG", "pattern": "Acme Corp"}, {"label": "GPE", "pattern": "Delaware"}, {"label": "ORG", "pattern": "Zeta"}]
SCORES = {"Acme Corp": 0.95, "Delaware": 0.5}  # "Zeta" gets no score


@Language.component("test_silver_scores")
def score_entities(doc):
    doc._.ent_confidences = [[e.start, e.end, e.label_, SCORES[e.text]] for e in doc.ents if e.text in SCORES]
    return doc


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_ruler_pipeline(tmp_path_factory.mktemp("silver") / "model", PATTERNS, "test_silver_scores")


RECORDS = [
    {"id": "a", "text": "Acme Corp signed. It rained. Acme Corp sued in Delaware."},  # sentences: sure, empty, unsure
    {"id": "b", "text": "Zeta bought Acme Corp."},  # an unscored entity: unsure
    {"id": "c", "text": "Acme Corp paid."},
    {"text": 5},  # bad record
]


def write_records(path):
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf8")
    return path


def read(path):
    nlp = spacy.blank("en")
    return [(d.user_data["doc_id"], d.text, [(e.text, e.label_) for e in d.ents]) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]


def test_sentences_whose_entities_all_clear_the_threshold(model, tmp_path):
    out = tmp_path / "silver.spacy"
    stats = make_silver(spacy.load(model), write_records(tmp_path / "raw.jsonl"), out, min_confidence=0.9)
    assert read(out) == [("a#0", "Acme Corp signed.", [("Acme Corp", "ORG")]), ("c#0", "Acme Corp paid.", [("Acme Corp", "ORG")])]
    assert stats["records"] == stats["records_used"] + stats["records_bad"] == 4 and stats["records_bad"] == 1
    assert (stats["units_kept"], stats["units_unsure"], stats["units_empty"]) == (2, 2, 1) and stats["units"] == 5
    assert stats["entities_per_label"] == {"ORG": 2}
    assert json.loads(out.with_suffix(".stats.json").read_text(encoding="utf8")) == stats


def test_records_and_thresholds(model, tmp_path):
    raw = write_records(tmp_path / "raw.jsonl")
    stats = make_silver(spacy.load(model), raw, tmp_path / "r.spacy", min_confidence=0.4, unit="record")
    assert [doc_id for doc_id, _, _ in read(tmp_path / "r.spacy")] == ["a", "c"] and stats["units_unsure"] == 1
    stats = make_silver(spacy.load(model), raw, tmp_path / "e.spacy", min_confidence=0.9, min_entities=0, limit=1)
    assert stats["records"] == 1 and [t for _, t, _ in read(tmp_path / "e.spacy")] == ["Acme Corp signed.", "It rained."]
    with pytest.raises(ValueError, match="unit must be"):
        make_silver(spacy.load(model), raw, tmp_path / "x.spacy", unit="paragraph")
    assert not (tmp_path / "x.spacy").exists()


def test_units_of_one_doc():
    nlp = spacy.blank("en")
    doc = nlp("Acme Corp sued.")
    doc.ents = [Span(doc, 0, 2, label="ORG")]
    assert not confident(list(doc.ents), min_confidence=0.5)  # no confidence: never confident
    doc._.ent_confidences = [[0, 2, "ORG", 0.7]]
    assert confident(list(doc.ents), min_confidence=0.5) and confident([], min_confidence=0.5)
    [(outcome, silver)] = list(silver_units(doc, doc_id="r", unit="record", min_confidence=0.5, min_entities=1))
    assert outcome == "kept" and silver.user_data["doc_id"] == "r" and [(e.text, e.label_) for e in silver.ents] == [("Acme Corp", "ORG")]
    assert [o for o, _ in silver_units(doc, doc_id="r", unit="record", min_confidence=0.8, min_entities=1)] == ["unsure"]


def test_cli(model, tmp_path):
    raw = write_records(tmp_path / "raw.jsonl")
    result = CliRunner().invoke(app, ["silver", model, str(raw), "-o", str(tmp_path / "s.spacy")])
    assert result.exit_code == 0, result.output
    assert "2 of 5 sentences kept (2 entities) from 3 records" in result.output
    result = CliRunner().invoke(app, ["silver", model, str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "t.spacy")])
    assert result.exit_code == 1 and "no such file or folder" in result.output
