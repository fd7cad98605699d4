"""Adversarial training on embedding tables: FGM (Miyato et al.) and PGD (Madry et al.).

`spacy_domain_ner.adversarial_training.v1` is an `[initialize.after_init]`
callback. `[training.before_update]` never sees the batch, so the callback
instead replaces `nlp.update` of the initialized pipeline (after_init runs at
the end of `nlp.initialize`, i.e. inside `init_nlp`, before spaCy's training
loop calls `nlp.update`). Each wrapped call on a batch:

1. runs the clean forward/backward (gradients are isolated, so the gradient of
   THIS batch is read even when gradients accumulate across sub-batches);
2. perturbs the embedding tables: FGM r = eps * g / ||g||; PGD takes K steps of
   alpha * g / ||g||, each projected back to the eps ball, discarding the
   gradients of the K - 1 intermediate passes;
3. runs the perturbed forward/backward (the original `nlp.update` again, so
   every component listening to a shared embedding layer runs); its gradients
   are added to the clean ones and its loss is stored as `adv_<component>`;
4. puts the original weight arrays back (the very objects: bit-identical).

Tables are thinc parameters named "E" (HashEmbed inside MultiHashEmbed, Embed)
and the input embeddings of Hugging Face models inside PyTorch shims
(`get_input_embeddings()`, e.g. spacy-transformers). Arithmetic goes through
the arrays' own operators, so numpy, cupy and torch (CPU or CUDA) all work.
`[initialize]` callbacks are not run by `spacy.load`: a saved pipeline needs
neither this module nor the wrapper at inference.
"""
import itertools
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy.attrs
from spacy.language import Language
from spacy.training import Example
from spacy.util import registry
from thinc.api import Model
from thinc.compat import torch

METHODS = ("fgm", "pgd")
ADV_PREFIX = "adv_"
SECTION = "[initialize.after_init]"


def adversarial_loss_key(name: str) -> str:
    """The `losses` key of a component's loss on the perturbed pass.

    name (str): The component name.
    RETURNS (str): The key, e.g. "adv_ner" (the prefix keeps it apart from
        the clean column when spaCy's logger shortens long column names).
    """
    return f"{ADV_PREFIX}{name}"


@dataclass(frozen=True)
class AdversarialSettings:
    """Checked settings of the adversarial training callback."""

    method: str
    epsilon: float
    alpha: float
    steps: int
    start_step: int
    tables: Optional[Tuple[str, ...]]
    enabled: bool


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_settings(
    *,
    method: str,
    epsilon: float,
    alpha: float,
    steps: int,
    start_step: int,
    tables: Optional[Sequence[str]],
    enabled: bool,
) -> AdversarialSettings:
    """Validate the settings, so that a bad one stops the run at initialisation.

    method (str): "fgm" or "pgd".
    epsilon (float): Norm of the perturbation (FGM) or radius of the ball (PGD).
    alpha (float): PGD step size.
    steps (int): PGD number of steps K.
    start_step (int): First training step (0-based) that is adversarial.
    tables (Optional[Sequence[str]]): Table names to perturb; None for all.
    enabled (bool): False makes the callback a no-op.
    RETURNS (AdversarialSettings): The settings.
    """
    if method not in METHODS:
        raise ValueError(f"{SECTION} method must be one of {list(METHODS)}, got {method!r}")
    if not _positive(epsilon):
        raise ValueError(f"{SECTION} epsilon must be a finite number > 0, got {epsilon!r}")
    if method == "pgd" and not _positive(alpha):
        raise ValueError(
            f"{SECTION} alpha (the PGD step size) must be a finite number > 0, got {alpha!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{SECTION} steps (PGD's K) must be an integer >= 1, got {steps!r}")
    if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"{SECTION} start_step must be an integer >= 0, got {start_step!r}")
    if tables is not None and len(tables) == 0:
        raise ValueError(
            f"{SECTION} tables is empty: name tables, or set it to null to perturb every table"
        )
    return AdversarialSettings(
        method=method,
        epsilon=float(epsilon),
        alpha=float(alpha),
        steps=steps,
        start_step=start_step,
        tables=None if tables is None else tuple(dict.fromkeys(tables)),
        enabled=enabled,
    )


