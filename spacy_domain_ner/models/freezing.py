"""Freeze the input embeddings and the lowest layers of a Hugging Face encoder.

About half of a CPU fine-tuning step is the transformer's backward pass. A frozen layer needs
none: when the embeddings and the lowest k layers are frozen, autograd stops at layer k, and the
optimizer skips the frozen weights (thinc's PyTorchShim updates only weights with a gradient).
The word embeddings alone are half of MiniLM-L6's weights. On E-NER (embeddings and 2 of 6 layers
frozen) a CPU step got only a little cheaper and dev F1 fell (docs/lab/recipe.md).
"""
from typing import Any, Optional

import torch

# Where Hugging Face base models keep their stack of layers (BERT/RoBERTa, DistilBERT, BART-style).
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


def encoder_layers(module: torch.nn.Module) -> Optional[torch.nn.ModuleList]:
    """The encoder's stack of layers, or None when the architecture keeps it elsewhere."""
    for path in _LAYER_PATHS:
        found: Any = module
        for name in path.split("."):
            found = getattr(found, name, None)
        if isinstance(found, torch.nn.ModuleList):
            return found
    return None


def freeze_lower(module: torch.nn.Module, *, embeddings: bool, layers: int) -> int:
    """Stop training the input embeddings and the lowest `layers` layers of an encoder.

    module (torch.nn.Module): The Hugging Face model (e.g. BertModel).
    embeddings (bool): Freeze the embedding block (word, position and type embeddings and
        their LayerNorm; the input embeddings where the model has no `embeddings` block).
    layers (int): How many of the lowest layers to freeze.
    RETURNS (int): The number of weights frozen.
    """
    parts = []
    if embeddings:
        block = getattr(module, "embeddings", None)
        parts.append(block if block is not None else module.get_input_embeddings())
    if layers:
        stack = encoder_layers(module)
        if stack is None:
            raise ValueError(f"{type(module).__name__} has no layer stack at {', '.join(_LAYER_PATHS)}: "
                             "freeze_layers must be 0 for it")
        if layers > len(stack):
            raise ValueError(f"freeze_layers is {layers}, but {type(module).__name__} has {len(stack)} layers")
        parts.extend(stack[:layers])
    frozen = 0
    for part in parts:
        for weight in part.parameters():
            weight.requires_grad_(False)
            frozen += weight.numel()
    return frozen
