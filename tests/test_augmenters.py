"""Tests of spacy_domain_ner.training.augmenters: upper-, lower- and title-cased copies with the same entities."""
import random

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_domain_ner.training.augmenters import case_augmenter_v1, recased_copy, recased_example

TEXT = "Acme Holdings, Inc. sued the SEC in New York."
SPANS = [(0, 19, "BUSINESS"), (29, 32, "GOVERNMENT"), (36, 44, "LOCATION")]


def example(nlp):
    return Example.from_dict(nlp.make_doc(TEXT), {"entities": SPANS})


@pytest.mark.parametrize("upper", [True, False])
def test_recased_example_keeps_entities(upper):
    nlp = spacy.blank("en")
    new = recased_example(nlp, example(nlp), upper=upper)
    case = str.upper if upper else str.lower
    assert new.reference.text == case(TEXT) and new.predicted.text == case(TEXT)
    assert [(e.text, e.label_) for e in new.reference.ents] == [(case(TEXT[s:e]), label) for s, e, label in SPANS]


def test_augmenter_shares_and_registration():
    nlp = spacy.blank("en")
    assert registry.augmenters.get("spacy_domain_ner.case_augmenter.v1") is case_augmenter_v1
    random.seed(0)
    augment = case_augmenter_v1(upper=0.3, lower=0.2)
    texts = [next(iter(augment(nlp, example(nlp)))).reference.text for _ in range(2000)]
    upper, lower = texts.count(TEXT.upper()) / 2000, texts.count(TEXT.lower()) / 2000
    assert abs(upper - 0.3) < 0.04 and abs(lower - 0.2) < 0.04
    assert texts.count(TEXT) + texts.count(TEXT.upper()) + texts.count(TEXT.lower()) == 2000
    off = case_augmenter_v1(upper=0.0, lower=0.0)
    assert next(iter(off(nlp, example(nlp)))).reference.text == TEXT
    # the extra kinds of copies are off by default
    assert case_augmenter_v1().keywords == {"upper": 0.05, "lower": 0.05, "title": 0.0}


@pytest.mark.parametrize("upper,lower", [(-0.1, 0.0), (0.0, -1.0), (0.6, 0.5)])
def test_augmenter_checks_shares(upper, lower):
    with pytest.raises(ValueError):
        case_augmenter_v1(upper=upper, lower=lower)


def test_title_copy_keeps_entities_and_spacing():
    nlp = spacy.blank("en")
    new = recased_copy(nlp, example(nlp), kind="title")
    assert new.reference.text == "Acme Holdings, Inc. Sued The Sec In New York." == new.predicted.text
    assert [(e.text, e.label_) for e in new.reference.ents] == [
        ("Acme Holdings, Inc.", "BUSINESS"), ("Sec", "GOVERNMENT"), ("New York", "LOCATION")]


def test_copy_keeps_a_token_whose_case_changes_its_length():
    # "ß".upper() is "SS": re-casing it would misalign the copy with its tokens
    nlp = spacy.blank("en")
    source = Example.from_dict(nlp.make_doc("Straße GmbH sued"), {"entities": [(0, 11, "BUSINESS")]})
    new = recased_copy(nlp, source, kind="upper")
    assert new.reference.text == "Straße GMBH SUED"
    assert [(e.text, e.label_) for e in new.reference.ents] == [("Straße GMBH", "BUSINESS")]


def test_augmenter_title_shares():
    nlp = spacy.blank("en")
    random.seed(0)
    augment = case_augmenter_v1(upper=0.2, lower=0.1, title=0.3)
    texts = [next(iter(augment(nlp, example(nlp)))).reference.text for _ in range(2000)]
    title = "Acme Holdings, Inc. Sued The Sec In New York."
    shares = [texts.count(t) / 2000 for t in (TEXT.upper(), TEXT.lower(), title, TEXT)]
    assert all(abs(got - want) < 0.04 for got, want in zip(shares, [0.2, 0.1, 0.3, 0.4]))
    assert abs(sum(shares) - 1) < 1e-9
    off = case_augmenter_v1(upper=0.0, lower=0.0, title=0.0)
    assert next(iter(off(nlp, example(nlp)))).reference.text == TEXT


@pytest.mark.parametrize("shares", [(-0.1, 0.0, 0.0), (0.0, 0.0, -0.5), (0.4, 0.4, 0.3)])
def test_augmenter_checks_title_shares(shares):
    with pytest.raises(ValueError):
        case_augmenter_v1(upper=shares[0], lower=shares[1], title=shares[2])


def test_augmenter_takes_shares_that_add_up_to_one_in_floats():
    assert sum([0.34, 0.56, 0.1]) > 1  # the float sum the check must tolerate
    augment = case_augmenter_v1(upper=0.34, lower=0.56, title=0.1)
    nlp = spacy.blank("en")
    assert next(iter(augment(nlp, example(nlp)))).reference.text != TEXT