@registry.callbacks("spacy_domain_ner.adversarial_training.v1")
def adversarial_training_v1(
    *,
    method: str = "fgm",
    epsilon: float = 1.0,
    alpha: float = 0.3,
    steps: int = 3,
    start_step: int = 0,
    tables: Optional[List[str]] = None,
    enabled: bool = True,
) -> Callable[[Language], Language]:
    """Adversarial training on embedding tables, for `[initialize.after_init]`.

    method (str): "fgm" (one step of norm epsilon) or "pgd" (K projected steps).
    epsilon (float): Norm of the perturbation of each table (FGM), or the radius
        of the ball it is projected to (PGD).
    alpha (float): PGD step size (unused by FGM).
    steps (int): PGD number of steps K (unused by FGM).
    start_step (int): First training step (0-based, as in the log) that is adversarial.
    tables (Optional[List[str]]): Tables to perturb, e.g. ["tok2vec.NORM"] or
        ["transformer.embeddings.word_embeddings"]; null perturbs all of them.
    enabled (bool): False leaves the pipeline and its training untouched.
    RETURNS (Callable[[Language], Language]): Installs the wrapper on nlp.update.
    """
    settings = check_settings(
        method=method,
        epsilon=epsilon,
        alpha=alpha,
        steps=steps,
        start_step=start_step,
        tables=tables,
        enabled=enabled,
    )
    return partial(install_adversarial_training, settings=settings)


class EmbeddingTable:
    """An embedding matrix that can be read, swapped and restored."""

    name: str

    def get_weights(self) -> Any:
        raise NotImplementedError

    def set_weights(self, value: Any) -> None:
        raise NotImplementedError

    def get_grad(self) -> Optional[Any]:
        raise NotImplementedError


class ThincTable(EmbeddingTable):
    """A thinc parameter "E" (HashEmbed, Embed)."""

    def __init__(self, name: str, node: Model) -> None:
        self.name = name
        self.node = node

    def get_weights(self) -> Any:
        return self.node.get_param("E")

    def set_weights(self, value: Any) -> None:
        self.node.set_param("E", value)

    def get_grad(self) -> Optional[Any]:
        return self.node.get_grad("E") if self.node.has_grad("E") else None


class TorchTable(EmbeddingTable):
    """The input embedding weight of a PyTorch (Hugging Face) model."""

    def __init__(self, name: str, param: Any) -> None:
        self.name = name
        self.param = param

    def get_weights(self) -> Any:
        return self.param.data

    def set_weights(self, value: Any) -> None:
        # Swapping .data keeps the Parameter (and its .grad) while the forward
        # pass reads the new values.
        self.param.data = value

    def get_grad(self) -> Optional[Any]:
        return self.param.grad


def _torch_module(shim: Any) -> Optional[Any]:
    module = getattr(shim, "_model", None)
    return module if torch is not None and isinstance(module, torch.nn.Module) else None


def _attr_name(attr: Any) -> str:
    if isinstance(attr, int):
        return {v: k for k, v in spacy.attrs.IDS.items()}.get(attr, str(attr))
    return str(attr)


def _thinc_table_names(model: Model) -> Dict[int, str]:
    # MultiHashEmbed: chain(FeatureExtractor(attrs), ..., concatenate(HashEmbed(column=i)...)).
    names: Dict[int, str] = {}
    for node in model.walk():
        extractors = [layer for layer in node.layers if layer.name == "extract_features"]
        if len(extractors) != 1:
            continue
        columns = extractors[0].attrs.get("columns", [])
        for sub in node.walk():
            column = sub.attrs.get("column") if sub.name == "hashembed" else None
            if isinstance(column, int) and column < len(columns):
                names.setdefault(sub.id, _attr_name(columns[column]))
    return names


def _component_tables(pipe_name: str, model: Model, seen: set) -> List[EmbeddingTable]:
    tables: List[EmbeddingTable] = []
    attr_names = _thinc_table_names(model)
    for node in model.walk():
        if node.id in seen:
            continue
        seen.add(node.id)
        if "E" in node.param_names and node.has_param("E"):
            local = attr_names.get(node.id, f"{node.name}{len(tables)}")
            tables.append(ThincTable(f"{pipe_name}.{local}", node))
        for shim in node.shims:
            module = _torch_module(shim)
            if module is None:
                continue
            getter = getattr(module, "get_input_embeddings", None)
            embeddings = getter() if getter is not None else None
            weight = getattr(embeddings, "weight", None)
            if weight is None or id(weight) in seen:
                continue
            seen.add(id(weight))
            local = next(
                (qual for qual, sub in module.named_modules() if sub is embeddings),
                "input_embeddings",
            )
            tables.append(TorchTable(f"{pipe_name}.{local}", weight))
    return tables


