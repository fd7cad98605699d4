"""A batch-invariant int8 Linear layer for CPU inference.

`torch.ao.quantization.quantize_dynamic` quantizes each Linear input with one scale for the
whole tensor: the largest activation of any row (any document of the batch, padding included)
sets the resolution of every other row, so a document's output depended on its batch. `Int8Linear`
quantizes each row (each word piece) with its own scale instead, and its weights with one scale
per output channel:

    y[i, j] = float32(sum_k xq[i, k] * wq[j, k]) * sx[i] * sw[j] + b[j]

The sum is an exact int32 product (`torch._int_mm`, oneDNN on CPU), and every
other step is an elementwise or max operation on the row alone, so a row's output is bitwise the
same whatever the other rows of the batch and however the batch is split across threads.

A Linear layer is not all of it: attention sums over the padded length, and float32 matrix
products (the layers kept in float) may take other kernels for other numbers of rows, so a row's
result also depended on how far its batch was padded. `invariant_forward` therefore runs the
encoder on chunks of spans that share one padded length, a function of the span's own length
only (`padded_length`), so every span always sees the same shapes. That float32 matrix products
give a row the same bits for any number of rows (16 or more), attention the same for any number
of sequences of one length, and torch's elementwise functions the same wherever an element lies
in a tensor is what tests/test_quantize.py checks on the CPU it runs on (and was measured with
1 to 5 threads on an AVX-512 CPU, torch 2.13); it is not promised by the libraries.
"""
import types
from functools import partial
from typing import Any, Dict, Iterable, List, Optional

import torch

# Activations and weights are quantized symmetrically to [-127, 127]: no zero points to
# correct for, and a value and its negation get opposite codes.
QMAX = 127.0


