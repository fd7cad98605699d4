"""Case-aware token vectors: a transformer listener next to a small cased hash-embedding tok2vec.

The default transformer (MiniLM-L6, uncased) never sees that `SCBV` or `SunGard` is
written in capitals, yet in SEC filings word shape carries much of the signal for company
names defined in each filing. `spacy_domain_ner.CaseAwareListener.v1` concatenates, per
token, the listener's output with a hash-embedding tok2vec over ORTH, NORM, SHAPE, PREFIX
and SUFFIX (and the pipeline's static vectors, if asked), encoded by a small CNN, so the NER
head sees both the contextual (uncased) and the orthographic (cased) view:

    [components.ner.model.tok2vec]
    @architectures = "spacy_domain_ner.CaseAwareListener.v1"
    width = 96

    [components.ner.model.tok2vec.listener]
    @architectures = "spacy-transformers.TransformerListener.v1"
    grad_factor = 1.0
    pooling = {"@layers":"reduce_mean.v1"}

The listener may serve a head that is not the last listener of its transformer, as the legal
head of a multi-task pipeline: spacy-transformers hands such a listener a backward callback that
only accumulates and returns None, which the concatenation could not add to the cased side's input
gradient. The listener is therefore wrapped (`tolerate_no_input_gradient`) to read that None as
"no input gradient"; the wrapper has no weights and changes no output.

At inference the concatenation's output is kept for the next prediction on the same Docs
(`models.memo`): the `entity_confidence` replay and `ner` then compute it once between them.
"""
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.layers.concatenate import forward as concatenate_forward
from thinc.layers.concatenate import init as concatenate_init
from thinc.types import Floats2d

from .memo import Memo, memoized_forward

DEFAULT_ATTRS = ("ORTH", "NORM", "SHAPE", "PREFIX", "SUFFIX")
DEFAULT_ROWS = (5000, 5000, 1000, 2500, 2500)


def build_case_tok2vec(
    *, width: int, attrs: Sequence[str], rows: Sequence[int], depth: int, window_size: int,
    include_static_vectors: bool,
) -> Model[List[Doc], List[Floats2d]]:
    """The cased side: spaCy's MultiHashEmbed.v2 and MaxoutWindowEncoder.v2, as spaCy's CNN tok2vec.

    width (int): Output width per token.
    attrs (Sequence[str]): Token attributes to embed (ORTH keeps case; SHAPE is `Xxxx`/`XXXX`/`dd`).
    rows (Sequence[int]): Hash-table rows per attribute.
    depth (int): CNN layers over the embeddings (0: embeddings only).
    window_size (int): Tokens on each side seen by one CNN layer.
    include_static_vectors (bool): Also embed the pipeline's static vectors (e.g. floret).
    RETURNS (Model[List[Doc], List[Floats2d]]): The tok2vec.
    """
    embed = registry.architectures.get("spacy.MultiHashEmbed.v2")(
        width=width, attrs=list(attrs), rows=list(rows), include_static_vectors=include_static_vectors
    )
    if depth == 0:
        return embed
    encode = registry.architectures.get("spacy.MaxoutWindowEncoder.v2")(
        width=width, depth=depth, window_size=window_size, maxout_pieces=3
    )
    return registry.architectures.get("spacy.Tok2Vec.v2")(embed=embed, encode=encode)


def _no_grad_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    outputs, backprop = model.layers[0](docs, is_train)

    def backprop_docs(d_outputs: List[Floats2d]) -> list:
        d_docs = backprop(d_outputs)
        return [] if d_docs is None else d_docs  # Docs have no gradient; None from a non-last listener

    return outputs, backprop_docs


def _no_grad_init(model: Model, X: Optional[List[Doc]] = None, Y: Optional[List[Floats2d]] = None) -> None:
    listener = model.layers[0]
    listener.initialize(X=X, Y=Y)
    if listener.has_dim("nO"):
        model.set_dim("nO", listener.get_dim("nO"))


def tolerate_no_input_gradient(listener: Model[List[Doc], List[Floats2d]]) -> Model[List[Doc], List[Floats2d]]:
    """The listener, its backward pass returning [] where it returned None.

    listener (Model[List[Doc], List[Floats2d]]): E.g. spacy-transformers' TransformerListener.
    RETURNS (Model[List[Doc], List[Floats2d]]): The wrapped listener (no weights of its own).
    """
    n_out = listener.get_dim("nO") if listener.has_dim("nO") else None
    return Model("listener_input_grad", _no_grad_forward, init=_no_grad_init, layers=[listener], dims={"nO": n_out})


def case_aware_listener(
    listener: Model[List[Doc], List[Floats2d]], case_tok2vec: Model[List[Doc], List[Floats2d]]
) -> Model[List[Doc], List[Floats2d]]:
    """Concatenate, per token, the listener's vectors with the cased tok2vec's (thinc's
    `concatenate`, its prediction memoized for the next one on the same Docs: `models.memo`).

    listener (Model[List[Doc], List[Floats2d]]): E.g. spacy-transformers' TransformerListener.
    case_tok2vec (Model[List[Doc], List[Floats2d]]): See `build_case_tok2vec`.
    RETURNS (Model[List[Doc], List[Floats2d]]): Vectors of width listener + case width.
    """
    layers = [listener, case_tok2vec]
    # the dimensions thinc's concatenate declares, so saved pipelines load into this node unchanged
    dims = {"nO": None, "nI": None} if all(layer.has_dim("nI") in (True, None) for layer in layers) else {"nO": None}
    forward = partial(memoized_forward, forward=concatenate_forward, memo=Memo())
    return Model("case_aware_listener", forward, init=concatenate_init, dims=dims, layers=layers)


@registry.architectures("spacy_domain_ner.CaseAwareListener.v1")
def case_aware_listener_v1(
    *,
    listener: Model[List[Doc], List[Floats2d]],
    width: int = 96,
    attrs: List[str] = list(DEFAULT_ATTRS),
    rows: List[int] = list(DEFAULT_ROWS),
    depth: int = 2,
    window_size: int = 1,
    include_static_vectors: bool = False,
) -> Model[List[Doc], List[Floats2d]]:
    """A transformer listener whose token vectors are extended with cased orthographic features.

    listener (Model[List[Doc], List[Floats2d]]): The transformer listener; it may be one that is not
        its transformer's last listener (a multi-task pipeline's legal head).
    width (int): Width of the cased side.
    attrs (List[str]): Attributes of the hash embedding.
    rows (List[int]): Rows per attribute, one per attr.
    depth (int): CNN layers of the cased side (0: embeddings only).
    window_size (int): CNN window on each side.
    include_static_vectors (bool): Add the pipeline's static vectors to the cased side.
    RETURNS (Model[List[Doc], List[Floats2d]]): The combined tok2vec.
    """
    if width < 1:
        raise ValueError(f"width must be positive, not {width}")
    if not attrs or len(attrs) != len(rows):
        raise ValueError(f"attrs and rows must be non-empty and of one length, not {attrs} and {rows}")
    if any(r < 1 for r in rows):
        raise ValueError(f"every rows entry must be positive, not {rows}")
    if depth < 0 or window_size < 1:
        raise ValueError(f"depth must be >= 0 and window_size >= 1, not {depth} and {window_size}")
    case = build_case_tok2vec(
        width=width, attrs=attrs, rows=rows, depth=depth, window_size=window_size,
        include_static_vectors=include_static_vectors,
    )
    return case_aware_listener(tolerate_no_input_gradient(listener), case)