def find_embedding_tables(nlp: Language) -> Dict[str, EmbeddingTable]:
    """Find the embedding tables of the components that are trained.

    Frozen components and components disabled in the config are skipped;
    components disabled only while `init_nlp` initializes (frozen, resumed)
    are seen through `nlp.components`.

    nlp (Language): An initialized pipeline.
    RETURNS (Dict[str, EmbeddingTable]): Tables by name, "<component>.<table>".
    """
    config = nlp.config.interpolate()
    skipped = set(config.get("training", {}).get("frozen_components", []) or [])
    skipped.update(config.get("nlp", {}).get("disabled", []) or [])
    tables: Dict[str, EmbeddingTable] = {}
    seen: set = set()
    for name, proc in nlp.components:
        model = getattr(proc, "model", None)
        if name in skipped or not isinstance(model, Model):
            continue
        for table in _component_tables(name, model, seen):
            key, n = table.name, 1
            while key in tables:
                n += 1
                key = f"{table.name}_{n}"
            table.name = key
            tables[key] = table
    return tables


def select_tables(
    available: Dict[str, EmbeddingTable], names: Optional[Sequence[str]]
) -> List[EmbeddingTable]:
    """Pick the tables named in the settings.

    available (Dict[str, EmbeddingTable]): Output of find_embedding_tables.
    names (Optional[Sequence[str]]): The names, or None for all tables.
    RETURNS (List[EmbeddingTable]): The tables to perturb.
    """
    if not available:
        raise ValueError(
            f"{SECTION} adversarial training found no embedding table in the trained "
            "components: it perturbs thinc 'E' tables (HashEmbed in MultiHashEmbed, Embed) "
            "and the input embeddings of Hugging Face transformers; frozen and disabled "
            "components are skipped"
        )
    if names is None:
        return list(available.values())
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(
            f"{SECTION} tables: unknown embedding table(s) {unknown}; this pipeline has "
            f"{list(available)} (frozen and disabled components are skipped)"
        )
    return [available[name] for name in names]


def _norm(array: Any) -> float:
    # (x * x).sum() works alike on numpy, cupy and torch arrays, on any device.
    return math.sqrt(float((array * array).sum()))


def unit_direction(grad: Optional[Any]) -> Optional[Any]:
    """g / ||g||, or None when there is no usable gradient (absent, zero, inf/nan).

    grad (Optional[Any]): A gradient array or tensor.
    RETURNS (Optional[Any]): The unit vector.
    """
    if grad is None:
        return None
    norm = _norm(grad)
    if not (math.isfinite(norm) and norm > 0):
        return None
    return grad * (1.0 / norm)


def next_delta(
    delta: Optional[Any], direction: Optional[Any], *, settings: AdversarialSettings
) -> Optional[Any]:
    """One attack step on a table's perturbation.

    delta (Optional[Any]): The current perturbation (None: none yet).
    direction (Optional[Any]): g / ||g|| at the current point (None: no gradient).
    settings (AdversarialSettings): Method, epsilon, alpha.
    RETURNS (Optional[Any]): The new perturbation.
    """
    if direction is None:
        return delta
    if settings.method == "fgm":
        return direction * settings.epsilon
    delta = direction * settings.alpha if delta is None else delta + direction * settings.alpha
    norm = _norm(delta)
    if norm > settings.epsilon:
        delta = delta * (settings.epsilon / norm)
    return delta


@dataclass
class SavedGradients:
    """Gradients moved out of the parameters, so the next pass starts from zero."""

    thinc: List[Tuple[Model, str, Optional[Any]]] = field(default_factory=list)
    torch: List[Tuple[Any, Optional[Any]]] = field(default_factory=list)


def pipeline_parameters(nlp: Language) -> Tuple[List[Tuple[Model, str]], List[Any]]:
    """Every parameter of the active components' models, each once.

    nlp (Language): The pipeline.
    RETURNS (Tuple[List[Tuple[Model, str]], List[Any]]): thinc (node, name)
        pairs, and the torch parameters of PyTorch shims.
    """
    thinc_params: List[Tuple[Model, str]] = []
    torch_params: List[Any] = []
    seen: set = set()
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if not isinstance(model, Model):
            continue
        for node in model.walk():
            if node.id in seen:
                continue
            seen.add(node.id)
            thinc_params.extend((node, name) for name in node.param_names)
            for shim in node.shims:
                module = _torch_module(shim)
                for param in module.parameters() if module is not None else ():
                    if id(param) not in seen:
                        seen.add(id(param))
                        torch_params.append(param)
    return thinc_params, torch_params


