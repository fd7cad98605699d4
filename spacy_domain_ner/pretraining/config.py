"""The settings of a pretraining run, checked, and the ones that shape its trajectory (a checkpoint
resumes only a run with the same ones).
"""
from dataclasses import dataclass
from typing import Optional

from ..models.offline import DEFAULT_MODEL

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
