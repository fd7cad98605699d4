"""Case augmentation: train a case-aware NER on some all-upper and all-lower copies of the data.

The cased side of `spacy_domain_ner.CaseAwareListener.v1` lifts E-NER dev F1 but makes the model
lean on capitalisation: all-lower-case text lost 38 points in the robustness suite
(docs/BENCHMARKS.md). `spacy_domain_ner.case_augmenter.v1` replaces a share of the training
examples by an upper- or lower-cased copy with the same entities, so the model also learns to
find them where case carries no signal:

    [corpora.train.augmenter]
    @augmenters = "spacy_domain_ner.case_augmenter.v1"
    upper = 0.05
    lower = 0.05

`spacy_domain_ner.case_augmenter.v2` adds title-case copies (every token capitalized, as in
headings and the robustness suite's `title`), where capitals no longer mark the names.
"""
import random
from functools import partial
from typing import Callable, Iterator

from spacy.language import Language
from spacy.training import Example
from spacy.training.augment import _doc_to_biluo_tags_with_partial
from spacy.util import registry

from ..evaluation.robustness import CASE_FUNCTIONS


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
    text = "".join(w + t.whitespace_ for w, t in zip(words, example.reference))
    data = example.to_dict()
    data["doc_annotation"]["entities"] = _doc_to_biluo_tags_with_partial(example.reference)
    data["token_annotation"]["ORTH"] = words
    return Example.from_dict(nlp.make_doc(text), data)


def case_augmenter(
    nlp: Language, example: Example, *, upper: float, lower: float, title: float = 0.0
) -> Iterator[Example]:
    """Yield the example, or with probability `upper` / `lower` / `title` its re-cased copy
    (one random draw per example, so v1 runs, which have no title share, are reproduced)."""
    draw, floor = random.random(), 0.0
    for kind, share in (("upper", upper), ("lower", lower), ("title", title)):
        if floor <= draw < floor + share:
            yield recased_copy(nlp, example, kind=kind)
            return
        floor += share
    yield example


def _check_shares(**shares: float) -> None:
    if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1 + 1e-9:  # 0.34 + 0.56 + 0.1 > 1 in floats
        raise ValueError(f"the shares must be >= 0 and add up to at most 1, not {shares}")


@registry.augmenters("spacy_domain_ner.case_augmenter.v1")
def case_augmenter_v1(upper: float = 0.05, lower: float = 0.05) -> Callable[[Language, Example], Iterator[Example]]:
    """The augmenter for `[corpora.train.augmenter]`.

    upper (float): Share of examples replaced by their upper-cased copy.
    lower (float): Share of examples replaced by their lower-cased copy.
    RETURNS (Callable[[Language, Example], Iterator[Example]]): The augmenter.
    """
    _check_shares(upper=upper, lower=lower)
    return partial(case_augmenter, upper=upper, lower=lower)


@registry.augmenters("spacy_domain_ner.case_augmenter.v2")
def case_augmenter_v2(
    upper: float = 0.1, lower: float = 0.1, title: float = 0.1
) -> Callable[[Language, Example], Iterator[Example]]:
    """The augmenter for `[corpora.train.augmenter]`, with title-case copies.

    upper (float): Share of examples replaced by their upper-cased copy.
    lower (float): Share of examples replaced by their lower-cased copy.
    title (float): Share of examples replaced by their title-cased copy (every token capitalized).
    RETURNS (Callable[[Language, Example], Iterator[Example]]): The augmenter.
    """
    _check_shares(upper=upper, lower=lower, title=title)
    return partial(case_augmenter, upper=upper, lower=lower, title=title)