def take_gradients(nlp: Language) -> SavedGradients:
    """Move every gradient of the pipeline's models out, leaving zero gradients.

    Isolating each pass gives this batch's gradient exactly under gradient
    accumulation, and keeps thinc's PyTorch grad scaler (mixed precision),
    which unscales all accumulated gradients after each backward pass, from
    rescaling gradients of earlier passes.

    nlp (Language): The pipeline.
    RETURNS (SavedGradients): What to give back to merge_gradients.
    """
    saved = SavedGradients()
    thinc_params, torch_params = pipeline_parameters(nlp)
    for node, name in thinc_params:
        grad = node.get_grad(name) if node.has_grad(name) else None
        if grad is not None:
            node.set_grad(name, node.ops.alloc(grad.shape, dtype=grad.dtype))
        saved.thinc.append((node, name, grad))
    for param in torch_params:
        saved.torch.append((param, param.grad))
        param.grad = None
    return saved


def merge_gradients(saved: SavedGradients, *, keep: bool) -> None:
    """Give the saved gradients back, adding this pass's gradients or not.

    saved (SavedGradients): From take_gradients.
    keep (bool): Add the gradients of the pass since take_gradients (True) or
        discard them (False).
    """
    for node, name, grad in saved.thinc:
        fresh = node.get_grad(name) if node.has_grad(name) else None
        if grad is None:
            if fresh is not None and not keep:
                # thinc cannot unset a gradient; zero is what the optimizer leaves.
                node.set_grad(name, node.ops.alloc(fresh.shape, dtype=fresh.dtype))
            continue
        if keep and fresh is not None:
            grad += fresh
        node.set_grad(name, grad)
    for param, grad in saved.torch:
        if grad is None:
            if not keep:
                param.grad = None
            continue
        if keep and param.grad is not None:
            grad.add_(param.grad)
        param.grad = grad


@dataclass
class AdversarialState:
    """What the wrapped nlp.update works with, plus a record for logs and tests."""

    nlp: Language
    update: Callable[..., Dict[str, float]]
    settings: AdversarialSettings
    tables: List[EmbeddingTable]
    step: int = -1
    stepped: bool = True
    n_adversarial: int = 0
    last_norms: Dict[str, float] = field(default_factory=dict)


def install_adversarial_training(nlp: Language, *, settings: AdversarialSettings) -> Language:
    """Wrap nlp.update with adversarial training (the after_init callback).

    nlp (Language): The initialized pipeline.
    settings (AdversarialSettings): Checked settings.
    RETURNS (Language): The same pipeline.
    """
    if not settings.enabled:
        return nlp
    tables = select_tables(find_embedding_tables(nlp), settings.tables)
    previous = get_adversarial_state(nlp)
    # Re-initializing must not stack a second wrapper on the first.
    update = previous.update if previous is not None else nlp.update
    state = AdversarialState(nlp=nlp, update=update, settings=settings, tables=tables)
    nlp.update = partial(adversarial_update, state=state)  # type: ignore[method-assign]
    return nlp


def get_adversarial_state(nlp: Language) -> Optional[AdversarialState]:
    """The state of the adversarial wrapper on nlp.update, if installed.

    nlp (Language): The pipeline.
    RETURNS (Optional[AdversarialState]): The state, or None.
    """
    update = nlp.__dict__.get("update")
    if isinstance(update, partial) and update.func is adversarial_update:
        return update.keywords["state"]
    return None


def _is_new_step(state: AdversarialState) -> bool:
    # A call given an optimizer ends its step. spaCy's training loop passes
    # sgd=False and steps the optimizer itself, which zeroes every gradient
    # (thinc, PyTorchShim): all-zero gradients mean that no sub-batch of the
    # current step has run yet. The tables come first as they are rarely zero
    # (they are at a new pipeline's first step, whose output layers are zero).
    if state.stepped:
        return True
    thinc_params, torch_params = pipeline_parameters(state.nlp)
    grads = (table.get_grad() for table in state.tables)
    others = (node.get_grad(name) for node, name in thinc_params if node.has_grad(name))
    for grad in itertools.chain(grads, others, (param.grad for param in torch_params)):
        if grad is not None and bool(grad.any()):
            return False
    return True