# --- truecased copies, as the case restorer writes a text without case signal -------------

FORMS = {"words": {"acme": "Acme", "holdings": "holdings", "inc.": "Inc.", "sued": "sued", "the": "the",
                   "sec": "SEC", "in": "in", "new": "new", "york": "York"},
         "after": {}, "before": {"new york": ["New", 3]}, "entities": {"holdings": "Holdings"}}
TRUECASED = "Acme holdings, Inc. sued the SEC in New York."


def test_truecased_copy_writes_the_restorers_copy_with_the_same_entities():
    from spacy_domain_ner.models.tokenizer import add_legal_rules
    from spacy_domain_ner.training.augmenters import truecased_copy

    nlp = spacy.blank("en")
    new = truecased_copy(nlp, example(nlp), forms=FORMS)
    # "holdings" is mostly a common word: the copy writes the name as the restorer would
    assert new.reference.text == TRUECASED == new.predicted.text
    assert [(e.text, e.label_) for e in new.reference.ents] == [
        ("Acme holdings, Inc.", "BUSINESS"), ("SEC", "GOVERNMENT"), ("New York", "LOCATION")]
    # the input's own case is ignored (the legal tokenizer keeps "INC." one token, as "Inc."); a token
    # whose lower case has another length keeps its form
    legal = add_legal_rules(spacy.blank("en"))
    upper = Example.from_dict(legal.make_doc(TEXT.upper()), {"entities": SPANS})
    assert truecased_copy(legal, upper, forms=FORMS).reference.text == TRUECASED
    odd = Example.from_dict(nlp.make_doc("İstanbul Acme sued"), {"entities": [(0, 13, "BUSINESS")]})
    assert truecased_copy(nlp, odd, forms=FORMS).reference.text == "İstanbul Acme sued"


def test_case_augmenter_needs_forms_for_a_truecased_share():
    from spacy_domain_ner.training.augmenters import case_augmenter

    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="case forms"):
        list(case_augmenter(nlp, example(nlp), upper=0.0, lower=0.0, truecased=1.0))
    # without a truecased share the forms are not needed
    assert [e.reference.text for e in case_augmenter(nlp, example(nlp), upper=0.0, lower=1.0)] == [TEXT.lower()]


def test_augmenter_truecased_shares_and_forms_file(tmp_path):
    import srsly

    srsly.write_json(tmp_path / "forms.json", FORMS)
    nlp = spacy.blank("en")
    random.seed(0)
    augment = case_augmenter_v1(forms=str(tmp_path / "forms.json"), upper=0.1, lower=0.2, title=0.1, truecased=0.3)
    texts = [next(iter(augment(nlp, example(nlp)))).reference.text for _ in range(2000)]
    title = "Acme Holdings, Inc. Sued The Sec In New York."
    shares = [texts.count(t) / 2000 for t in (TEXT.upper(), TEXT.lower(), title, TRUECASED, TEXT)]
    assert all(abs(got - want) < 0.04 for got, want in zip(shares, [0.1, 0.2, 0.1, 0.3, 0.3]))
    assert abs(sum(shares) - 1) < 1e-9
    # with the extra shares at 0 the draws are those of upper and lower alone, forms or not
    random.seed(1)
    with_forms = [next(iter(case_augmenter_v1(forms=tmp_path / "forms.json", upper=0.1, lower=0.1)(nlp, example(nlp))))
                  .reference.text for _ in range(50)]
    random.seed(1)
    assert with_forms == [next(iter(case_augmenter_v1(upper=0.1, lower=0.1)(nlp, example(nlp)))).reference.text
                          for _ in range(50)]
    with pytest.raises(ValueError, match="no such case forms file"):
        case_augmenter_v1(forms=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="needs forms"):
        case_augmenter_v1(truecased=0.1)
    srsly.write_json(tmp_path / "bad.json", {"words": {"acme": "Apex"}, "after": {}, "before": {}})
    with pytest.raises(ValueError, match="lower-case to its word"):
        case_augmenter_v1(forms=tmp_path / "bad.json")
    with pytest.raises(ValueError, match="add up to at most 1"):
        case_augmenter_v1(forms=tmp_path / "forms.json", upper=0.5, lower=0.5, truecased=0.1)


def test_augmenter_truecased_from_a_config(tmp_path):
    import srsly
    from thinc.api import Config

    srsly.write_json(tmp_path / "forms.json", FORMS)
    config = Config().from_str(f"""
    [augmenter]
    @augmenters = "spacy_domain_ner.case_augmenter.v1"
    forms = "{tmp_path / 'forms.json'}"
    upper = 0.0
    lower = 0.0
    truecased = 1.0
    """)
    augment = registry.resolve(config)["augmenter"]
    nlp = spacy.blank("en")
    assert next(iter(augment(nlp, example(nlp)))).reference.text == TRUECASED
