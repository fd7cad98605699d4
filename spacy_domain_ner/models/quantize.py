"""Dynamic int8 quantization of a pipeline's transformer, for CPU inference.

`quantize_transformers(nlp)` replaces the `torch.nn.Linear` layers of every
spacy-transformers component's Hugging Face model, in place, by `Int8Linear` layers
(`spacy_domain_ner.models.int8`): int8 weights with a scale per output channel, activations
quantized on the fly with a scale per word piece, exact int32 products. That is most of a
transformer's CPU time, so inference gets faster; the NER head stays in float32. A document
gets the same entities and transformer output, bit for bit, whatever other texts share its
batch and whatever the batch size: each word piece is quantized on its own, and the encoder runs
on spans padded to a length that depends on the span alone. ("float16" keeps torch's
`quantize_dynamic` with half-precision weights; it makes no such promise.)

Quantization is a load-time step, never a saved format: spacy-transformers serializes the
module's state_dict and on loading rebuilds the float model from its config, so packed int8
weights would load back as randomly initialized Linear layers. A quantized component
therefore keeps the float weights it was quantized from and writes those when saved
(`to_disk`/`to_bytes`): a quantized pipeline re-saves as the float pipeline it came from.

Two ways to get it:

    nlp = spacy.load("en_legal_ner")
    quantize_transformers(nlp)          # after loading, in code

or `quantize = "qint8"` on `spacy_domain_ner.TransformerModel.v1` in the pipeline's config,
which quantizes whenever the weights are deserialized, so `spacy.load` alone returns the
int8 pipeline (`load_time_overrides` writes that setting into a trained pipeline's config;
`load_with_quantization` forces it on or off for one load, as `evaluate` and the speed
benchmark do to report both).
"""
import re
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Union

from spacy.language import Language
from spacy.util import registry
from thinc.api import Config

DTYPES = ("qint8", "float16")
# The feed-forward output projections of BERT/RoBERTa-style (layer.N.output.dense; not
# attention.output.dense) and DistilBERT-style (ffn.lin2) encoders. They read post-GELU activations
# with outliers: on E-NER dev, int8 on every Linear layer lost F1 and keeping these in float32 did not
# (docs/lab/speed.md; measured with torch's per-tensor activation scales, before the per-word-piece
# scales of Int8Linear).
KEEP_FLOAT = (r"(^|\.)layer\.\d+\.output\.dense$", r"\.ffn\.lin2$")
# The transformer architectures this package registers: `load_time_overrides` switches their load-time quantization.
TRANSFORMER_V1 = "spacy_domain_ner.TransformerModel.v1"
TRANSFORMER_ARCHITECTURES = (TRANSFORMER_V1,)


def quantize_transformers(nlp: Language, *, dtype: str = "qint8", keep_float: Optional[Sequence[str]] = None) -> List[str]:
    """Quantize the Linear layers of every transformer component in place.

    nlp (Language): A loaded pipeline, on CPU.
    dtype (str): "qint8" (int8 weights, the speed-up) or "float16" (half-size weights).
    keep_float (Optional[Sequence[str]]): Regular expressions; Linear layers whose module name
        matches one stay in float32. None: for qint8 KEEP_FLOAT (the feed-forward output
        projections, whose post-GELU inputs have outliers that int8 activations handle badly),
        for float16 none; () quantizes all.
    RETURNS (List[str]): The names of the components quantized, including those already
        quantized (left as they are); empty when the pipeline has no spacy-transformers component.
    """
    from spacy_transformers import Transformer

    check_dtype(dtype)
    done = []
    for name, pipe in nlp.pipeline:
        if isinstance(pipe, Transformer):
            shim = pipe.model.layers[0].shims[0]
            if shim._model is None:
                raise ValueError(f"component '{name}': the transformer is not initialized (load or initialize the pipeline first)")
            quantize_shim(shim, dtype=dtype, keep_float=keep_float, name=name)
            done.append(name)
    return done


