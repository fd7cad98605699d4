"""Discriminative learning rates: task heads learn faster than the pretrained transformer.

spaCy trains every component with one optimizer and one learning rate. A rate small
enough for a pretrained transformer (5e-5 to 2e-4) leaves a freshly initialised
transition-based NER head learning slowly, and a rate large enough for the head
destabilises the transformer. `spacy_domain_ner.Adam.v1` is thinc's Adam with one
addition: parameters of the Hugging Face model (PyTorch parameters, whose names are
dotted module paths such as `encoder.layer.0.attention.self.query.weight`) get the
scheduled learning rate, every other parameter (thinc layers: the NER heads, the
listeners' pooling) gets it times `head_lr_scale`.

    [training.optimizer]
    @optimizers = "spacy_domain_ner.Adam.v1"
    head_lr_scale = 5.0
"""
from typing import Any, Tuple

from spacy.util import registry
from thinc.api import Optimizer
from thinc.optimizers import FloatOrSeq
from thinc.types import FloatsXd


def is_transformer_param(key: Tuple[int, str]) -> bool:
    """Whether an optimizer key names a PyTorch (transformer) parameter.

    key (Tuple[int, str]): The (node or shim id, parameter name) key thinc passes to the optimizer.
    RETURNS (bool): True for dotted PyTorch parameter names, False for thinc parameters ("W", "b", ...).
    """
    return "." in key[1]


class HeadScaledOptimizer(Optimizer):
    """thinc's Optimizer with the learning rate of non-transformer parameters scaled."""

    def __init__(self, learn_rate: FloatOrSeq, *, head_lr_scale: float, **kwargs: Any) -> None:
        super().__init__(learn_rate, **kwargs)
        self.head_lr_scale = head_lr_scale

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0):
        if not is_transformer_param(key):
            lr_scale *= self.head_lr_scale
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


@registry.optimizers("spacy_domain_ner.Adam.v1")
def adam_v1(
    learn_rate: FloatOrSeq = 0.001,
    *,
    head_lr_scale: float = 1.0,
    L2: FloatOrSeq = 0.0,
    beta1: FloatOrSeq = 0.9,
    beta2: FloatOrSeq = 0.999,
    eps: FloatOrSeq = 1e-08,
    grad_clip: FloatOrSeq = 1.0,
    use_averages: bool = True,
    L2_is_weight_decay: bool = True,
) -> Optimizer:
    """Adam (as thinc's Adam.v1) whose non-transformer parameters learn head_lr_scale times faster.

    learn_rate (float or schedule): The transformer's learning rate.
    head_lr_scale (float): Multiplier of the learning rate for every parameter that is not a
        PyTorch parameter (the NER heads); 1.0 is plain Adam.v1.
    L2, beta1, beta2, eps, grad_clip, use_averages, L2_is_weight_decay: As in Adam.v1.
    RETURNS (Optimizer): The optimizer.
    """
    if not head_lr_scale > 0:
        raise ValueError(f"head_lr_scale must be > 0, not {head_lr_scale}")
    return HeadScaledOptimizer(
        learn_rate, head_lr_scale=head_lr_scale, L2=L2, beta1=beta1, beta2=beta2, eps=eps,
        grad_clip=grad_clip, use_averages=use_averages, L2_is_weight_decay=L2_is_weight_decay,
    )
