"""Short forms defined after an entity: quoted defined terms and tickers."""
import pytest
import spacy

from spacy_domain_ner.knowledge.short_forms import (
    derives_from, find_short_forms, is_abbreviation, is_generic, is_name_like, short_forms_after,
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def forms_of(nlp, text, entity, label="BUSINESS", kb_id="", confidence=None, **settings):
    doc = nlp.make_doc(text)
    start = text.index(entity)
    doc.ents = [doc.char_span(start, start + len(entity), label=label, kb_id=kb_id)]
    found = short_forms_after(doc, doc.ents[0], confidence, **settings)
    return [(doc[f.start:f.end].text, doc[f.start:f.end].start_char, f.label, f.kb_id, f.confidence, f.kind, f.spread) for f in found]


@pytest.mark.parametrize("text,entity,terms", [
    ('Fidelity Advisor New York Municipal Income Fund (the "Fidelity NY Fund") is',
     "Fidelity Advisor New York Municipal Income Fund", ["Fidelity NY Fund"]),
    ('Silicon Valley Bank (“SVB”) failed', "Silicon Valley Bank", ["SVB"]),
    ('Silicon Valley Bank, ("SVB") failed', "Silicon Valley Bank", ["SVB"]),
    ('Acme Holdings, Inc. ("Acme" or the "Company")', "Acme Holdings, Inc.", ["Acme"]),
    ('Acme Holdings, Inc. ("Acme" or the "Company")', "Acme Holdings", ["Acme"]),  # the suffix the entity left out
    ('Acme Corp, a Delaware limited liability company ("Acme"), and', "Acme Corp", ["Acme"]),
    ('Silicon Valley Bank, a California state-chartered bank (“SVB”)', "Silicon Valley Bank", ["SVB"]),
    ('Acme Inc. (together with its subsidiaries, "Acme," "we" or "us")', "Acme Inc.", ["Acme"]),
    ('Beta LLC (hereinafter referred to as "Beta Co")', "Beta LLC", ["Beta Co"]),
    ('Acme Inc. (NASDAQ: ACME) (the "Company" or "AcmeCo") said', "Acme Inc.", ["ACME", "AcmeCo"]),
    ('3M Company ("3M") and', "3M Company", ["3M"]),
])
def test_defined_terms_and_tickers_are_read(nlp, text, entity, terms):
    assert [f[0] for f in forms_of(nlp, text, entity)] == terms


def test_a_form_takes_the_entity_label_kb_id_and_confidence_and_where_it_is_defined(nlp):
    text = 'Acme Holdings, Inc. ("Acme" or the "Company")'
    assert forms_of(nlp, text, "Acme Holdings, Inc.", kb_id="acme", confidence=0.8) == [
        ("Acme", 22, "BUSINESS", "acme", 0.8, "name", True)]
    assert forms_of(nlp, text, "Acme Holdings, Inc.", generic=True)[1] == ("Company", 36, "BUSINESS", "", None, "generic", True)
    # a term for several entities names them by a role: generic, with the label and not the kb id
    group = 'Jane Doe and John Roe (collectively, the "Founders")'
    assert forms_of(nlp, group, "John Roe", label="PERSON", kb_id="roe") == []
    assert forms_of(nlp, group, "John Roe", label="PERSON", kb_id="roe", generic=True) == [
        ("Founders", 42, "PERSON", "", None, "generic", True)]


@pytest.mark.parametrize("text,entity", [
    ('Acme Inc. sued the buyer ("Beta")', "Acme Inc."),  # not right after the entity
    ('Acme Inc. ("acme")', "Acme Inc."),  # not written like a name
    ('Acme Inc. ("We")', "Acme Inc."),  # a pronoun
    ('Acme Inc. (see "Risk Factors" below)', "Acme Inc."),  # parentheses that define nothing
    ('Acme Inc. (the "Company")', "Acme Inc."),  # a role word, generic off
    ("Acme Inc. ('Acme')", "Acme Inc."),  # single quotes are not read
    ('Acme Inc. (NASDAQ: Acme)', "Acme Inc."),  # a ticker is all capitals
    ('Acme Inc. (NASDAQ: ACMEXY)', "Acme Inc."),  # of at most five letters
    ('Acme Inc. (NASDAQ: A)', "Acme Inc."),  # and min_chars of them
    ('Acme Inc. (Boston: ACME)', "Acme Inc."),  # after an exchange
    # a term not drawn from the entity defines something else the sentence speaks of
    ('a certificate signed by Borrower (the "Perfection Certificate"). The', "Borrower"),
    ('any Lender (each, an "Indemnified Person") harmless', "Lender"),
    ('Silicon Valley Bank ("BofA")', "Silicon Valley Bank"),
])
def test_no_short_form(nlp, text, entity):
    assert forms_of(nlp, text, entity) == []


def test_settings_select_the_forms(nlp):
    text = 'Acme Inc. (NYSE: AC; OTCQB: A) ("Acme" or the "Company") said'
    assert [f[0] for f in forms_of(nlp, text, "Acme Inc.")] == ["AC", "Acme"]
    assert [f[0] for f in forms_of(nlp, text, "Acme Inc.", min_chars=1, generic=True)] == ["AC", "A", "Acme", "Company"]
    assert [f[0] for f in forms_of(nlp, text, "Acme Inc.", tickers=False)] == ["Acme"]
    assert [f[0] for f in forms_of(nlp, text, "Acme Inc.", names=False)] == ["AC"]
    assert [f[0] for f in forms_of(nlp, 'Acme Inc. (ticker: ACME)', "Acme Inc.")] == ["ACME"]


def test_a_ticker_the_doc_writes_in_lower_case_does_not_spread(nlp):
    text = "Allstate Corp. (NYSE: ALL) said all is well."
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(0, 14, label="BUSINESS")]
    forms = find_short_forms(doc, [(doc.ents[0], 0.9)])
    assert [(key, [(f.start, f.spread, f.confidence) for f in found]) for key, found in forms.items()] == [
        (("ALL",), [(5, False, 0.9)])]
    assert find_short_forms(doc, [(doc.ents[0], 0.9)], names=False, tickers=False) == {}


