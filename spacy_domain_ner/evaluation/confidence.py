"""A confidence in [0, 1] for every entity of the transition-based NER: `ent._.confidence`.

spaCy's `ner` decides greedily, one BILUO action a token, and keeps no scores. The
`entity_confidence` component, placed right before `ner`, replays the same greedy path on the
same inputs (the transformer's output is already on the docs, so only the NER head runs again):
at each token a softmax over the *valid* actions' scores (divided by a temperature fitted on dev,
`fit_temperature`), and an entity's confidence is the geometric mean (or the minimum) of the
probabilities of the actions that built it, mapped through a monotone calibration map (isotonic
regression of correctness on that score, fitted on dev by `calibration.calibrate`; the identity
until fitted): temperature alone cannot calibrate these scores, whose middle range is about
equally often correct whatever the score (docs/lab/confidence.md). `ner` then sets the same entities, and
`ent._.confidence` reads them back by (start, end, label); an entity that `ner` did not produce
has None unless its component adds a score (the knowledge base's `legal_knowledge` does).

`calibration` fits the temperature and measures how well the scores are calibrated
(entity confidence against exact-match correctness on a gold DocBin).
"""
import math
import weakref
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from ..models.memo import keeping_predictions

AGGREGATES = ("gmean", "min")
# Per entity: (start, end, label, [(valid actions' scores, index of the chosen one) per token]).
EntityScores = Tuple[int, int, str, List[Tuple[numpy.ndarray, int]]]

if not Doc.has_extension("ent_confidences"):
    Doc.set_extension("ent_confidences", default=None)  # [[start, end, label, confidence], ...]


# Per Doc: (the scores list it was built from, its length, {(start, end, label): entry}). Rebuilt
# when the list is replaced or grows, so each entity's lookup is O(1) instead of a scan of the list.
_INDEX: "weakref.WeakKeyDictionary[Doc, Tuple[Sequence, int, Dict[Tuple[int, int, str], Sequence]]]" = weakref.WeakKeyDictionary()


def _span_confidence(span: Span) -> Optional[float]:
    doc = span.doc
    scores = doc._.ent_confidences
    if not scores:
        return None
    cached = _INDEX.get(doc)
    if cached is None or cached[0] is not scores or cached[1] != len(scores):
        index: Dict[Tuple[int, int, str], Sequence] = {}
        for entry in scores:
            index.setdefault((entry[0], entry[1], entry[2]), entry)  # the first entry wins, as a scan would
        cached = _INDEX[doc] = (scores, len(scores), index)
    entry = cached[2].get((span.start, span.end, span.label_))
    return None if entry is None else entry[3]  # read now: a confidence changed in place is seen


if not Span.has_extension("confidence"):
    Span.set_extension("confidence", getter=_span_confidence)


def greedy_entity_scores(ner: Any, docs: Sequence[Doc]) -> List[List[EntityScores]]:
    """Replay the NER's greedy parse and keep, for each entity, every action's valid scores.

    ner (EntityRecognizer): A trained `ner` component.
    docs (Sequence[Doc]): Docs as `ner` receives them (after the components before it).
    RETURNS (List[List[EntityScores]]): Per doc, the entities the greedy path builds.
    """
    moves = ner.moves
    names = [moves.get_class_name(i) for i in range(moves.n_moves)]
    docs = list(docs)
    with keeping_predictions(ner.model):  # its tok2vec output, for `ner` on the same Docs next
        step = ner.model.predict(docs)
    states = moves.init_batch(docs)
    # per doc: token index -> (valid scores, chosen index among them, action name)
    actions: List[Dict[int, Tuple[numpy.ndarray, int, str]]] = [{} for _ in docs]
    open_label: List[Optional[str]] = [None for _ in docs]
    valid_moves: Dict[Tuple, numpy.ndarray] = {}
    active = [(i, s) for i, s in enumerate(states) if not s.is_final()]
    while active:
        scores = ner.model.ops.to_numpy(step.predict([s for _, s in active]))
        for (i, state), row in zip(active, scores):
            key = validity_key(docs[i], state, open_label[i])
            choices = valid_moves.get(key)
            if choices is None:  # asking the transition system per action is half the cost: once per kind of state
                choices = valid_moves[key] = numpy.flatnonzero([moves.is_valid(state, name) for name in names])
            best = int(numpy.argmax(row[choices]))  # the first best valid action, as spaCy's greedy parse takes
            name = names[choices[best]]
            actions[i][state.B(0)] = (row[choices].astype("float64"), best, name)
            move, _, label = name.partition("-")
            open_label[i] = label if move in ("B", "I") else None
            moves.apply_transition(state, name)
        active = [(i, s) for i, s in active if not s.is_final()]
    step.clear_memory()
    return [_entities(doc_actions) for doc_actions in actions]


def validity_key(doc: Doc, state: Any, open_label: Optional[str]) -> Tuple:
    """What the validity of the NER's actions depends on (spaCy's `ner.pyx`, BILUO): the open
    entity's label, whether the state is at the last token, and the preset entity tag, sentence
    start and whitespace of the first two buffer tokens."""
    b0, b1 = state.B(0), state.B(1)
    token = doc[b0]
    after = doc[b1] if b1 != -1 else None
    return (open_label, token.ent_iob, token.ent_type, token.is_sent_start, token.is_space,
            None if after is None else (after.ent_iob, after.ent_type, after.is_sent_start, after.is_space))


