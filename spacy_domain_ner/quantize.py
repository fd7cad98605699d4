"""Dynamic int8 quantization of a loaded pipeline's transformer, for CPU inference.

`quantize_transformers(nlp)` replaces the `torch.nn.Linear` layers of every
spacy-transformers component's Hugging Face model by dynamically quantized ones
(`torch.ao.quantization.quantize_dynamic`): int8 weights, activations quantized
on the fly. That is most of a transformer's CPU time, so inference gets faster and
the weights smaller; the NER head stays in float32.

It is a load-time step, not a saved format: spacy-transformers serializes the
module's state_dict and on loading rebuilds the float model from its config and
loads that state_dict into it non-strictly, so the packed int8 weights would be
skipped with a warning and the Linear layers left randomly initialized. Saving a
quantized component therefore raises; save the float pipeline and quantize after
`spacy.load`:

    nlp = spacy.load("en_legal_ner")
    quantize_transformers(nlp)
"""
import re
import warnings
from functools import partial
from typing import Any, Callable, List, Optional, Sequence, Set

from spacy.language import Language
from spacy.util import registry

DTYPES = ("qint8", "float16")
# The feed-forward output projections of BERT/RoBERTa-style (layer.N.output.dense; not
# attention.output.dense) and DistilBERT-style (ffn.lin2) encoders. On E-NER dev, int8 on every
# Linear layer cost up to 1.4 F1 points, keeping these six in float32 none (docs/BENCHMARKS.md).
KEEP_FLOAT = (r"(^|\.)layer\.\d+\.output\.dense$", r"\.ffn\.lin2$")


def quantize_transformers(nlp: Language, *, dtype: str = "qint8", keep_float: Optional[Sequence[str]] = None) -> List[str]:
    """Quantize the Linear layers of every transformer component in place.

    nlp (Language): A loaded pipeline, on CPU.
    dtype (str): "qint8" (int8 weights, the speed-up) or "float16" (half-size weights).
    keep_float (Optional[Sequence[str]]): Regular expressions; Linear layers whose module name
        matches one stay in float32. None: for qint8 KEEP_FLOAT (the feed-forward output
        projections, whose post-GELU inputs have outliers that per-tensor int8 handles badly),
        for float16 none; () quantizes all.
    RETURNS (List[str]): The names of the components quantized; empty when the
        pipeline has no spacy-transformers component.
    """
    import torch
    from spacy_transformers import Transformer

    _check_dtype(dtype)
    if keep_float is None:
        keep_float = KEEP_FLOAT if dtype == "qint8" else ()
    done = []
    for name, pipe in nlp.pipeline:
        if not isinstance(pipe, Transformer):
            continue
        shim = pipe.model.layers[0].shims[0]
        module = shim._model
        if module is None:
            raise ValueError(f"component '{name}': the transformer is not initialized (load or initialize the pipeline first)")
        if any(p.device.type != "cpu" for p in module.parameters()):
            raise ValueError(f"component '{name}': dynamic quantization runs on CPU only, the model is on {next(module.parameters()).device}")
        with warnings.catch_warnings():
            # torch marks torch.ao quantization deprecated in favour of torchao, which is not a dependency;
            # tests/test_quantize.py fails first if a torch release removes it.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions", category=UserWarning)
            quantized = torch.ao.quantization.quantize_dynamic(module, linear_layers(module, keep_float=keep_float),
                                                               dtype=getattr(torch, dtype))
        shim._model = quantized
        shim._hfmodel.transformer = quantized
        shim.to_bytes = partial(_refuse_to_save, name)  # Model.to_bytes/to_disk go through it
        done.append(name)
    return done


def linear_layers(module: Any, *, keep_float: Sequence[str]) -> Set[str]:
    """Names of the module's Linear layers to quantize: all but those matching keep_float.

    module (torch.nn.Module): The Hugging Face model.
    keep_float (Sequence[str]): Regular expressions of module names to leave in float32.
    RETURNS (Set[str]): Module names, as quantize_dynamic's qconfig_spec takes them.
    """
    import torch

    patterns = [re.compile(p) for p in keep_float]
    return {name for name, layer in module.named_modules()
            if isinstance(layer, torch.nn.Linear) and not any(p.search(name) for p in patterns)}


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")


def _refuse_to_save(name: str) -> bytes:
    raise ValueError(
        f"component '{name}' holds a dynamically quantized transformer, which spacy-transformers would "
        "load back with random weights: save the pipeline before quantizing, and quantize after loading"
    )


@registry.misc("spacy_domain_ner.quantize_transformers.v1")
def quantize_transformers_v1(*, dtype: str = "qint8") -> Callable[[Language], List[str]]:
    """Registered form of `quantize_transformers`, applied to a pipeline after loading.

    dtype (str): "qint8" or "float16".
    RETURNS (Callable[[Language], List[str]]): Quantizes a loaded pipeline in place.
    """
    _check_dtype(dtype)
    return partial(quantize_transformers, dtype=dtype, keep_float=())


@registry.misc("spacy_domain_ner.quantize_transformers.v2")
def quantize_transformers_v2(*, dtype: str = "qint8", keep_float: Optional[List[str]] = None) -> Callable[[Language], List[str]]:
    """v1 with layers left in float32: by default the feed-forward output projections (KEEP_FLOAT).

    dtype (str): "qint8" or "float16".
    keep_float (Optional[List[str]]): Regular expressions of module names kept in float32;
        None for KEEP_FLOAT, [] for every Linear layer quantized (v1).
    RETURNS (Callable[[Language], List[str]]): Quantizes a loaded pipeline in place.
    """
    _check_dtype(dtype)
    for pattern in keep_float or ():
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"keep_float: {pattern!r} is not a regular expression ({err})") from None
    return partial(quantize_transformers, dtype=dtype, keep_float=None if keep_float is None else tuple(keep_float))