def test_generic_and_name_like_terms():
    assert all(map(is_generic, ["Company", "the Fund", "Lenders", "Credit Agreement", "Administrative Agent", "COMPANY",
                                "Parties", "Sub-Adviser"]))
    assert not any(map(is_generic, ["SVB", "Acme Fund", "Exchange Act", "Securities Act", "Founders", ""]))
    assert all(map(is_name_like, ["SVB", "Acme", "3M", "Fund"]))
    assert not any(map(is_name_like, ["acme", "We", "Our", "3m", "", "A B C D E F G H I"]))


@pytest.mark.parametrize("term,name,derived", [
    ("SVB", "Silicon Valley Bank", True),
    ("JPMCB", "JPMorgan Chase Bank, N.A.", True),
    ("Acme", "Acme Holdings, Inc.", True),
    ("Acme Group", "Acme Holdings, Inc.", True),
    ("AcmeCo", "Acme Inc.", True),
    ("Fidelity NY Fund", "Fidelity Advisor New York Municipal Income Fund", True),
    ("Perfection Certificate", "Borrower", False),
    ("Indemnified Person", "Lender", False),
    ("BofA", "Silicon Valley Bank", False),
    ("Svb", "Silicon Valley Bank", False),  # an abbreviation is written in capitals
])
def test_a_term_derives_from_the_name_it_follows(term, name, derived):
    assert derives_from(term, name) is derived


def test_abbreviations():
    assert is_abbreviation("SVB", "Silicon Valley Bank") and is_abbreviation("S&P", "Standard & Poor's")
    assert not is_abbreviation("VSB", "Silicon Valley Bank")  # the letters in order
    assert not is_abbreviation("AB", "CAB Holdings")  # the first at the start of a word
