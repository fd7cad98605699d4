"""Tests of spacy_domain_ner.models.tokenizer: the legal tokenizer rules and their callback."""
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


# --- abbreviations in text written all upper or lower case -------------------------------

def test_case_variants_of_an_abbreviation():
    from spacy_domain_ner.models.tokenizer import case_variants

    assert case_variants("Inc.") == ["inc.", "INC."]
    assert case_variants("e.g.") == ["E.G.", "E.g."]
    assert case_variants("U.S.") == ["u.s.", "U.s."]
    assert case_variants("10.") == []  # no letter: no other spelling


def test_abbreviations_in_upper_and_lower_case_text_are_tokenized_as_in_ordinary_text():
    from spacy_domain_ner.models.tokenizer import add_case_variant_exceptions, add_legal_rules

    text = "Acme Inc. and Mr. Smith of the U.S. and H.R. filed it in Calif. e.g. today."
    suffixes = add_legal_suffixes(spacy.blank("en"))
    # why the case rules exist: the suffix rule alone splits the abbreviations of re-cased text
    assert words(suffixes, text.lower())[1:3] == ["inc", "."] and "u.s" in words(suffixes, text.lower())
    assert words(suffixes, text.upper())[1] == "INC"
    nlp = add_legal_rules(spacy.blank("en"))
    for perturb in (str.lower, str.upper, lambda t: " ".join(w.capitalize() for w in t.split(" "))):
        assert [w.lower() for w in words(nlp, perturb(text))] == [w.lower() for w in words(suffixes, text)]
    assert words(nlp, text) == words(suffixes, text)  # ordinary text: as before
    assert words(nlp, "in the u.s.") == ["in", "the", "u.s."] and words(nlp, "(u.s.)") == ["(", "u.s.", ")"]
    assert words(nlp, "a u.s.-based fund")[1] == words(suffixes, "a U.S.-based fund")[1].lower()
    # one-token cases only, ending in a period with a letter; attributes kept; idempotent
    assert add_case_variant_exceptions(nlp) == 0 and add_legal_rules(nlp) is nlp
    assert ":d" not in nlp.tokenizer.rules and "inc." in nlp.tokenizer.rules
    assert nlp.tokenizer.token_match.__self__.pattern.count("[A-Za-z]") == 1


def test_callback_is_registered_and_survives_serialization(tmp_path):
    assert registry.callbacks.get("spacy_domain_ner.legal_tokenizer.v1") is legal_tokenizer_v1
    config = spacy.blank("en").config
    config["nlp"]["after_creation"] = {"@callbacks": "spacy_domain_ner.legal_tokenizer.v1"}
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    expected = ["acme", "inc.", "of", "the", "u.s.", "filed", "Form", "10", "-", "K", "."]
    assert words(nlp, "acme inc. of the u.s. filed Form 10-K.") == expected
    nlp.to_disk(tmp_path / "nlp")
    assert words(spacy.load(tmp_path / "nlp"), "acme inc. of the u.s. filed Form 10-K.") == expected
    # the tokenizer alone, without the callback, keeps the rules too
    other = spacy.blank("en")
    other.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
    assert words(other, "ACME INC. OF THE U.S.") == ["ACME", "INC.", "OF", "THE", "U.S."]
