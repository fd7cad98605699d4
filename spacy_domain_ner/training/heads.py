"""A second NER head whose entities live in `doc.spans`, for multi-task training.

The multi-task pipeline is `transformer -> ner -> general_ner`: one shared
transformer, the stock `ner` (legal classes, writes `doc.ents`) and
`general_ner` (CoNLL's PER/ORG/LOC/MISC, writes `doc.spans["general"]`).
Both heads see every batch; each learns only from the Examples annotated for
it. The reader (`spacy_domain_ner.MixedCorpus.v1`, see mixing.py) marks
that: a news reference has its ENT annotation *missing* (the legal head
computes no loss on it) and its CoNLL entities in `spans["general"]`; a legal
reference has ents and no "general" span group (missing for this head).

`GeneralEntityRecognizer` subclasses spaCy's EntityRecognizer (a cdef class,
but its `update`, `initialize`, `predict` and `set_annotations` are plain
`def` methods, so Python overrides are dispatched by the Parser):

- `update` / `initialize` rebuild each Example with the span group as its
  ents (all tokens missing when the group is absent), so gold, labels and
  loss come from the span group only. When no Example of a batch has gold it
  still backpropagates a zero gradient through its listener: the *last*
  listener of a transformer/tok2vec is the one that runs the shared
  backward pass, and skipping it would drop the other head's gradient for
  that batch. `initialize` therefore checks that this head is the last
  listener of its upstream component.
- `predict` / `set_annotations` parse with the doc's entities hidden (saved
  and restored as arrays): the transition system treats preset entities as
  constraints and adds their labels to its moves, so parsing after `ner` on
  the visible legal entities would copy them. The predicted entities go to
  `doc.spans[spans_key]`; `doc.ents` is left exactly as it was.

`spacy_domain_ner.without_components.v1` is a `[training.before_to_disk]`
callback: with names = ["general_ner"] the saved pipeline (model-last,
model-best, hence the package) is the legal pipeline only; with [] it ships
both heads.
"""
from functools import partial
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from spacy import util
from spacy.attrs import ENT_ID, ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.language import Language
from spacy.pipeline.ner import DEFAULT_NER_MODEL, EntityRecognizer
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry
from thinc.api import Model, set_dropout_rate

ENT_ATTRS = [ENT_IOB, ENT_TYPE, ENT_KB_ID, ENT_ID]
DEFAULT_SPANS_KEY = "general"
SCORER = "spacy_domain_ner.general_ner_scorer.v1"
WITHOUT_COMPONENTS = "spacy_domain_ner.without_components.v1"


def general_example(eg: Example, *, spans_key: str) -> Example:
    """The Example a general head learns from: the span group as its entities.

    eg (Example): An Example of the mixed corpus.
    spans_key (str): The span group holding the general entities.
    RETURNS (Example): The same predicted doc; a reference copy whose ents are
        the span group (tokens outside it are O), or all missing when the
        reference has no such group (a legal document).
    """
    reference = eg.reference.copy()
    if spans_key in reference.spans:
        reference.set_ents(list(reference.spans[spans_key]), default="outside")
    else:
        reference.set_ents([], default="missing")
    return Example(eg.predicted, reference)


class _HiddenEnts:
    """Hide the entities of docs for a `with` block, then put them back."""

    def __init__(self, docs: Sequence[Doc]) -> None:
        self.docs = [doc for doc in docs if doc.has_annotation("ENT_IOB")]
        self.saved = [doc.to_array(ENT_ATTRS) for doc in self.docs]

    def __enter__(self) -> "_HiddenEnts":
        for doc in self.docs:
            doc.set_ents([], default="missing")
        return self

    def __exit__(self, *exc: object) -> None:
        for doc, array in zip(self.docs, self.saved):
            doc.from_array(ENT_ATTRS, array)


