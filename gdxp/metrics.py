"""The score ``evaluate`` reports beside the loss, chosen by the loss and written against the array API:
accuracy where the loss is a cross-entropy (its predictions are class probabilities), R² where it is a
squared error (its predictions are values). Each takes optional ``shares``, one weight per sample summing to
1, for scikit-learn's ``sample_weight``."""

from __future__ import annotations

from typing import Any

from ._typing import Array
from .losses import Loss

__all__ = ["accuracy", "metric_name", "r2", "score"]


def metric_name(loss: Loss) -> str:
    """``"accuracy"`` for a loss on probabilities (the cross-entropies), else ``"r2"``."""
    return "accuracy" if loss.target_range is not None else "r2"


def accuracy(xp: Any, loss: Loss, prediction: Array, target: Array, shares: Array | None = None) -> Array:
    """Fraction of correct predictions (0-d). With ``cross_entropy`` over two or more outputs, one class
    per sample: the arg-max class matches the target's. Otherwise (binary cross-entropy, or one output)
    each output is a label of its own: thresholded at 0.5, it matches its target thresholded at 0.5 (so
    multi-label outputs count label by label). With ``shares``, each sample counts by its share."""
    if loss.name == "cross_entropy" and prediction.shape[-1] > 1:
        correct = xp.argmax(prediction, axis=-1) == xp.argmax(target, axis=-1)
    else:
        correct = (prediction > 0.5) == (target > 0.5)
    if shares is None:
        return xp.mean(xp.astype(correct, prediction.dtype))
    per_sample = xp.astype(correct, prediction.dtype)
    return xp.vecdot(per_sample if per_sample.ndim == 1 else xp.mean(per_sample, axis=-1), shares)


def r2(xp: Any, prediction: Array, target: Array, shares: Array | None = None) -> Array:
    """The coefficient of determination (0-d), averaged over the outputs like scikit-learn's ``r2_score``:
    ``1 - sum((t - p)**2) / sum((t - mean t)**2)`` per output; an output whose target is constant scores 1
    when predicted exactly and 0 otherwise, as there. ``shares`` weigh each sample's squares and the mean."""
    if shares is None:
        residual = xp.sum((target - prediction) ** 2, axis=0)
        spread = xp.sum((target - xp.mean(target, axis=0, keepdims=True)) ** 2, axis=0)
    else:
        column = xp.reshape(shares, (-1, 1))
        residual = xp.sum(column * (target - prediction) ** 2, axis=0)
        spread = xp.sum(column * (target - xp.sum(column * target, axis=0, keepdims=True)) ** 2, axis=0)
    constant = xp.astype(residual == 0.0, prediction.dtype)
    safe = xp.where(spread > 0.0, spread, xp.ones_like(spread))
    return xp.mean(xp.where(spread > 0.0, 1.0 - residual / safe, constant))


def score(xp: Any, loss: Loss, prediction: Array, target: Array, shares: Array | None = None) -> tuple[str, Array]:
    """The score that fits the loss, with its name: ``("accuracy", ...)`` or ``("r2", ...)``."""
    name = metric_name(loss)
    if name == "accuracy":
        return name, accuracy(xp, loss, prediction, target, shares)
    return name, r2(xp, prediction, target, shares)
