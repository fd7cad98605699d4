"""Length-bucketed inference for a spacy-transformers encoder.

spacy-transformers feeds every span of a batch of docs to the Hugging Face model as one
tensor, padded to the longest span. Two costs follow at inference: padding (spans of
128 spaCy tokens vary from ~130 to ~250 word pieces; on E-NER dev about a fifth of the
encoder's input was padding, docs/lab/speed.md) and, for one long document, a single huge forward pass (a 100,000-word
filing is ~1,000 spans at once: gigabytes of activations and a slower pass per token).

`enable_bucketing` patches the model's forward, for no-grad evaluation only: the spans are
sorted by length, run in chunks of at most `max_tokens` word pieces, each chunk cut to its
own longest span, and the outputs put back in order and re-padded: every real word piece gets
the value the plain forward gives it (padding positions hold zeros instead of values that
nothing reads). Training (grad enabled) takes the original path unchanged. The patch
lives on the module instance, not in its state_dict, so the saved weights are unchanged.
"""
import types
from functools import partial
from typing import Any

import torch


def bucketed_forward(self: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     *args: Any, max_tokens: int, **kwargs: Any) -> Any:
    """The module's forward over length-sorted chunks of the batch (see module docstring).

    self (torch.nn.Module): A Hugging Face encoder (BertModel, RobertaModel, ...).
    input_ids (torch.Tensor): (batch, length) word piece ids, right-padded.
    attention_mask (torch.Tensor): (batch, length), 1 for real word pieces.
    max_tokens (int): Most word pieces (rows x cut length) per chunk.
    RETURNS (Any): The model output, as the unchunked forward would return it.
    """
    forward = type(self).forward
    if self.training or torch.is_grad_enabled() or args or input_ids.shape[0] < 2:
        return forward(self, input_ids, attention_mask, *args, **kwargs)  # training: nothing added to its hot path
    config = getattr(self, "config", None)
    if any(kwargs.get(name, getattr(config, name, False)) for name in ("output_hidden_states", "output_attentions")):
        return forward(self, input_ids, attention_mask, **kwargs)  # tuples of per-layer outputs: not bucketed, and known before running
    lengths = attention_mask.sum(dim=1)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    if not bool((attention_mask.bool() == (positions[None, :] < lengths[:, None])).all()):
        return forward(self, input_ids, attention_mask, **kwargs)  # not right-padded
    order = torch.argsort(lengths, descending=True, stable=True)
    chunks, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, max_tokens // longest)
        chunks.append(order[start:start + size])
        start += size
    outputs = []
    for idx in chunks:
        cut = max(int(lengths[idx].max()), 1)
        sliced = {k: (v[idx, :cut] if torch.is_tensor(v) and v.dim() == 2 and v.shape == input_ids.shape else v)
                  for k, v in kwargs.items()}
        outputs.append((idx, forward(self, input_ids=input_ids[idx, :cut], attention_mask=attention_mask[idx, :cut], **sliced)))
    first = outputs[0][1]
    merged = {}
    for key, value in first.items():
        if not torch.is_tensor(value):  # an output the checks above did not foresee: the plain path
            return forward(self, input_ids, attention_mask, **kwargs)
        shape = (input_ids.shape[0], input_ids.shape[1], *value.shape[2:]) if value.dim() >= 3 else (input_ids.shape[0], *value.shape[1:])
        full = value.new_zeros(shape)
        for idx, out in outputs:
            part = out[key]
            if part.dim() >= 3:
                full[idx, : part.shape[1]] = part
            else:
                full[idx] = part
        merged[key] = full
    return type(first)(**merged)


def enable_bucketing(module: torch.nn.Module, *, max_tokens: int) -> torch.nn.Module:
    """Patch a Hugging Face encoder instance to run no-grad inference in length buckets.

    module (torch.nn.Module): The encoder; patched in place.
    max_tokens (int): Most word pieces per chunk; must be > 0.
    RETURNS (torch.nn.Module): The module.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, not {max_tokens}")
    # A bound method in the instance dict: deepcopy (e.g. quantize_dynamic) rebinds it to the copy.
    module.forward = types.MethodType(partial(bucketed_forward, max_tokens=max_tokens), module)
    return module
