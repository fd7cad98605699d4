"""Matrix products of the pipeline's thinc layers through numpy's BLAS instead of thinc's BLIS.

On CPU, thinc's NumpyOps multiplies through BLIS, one thread; numpy's OpenBLAS uses the threads it
is given, and for the NER's shapes (thousands of tokens times 480 inputs times 288 or 384 outputs:
the cased CNN and the NER's input layer) one product took a fifth of BLIS's time on 2 cores, and
the confidence replay about half (`benchmarks/cpu_matmul.py`, `docs/lab/speed.md`). `spacy_domain_ner.numpy_matmul.v1`, the recipe's
`[nlp.after_pipeline_creation]` callback, gives every thinc layer of the pipeline that runs on the
CPU through BLIS a NumpyOps without BLIS, when the pipeline is created, trained or loaded. Layers on
a GPU (CupyOps) and the transformer (PyTorch) are left as they are. The products differ from BLIS's
in the last bits of float32 (sums in another order), not in the entities of the pipelines tried.
"""
from typing import Callable

from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, NumpyOps

NUMPY_MATMUL_OPS = NumpyOps(use_blis=False)


def set_cpu_ops(nlp: Language, ops: NumpyOps) -> Language:
    """Give the CPU thinc layers (NumpyOps) of every component `ops`; layers on a GPU stay as they are.

    nlp (Language): The pipeline, changed in place.
    ops (NumpyOps): E.g. `NUMPY_MATMUL_OPS`, or `NumpyOps()` (BLIS) to compare with it.
    RETURNS (Language): The same pipeline.
    """
    for _, component in nlp.components:
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            continue
        for node in model.walk():
            if isinstance(node.ops, NumpyOps):
                node.ops = ops
    return nlp


def use_numpy_matmul(nlp: Language) -> Language:
    """Give the CPU thinc layers of every component a NumpyOps that multiplies through numpy.

    nlp (Language): The pipeline, changed in place.
    RETURNS (Language): The same pipeline.
    """
    return set_cpu_ops(nlp, NUMPY_MATMUL_OPS)


@registry.callbacks("spacy_domain_ner.numpy_matmul.v1")
def numpy_matmul_v1() -> Callable[[Language], Language]:
    """The `[nlp.after_pipeline_creation]` callback that applies `use_numpy_matmul`.

    RETURNS (Callable[[Language], Language]): The callback.
    """
    return use_numpy_matmul
