"""Weight averages for the Hugging Face encoder.

With `use_averages = true`, thinc's optimizer keeps an exponential moving average of every
parameter it updates (window about a ninth of the steps so far), and spaCy's training loop
evaluates and saves the pipeline inside `nlp.use_params(optimizer.averages)`. The averages of
the PyTorch parameters are kept under the key `(shim.id, parameter name)`, but thinc's
`PyTorchShim.use_params` looks them up under `"pytorch_{id}_{name}"` and would load them
strictly: the encoder keeps its last weights and only the thinc heads are averaged.
`use_averaged_params` is the shim's `use_params` that finds them (set by TransformerModel.v1).
"""
import contextlib
from typing import Any, Dict, Iterator, Tuple

import torch
from thinc.api import xp2torch
from thinc.types import FloatsXd


@contextlib.contextmanager
def use_averaged_params(params: Dict[Tuple[int, str], FloatsXd], *, shim: Any) -> Iterator[None]:
    """Temporarily load the optimizer's averages of the shim's PyTorch parameters.

    params (Dict[Tuple[int, str], FloatsXd]): The optimizer's averages, keyed by
        (shim or node id, parameter name) as thinc's optimizer keys them.
    shim (PyTorchShim): The shim whose module's parameters are swapped.
    YIELDS: With the averaged parameters loaded; parameters without an average (never updated,
        e.g. frozen layers or the unused pooler) keep their weights. Restored on exit, also on error.
    """
    module = shim._model  # None until the transformer is initialized or loaded
    averaged = {} if module is None or not params else {
        name: weight for name, weight in module.named_parameters() if (shim.id, name) in params}
    if not averaged:
        yield
        return
    backup = {name: weight.detach().clone() for name, weight in averaged.items()}
    with torch.no_grad():
        for name, weight in averaged.items():
            weight.copy_(xp2torch(params[(shim.id, name)], device=weight.device).reshape(weight.shape))
    try:
        yield
    finally:
        with torch.no_grad():
            for name, weight in averaged.items():
                weight.copy_(backup[name])
