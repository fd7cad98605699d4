"""entity_consistency: the other mentions of a Doc's entity strings get the string's label."""
import pytest
import spacy
from spacy.tokens import Span

from spacy_domain_ner.knowledge.consistency import SETTINGS, EntityConsistency, consistent_entities


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


def found(doc):
    return [(e.text, e.start_char, e.label_, e.kb_id_, e._.confidence) for e in doc.ents]


def test_defined_short_forms_and_tickers_label_their_mentions(nlp):
    text = ('Acme Holdings, Inc. ("Acme" or the "Company") (NASDAQ: ACME) hired Silicon Valley Bank (“SVB”). '
            "Acme paid SVB; the Company and ACME gained. SVB Financial Group sued Acme's SVB.")
    doc = doc_with(nlp, text, [("Acme Holdings, Inc.", "BUSINESS", "acme"), ("Silicon Valley Bank", "BUSINESS", "")],
                   confidences=[[0, 4, "BUSINESS", 0.6]])
    assert found(nlp(doc)) == [
        ("Acme Holdings, Inc.", 0, "BUSINESS", "acme", 0.6), ("Acme", 22, "BUSINESS", "acme", 0.6),  # the definition's own
        ("ACME", 55, "BUSINESS", "acme", 0.6), ("Silicon Valley Bank", 67, "BUSINESS", "", None), ("SVB", 89, "BUSINESS", "", None),
        ("Acme", 96, "BUSINESS", "acme", 0.6), ("SVB", 106, "BUSINESS", "", None),  # "the Company": a role word
        ("ACME", 127, "BUSINESS", "acme", 0.6),  # "SVB Financial Group" (140) is another name
        ("Acme", 165, "BUSINESS", "acme", 0.6), ("SVB", 172, "BUSINESS", "", None),
    ]
    settings = {"label_short_forms": False, "label_tickers": False}
    doc = doc_with(nlp, text, [("Acme Holdings, Inc.", "BUSINESS", "acme")])
    assert [s.text for s, _ in consistent_entities(doc, **settings)] == []
    assert [s.text for s, _ in consistent_entities(doc, label_tickers=False)] == ["Acme", "Acme", "Acme"]
    assert [s.text for s, _ in consistent_entities(doc, label_short_forms=False)] == ["ACME", "ACME"]
    assert consistent_entities(doc, labels=["PERSON"]) == []


def test_generic_short_forms_only_when_asked_and_from_the_nearest_definition(nlp):
    text = ('Alpha Income Fund (the "Fund") and the Fund. Beta Growth Fund (the "Fund") says the Fund '
            'and Alpha Income Fund. Gamma Corp. ("we") and its buyer ("Delta") met; we and Delta left.')
    doc = doc_with(nlp, text, [("Alpha Income Fund", "BUSINESS", "alpha"), ("Beta Growth Fund", "BUSINESS", "beta"),
                               ("Gamma Corp.", "BUSINESS", "")])
    assert [(s.text, s.start_char) for s, _ in consistent_entities(doc)] == [("Alpha Income Fund", 93)]
    added = consistent_entities(doc, label_generic_short_forms=True)
    assert [(s.text, s.start_char, s.kb_id_) for s, _ in added] == [
        ("Fund", 24, "alpha"), ("Fund", 39, "alpha"), ("Fund", 68, "beta"), ("Fund", 84, "beta"), ("Alpha Income Fund", 93, "alpha")]


def test_short_forms_never_overwrite_or_overlap_entities(nlp):
    text = 'Silicon Valley Bank ("SVB") lent. SVB Bridge and SVB paid SVB.'
    doc = nlp.make_doc(text)
    # an entity string's own mentions come first: the NER's "SVB" keeps its label (when it spreads:
    # min_share 0, as it is one of four mentions)
    doc.ents = [doc.char_span(0, 19, label="BUSINESS"), doc.char_span(34, 44, label="MISCELLANEOUS"),
                doc.char_span(58, 61, label="GOVERNMENT")]
    assert [(s.text, s.start_char, s.label_) for s, _ in consistent_entities(doc, min_share=0)] == [
        ("SVB", 22, "GOVERNMENT"), ("SVB", 49, "GOVERNMENT")]
    doc.ents = [doc.char_span(0, 19, label="BUSINESS"), doc.char_span(34, 44, label="MISCELLANEOUS")]
    assert [(s.text, s.start_char, s.label_) for s, _ in consistent_entities(doc)] == [
        ("SVB", 22, "BUSINESS"), ("SVB", 49, "BUSINESS"), ("SVB", 58, "BUSINESS")]