class GeneralEntityRecognizer(EntityRecognizer):
    """Transition-based NER that learns from and writes to `doc.spans[spans_key]`."""

    def __init__(
        self,
        vocab,
        model: Model,
        name: str = "general_ner",
        moves=None,
        *,
        spans_key: str = DEFAULT_SPANS_KEY,
        update_with_oracle_cut_size: int = 100,
        scorer: Optional[Callable] = None,
    ) -> None:
        """Create the head.

        vocab (Vocab): The shared vocabulary.
        model (Model): A spaCy TransitionBasedParser model (state_type "ner").
        name (str): The component name.
        moves (Optional[TransitionSystem]): The transition system, or None.
        spans_key (str): The span group read as gold and written with predictions.
        update_with_oracle_cut_size (int): As for spaCy's `ner`.
        scorer (Optional[Callable]): The scoring function.
        """
        if not spans_key:
            raise ValueError(f"{name}: spans_key must be a non-empty string")
        super().__init__(
            vocab,
            model,
            name=name,
            moves=moves,
            update_with_oracle_cut_size=update_with_oracle_cut_size,
            incorrect_spans_key=None,
            scorer=scorer,
        )
        # In cfg so that Pipe.score passes it to the scorer.
        self.cfg["spans_key"] = spans_key

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    def _general(self, examples: Iterable[Example]) -> List[Example]:
        return [general_example(eg, spans_key=self.spans_key) for eg in examples]

    def initialize(self, get_examples: Callable[[], Iterable[Example]], nlp: Optional[Language] = None, labels=None):
        """Check the pipeline order and collect the labels from the span groups.

        get_examples (Callable[[], Iterable[Example]]): The training examples.
        nlp (Optional[Language]): The pipeline.
        labels (Optional[dict]): Label data from `spacy init labels`, or None.
        """
        if nlp is not None:
            check_last_listener(nlp, self.name)
        return super().initialize(lambda: self._general(get_examples()), nlp=nlp, labels=labels)

    def update(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None
    ):
        """Learn from the span groups; release the listener when none has one.

        examples (Iterable[Example]): The batch (both domains).
        drop (float): The dropout rate.
        sgd (Optional[Optimizer]): The optimizer, or None/False.
        losses (Optional[Dict[str, float]]): Loss record, updated in place.
        RETURNS (Dict[str, float]): The losses.
        """
        examples = self._general(examples)
        if losses is None:
            losses = {}
        if any(self.moves.has_gold(eg) for eg in examples):
            return super().update(examples, drop=drop, sgd=sgd, losses=losses)
        losses.setdefault(self.name, 0.0)
        if examples:
            release_listener(self, [eg.predicted for eg in examples], drop=drop)
            if sgd not in (None, False):
                self.finish_update(sgd)
        return losses

    def predict(self, docs):
        """Parse as if the docs had no entities (they are put back after).

        docs (Iterable[Doc]): The docs.
        RETURNS (list): The parse states.
        """
        if isinstance(docs, Doc):
            docs = [docs]
        with _HiddenEnts(docs):
            return super().predict(docs)

    def set_annotations(self, docs, states_or_beams) -> None:
        """Write the predicted entities to doc.spans[spans_key]; doc.ents is kept.

        docs (Iterable[Doc]): The docs.
        states_or_beams (list): The output of `predict`.
        """
        with _HiddenEnts(docs):
            super().set_annotations(docs, states_or_beams)
            found = [list(doc.ents) for doc in docs]
        for doc, spans in zip(docs, found):
            doc.spans[self.spans_key] = spans


def release_listener(pipe: EntityRecognizer, docs: List[Doc], *, drop: float) -> None:
    """Run the head's forward and backward pass with a zero gradient.

    A listener's backward pass is what hands the gradient to the shared
    transformer/tok2vec; the last listener's runs the shared backward pass.

    pipe (EntityRecognizer): The head.
    docs (List[Doc]): The predicted docs of the batch (the listener checks
        that they are the batch the upstream component saw).
    drop (float): The dropout rate.
    """
    set_dropout_rate(pipe.model, drop)
    step_model, backprop_tok2vec = pipe.model.begin_update(docs)
    backprop_tok2vec([])  # no steps taken: the token gradient is all zeros
    step_model.clear_memory()


def check_last_listener(nlp: Language, name: str) -> None:
    """Raise if `name` listens to an upstream component but is not its last listener.

    nlp (Language): The pipeline.
    name (str): The component name of the head.
    """
    for upstream_name, proc in nlp.pipeline:
        listening = [c for c in getattr(proc, "listening_components", []) if proc.listener_map[c]]
        if name in listening and listening[-1] != name:
            raise ValueError(
                f"'{name}' must be the last of the components listening to '{upstream_name}' "
                f"({', '.join(listening)}) in [nlp] pipeline: the last listener runs the shared "
                "backward pass, and this head is the one that runs it for every batch"
            )


def score_general_ents(examples: Iterable[Example], *, spans_key: str = DEFAULT_SPANS_KEY, **kwargs) -> Dict:
    """Entity P/R/F of the general head, on references that have the span group.

    examples (Iterable[Example]): The examples to score.
    spans_key (str): The span group.
    RETURNS (Dict): spans_<key>_p/r/f and spans_<key>_per_type.
    """
    return Scorer.score_spans(
        examples,
        f"spans_{spans_key}",
        getter=lambda doc, attr: doc.spans.get(attr[len("spans_"):], []),
        has_annotation=lambda doc: spans_key in doc.spans,
    )


