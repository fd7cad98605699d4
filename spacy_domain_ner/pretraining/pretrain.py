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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..io.atomic import write_json_atomic
from . import mlm_data
from .checkpoints import export_encoder, list_checkpoints, load_checkpoint, save_checkpoint
from .config import TRAJECTORY_KEYS, PretrainConfig
from .distributed import setup_distributed
from .mlm import MaskedLMLoss, evaluate, load_mlm_model, make_optimizer, resolve_precision, train_step

logger = logging.getLogger(__name__)


# -- checkpoints -------------------------------------------------------------


# -- output -------------------------------------------------------------------


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
