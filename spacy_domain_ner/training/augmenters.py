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
"""
import random
from functools import partial
from typing import Callable, Iterator

from spacy.language import Language
from spacy.training import Example
from spacy.training.augment import _doc_to_biluo_tags_with_partial
from spacy.util import registry


def recased_example(nlp: Language, example: Example, *, upper: bool) -> Example:
    """A copy of an example whose text is all upper or all lower case, entities unchanged.

    nlp (Language): The pipeline whose tokenizer reads the new text.
    example (Example): The example.
    upper (bool): Upper-case (True) or lower-case (False).
    RETURNS (Example): The re-cased example.
    """
    case = str.upper if upper else str.lower
    data = example.to_dict()
    data["doc_annotation"]["entities"] = _doc_to_biluo_tags_with_partial(example.reference)
    data["token_annotation"]["ORTH"] = [case(t.text) for t in example.reference]
    return Example.from_dict(nlp.make_doc(case(example.text)), data)


def case_augmenter(nlp: Language, example: Example, *, upper: float, lower: float) -> Iterator[Example]:
    """Yield the example, or with probability `upper` / `lower` its upper / lower-cased copy."""
    draw = random.random()
    if draw < upper:
        yield recased_example(nlp, example, upper=True)
    elif draw < upper + lower:
        yield recased_example(nlp, example, upper=False)
    else:
        yield example


@registry.augmenters("spacy_domain_ner.case_augmenter.v1")
def case_augmenter_v1(upper: float = 0.05, lower: float = 0.05) -> Callable[[Language, Example], Iterator[Example]]:
    """The augmenter for `[corpora.train.augmenter]`.

    upper (float): Share of examples replaced by their upper-cased copy.
    lower (float): Share of examples replaced by their lower-cased copy.
    RETURNS (Callable[[Language, Example], Iterator[Example]]): The augmenter.
    """
    if upper < 0 or lower < 0 or upper + lower > 1:
        raise ValueError(f"upper and lower must be >= 0 and add up to at most 1, not {upper} and {lower}")
    return partial(case_augmenter, upper=upper, lower=lower)
