"""The parameter gradients of the whole pipeline, saved before the perturbed pass and merged after it."""
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

from spacy.language import Language
from thinc.api import Model

from .tables import _torch_module


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
