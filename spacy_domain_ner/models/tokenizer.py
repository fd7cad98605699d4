"""Tokenizer rules for legal text, added to spaCy's English defaults.

spaCy's English tokenizer keeps the period of a hyphenated form or regulation code at the
end of a sentence on the last piece: "Form 10-K." becomes `10 - K.`, so the entity
"Form 10-K" (and "Regulation S-X", "Form N-Q") cannot end on a token boundary and is lost
to the NER whatever it predicts. The extra suffix splits that period off when it follows
`X-Y`, a single letter or digit after a hyphen.

The rules also tokenize text written all upper or all lower case as it tokenizes ordinary text.
spaCy's abbreviations are special cases in one spelling ("Inc.", "Corp.", "Mr."): "inc." and
"INC." split into `inc .`, so that in a text without case signal "Acme, inc." cannot be an
entity ending on the period that the gold "Acme, Inc." has; and a dotted abbreviation stays one
token only when its last letter is a capital ("U.S." but `u.s .`). The rules add the lower, upper
and capitalized spellings of every one-token abbreviation and keeps a run of single letters
with periods ("u.s.", "h.r.", "l.p.") one token. Ordinary text written with a capital where
the abbreviation has one is tokenized as before. Not covered: "form 10-k." in lower case keeps
`k.` (spaCy's special case for the initial "k." joins the split period back).

    [nlp.after_creation]
    @callbacks = "spacy_domain_ner.legal_tokenizer.v1"
"""
import re
from typing import Callable, List

from spacy.attrs import ORTH
from spacy.language import Language
from spacy.util import compile_suffix_regex, registry

from ..casing.forms import CASE_FUNCTIONS

LEGAL_SUFFIXES: List[str] = [r"(?<=[A-Za-z0-9]-[A-Z0-9])\."]
DOTTED_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.){2,}$")  # u.s., h.r., l.p., U.S.C.


def add_legal_suffixes(nlp: Language) -> Language:
    """Add LEGAL_SUFFIXES to the tokenizer's suffix rules (idempotent: built from the defaults).

    nlp (Language): The pipeline; its tokenizer is changed in place.
    RETURNS (Language): The same pipeline.
    """
    suffixes = list(nlp.Defaults.suffixes or []) + LEGAL_SUFFIXES
    nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    return nlp


def case_variants(text: str) -> List[str]:
    """The other spellings of an abbreviation in text without case signal: lower, upper, capitalized.

    text (str): A special case's text ("Inc.").
    RETURNS (List[str]): The spellings other than `text`, in that order, without repeats.
    """
    variants: List[str] = []
    for variant in (CASE_FUNCTIONS[kind](text) for kind in ("lower", "upper", "title")):
        if variant != text and variant not in variants and len(variant) == len(text):
            variants.append(variant)
    return variants


def add_case_variant_exceptions(nlp: Language) -> int:
    """Add the case variants (`case_variants`) of the tokenizer's one-token special cases that end
    in a period and have a letter ("Inc." -> "inc.", "INC."), keeping their other attributes.

    nlp (Language): The pipeline; its tokenizer is changed in place.
    RETURNS (int): The number of special cases added (0 when run again).
    """
    rules = nlp.tokenizer.rules  # the tokenizer's own dict: it sees the variants as they are added
    added = 0
    for text, tokens in list(rules.items()):
        if len(tokens) != 1 or not text.endswith(".") or not any(c.isalpha() for c in text):
            continue
        for variant in case_variants(text):
            if variant not in rules:
                attrs = {key: value for key, value in tokens[0].items() if key != ORTH}
                nlp.tokenizer.add_special_case(variant, [{ORTH: variant, **attrs}])
                added += 1
    return added


def keep_dotted_abbreviations(nlp: Language) -> Language:
    """Make a run of single letters with periods ("u.s.") one token, whatever its case
    (`DOTTED_ABBREVIATION` joins the tokenizer's `token_match`; a compiled pattern, so that the
    tokenizer serializes it with the pipeline).

    nlp (Language): The pipeline; its tokenizer is changed in place.
    RETURNS (Language): The same pipeline.
    """
    previous = nlp.tokenizer.token_match
    pattern = DOTTED_ABBREVIATION.pattern
    if previous is not None:
        old = previous.__self__.pattern  # spaCy's token_match is a compiled pattern's `match`
        if pattern in old:
            return nlp
        pattern = f"(?:{old})|(?:{pattern})"
    nlp.tokenizer.token_match = re.compile(pattern).match
    return nlp


def add_legal_rules(nlp: Language) -> Language:
    """The legal suffix, the case variants of abbreviations and dotted abbreviations kept whole.

    nlp (Language): The pipeline; its tokenizer is changed in place.
    RETURNS (Language): The same pipeline.
    """
    add_legal_suffixes(nlp)
    add_case_variant_exceptions(nlp)
    return keep_dotted_abbreviations(nlp)


@registry.callbacks("spacy_domain_ner.legal_tokenizer.v1")
def legal_tokenizer_v1() -> Callable[[Language], Language]:
    """The `[nlp.after_creation]` callback that adds the legal tokenizer rules (`add_legal_rules`).

    RETURNS (Callable[[Language], Language]): The callback.
    """
    return add_legal_rules