@registry.scorers(SCORER)
def make_general_ner_scorer() -> Callable:
    """The scorer of the `general_ner` head: entity P/R/F of `doc.spans["general"]`.

    RETURNS (Callable): `score_general_ents`.
    """
    return score_general_ents


@Language.factory(
    "general_ner",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_NER_MODEL,
        "moves": None,
        "spans_key": DEFAULT_SPANS_KEY,
        "update_with_oracle_cut_size": 100,
        "scorer": {"@scorers": SCORER},
    },
    default_score_weights={
        f"spans_{DEFAULT_SPANS_KEY}_f": 0.0,
        f"spans_{DEFAULT_SPANS_KEY}_p": 0.0,
        f"spans_{DEFAULT_SPANS_KEY}_r": 0.0,
        f"spans_{DEFAULT_SPANS_KEY}_per_type": None,
    },
)
def make_general_ner(
    nlp: Language,
    name: str,
    model: Model,
    moves: Optional[object],
    spans_key: str,
    update_with_oracle_cut_size: int,
    scorer: Optional[Callable],
) -> GeneralEntityRecognizer:
    """The general NER head (factory `general_ner`).

    nlp (Language): The pipeline.
    name (str): The component name.
    model (Model): A TransitionBasedParser model with state_type "ner".
    moves (Optional[TransitionSystem]): The transition system, or None.
    spans_key (str): The span group holding gold and predicted general entities.
    update_with_oracle_cut_size (int): As for spaCy's `ner`.
    scorer (Optional[Callable]): The scoring function.
    RETURNS (GeneralEntityRecognizer): The component.
    """
    return GeneralEntityRecognizer(
        nlp.vocab,
        model,
        name=name,
        moves=moves,
        spans_key=spans_key,
        update_with_oracle_cut_size=update_with_oracle_cut_size,
        scorer=scorer,
    )


def pipeline_without(nlp: Language, *, names: Sequence[str]) -> Language:
    """A copy of the pipeline without some components (the original is untouched).

    nlp (Language): The trained pipeline.
    names (Sequence[str]): Components to leave out; empty returns `nlp` itself.
    RETURNS (Language): The pipeline to save.
    """
    if not names:
        return nlp
    unknown = [name for name in names if name not in nlp.component_names]
    if unknown:
        raise ValueError(f"without_components: {unknown} not in the pipeline {nlp.component_names}")
    config = nlp.config.copy()
    config["nlp"]["pipeline"] = [name for name in config["nlp"]["pipeline"] if name not in names]
    config["nlp"]["disabled"] = [name for name in config["nlp"].get("disabled", []) if name not in names]
    for name in names:
        config["components"].pop(name)
        config.get("initialize", {}).get("components", {}).pop(name, None)
    training = config.get("training", {})
    for key in ("frozen_components", "annotating_components"):
        if key in training:
            training[key] = [name for name in training[key] if name not in names]
    before_to_disk = training.get("before_to_disk") or {}
    if before_to_disk.get("@callbacks") == WITHOUT_COMPONENTS:
        # The saved config must stay trainable: its pipeline no longer has them.
        before_to_disk["names"] = [name for name in before_to_disk.get("names", []) if name not in names]
    # Built from the config without initializing (no weights are loaded), then
    # given the trained weights: what spacy.load does with a directory.
    copy = util.load_model_from_config(config, vocab=nlp.vocab, auto_fill=False, validate=False)
    copy.tokenizer.from_bytes(nlp.tokenizer.to_bytes(exclude=["vocab"]), exclude=["vocab"])
    for name in copy.component_names:
        copy.get_pipe(name).from_bytes(nlp.get_pipe(name).to_bytes(exclude=["vocab"]), exclude=["vocab"])
    keep = ("pipeline", "components", "disabled", "labels")
    copy.meta.update({key: value for key, value in nlp.meta.items() if key not in keep})
    return copy


@registry.callbacks(WITHOUT_COMPONENTS)
def without_components_v1(*, names: Sequence[str] = ()) -> Callable[[Language], Language]:
    """`[training.before_to_disk]`: save the pipeline without some components.

    names (Sequence[str]): The components not to ship, e.g. ["general_ner"];
        empty ships the whole pipeline.
    RETURNS (Callable[[Language], Language]): The callback.
    """
    if isinstance(names, str) or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"without_components: names must be a list of component names, not {names!r}")
    return partial(pipeline_without, names=list(names))