def quantize_shim(shim: Any, *, dtype: str, keep_float: Optional[Sequence[str]], name: str = "transformer") -> None:
    """Quantize a spacy-transformers HFShim's module in place; saving it writes the float weights.

    shim (HFShim): The shim (`model.layers[0].shims[0]` of a transformer component's model).
    dtype (str): "qint8" or "float16".
    keep_float (Optional[Sequence[str]]): As in `quantize_transformers`.
    name (str): The component's name, for error messages.
    """
    import torch

    from .int8 import check_int_mm, chunk_tokens, make_batch_invariant, swap_linear_layers

    module = shim._model
    if is_quantized(module):
        return  # quantizing the float layers left out before would break the keep_float choice
    if any(p.device.type != "cpu" for p in module.parameters()):
        raise ValueError(f"component '{name}': dynamic quantization runs on CPU only, the model is on {next(module.parameters()).device}")
    if keep_float is None:
        keep_float = KEEP_FLOAT if dtype == "qint8" else ()
    # The state_dict shares storage with the parameters: in place, only the float Linear weights
    # outlive the swap (kept for saving), the embeddings and norms are not copied.
    float_state = dict(module.state_dict())
    if dtype == "qint8":
        # per-row int8 (spacy_domain_ner.models.int8): a document's output does not depend on its batch
        check_int_mm()
        swap_linear_layers(module, linear_layers(module, keep_float=keep_float))
        make_batch_invariant(module, max_tokens=chunk_tokens(module))
    else:
        with warnings.catch_warnings():
            # torch marks torch.ao quantization deprecated in favour of torchao, which is not a dependency;
            # tests/test_quantize.py fails first if a torch release removes it.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions", category=UserWarning)
            torch.ao.quantization.quantize_dynamic(module, linear_layers(module, keep_float=keep_float),
                                                   dtype=getattr(torch, dtype), inplace=True)
    # Model.to_bytes/to_disk go through the shim's to_bytes
    shim.to_bytes = partial(_to_bytes_float, shim=shim, to_bytes=shim.to_bytes, float_state=float_state)


def is_quantized(module: Any) -> bool:
    """Whether a torch module holds int8 (Int8Linear) or float16 (dynamically quantized) Linear layers.

    module (torch.nn.Module): A Hugging Face model.
    RETURNS (bool): True once `quantize_shim` has run on it.
    """
    import torch

    from .int8 import Int8Linear

    return any(isinstance(m, (Int8Linear, torch.ao.nn.quantized.dynamic.Linear)) for m in module.modules())


class _FloatState:
    """Stands in for the quantized module while HFShim.to_bytes reads its state_dict."""

    def __init__(self, state: Dict[str, Any]) -> None:
        self._state = state

    def state_dict(self) -> Dict[str, Any]:
        return dict(self._state)


def _to_bytes_float(*, shim: Any, to_bytes: Callable[[], bytes], float_state: Dict[str, Any]) -> bytes:
    quantized = shim._model
    shim._model = _FloatState(float_state)  # HFShim.to_bytes reads only _model.state_dict()
    try:
        return to_bytes()
    finally:
        shim._model = quantized


def linear_layers(module: Any, *, keep_float: Sequence[str]) -> Set[str]:
    """Names of the module's Linear layers to quantize: all but those matching keep_float.

    module (torch.nn.Module): The Hugging Face model.
    keep_float (Sequence[str]): Regular expressions of module names to leave in float32.
    RETURNS (Set[str]): Module names, as `named_modules` gives them.
    """
    import torch

    patterns = [re.compile(p) for p in keep_float]
    return {name for name, layer in module.named_modules()
            if isinstance(layer, torch.nn.Linear) and not any(p.search(name) for p in patterns)}


def quantize_after_load(bytes_data: bytes, *, shim: Any, from_bytes: Callable[[bytes], Any], dtype: str,
                        keep_float: Optional[Sequence[str]]) -> Any:
    """An HFShim.from_bytes that quantizes the module once its float weights are loaded
    (`spacy_domain_ner.TransformerModel.v1` with `quantize`). On a GPU it warns and stays float:
    dynamic quantization is CPU-only, and a CPU-packaged pipeline must still load there.

    bytes_data (bytes): The serialized shim.
    shim (HFShim): The shim being loaded.
    from_bytes (Callable[[bytes], Any]): The shim's from_bytes before this one.
    dtype (str): "qint8" or "float16".
    keep_float (Optional[Sequence[str]]): As in `quantize_transformers`.
    RETURNS (Any): What from_bytes returns.
    """
    result = from_bytes(bytes_data)
    if shim._model is None:  # an uninitialized transformer: nothing to quantize
        return result
    device = next(shim._model.parameters()).device
    if device.type != "cpu":
        warnings.warn(f"quantize = {dtype!r} is for CPU inference: the transformer loaded on {device} stays float32")
    else:
        quantize_shim(shim, dtype=dtype, keep_float=keep_float)
    return result


