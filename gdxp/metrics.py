"""Accuracy for classification outputs, written against the array API."""

from __future__ import annotations

from typing import Any

from ._typing import Array

__all__ = ["accuracy"]


def accuracy(xp: Any, output_activation: str, prediction: Array, target: Array) -> Array | None:
    """Fraction of correct predictions (0-d), or None for outputs that are not class scores.

    softmax: the arg-max class matches the target's. sigmoid: each output, thresholded at 0.5,
    matches its target thresholded at 0.5 (so multi-label outputs count label by label).
    """
    if output_activation == "softmax":
        correct = xp.argmax(prediction, axis=-1) == xp.argmax(target, axis=-1)
    elif output_activation == "sigmoid":
        correct = (prediction > 0.5) == (target > 0.5)
    else:
        return None
    return xp.mean(xp.astype(correct, prediction.dtype))
