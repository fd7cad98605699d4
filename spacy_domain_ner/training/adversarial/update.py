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
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry

from .gradients import merge_gradients, pipeline_parameters, take_gradients
from .perturbation import array_norm, next_delta, unit_direction
from .settings import AdversarialSettings, adversarial_loss_key, check_settings
from .tables import EmbeddingTable, find_embedding_tables, select_tables


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
        table.name: (0.0 if delta is None else array_norm(delta))
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
