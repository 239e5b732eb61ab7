"""The scores ``evaluate`` reports beside the loss, written against the array API: accuracy for class
scores, R² for regression outputs."""

from __future__ import annotations

from typing import Any

from ._typing import Array

__all__ = ["CLASS_OUTPUTS", "accuracy", "r2", "score"]

CLASS_OUTPUTS = ("softmax", "sigmoid")  # output activations whose values are class scores, scored by accuracy


def accuracy(xp: Any, output_activation: str, prediction: Array, target: Array) -> Array | None:
    """Fraction of correct predictions (0-d), or None for outputs that are not class scores.

    softmax: the arg-max class matches the target's. sigmoid: each output, thresholded at 0.5,
    matches its target thresholded at 0.5 (so multi-label outputs count label by label).
    """
    if output_activation not in CLASS_OUTPUTS:
        return None
    if output_activation == "softmax":
        correct = xp.argmax(prediction, axis=-1) == xp.argmax(target, axis=-1)
    else:
        correct = (prediction > 0.5) == (target > 0.5)
    return xp.mean(xp.astype(correct, prediction.dtype))


def r2(xp: Any, prediction: Array, target: Array) -> Array:
    """The coefficient of determination (0-d), averaged over the outputs like scikit-learn's ``r2_score``:
    ``1 - sum((t - p)**2) / sum((t - mean t)**2)`` per output; an output whose target is constant scores 1
    when predicted exactly and 0 otherwise, as there."""
    residual = xp.sum((target - prediction) ** 2, axis=0)
    spread = xp.sum((target - xp.mean(target, axis=0, keepdims=True)) ** 2, axis=0)
    constant = xp.astype(residual == 0.0, prediction.dtype)
    safe = xp.where(spread > 0.0, spread, xp.ones_like(spread))
    return xp.mean(xp.where(spread > 0.0, 1.0 - residual / safe, constant))


def score(xp: Any, output_activation: str, prediction: Array, target: Array) -> tuple[str, Array]:
    """The score that fits the output: ``("accuracy", ...)`` for class scores, else ``("r2", ...)``."""
    correct = accuracy(xp, output_activation, prediction, target)
    return ("r2", r2(xp, prediction, target)) if correct is None else ("accuracy", correct)
