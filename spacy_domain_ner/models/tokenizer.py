"""Tokenizer rules for legal text, added to spaCy's English defaults.

spaCy's English tokenizer keeps the period of a hyphenated form or regulation code at the
end of a sentence on the last piece: "Form 10-K." becomes `10 - K.`, so the entity
"Form 10-K" (and "Regulation S-X", "Form N-Q") cannot end on a token boundary and is lost
to the NER whatever it predicts. The extra suffix splits that period off when it follows
`X-Y`, a single letter or digit after a hyphen.

    [nlp.after_creation]
    @callbacks = "spacy_domain_ner.legal_tokenizer.v1"
"""
from typing import Callable, List

from spacy.language import Language
from spacy.util import compile_suffix_regex, registry

LEGAL_SUFFIXES: List[str] = [r"(?<=[A-Za-z0-9]-[A-Z0-9])\."]


def add_legal_suffixes(nlp: Language) -> Language:
    """Add LEGAL_SUFFIXES to the tokenizer's suffix rules (idempotent: built from the defaults).

    nlp (Language): The pipeline; its tokenizer is changed in place.
    RETURNS (Language): The same pipeline.
    """
    suffixes = list(nlp.Defaults.suffixes or []) + LEGAL_SUFFIXES
    nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    return nlp


@registry.callbacks("spacy_domain_ner.legal_tokenizer.v1")
def legal_tokenizer_v1() -> Callable[[Language], Language]:
    """The `[nlp.after_creation]` callback that adds the legal suffix rules.

    RETURNS (Callable[[Language], Language]): The callback.
    """
    return add_legal_suffixes