def adversarial_update(
    examples: Iterable[Example],
    _: Optional[Any] = None,
    *,
    state: AdversarialState,
    drop: float = 0.0,
    sgd: Optional[Any] = None,
    losses: Optional[Dict[str, float]] = None,
    component_cfg: Optional[Dict[str, Dict[str, Any]]] = None,
    exclude: Iterable[str] = (),
    annotates: Iterable[str] = (),
) -> Dict[str, float]:
    """nlp.update with a clean and an adversarial forward/backward pass.

    Arguments as Language.update; state (AdversarialState) is bound by partial.
    RETURNS (Dict[str, float]): The losses, with "adv_<component>" keys added.
    """
    examples = list(examples)
    losses = {} if losses is None else losses
    kwargs = dict(drop=drop, component_cfg=component_cfg, exclude=exclude, annotates=annotates)
    if _is_new_step(state):
        state.step += 1
    state.stepped = sgd is not False
    if _ is not None or not examples or state.step < state.settings.start_step:
        return state.update(examples, _, sgd=sgd, losses=losses, **kwargs)
    saved = take_gradients(state.nlp)
    state.update(examples, sgd=False, losses=losses, **kwargs)
    directions = [unit_direction(table.get_grad()) for table in state.tables]
    merge_gradients(saved, keep=True)
    adv_losses = adversarial_passes(state, examples, directions=directions, kwargs=kwargs)
    for name, value in adv_losses.items():
        key = adversarial_loss_key(name)
        losses[key] = losses.get(key, 0.0) + float(value)
    if sgd is not False:
        _finish_update(state.nlp, sgd=sgd, exclude=exclude)
    return {key: float(value) for key, value in losses.items()}


def adversarial_passes(
    state: AdversarialState,
    examples: List[Example],
    *,
    directions: List[Optional[Any]],
    kwargs: Dict[str, Any],
) -> Dict[str, float]:
    """Perturb the tables, run the perturbed pass(es), restore the tables.

    state (AdversarialState): Tables and settings; state.update is the plain update.
    examples (List[Example]): The batch.
    directions (List[Optional[Any]]): Unit clean gradients, one per table.
    kwargs (Dict[str, Any]): drop, component_cfg, exclude, annotates.
    RETURNS (Dict[str, float]): Losses of the final perturbed pass (empty when
        no table had a gradient, in which case no pass runs).
    """
    settings = state.settings
    n_passes = settings.steps if settings.method == "pgd" else 1
    originals = [table.get_weights() for table in state.tables]
    deltas: List[Optional[Any]] = [None] * len(state.tables)
    pass_losses: Dict[str, float] = {}
    try:
        for k in range(n_passes):
            deltas = [next_delta(d, u, settings=settings) for d, u in zip(deltas, directions)]
            if all(delta is None for delta in deltas):
                state.last_norms = {}
                return {}
            for table, original, delta in zip(state.tables, originals, deltas):
                table.set_weights(original if delta is None else original + delta)
            final = k == n_passes - 1
            saved = take_gradients(state.nlp)
            pass_losses = {}
            state.update(examples, sgd=False, losses=pass_losses, **kwargs)
            if not final:
                directions = [unit_direction(table.get_grad()) for table in state.tables]
            merge_gradients(saved, keep=final)
    finally:
        for table, original in zip(state.tables, originals):
            table.set_weights(original)
    state.n_adversarial += 1
    state.last_norms = {
        table.name: (0.0 if delta is None else _norm(delta))
        for table, delta in zip(state.tables, deltas)
    }
    return {name: float(value) for name, value in pass_losses.items()}


def _finish_update(nlp: Language, *, sgd: Optional[Any], exclude: Iterable[str]) -> None:
    # As Language.update does when it is given an optimizer (or None: its own).
    if sgd is None:
        if nlp._optimizer is None:
            nlp._optimizer = nlp.create_optimizer()
        sgd = nlp._optimizer
    exclude = set(exclude)
    for name, proc in nlp.pipeline:
        if (
            name not in exclude
            and getattr(proc, "is_trainable", False)
            and getattr(proc, "model", None) not in (True, False, None)
        ):
            proc.finish_update(sgd)
