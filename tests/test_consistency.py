"""entity_consistency: the other mentions of a Doc's entity strings get the string's label."""
import pytest
import spacy
from spacy.tokens import Span

from spacy_domain_ner.knowledge.consistency import consistent_entities


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_consistency")
    return nlp


def doc_with(nlp, text, ents, confidences=None):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(t), text.index(t) + len(t), label=label, kb_id=kb) for t, label, kb in ents]
    doc._.ent_confidences = confidences
    return doc


def test_other_mentions_get_the_label_confidence_and_kb_id(nlp):
    text = "Fidelity Investments sued SCBV. Fidelity said SCBV and Fidelity Investments agreed with the company."
    doc = doc_with(nlp, text, [("Fidelity Investments", "BUSINESS", "fidelity"), ("SCBV", "BUSINESS", "")],
                   confidences=[[0, 2, "BUSINESS", 0.7]])
    doc = nlp.get_pipe("entity_consistency")(doc)
    found = [(e.text, e.start_char, e.label_, e._.confidence, e.kb_id_) for e in doc.ents]
    assert found == [
        ("Fidelity Investments", 0, "BUSINESS", 0.7, "fidelity"), ("SCBV", 26, "BUSINESS", None, ""),
        ("SCBV", 46, "BUSINESS", None, ""),  # the lone "Fidelity" (offset 32) is another string: not labelled
        ("Fidelity Investments", 55, "BUSINESS", 0.7, "fidelity"),
    ]


def test_majority_label_ties_go_to_the_first_mention_and_entities_are_kept(nlp):
    text = "Apple v. Apple: Apple won. Apple lost."
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, 0, 1, label="BUSINESS"), Span(doc, 2, 3, label="PERSON")]
    added = consistent_entities(doc)
    assert [(s.start, s.label_) for s, _ in added] == [(4, "BUSINESS"), (7, "BUSINESS")]
    doc.ents = [Span(doc, 0, 1, label="PERSON"), Span(doc, 2, 3, label="BUSINESS"), Span(doc, 4, 5, label="BUSINESS")]
    assert [(s.start, s.label_) for s, _ in consistent_entities(doc)] == [(7, "BUSINESS")]


def test_filters_lower_case_short_and_other_labels():
    nlp = spacy.blank("en")
    text = "the company and X met Acme. the company, X and Acme left."
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(0, 11, label="BUSINESS"), doc.char_span(16, 17, label="PERSON"), doc.char_span(22, 26, label="BUSINESS")]
    assert [s.text for s, _ in consistent_entities(doc)] == ["Acme"]
    assert sorted(s.text for s, _ in consistent_entities(doc, min_chars=1, require_upper=False)) == ["Acme", "X", "the company"]
    assert consistent_entities(doc, labels=["PERSON"]) == [] and consistent_entities(doc, labels=["PERSON"], min_chars=1)[0][0].text == "X"
    assert consistent_entities(nlp.make_doc("No entities here.")) == []


def test_config_checks_and_round_trip(nlp, tmp_path):
    with pytest.raises(ValueError, match="min_chars must be >= 1"):
        spacy.blank("en").add_pipe("entity_consistency", config={"min_chars": 0})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.pipe_names == ["entity_consistency"] and loaded.get_pipe("entity_consistency").cfg == nlp.get_pipe("entity_consistency").cfg
