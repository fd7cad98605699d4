"""The masked-LM model and its training step: loading (offline names resolved), the loss module DDP
wraps, precision (bf16/fp16 autocast), the optimizer, held-out perplexity.
"""
import logging
import math
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import torch
from tqdm import tqdm

from ..models.offline import resolve_model_name
from . import mlm_data
from .config import PretrainConfig
from .distributed import Dist
from .mlm_data import PackedBlocks

logger = logging.getLogger(__name__)


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
