"""The settings of adversarial training, checked when the callback is built, and the loss column of the
perturbed pass.
"""
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

METHODS = ("fgm", "pgd")
ADV_PREFIX = "adv_"
SECTION = "[initialize.after_init]"


def adversarial_loss_key(name: str) -> str:
    """The `losses` key of a component's loss on the perturbed pass.

    name (str): The component name.
    RETURNS (str): The key, e.g. "adv_ner" (the prefix keeps it apart from
        the clean column when spaCy's logger shortens long column names).
    """
    return f"{ADV_PREFIX}{name}"


@dataclass(frozen=True)
class AdversarialSettings:
    """Checked settings of the adversarial training callback."""

    method: str
    epsilon: float
    alpha: float
    steps: int
    start_step: int
    tables: Optional[Tuple[str, ...]]
    enabled: bool


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_settings(
    *,
    method: str,
    epsilon: float,
    alpha: float,
    steps: int,
    start_step: int,
    tables: Optional[Sequence[str]],
    enabled: bool,
) -> AdversarialSettings:
    """Validate the settings, so that a bad one stops the run at initialisation.

    method (str): "fgm" or "pgd".
    epsilon (float): Norm of the perturbation (FGM) or radius of the ball (PGD).
    alpha (float): PGD step size.
    steps (int): PGD number of steps K.
    start_step (int): First training step (0-based) that is adversarial.
    tables (Optional[Sequence[str]]): Table names to perturb; None for all.
    enabled (bool): False makes the callback a no-op.
    RETURNS (AdversarialSettings): The settings.
    """
    if method not in METHODS:
        raise ValueError(f"{SECTION} method must be one of {list(METHODS)}, got {method!r}")
    if not _positive(epsilon):
        raise ValueError(f"{SECTION} epsilon must be a finite number > 0, got {epsilon!r}")
    if method == "pgd" and not _positive(alpha):
        raise ValueError(
            f"{SECTION} alpha (the PGD step size) must be a finite number > 0, got {alpha!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{SECTION} steps (PGD's K) must be an integer >= 1, got {steps!r}")
    if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"{SECTION} start_step must be an integer >= 0, got {start_step!r}")
    if tables is not None and len(tables) == 0:
        raise ValueError(
            f"{SECTION} tables is empty: name tables, or set it to null to perturb every table"
        )
    return AdversarialSettings(
        method=method,
        epsilon=float(epsilon),
        alpha=float(alpha),
        steps=steps,
        start_step=start_step,
        tables=None if tables is None else tuple(dict.fromkeys(tables)),
        enabled=enabled,
    )