def _entities(actions: Dict[int, Tuple[numpy.ndarray, int, str]]) -> List[EntityScores]:
    entities, start, steps = [], None, []
    for token in sorted(actions):
        scores, best, name = actions[token]
        move, _, label = name.partition("-")
        if move in ("B", "U"):
            start, steps = token, []
        if start is None:
            continue
        steps.append((scores, best))
        if move in ("L", "U"):
            entities.append((start, token + 1, label, steps))
            start = None
    return entities


def calibrated(confidence: float, calibration: Optional[Dict[str, List[float]]]) -> float:
    """Map a raw confidence through a fitted calibration map (piecewise linear between its knots).

    confidence (float): The raw confidence, in [0, 1].
    calibration (Optional[Dict[str, List[float]]]): Knots {"x": increasing raw scores, "y": the
        share correct at each}; None is the identity.
    RETURNS (float): The calibrated confidence, in [0, 1].
    """
    if calibration is None:
        return confidence
    return float(numpy.clip(numpy.interp(confidence, calibration["x"], calibration["y"]), 0.0, 1.0))


def entity_confidence(steps: Sequence[Tuple[numpy.ndarray, int]], *, temperature: float = 1.0, aggregate: str = "gmean") -> float:
    """An entity's confidence from its actions: softmax over each step's valid actions.

    steps (Sequence[Tuple[numpy.ndarray, int]]): Per token, the valid actions' scores and the chosen index.
    temperature (float): Divides the scores before the softmax (> 1 softens, < 1 sharpens).
    aggregate (str): "gmean" (geometric mean of the chosen actions' probabilities) or "min".
    RETURNS (float): The confidence, in [0, 1].
    """
    log_probs = []
    for scores, best in steps:
        z = scores / temperature
        log_probs.append(float(z[best] - (z.max() + math.log(numpy.exp(z - z.max()).sum()))))
    if not log_probs:
        return 0.0
    return math.exp(sum(log_probs) / len(log_probs)) if aggregate == "gmean" else math.exp(min(log_probs))


class EntityConfidence:
    """Scores the entities the `ner` component is about to set (place it right before `ner`)."""

    def __init__(self, nlp: Language, name: str, *, ner: str, temperature: float, aggregate: str) -> None:
        check_settings(temperature=temperature, aggregate=aggregate)
        self.nlp, self.name = nlp, name
        # "calibration" is fitted on dev and saved with the component (cfg.json), not set in the config
        self.cfg: Dict[str, Any] = {"ner": ner, "temperature": temperature, "aggregate": aggregate, "calibration": None}

    def score(self, steps: Sequence[Tuple[numpy.ndarray, int]]) -> float:
        """An entity's calibrated confidence from its actions' scores (see the module docstring)."""
        raw = entity_confidence(steps, temperature=self.cfg["temperature"], aggregate=self.cfg["aggregate"])
        return calibrated(raw, self.cfg["calibration"])

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        ner = self.nlp.get_pipe(self.cfg["ner"])
        for batch in minibatch(docs, size=batch_size):
            # batched as spaCy's parser batches its predictions (sorted by length, a quarter of the
            # batch at a time), so that `ner` predicts on the same Docs next and reuses the NER
            # tok2vec's output computed here (`models.memo`)
            for sub_batch in minibatch(sorted(batch, key=len), size=max(batch_size // 4, 2)):
                for doc, entities in zip(sub_batch, greedy_entity_scores(ner, sub_batch)):
                    doc._.ent_confidences = [[start, end, label, self.score(steps)] for start, end, label, steps in entities]
            yield from batch

    def to_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> None:
        import json

        Path(path).mkdir(parents=True, exist_ok=True)
        # the standard library round-trips floats exactly (srsly's writer keeps 10 digits and its reader
        # may miss the last bit): the loaded temperature and map are the fitted ones
        (Path(path) / "cfg.json").write_text(json.dumps(self.cfg, indent=2), encoding="utf8")

    def from_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> "EntityConfidence":
        import json

        cfg = json.loads((Path(path) / "cfg.json").read_text(encoding="utf8"))
        check_settings(temperature=cfg["temperature"], aggregate=cfg["aggregate"], calibration=cfg.get("calibration"))
        self.cfg.update(cfg)
        return self


def check_settings(*, temperature: float, aggregate: str, calibration: Optional[Dict[str, List[float]]] = None) -> None:
    """Raise ValueError on a temperature <= 0, an unknown aggregate or a malformed calibration map."""
    if calibration is not None:
        x, y = calibration.get("x"), calibration.get("y")
        if not x or not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
            raise ValueError(f"calibration must have lists 'x' and 'y' of one non-zero length, not {calibration!r}")
        if any(b < a for a, b in zip(x, x[1:])) or any(b < a for a, b in zip(y, y[1:])) or not all(0 <= v <= 1 for v in y):
            raise ValueError("calibration 'x' and 'y' must be non-decreasing and 'y' in [0, 1]")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, not {temperature}")
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")


@Language.factory("entity_confidence", default_config={"ner": "ner", "temperature": 1.0, "aggregate": "gmean"})
def make_entity_confidence(nlp: Language, name: str, ner: str, temperature: float, aggregate: str) -> EntityConfidence:
    """Create the `entity_confidence` component (add it with before="ner").

    ner (str): The name of the NER component whose entities are scored.
    temperature (float): Divides the valid actions' scores before the softmax (> 1 softens);
        `add-confidence` fits it on dev.
    aggregate (str): How an entity's action probabilities combine: "gmean" (geometric mean) or "min".
    RETURNS (EntityConfidence): The component.
    """
    return EntityConfidence(nlp, name, ner=ner, temperature=temperature, aggregate=aggregate)


