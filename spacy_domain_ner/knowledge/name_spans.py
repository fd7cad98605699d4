"""The `name_spans` component: a long proper name is one entity, not its pieces.

Placed after `ner` and `legal_knowledge` and before `entity_consistency` (so that the whole name,
not a piece, spreads to the Doc's other mentions), it extends or merges the predicted entities
into the whole name when the text says it is one: a run of name words that ends in a designator
of the label (`names.find_name_spans`; designators from `names.mine_name_designators`, e.g.
Fund, Trust, Bank, Inc.). Each rule is a setting, so that each can be measured alone:

- `extend`: an entity takes the name words after it up to a designator of its label
  ("Fidelity Advisor" + "Municipal Income Fund 2").
- `merge`: entities of any labels, joined by name words, become one entity of the designator's
  label ("Fidelity Advisor" BUSINESS + "New York" LOCATION + "Municipal Income Fund";
  "SILICON" + "VALLEY" + "BANK").
- `relabel`: a name whose designator is strong for a label (share >= `strong_share`) gets that
  label even though none of its entities had it ("Acme Bond Fund" MISCELLANEOUS -> BUSINESS).
- `extend_left`: a designated name takes the capitalised words directly before it ("Silicon"
  before "Valley Bank"), but not a stop word (The, Under) nor a title-case word that starts the
  sentence.

All four are on by default: a name needs a predicted entity, a designator mined from the corpus
and an unbroken run of name words, and relabelling needs a strong designator. Names never cross
line breaks, quotes, parentheses or the sentence end, never overlap, and never shrink an entity.
Capitals are compared case-insensitively, so text written all in capitals works as title case.

A new entity keeps the kb id of the first of its parts with its label that has one, and gets
`ent._.confidence` = the lowest confidence of its scored parts (none when none is scored), so
`annotate --min-confidence` treats it like its weakest piece.

The designators are saved inside the pipeline (to_disk/to_bytes), so a packaged model needs no
file at load time; the settings are the component's config.
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path

from ..evaluation import confidence as _confidence  # noqa: F401  (registers Doc._.ent_confidences and Span._.confidence)
from .names import Designators, check_designators, find_name_spans, mine_name_designators

DEFAULT_CONFIG: Dict[str, Any] = {
    "extend": True, "extend_left": True, "merge": True, "relabel": True, "strong_share": 0.9, "max_tokens": 12,
}


def check_settings(*, extend: bool, extend_left: bool, merge: bool, relabel: bool, strong_share: float,
                   max_tokens: int) -> None:
    """Raise ValueError for a bad component setting."""
    for name, value in (("extend", extend), ("extend_left", extend_left), ("merge", merge), ("relabel", relabel)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
    if isinstance(strong_share, bool) or not isinstance(strong_share, (int, float)) or not 0 < strong_share <= 1:
        raise ValueError(f"strong_share must be in (0, 1], not {strong_share!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
        raise ValueError(f"max_tokens must be an integer of at least 2, not {max_tokens!r}")


def apply_name_spans(doc: Doc, **settings: Any) -> Doc:
    """Replace a Doc's entities by the whole names they are part of (see `names.find_name_spans`).

    doc (Doc): The document, changed in place.
    settings: The arguments of `names.find_name_spans` (designators and the rules' settings).
    RETURNS (Doc): The document.
    """
    found = find_name_spans(doc, **settings)
    if not found:
        return doc
    replaced, scores = set(), list(doc._.ent_confidences or [])
    names = []
    for start, end, label, parts in found:
        kb_id = next((p.kb_id_ for p in parts if p.label_ == label and p.kb_id_), "")
        span_id = next((p.id_ for p in parts if p.label_ == label and p.id_), "")
        names.append(Span(doc, start, end, label=label, kb_id=kb_id, span_id=span_id))
        confidences = [p._.confidence for p in parts if p._.confidence is not None]
        replaced.update((p.start, p.end, p.label_) for p in parts)
        if confidences:
            scores.append([start, end, label, min(confidences)])
    kept = [ent for ent in doc.ents if (ent.start, ent.end, ent.label_) not in replaced]
    # every token of a replaced entity is inside its name: nothing becomes O
    doc.set_ents(sorted(kept + names, key=lambda s: s.start), default="unmodified")
    doc._.ent_confidences = [s for s in scores if tuple(s[:3]) not in replaced]
    return doc


class NameSpans:
    """Extends and merges entities into whole designated names (see the module docstring)."""

    def __init__(self, name: str = "name_spans", *, extend: bool = True, extend_left: bool = True, merge: bool = True,
                 relabel: bool = True, strong_share: float = 0.9, max_tokens: int = 12) -> None:
        check_settings(extend=extend, extend_left=extend_left, merge=merge, relabel=relabel, strong_share=strong_share,
                       max_tokens=max_tokens)
        self.name = name
        self.cfg: Dict[str, Any] = {"extend": extend, "extend_left": extend_left, "merge": merge, "relabel": relabel,
                                    "strong_share": float(strong_share), "max_tokens": max_tokens}
        self.designators: Designators = {}

    @property
    def labels(self) -> tuple:
        """The labels that have designators, sorted."""
        return tuple(sorted(label for label, words in self.designators.items() if words))

    def set_designators(self, designators: Mapping[str, Any]) -> None:
        """Replace the designators, after checking them.

        designators (Mapping[str, Any]): {label: {word: share}} (`mine-name-designators`) or
            {label: [word, ...]} (each a strong designator).
        """
        self.designators = check_designators(designators)

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, designators: Optional[Union[str, Path, Mapping[str, Any]]] = None,
                   min_count: int = 3, min_share: float = 0.5) -> None:
        """Set the designators: from a JSON file or dict, else mined from the reference Docs of the
        training examples.

        get_examples (Optional[Callable[[], Iterable[Example]]]): The training examples.
        nlp (Optional[Language]): Unused.
        designators (Optional[Union[str, Path, Mapping]]): See `set_designators`.
        min_count, min_share: See `names.mine_name_designators` (when mining).
        """
        if isinstance(designators, (str, Path)):
            designators = srsly.read_json(designators)
        if designators is None:
            if get_examples is None:
                raise ValueError(f"{self.name}: initialize needs the designators or the training examples")
            designators = mine_name_designators((eg.reference for eg in get_examples()), min_count=min_count,
                                                min_share=min_share)
        self.set_designators(designators)

    def __call__(self, doc: Doc) -> Doc:
        if not self.designators or not doc.ents:
            return doc
        return apply_name_spans(doc, designators=self.designators, **self.cfg)

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterable[Doc]:
        for doc in stream:
            yield self(doc)

    # Only the designators are serialized: the settings live in the pipeline config, so
    # `spacy.load(path, config={"components.name_spans.relabel": False})` measures a rule alone.
    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"designators": self.designators})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "NameSpans":
        self.set_designators(srsly.msgpack_loads(bytes_data)["designators"])
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "designators.json", self.designators)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "NameSpans":
        self.set_designators(srsly.read_json(ensure_path(path) / "designators.json"))
        return self


@Language.factory("name_spans", assigns=["doc.ents"], default_config=DEFAULT_CONFIG)
def make_name_spans(nlp: Language, name: str, extend: bool, extend_left: bool, merge: bool, relabel: bool,
                    strong_share: float, max_tokens: int) -> NameSpans:
    """Create the `name_spans` component (empty; set its designators with `initialize` or
    `set_designators`, or add it with `add_name_spans`).

    nlp (Language): The pipeline.
    name (str): The component name.
    extend (bool): Extend an entity over the name words after it up to a designator of its label.
    extend_left (bool): Extend a designated name over the capitalised words directly before it.
    merge (bool): Merge entities joined by name words into one name that ends in a designator.
    relabel (bool): Give a name the label its designator strongly indicates, though none of its
        entities had it.
    strong_share (float): Least share of a designator that can relabel, in (0, 1].
    max_tokens (int): Longest name, in tokens (at least 2).
    RETURNS (NameSpans): The component.
    """
    return NameSpans(name, extend=extend, extend_left=extend_left, merge=merge, relabel=relabel,
                     strong_share=strong_share, max_tokens=max_tokens)


def add_name_spans(nlp: Language, *, designators: Mapping[str, Any], name: str = "name_spans",
                   after: Optional[str] = None, **settings: Any) -> NameSpans:
    """Add the component to a trained pipeline (replacing one of the same name): after `after`,
    else after `legal_knowledge` or `ner`, else before `entity_consistency` or `case_restorer`,
    else last.

    nlp (Language): The pipeline; changed in place.
    designators (Mapping[str, Any]): See `NameSpans.set_designators`.
    name (str): The component name.
    after (Optional[str]): The component to follow (e.g. the knowledge component just added).
    settings: The factory settings (`DEFAULT_CONFIG` for those not given).
    RETURNS (NameSpans): The added component.
    """
    unknown = sorted(set(settings) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"unknown name_spans settings: {', '.join(unknown)}")
    checked = check_designators(designators)  # before the pipeline changes
    if after is not None and (after not in nlp.pipe_names or after == name):
        raise ValueError(f"no component {after!r} to add {name} after: the pipeline has {', '.join(nlp.pipe_names)}")
    if name in nlp.pipe_names:
        nlp.remove_pipe(name)
    anchors: Sequence[Dict[str, str]] = [{"after": after}] if after else []
    anchors = [*anchors, *({"after": a} for a in ("legal_knowledge", "ner") if a in nlp.pipe_names),
               *({"before": b} for b in ("entity_consistency", "case_restorer") if b in nlp.pipe_names)]
    component = nlp.add_pipe("name_spans", name=name, config={**DEFAULT_CONFIG, **settings}, **(anchors[0] if anchors else {}))
    component.set_designators(checked)
    return component