def load_time_overrides(config: Config, *, dtype: Optional[str], keep_float: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Config overrides that turn load-time quantization on (dtype) or off (None) for every
    transformer component built by one of this package's architectures (TRANSFORMER_ARCHITECTURES).

    config (Config): A pipeline's config (interpolated or not).
    dtype (Optional[str]): "qint8" or "float16"; None for float weights at load.
    keep_float (Optional[Sequence[str]]): As in `quantize_transformers`; None for the default.
    RETURNS (Dict[str, Any]): Dotted overrides for `spacy.load(config=...)` or `load_config(overrides=...)`;
        empty when dtype is None and no component can quantize.
    """
    if dtype is not None:
        check_dtype(dtype)
        check_keep_float(keep_float)
    overrides: Dict[str, Any] = {}
    for name, component in config.get("components", {}).items():
        if component.get("factory") != "transformer":
            continue
        architecture = component.get("model", {}).get("@architectures")
        if architecture not in TRANSFORMER_ARCHITECTURES:
            if dtype is None:
                continue  # not ours, so float already
            raise ValueError(f"component '{name}': load-time quantization needs {' or '.join(TRANSFORMER_ARCHITECTURES)}, "
                             f"not {architecture}; quantize after loading with quantize_transformers")
        prefix = f"components.{name}.model."
        overrides[prefix + "quantize"] = dtype
        # None: a quantize_keep_float left from an earlier qint8 setting would be rejected without quantize
        overrides[prefix + "quantize_keep_float"] = None if dtype is None or keep_float is None else list(keep_float)
    if dtype is not None and not overrides:
        raise ValueError("the pipeline has no transformer component to quantize")
    return overrides


def pipeline_config(model: Union[str, Path]) -> Config:
    """The config of a pipeline directory or installed pipeline package, without loading it.

    model (Union[str, Path]): A directory or a package name.
    RETURNS (Config): Its config.cfg, not interpolated.
    """
    from spacy.util import get_model_meta, get_package_path, is_package, load_config

    path = Path(model)
    if not path.is_dir() and isinstance(model, str) and is_package(model):
        package = get_package_path(model)
        meta = get_model_meta(package)  # the data directory, as spaCy's load_model_from_init_py finds it
        path = package / f"{meta['lang']}_{meta['name']}-{meta['version']}"
    if not (path / "config.cfg").is_file():
        raise ValueError(f"{model}: cannot load the pipeline (no config.cfg; not a pipeline directory or installed package)")
    return load_config(path / "config.cfg")


def load_with_quantization(model: Union[str, Path], *, quantize: Optional[bool] = None, **kwargs: Any) -> Language:
    """`spacy.load`, with the transformer's load-time int8 forced on or off for this load.

    model (Union[str, Path]): A pipeline directory or package name.
    quantize (Optional[bool]): None: as the config says; True: qint8 with the default keep_float
        (the load-time path of TransformerModel.v1, as a packaged int8 pipeline loads); False: float.
    **kwargs: Passed to spacy.load (exclude, disable, ...).
    RETURNS (Language): The pipeline.
    """
    import spacy

    if quantize is None:
        return spacy.load(model, **kwargs)
    overrides = load_time_overrides(pipeline_config(model), dtype="qint8" if quantize else None)
    return spacy.load(model, config=overrides, **kwargs)


def quantized_components(nlp: Language) -> List[str]:
    """The transformer components whose model is quantized, however that happened.

    nlp (Language): A pipeline.
    RETURNS (List[str]): Component names.
    """
    if "spacy_transformers" not in sys.modules:
        return []  # no transformer loaded, and importing it (and torch) would skew memory measurements
    from spacy_transformers import Transformer

    return [name for name, pipe in nlp.pipeline if isinstance(pipe, Transformer)
            and pipe.model.layers[0].shims[0]._model is not None and is_quantized(pipe.model.layers[0].shims[0]._model)]


def check_keep_float(keep_float: Optional[Sequence[str]]) -> None:
    """Raise ValueError unless every keep_float pattern is a regular expression."""
    for pattern in keep_float or ():
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"keep_float: {pattern!r} is not a regular expression ({err})") from None


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")


@registry.misc("spacy_domain_ner.quantize_transformers.v1")
def quantize_transformers_v1(*, dtype: str = "qint8", keep_float: Optional[List[str]] = None) -> Callable[[Language], List[str]]:
    """Registered form of `quantize_transformers`, applied to a pipeline after loading.

    dtype (str): "qint8" or "float16".
    keep_float (Optional[List[str]]): Regular expressions of module names kept in float32;
        None for KEEP_FLOAT (for qint8 the feed-forward output projections), [] for every Linear layer quantized.
    RETURNS (Callable[[Language], List[str]]): Quantizes a loaded pipeline in place.
    """
    check_dtype(dtype)
    check_keep_float(keep_float)
    return partial(quantize_transformers, dtype=dtype, keep_float=None if keep_float is None else tuple(keep_float))
