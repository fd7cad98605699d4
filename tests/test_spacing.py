"""Tests of spacy_domain_ner.corpus.formats.spacing: the natural-spacing rules of token-per-line corpora."""
import pytest
import spacy

from spacy_domain_ner.corpus.formats.spacing import count_changed, natural_spaces


def render(words, spaces):
    return "".join(w + (" " if s else "") for w, s in zip(words, spaces)).rstrip()


@pytest.mark.parametrize("words,expected", [
    (["Acme", "Inc.", ",", "filed", "."], "Acme Inc., filed."),  # rule 1
    (["(", "the", '"', "Company", '"', ")", "."], '(the "Company").'),  # rules 1, 3, 4
    (["the", "Company", "'s", "shares", "do", "n't", "vote"], "the Company's shares don't vote"),  # rule 2
    (["registrant", "’", "s", "knowledge"], "registrant’s knowledge"),  # rules 1 and 7
    (["$", "10,000", "or", "5", "%", ";", "see", "[", "1", "]"], "$10,000 or 5%; see [1]"),
    (["Section", "13", "(", "a", ")", "of", "the", "Act", "..."], "Section 13 (a) of the Act..."),
    (["Beauty", "Brands", "Group", ",", "Inc.", "."], "Beauty Brands Group, Inc. ."),  # rule 6
    (["and", "/", "or", "well-known", "-", "issuer"], "and / or well-known - issuer"),  # rule 5
    (["“", "Buyer", "”", "and", "‘", "Seller", "’"], "“Buyer” and ‘Seller’"),
    (["he", "said", '"', "no"], 'he said "no'),  # an opening quote glues forward
    (["no", '"'], 'no "'),  # a lone final quote opens nothing: left spaced
    (["a", '"', "b", '"', "c", '"', "d", '"'], 'a "b" c "d"'),  # quotes alternate
    ([",", "starts"], ", starts"),  # nothing before the first token
    ([], ""),
])
def test_natural_spaces_rules(words, expected):
    spaces = natural_spaces(words)
    assert len(spaces) == len(words)
    assert render(words, spaces) == expected
    if words:
        assert spaces[-1] is True  # sentences are joined by one space


def test_count_changed():
    spaces = natural_spaces(["Acme", "Inc.", ",", "filed", "(", "today", ")", "."])
    assert count_changed(spaces) == 4  # Inc. | ( | today | )
    assert count_changed([True, True]) == 0


def test_natural_text_tokenizes_back_to_the_tokens():
    # the point of the rules: spaCy's tokenizer splits the natural text into the gold tokens
    words = ["On", "May", "1", ",", "Acme", "Corp.", "(", '"', "Acme", '"', ")", "paid", "$", "5", "million", "."]
    text = render(words, natural_spaces(words))
    assert text == 'On May 1, Acme Corp. ("Acme") paid $5 million.'
    assert [t.text for t in spacy.blank("en")(text)] == words


def test_composite_punctuation_tokens():
    # FIN5 writes `("` and `"),` as single tokens
    words = ["SILICON", "VALLEY", "BANK", '("', "Bank", '"),', "a", "bank", "said", '"', "yes", '"']
    assert render(words, natural_spaces(words)) == 'SILICON VALLEY BANK ("Bank"), a bank said "yes"'