class Int8Linear(torch.nn.Module):
    """torch.nn.Linear with int8 weights (a scale per output channel) and int8 activations
    (a scale per row, computed at each call)."""

    def __init__(self, *, weight_t: torch.Tensor, weight_scale: torch.Tensor, bias: Optional[torch.Tensor]) -> None:
        """Use `Int8Linear.from_float` to build one.

        weight_t (torch.Tensor): (in_features, out_features) int8, contiguous: the transposed
            quantized weight, the layout `torch._int_mm` reads fastest (and correctly for in_features 1).
        weight_scale (torch.Tensor): (out_features,) float32, one scale per output channel.
        bias (Optional[torch.Tensor]): (out_features,) float32, or None.
        """
        super().__init__()
        self.in_features, self.out_features = weight_t.shape
        self.register_buffer("weight_t", weight_t)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)

    @classmethod
    def from_float(cls, linear: torch.nn.Linear) -> "Int8Linear":
        """Quantize a float Linear layer's weights, per output channel.

        linear (torch.nn.Linear): The layer, on CPU; left unchanged.
        RETURNS (Int8Linear): The int8 layer.
        """
        with torch.no_grad():
            weight = linear.weight.detach().float()
            weight_scale = row_scales(weight)
            weight_t = quantize_rows(weight, weight_scale).t().contiguous()
            bias = None if linear.bias is None else linear.bias.detach().float().clone()
        return cls(weight_t=weight_t, weight_scale=weight_scale.squeeze(1).contiguous(), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer.

        x (torch.Tensor): (..., in_features) float.
        RETURNS (torch.Tensor): (..., out_features), in x's dtype.
        """
        rows = x.reshape(-1, self.in_features).float()
        if rows.shape[0] == 0:
            return x.new_zeros((*x.shape[:-1], self.out_features))
        scale = row_scales(rows)
        out = torch._int_mm(quantize_rows(rows, scale), self.weight_t).to(torch.float32)
        # Separate multiplies and add rather than a fused op: each is one correctly rounded IEEE
        # operation, so an element gets the same bits wherever it lies in the tensor.
        out.mul_(scale)
        out.mul_(self.weight_scale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def row_scales(x: torch.Tensor) -> torch.Tensor:
    """One symmetric int8 scale per row: the row's largest absolute value over 127.

    x (torch.Tensor): (rows, columns) float32.
    RETURNS (torch.Tensor): (rows, 1) float32; all-zero rows get a tiny positive scale.
    """
    # max(max, -min) rather than abs().amax() or the inf-norm: no (rows, columns) temporary, and the fastest on CPU
    largest = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_())
    return largest.clamp_(min=torch.finfo(torch.float32).tiny).div_(QMAX)


def quantize_rows(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Round each row to int8 with its scale.

    x (torch.Tensor): (rows, columns) float32.
    scale (torch.Tensor): (rows, 1) float32, from `row_scales`.
    RETURNS (torch.Tensor): (rows, columns) int8 in [-127, 127].
    """
    # No clamp needed: |x| / fl(max|x| / 127) stays below 127.5, so it rounds to 127 at most.
    return torch.div(x, scale).round_().to(torch.int8)


def swap_linear_layers(module: torch.nn.Module, names: Iterable[str]) -> Dict[str, Any]:
    """Replace the named Linear submodules of a module by `Int8Linear` layers, in place.

    module (torch.nn.Module): The model; the root itself cannot be swapped and is skipped.
    names (Iterable[str]): Submodule names, as `named_modules` gives them.
    RETURNS (Dict[str, Any]): The float Linear layers replaced, by name.
    """
    replaced = {}
    for name in sorted(set(names)):
        if not name:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        layer = getattr(parent, child)
        if not isinstance(layer, torch.nn.Linear):
            raise TypeError(f"{name} is a {type(layer).__name__}, not a torch.nn.Linear")
        setattr(parent, child, Int8Linear.from_float(layer))
        replaced[name] = layer
    return replaced


# Spans are padded to a multiple of this many word pieces: a float32 matrix product always gets
# 16 rows or more (fewer take another kernel in MKL), and little padding is added.
PAD_MULTIPLE = 16


def padded_length(length: int, *, limit: Optional[int]) -> int:
    """The length a span of `length` word pieces is padded to, whatever its batch.

    length (int): Real word pieces of the span.
    limit (Optional[int]): Most positions the model takes (max_position_embeddings), or None.
    RETURNS (int): length rounded up to a multiple of PAD_MULTIPLE (at least one), at most limit
        (but not below length).
    """
    padded = -(-max(length, 1) // PAD_MULTIPLE) * PAD_MULTIPLE
    return padded if limit is None else max(min(padded, limit), length)


def invariant_forward(self: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, *args: Any,
                      max_tokens: Optional[int], **kwargs: Any) -> Any:
    """The module's forward over chunks of spans of one `padded_length`, outputs put back in order.

    Every real word piece gets the value it gets in any other batch; padding positions hold
    zeros. Training (grad enabled), positional arguments, attention maps, tuple outputs and inputs
    that are not right-padded take the module's plain forward, which is not batch-invariant.

    self (torch.nn.Module): A Hugging Face encoder (BertModel, RobertaModel, ...).
    input_ids (torch.Tensor): (batch, length) word piece ids, right-padded.
    attention_mask (torch.Tensor): (batch, length), 1 for real word pieces.
    max_tokens (Optional[int]): Most word pieces (rows x padded length) per chunk; None: one
        chunk per padded length.
    RETURNS (Any): The model output, shaped as the plain forward returns it.
    """
    forward = type(self).forward
    config = getattr(self, "config", None)
    if (self.training or torch.is_grad_enabled() or args or input_ids is None or attention_mask is None
            or input_ids.dim() != 2 or not kwargs.get("return_dict", getattr(config, "use_return_dict", True))
            or kwargs.get("output_attentions", getattr(config, "output_attentions", False))):
        return forward(self, input_ids, attention_mask, *args, **kwargs)
    lengths = attention_mask.sum(dim=1)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    if not bool((attention_mask.bool() == (positions[None, :] < lengths[:, None])).all()):
        return forward(self, input_ids, attention_mask, **kwargs)
    batch, width = input_ids.shape
    real = attention_mask.bool()
    limit = getattr(config, "max_position_embeddings", None)
    pad_id = getattr(config, "pad_token_id", None) or 0  # RoBERTa gives padding its own position: pad with its id
    groups: Dict[int, List[int]] = {}
    for row, length in enumerate(lengths.tolist()):
        groups.setdefault(padded_length(int(length), limit=limit), []).append(row)
    outputs = []
    for padded, rows in sorted(groups.items(), reverse=True):
        size = len(rows) if max_tokens is None else max(1, max_tokens // padded)
        for start in range(0, len(rows), size):
            idx = torch.tensor(rows[start:start + size], device=input_ids.device)
            inputs = {key: _fit(value[idx], padded, pad=pad_id if key == "input_ids" else 0)
                      for key, value in (("input_ids", input_ids), ("attention_mask", attention_mask), *kwargs.items())
                      if torch.is_tensor(value) and value.shape == input_ids.shape}
            rest = {key: value for key, value in kwargs.items() if key not in inputs}
            outputs.append((idx, padded, forward(self, **inputs, **rest)))
    merged = {}
    for key, value in outputs[0][2].items():
        parts = [(idx, padded, out[key]) for idx, padded, out in outputs]
        if torch.is_tensor(value):
            merged[key] = _merge(parts, batch=batch, width=width, real=real)
        elif isinstance(value, tuple) and all(torch.is_tensor(t) for t in value):  # hidden states of every layer
            merged[key] = tuple(_merge([(idx, padded, part[i]) for idx, padded, part in parts], batch=batch, width=width, real=real)
                                for i in range(len(value)))
        else:  # an output not foreseen here: the plain path
            return forward(self, input_ids, attention_mask, **kwargs)
    return type(outputs[0][2])(**merged)


def _fit(value: torch.Tensor, length: int, *, pad: int) -> torch.Tensor:
    """Cut or right-pad a (rows, width) input to (rows, length)."""
    if value.shape[1] >= length:
        return value[:, :length]
    return torch.nn.functional.pad(value, (0, length - value.shape[1]), value=pad)


def _merge(parts: List[Any], *, batch: int, width: int, real: torch.Tensor) -> torch.Tensor:
    """Put chunk outputs, (rows, padded, ...) or (rows, ...), back into one (batch, width, ...) or (batch, ...),
    zeros at the padding positions (`real` False)."""
    first = parts[0][2]
    positional = first.dim() >= 3
    shape = (batch, width, *first.shape[2:]) if positional else (batch, *first.shape[1:])
    full = first.new_zeros(shape)
    for idx, padded, part in parts:
        if positional:
            keep = min(padded, width)
            full[idx, :keep] = part[:, :keep]
        else:
            full[idx] = part
    if positional:
        full[~real] = 0
    return full


def make_batch_invariant(module: torch.nn.Module, *, max_tokens: Optional[int]) -> None:
    """Patch a Hugging Face encoder instance to run no-grad inference through `invariant_forward`,
    in place of its forward (the length-bucketed one included: this one buckets too).

    module (torch.nn.Module): The encoder.
    max_tokens (Optional[int]): As in `invariant_forward`.
    """
    # A bound method in the instance dict, as spacy_domain_ner.models.bucketing does: deepcopy rebinds it.
    module.forward = types.MethodType(partial(invariant_forward, max_tokens=max_tokens), module)


def chunk_tokens(module: torch.nn.Module) -> Optional[int]:
    """The chunk size of the length-bucketed forward the module was patched with, if any.

    module (torch.nn.Module): A Hugging Face encoder.
    RETURNS (Optional[int]): Its `max_tokens` (spacy_domain_ner.models.bucketing or
        `make_batch_invariant`), or None when its forward is the class's own.
    """
    func = getattr(vars(module).get("forward"), "__func__", None)
    return func.keywords.get("max_tokens") if isinstance(func, partial) else None


def check_int_mm() -> None:
    """Raise RuntimeError unless this torch multiplies int8 matrices exactly on CPU (`torch._int_mm`)."""
    a = torch.tensor([[127, -127], [1, 2]], dtype=torch.int8)
    try:
        exact = torch.equal(torch._int_mm(a, a.t().contiguous()), a.int() @ a.int().t())
    except (AttributeError, RuntimeError) as err:
        raise RuntimeError(f"int8 quantization needs torch._int_mm on CPU, which torch {torch.__version__} lacks: {err}") from None
    if not exact:
        raise RuntimeError(f"torch._int_mm of torch {torch.__version__} is not exact on this CPU: int8 quantization would be wrong")