def test_a_definition_may_follow_a_mention_that_the_string_labelled(nlp):
    text = 'Beta LLC sued. Beta LLC ("Beta") won; Beta appealed.'
    doc = doc_with(nlp, text, [("Beta LLC", "BUSINESS", "b")])
    assert [(s.text, s.start_char) for s, _ in consistent_entities(doc)] == [("Beta LLC", 15), ("Beta", 26), ("Beta", 38)]


def test_names_match_in_another_case(nlp):
    text = "ACME HOLDINGS, INC. v. Acme Holdings, Inc.: acme holdings, inc. and Acme holdings, Inc. vs APPLE and Apple."
    doc = doc_with(nlp, text, [("Acme Holdings, Inc.", "BUSINESS", "acme"), ("Apple", "BUSINESS", "")],
                   confidences=[[6, 10, "BUSINESS", 0.7]])
    # the heading tokenizes "INC." as "INC" "."; lower case and one-word names stay exact
    assert [(s.text, s.start_char, s.kb_id_, c) for s, c in consistent_entities(doc)] == [("ACME HOLDINGS, INC.", 0, "acme", 0.7)]
    assert consistent_entities(doc, case_insensitive_names=False) == []
    # "Bank of America" capitalises two words, "OF" may be either (labelled once of three: min_share 0)
    doc = doc_with(nlp, "BANK OF AMERICA lent. Bank Of America and Bank of America.", [("Bank of America", "BUSINESS", "")])
    assert [s.start_char for s, _ in consistent_entities(doc, min_share=0)] == [0, 22]
    assert consistent_entities(doc) == []


def test_config_checks_and_round_trip(nlp, tmp_path):
    for config, message in [({"min_chars": 0}, "min_chars must be an integer >= 1"),
                            ({"label_tickers": "yes"}, "label_tickers"),
                            ({"labels": "BUSINESS"}, "labels"),
                            ({"label_short_forms": False, "label_generic_short_forms": True}, "needs label_short_forms"),
                            ({"min_share": 1.5}, "min_share must be a number in")]:
        with pytest.raises(ValueError, match=message):
            spacy.blank("en").add_pipe("entity_consistency", config=config)
    for setting, value, message in [("label_tickers", 1, "label_tickers must be true or false"),
                                    ("labels", "BUSINESS", "labels must be a list"), ("min_chars", True, "min_chars")]:
        with pytest.raises(ValueError, match=message):
            EntityConsistency("c", **{**SETTINGS, setting: value})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.pipe_names == ["entity_consistency"] and loaded.get_pipe("entity_consistency").cfg == nlp.get_pipe("entity_consistency").cfg
    settings = {"min_chars": 3, "require_upper": False, "labels": ["BUSINESS"], "case_insensitive_names": False,
                "label_short_forms": True, "label_tickers": False, "label_generic_short_forms": True, "min_share": 0.25}
    other = spacy.blank("en")
    other.add_pipe("entity_consistency", config=settings)
    other.to_disk(tmp_path / "q")
    assert spacy.load(tmp_path / "q").get_pipe("entity_consistency").cfg == settings
    # a pipeline saved before the short-form settings existed loads with their defaults
    config = (tmp_path / "q" / "config.cfg").read_text(encoding="utf8")
    kept = [line for line in config.splitlines() if not line.startswith(("case_insensitive_names", "label_", "min_share"))]
    (tmp_path / "q" / "config.cfg").write_text("\n".join(kept) + "\n", encoding="utf8")
    assert spacy.load(tmp_path / "q").get_pipe("entity_consistency").cfg == {
        **settings, "case_insensitive_names": True, "label_tickers": True, "label_generic_short_forms": False, "min_share": 0.5}


def test_a_string_labelled_once_among_many_mentions_does_not_spread(nlp):
    text = "The Lenders agree. Lenders may assign. Lenders shall notify. Acme Corp pays. Acme Corp signs. Acme Corp wins."
    doc = nlp.make_doc(text)
    lenders, acme = text.index("Lenders"), text.index("Acme Corp")
    doc.ents = [doc.char_span(lenders, lenders + 7, label="PER"), doc.char_span(acme, acme + 9, label="ORG"),
                doc.char_span(text.index("Acme Corp signs"), text.index("Acme Corp signs") + 9, label="ORG")]
    spread = lambda **settings: [(s.text, s.label_) for s, _ in consistent_entities(doc, **settings)]
    assert spread(min_share=0) == [("Lenders", "PER"), ("Lenders", "PER"), ("Acme Corp", "ORG")]
    # "Lenders": 1 of 3 mentions labelled; "Acme Corp": 2 of 3
    assert spread() == spread(min_share=0.5) == [("Acme Corp", "ORG")]
    assert spread(min_share=0.3) == spread(min_share=0)
