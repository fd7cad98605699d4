"""Tests of spacy_domain_ner.training.augmenters: upper- and lower-cased copies with the same entities."""
import random

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_domain_ner.training.augmenters import case_augmenter_v1, recased_example

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


@pytest.mark.parametrize("upper,lower", [(-0.1, 0.0), (0.0, -1.0), (0.6, 0.5)])
def test_augmenter_checks_shares(upper, lower):
    with pytest.raises(ValueError):
        case_augmenter_v1(upper=upper, lower=lower)
