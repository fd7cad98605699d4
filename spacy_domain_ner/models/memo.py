"""Inference memo: a prediction made during the confidence replay serves the next one on the same Docs.

The `entity_confidence` component replays the NER's greedy path right before `ner` parses the
same Docs, and both start with the NER's tok2vec (the transformer listener and the cased CNN),
a pure function of the Docs and the weights: computed twice, it was half of what the confidence
costs (`docs/lab/speed.md`). Inside `keeping_predictions(model)` (the replay), a node whose
forward is `memoized_forward` keeps the outputs of its predictions (the last `MAX_ENTRIES`:
spaCy's parser predicts a batch in four parts, and the replay is batched the same way) with the
Docs each was computed for; a later prediction on the same Doc objects (same lengths, same
transformer output on them) takes that output and removes it, so an output serves two calls at
most, a Doc that went through the transformer again misses, and a pipeline without the replay
keeps nothing. A training forward clears the memo, since the weights are about to change. Weights loaded into
the same model between the two calls (`from_bytes`) are not seen: load before predicting.
"""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from thinc.api import Model

# Per Doc: its identity, its length and the identity of the transformer output set on it.
DocsKey = Tuple[Tuple[int, int, int], ...]
Forward = Callable[[Model, Any, bool], Tuple[Any, Callable]]
# Predictions kept per node: a batch's parts (four, five with a remainder), with room to spare.
MAX_ENTRIES = 8


class Memo:
    """The last predictions of each memoized node, by the node's id (a copied node has its own)."""

    def __init__(self) -> None:
        # node id -> key -> (the Docs (held so that their ids are not reused), the outputs), oldest first
        self.entries: Dict[int, "OrderedDict[DocsKey, Tuple[List[Doc], Any]]"] = {}
        self.hits = 0
        self.keeping = 0  # > 0 inside keeping_predictions: predictions are kept


def docs_key(docs: Sequence[Doc]) -> DocsKey:
    """What a tok2vec's output depends on besides the weights: which Docs, their length, and the
    transformer output a listener reads from them (`doc._.trf_data`, replaced on every pass)."""
    has_trf = Doc.has_extension("trf_data")
    return tuple((id(doc), len(doc), id(doc._.trf_data) if has_trf else 0) for doc in docs)


def memoized_forward(model: Model, docs: List[Doc], is_train: bool, *, forward: Forward, memo: Memo) -> Tuple[Any, Callable]:
    """`forward`, whose prediction is reused once by a later prediction on the same Docs.

    model (Model): The node.
    docs (List[Doc]): Its input.
    is_train (bool): A training forward always computes, and clears the memo.
    forward (Forward): The node's own forward function.
    memo (Memo): Where the predictions are kept (only inside `keeping_predictions`).
    RETURNS (Tuple[Any, Callable]): The outputs and the backprop callback (a memo hit has none).
    """
    if is_train:
        memo.entries.pop(model.id, None)
        return forward(model, docs, is_train)
    kept = memo.entries.setdefault(model.id, OrderedDict())
    key = docs_key(docs)
    entry = kept.pop(key, None)
    if entry is not None:
        memo.hits += 1
        return list(entry[1]), _no_backprop
    outputs, backprop = forward(model, docs, is_train)
    if memo.keeping:
        kept[key] = (list(docs), outputs)
        while len(kept) > MAX_ENTRIES:
            kept.popitem(last=False)
    return list(outputs), backprop


@contextmanager
def keeping_predictions(model: Model) -> Iterator[None]:
    """Within the block, the memoized nodes of `model` keep their predictions for a later
    prediction on the same Docs (the replay, for `ner` after it).

    model (Model): E.g. the NER component's model.
    """
    memos = [memo for memo in (memo_of(node) for node in model.walk()) if memo is not None]
    for memo in memos:
        memo.keeping += 1
    try:
        yield
    finally:
        for memo in memos:
            memo.keeping -= 1


def memo_of(model: Model) -> Optional[Memo]:
    """The memo of a node built with `memoized_forward`, else None (for tests and benchmarks)."""
    keywords = getattr(model._func, "keywords", None) or {}
    memo = keywords.get("memo")
    return memo if isinstance(memo, Memo) else None


def _no_backprop(d_outputs: Any) -> Any:
    raise ValueError("a memoized prediction has no backward pass: run the forward with is_train=True")
