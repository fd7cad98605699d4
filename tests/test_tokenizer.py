"""Tests of spacy_domain_ner.models.tokenizer: the legal suffix rule and its callback."""
import spacy
from spacy.util import registry

from spacy_domain_ner.models.tokenizer import add_legal_suffixes, legal_tokenizer_v1


def words(nlp, text):
    return [t.text for t in nlp(text)]


def test_period_after_a_hyphenated_code_is_split():
    blank = spacy.blank("en")
    assert words(blank, "on Form 10-K. It") == ["on", "Form", "10", "-", "K.", "It"]  # why the rule exists
    nlp = add_legal_suffixes(spacy.blank("en"))
    assert words(nlp, "on Form 10-K. It") == ["on", "Form", "10", "-", "K", ".", "It"]
    assert words(nlp, "of Regulation S-X.") == ["of", "Regulation", "S", "-", "X", "."]
    # abbreviations and initials are untouched
    assert words(nlp, "John D. Smith of Acme Inc. and the U.S. Congress") == words(blank, "John D. Smith of Acme Inc. and the U.S. Congress")
    assert add_legal_suffixes(nlp) is nlp  # idempotent
    assert words(nlp, "Form 8-K.") == ["Form", "8", "-", "K", "."]


def test_callback_is_registered_and_survives_serialization(tmp_path):
    assert registry.callbacks.get("spacy_domain_ner.legal_tokenizer.v1") is legal_tokenizer_v1
    config = spacy.blank("en").config
    config["nlp"]["after_creation"] = {"@callbacks": "spacy_domain_ner.legal_tokenizer.v1"}
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert words(nlp, "Form 10-K.")[-2:] == ["K", "."]
    nlp.to_disk(tmp_path / "nlp")
    assert words(spacy.load(tmp_path / "nlp"), "Form 10-K.")[-2:] == ["K", "."]
