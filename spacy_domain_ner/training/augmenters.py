"""Case augmentation: train a case-aware NER on some all-upper and all-lower copies of the data.

The cased side of `spacy_domain_ner.CaseAwareListener.v1` lifts E-NER dev F1 but makes the model
lean on capitalisation: all-lower-case text lost most of its entities in the robustness suite
(docs/lab/case.md). `spacy_domain_ner.case_augmenter.v1` replaces a share of the training
examples by an upper- or lower-cased copy with the same entities, so the model also learns to
find them where case carries no signal:

    [corpora.train.augmenter]
    @augmenters = "spacy_domain_ner.case_augmenter.v1"
    upper = 0.05
    lower = 0.05

Two more kinds of copies, off by default: `title` (every token capitalized, as in headings and
the robustness suite's `title`, where capitals no longer mark the names) and `truecased` (the
text lower-cased, then written as the `case_restorer` would write it: `casing.forms.truecase`
with the case forms in `forms`, mined from the training corpus by `mine-case-forms`). The
restorer annotates a text without case signal through such a copy, whose names made of common
words come out in lower case ("fidelity advisor Value Fund"); these copies teach the NER to read them.
"""
import random
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import srsly

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.training.augment import _doc_to_biluo_tags_with_partial
from spacy.util import registry

from ..casing.forms import CASE_FUNCTIONS, CaseForms, check_case_forms, truecase


def recased_example(nlp: Language, example: Example, *, upper: bool) -> Example:
    """A copy of an example whose text is all upper or all lower case, entities unchanged.

    nlp (Language): The pipeline whose tokenizer reads the new text.
    example (Example): The example.
    upper (bool): Upper-case (True) or lower-case (False).
    RETURNS (Example): The re-cased example.
    """
    return recased_copy(nlp, example, kind="upper" if upper else "lower")


def recased_copy(nlp: Language, example: Example, *, kind: str) -> Example:
    """A copy of an example with every token re-cased, entities unchanged.

    nlp (Language): The pipeline whose tokenizer reads the new text.
    example (Example): The example.
    kind (str): "upper", "lower" or "title" (first character upper, the rest lower).
    RETURNS (Example): The re-cased example. A token whose re-cased form has another length
        ("ß" -> "SS") keeps its case, so the copy stays aligned with its tokens.
    """
    case = CASE_FUNCTIONS[kind]
    words = []
    for token in example.reference:
        new = case(token.text)
        words.append(new if len(new) == len(token.text) else token.text)
    return _copy_with_words(nlp, example, words)


def truecased_copy(nlp: Language, example: Example, *, forms: CaseForms) -> Example:
    """A copy of an example written as the case restorer writes a text without case signal:
    lower-cased, then truecased with `forms`; entities unchanged.

    nlp (Language): The pipeline whose tokenizer reads the new text.
    example (Example): The example.
    forms (CaseForms): Case forms (`casing.forms.mine_case_forms`).
    RETURNS (Example): The truecased example (each token keeps its length).
    """
    reference = example.reference
    # a new Doc, without the corpus's sentence boundaries: the restorer's copy has none either
    lowered = Doc(reference.vocab, words=[t.text.lower() if len(t.text.lower()) == len(t.text) else t.text
                                          for t in reference], spaces=[bool(t.whitespace_) for t in reference])
    return _copy_with_words(nlp, example, truecase(lowered, forms))


def _copy_with_words(nlp: Language, example: Example, words: list) -> Example:
    text = "".join(w + t.whitespace_ for w, t in zip(words, example.reference))
    data = example.to_dict()
    data["doc_annotation"]["entities"] = _doc_to_biluo_tags_with_partial(example.reference)
    data["token_annotation"]["ORTH"] = words
    return Example.from_dict(nlp.make_doc(text), data)


def case_augmenter(
    nlp: Language, example: Example, *, upper: float, lower: float, title: float = 0.0,
    truecased: float = 0.0, forms: Optional[CaseForms] = None,
) -> Iterator[Example]:
    """Yield the example, or with probability `upper` / `lower` / `title` / `truecased` its
    re-cased copy (one random draw per example, in that order of kinds, so a run whose later
    shares are 0 draws as one without them). A truecased
    share needs `forms`: without them every word would be unknown to them and written by the
    unknown-word rule (short words in capitals, the rest capitalized), not as the restorer writes it."""
    if truecased and forms is None:
        raise ValueError("case_augmenter: a truecased share needs the case forms (mine-case-forms)")
    draw, floor = random.random(), 0.0
    for kind, share in (("upper", upper), ("lower", lower), ("title", title), ("truecased", truecased)):
        if floor <= draw < floor + share:
            if kind == "truecased":
                yield truecased_copy(nlp, example, forms=forms)
            else:
                yield recased_copy(nlp, example, kind=kind)
            return
        floor += share
    yield example


def _check_shares(**shares: float) -> None:
    if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1 + 1e-9:  # 0.34 + 0.56 + 0.1 > 1 in floats
        raise ValueError(f"the shares must be >= 0 and add up to at most 1, not {shares}")


@registry.augmenters("spacy_domain_ner.case_augmenter.v1")
def case_augmenter_v1(
    *, upper: float = 0.05, lower: float = 0.05, title: float = 0.0, truecased: float = 0.0,
    forms: Optional[Union[str, Path]] = None,
) -> Callable[[Language, Example], Iterator[Example]]:
    """The augmenter for `[corpora.train.augmenter]`.

    upper (float): Share of examples replaced by their upper-cased copy.
    lower (float): Share of examples replaced by their lower-cased copy.
    title (float): Share of examples replaced by their title-cased copy (every token capitalized).
    truecased (float): Share of examples replaced by their truecased copy (`truecased_copy`); needs `forms`.
    forms (Optional[Union[str, Path]]): The case forms JSON (`python -m spacy_domain_ner mine-case-forms`
        on the training corpus), read once when the config is resolved; None for none.
    RETURNS (Callable[[Language, Example], Iterator[Example]]): The augmenter.
    """
    _check_shares(upper=upper, lower=lower, title=title, truecased=truecased)
    if forms is None:
        if truecased:
            raise ValueError("case_augmenter: a truecased share needs forms, the case forms file (mine-case-forms writes it)")
        return partial(case_augmenter, upper=upper, lower=lower, title=title)
    path = Path(forms)
    if not path.is_file():
        raise ValueError(f"case_augmenter: {path}: no such case forms file (mine-case-forms writes it)")
    case_forms = srsly.read_json(path)
    check_case_forms(case_forms)
    return partial(case_augmenter, upper=upper, lower=lower, title=title, truecased=truecased, forms=case_forms)
