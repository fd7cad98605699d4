"""The perturbation of a table: the gradient's unit direction (FGM) and the projected step of PGD."""
import math
from typing import Any, Optional

from .settings import AdversarialSettings


def array_norm(array: Any) -> float:
    # (x * x).sum() works alike on numpy, cupy and torch arrays, on any device.
    return math.sqrt(float((array * array).sum()))


def unit_direction(grad: Optional[Any]) -> Optional[Any]:
    """g / ||g||, or None when there is no usable gradient (absent, zero, inf/nan).

    grad (Optional[Any]): A gradient array or tensor.
    RETURNS (Optional[Any]): The unit vector.
    """
    if grad is None:
        return None
    norm = array_norm(grad)
    if not (math.isfinite(norm) and norm > 0):
        return None
    return grad * (1.0 / norm)


def next_delta(
    delta: Optional[Any], direction: Optional[Any], *, settings: AdversarialSettings
) -> Optional[Any]:
    """One attack step on a table's perturbation.

    delta (Optional[Any]): The current perturbation (None: none yet).
    direction (Optional[Any]): g / ||g|| at the current point (None: no gradient).
    settings (AdversarialSettings): Method, epsilon, alpha.
    RETURNS (Optional[Any]): The new perturbation.
    """
    if direction is None:
        return delta
    if settings.method == "fgm":
        return direction * settings.epsilon
    delta = direction * settings.alpha if delta is None else delta + direction * settings.alpha
    norm = array_norm(delta)
    if norm > settings.epsilon:
        delta = delta * (settings.epsilon / norm)
    return delta
