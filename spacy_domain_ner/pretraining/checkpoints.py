"""Resumable checkpoints in safetensors (model, optimizer, scheduler, scaler and RNG states; no pickle)
and the export of the pretrained encoder.
"""
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from ..io.atomic import replace_directory

METRICS_NAME = "pretrain_metrics.json"  # written into the exported encoder directory


def _rng_state() -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(internal), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached]}
    return tensors, meta


def _set_rng_state(tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted((k for k in tensors if k.startswith("cuda_")), key=lambda k: int(k[5:]))
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def optimizer_to_safetensors(state: Dict[str, Any]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON."""
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_safetensors(tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> Dict[str, Any]:
    """Inverse of optimizer_to_safetensors."""
    state: Dict[int, Dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def list_checkpoints(directory: Path) -> List[Path]:
    """Complete checkpoints (step-N folders), oldest first; temp folders of killed writes are ignored."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob("step-*") if p.is_dir() and (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(directory: Path, *, model: Any, optimizer: Any, scheduler: Any, scaler: Any,
                    state: Dict[str, Any], keep: int) -> Path:
    """Write step-N atomically (temp folder + rename) and drop all but the `keep` newest."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{state['step']:09d}"
    tmp = directory / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))  # handles the tied decoder
    opt_tensors, opt_meta = optimizer_to_safetensors(optimizer.state_dict())
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    rng_tensors, rng_meta = _rng_state()
    save_file(rng_tensors, str(tmp / "rng.safetensors"))
    extra = {"optimizer": opt_meta, "scheduler": scheduler.state_dict(), "rng": rng_meta,
             "scaler": scaler.state_dict() if scaler is not None else None}
    # Stdlib json keeps floats exact (learning rates, losses); written last, it marks the checkpoint complete.
    (tmp / "trainer_state.json").write_text(json.dumps({**state, **extra}), encoding="utf8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, *, model: Any, optimizer: Any, scheduler: Any, scaler: Any, device: torch.device) -> Dict[str, Any]:
    """Restore everything save_checkpoint wrote; RETURNS the trainer state (step, metrics...)."""
    state = json.loads((path / "trainer_state.json").read_text(encoding="utf8"))
    load_model(model, str(path / "model.safetensors"), strict=True, device=str(device))
    optimizer.load_state_dict(optimizer_from_safetensors(load_file(str(path / "optimizer.safetensors")), state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(load_file(str(path / "rng.safetensors")), state["rng"])
    return state


def export_encoder(model: Any, tokenizer: Any, *, source: str, output: Path, metrics: Dict[str, Any]) -> None:
    """Write the encoder without the MLM head (safetensors), the tokenizer and the metrics, atomically.

    The source's own base model class is loaded first so that weights the MLM
    model has no place for (BERT's pooler) keep their pretrained values.
    """
    from transformers import AutoModel

    base = AutoModel.from_pretrained(source)
    missing, unexpected = base.load_state_dict(model.base_model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise RuntimeError(f"the trained encoder does not fit {type(base).__name__}: missing {missing}, unexpected {unexpected}")

    def write(tmp: Path) -> None:
        base.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / METRICS_NAME).write_text(json.dumps(metrics, indent=2), encoding="utf8")

    replace_directory(output, write)
