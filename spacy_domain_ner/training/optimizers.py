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

Optionally, the encoder starts late ("linear probing, then fine-tuning",
Kumar et al. 2022): for the first `encoder_delay` steps only the heads learn on the pretrained
encoder's features - the encoder's parameters are not updated and its Adam moments not started,
so the gradients of a random head never reach it - then the encoder's rate rises linearly over
`encoder_warmup` steps to the schedule's value. The schedule itself (and the heads') is unchanged.
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


def encoder_lr_scale(step: int, *, delay: int, warmup: int) -> float:
    """The factor on the encoder's scheduled learning rate at a training step.

    step (int): Completed steps (schedule steps) before this update; the first update is step 0.
    delay (int): Steps during which the encoder is not updated (factor 0).
    warmup (int): Steps after the delay over which the factor rises linearly to 1 (0: at once).
    RETURNS (float): 0.0 while delayed, then (step - delay + 1) / warmup up to 1.0.
    """
    if step < delay:
        return 0.0
    if warmup <= 0:
        return 1.0
    return min(1.0, (step - delay + 1) / warmup)


class HeadScaledOptimizer(Optimizer):
    """thinc's Optimizer with the learning rate of non-transformer parameters scaled and, optionally,
    the encoder's updates delayed (`encoder_delay` steps, then `encoder_warmup` steps of warm-up)."""

    def __init__(self, learn_rate: FloatOrSeq, *, head_lr_scale: float, encoder_delay: int = 0,
                 encoder_warmup: int = 0, **kwargs: Any) -> None:
        super().__init__(learn_rate, **kwargs)
        self.head_lr_scale = head_lr_scale
        self.encoder_delay = encoder_delay
        self.encoder_warmup = encoder_warmup
        self.steps_done = 0

    def step_schedules(self) -> None:
        super().step_schedules()
        self.steps_done += 1

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0):
        if not is_transformer_param(key):
            lr_scale *= self.head_lr_scale
        elif self.encoder_delay or self.encoder_warmup:
            factor = encoder_lr_scale(self.steps_done, delay=self.encoder_delay, warmup=self.encoder_warmup)
            if factor == 0.0:
                # no step, no Adam moments: the encoder starts fresh when the delay ends
                # (the caller zeroes the gradient, as after any update)
                return weights, gradient
            lr_scale *= factor
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


@registry.optimizers("spacy_domain_ner.Adam.v1")
def adam_v1(
    learn_rate: FloatOrSeq = 0.001,
    *,
    head_lr_scale: float = 1.0,
    encoder_delay: int = 0,
    encoder_warmup: int = 0,
    L2: FloatOrSeq = 0.0,
    beta1: FloatOrSeq = 0.9,
    beta2: FloatOrSeq = 0.999,
    eps: FloatOrSeq = 1e-08,
    grad_clip: FloatOrSeq = 1.0,
    use_averages: bool = True,
    L2_is_weight_decay: bool = True,
) -> Optimizer:
    """Adam (as thinc's Adam.v1) whose non-transformer parameters learn head_lr_scale times faster
    and whose encoder (the transformer's parameters) can start late.

    learn_rate (float or schedule): The transformer's learning rate.
    head_lr_scale (float): Multiplier of the learning rate for every parameter that is not a
        PyTorch parameter (the NER heads); 1.0 is plain Adam.v1.
    encoder_delay (int): Training steps during which only the heads learn (0: from the start).
    encoder_warmup (int): Steps after the delay over which the encoder's rate rises linearly to the
        schedule's value (0: at once).
    L2, beta1, beta2, eps, grad_clip, use_averages, L2_is_weight_decay: As in Adam.v1.
    RETURNS (Optimizer): The optimizer.
    """
    for name, value in (("encoder_delay", encoder_delay), ("encoder_warmup", encoder_warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
    if not head_lr_scale > 0:
        raise ValueError(f"head_lr_scale must be > 0, not {head_lr_scale}")
    return HeadScaledOptimizer(
        learn_rate, head_lr_scale=head_lr_scale, encoder_delay=encoder_delay, encoder_warmup=encoder_warmup,
        L2=L2, beta1=beta1, beta2=beta2, eps=eps, grad_clip=grad_clip, use_averages=use_averages,
        L2_is_weight_decay=L2_is_weight_decay,
    )
