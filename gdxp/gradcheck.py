"""Checking backpropagation against central finite differences, in float64."""

from __future__ import annotations

from typing import Any

import numpy as np

from .network import Network
from .validation import check_positive_number

__all__ = ["check_gradients"]


def check_gradients(net: Network, x: Any, y: Any, *, epsilon: float = 1e-5, sample_weight: Any = None) -> float:
    """Largest relative error of ``net.gradients(x, y)`` against central differences of the loss (both
    weighted by ``sample_weight`` where given).

    Works on a float64 copy of ``net`` on the same backend and device (``net`` is never touched).
    For each weight array the error is ``max|analytic - numeric|`` over the array's scale: its
    largest gradient entry, but at least ``1e-4 * |loss|``, below which rounding in the loss
    swamps a difference quotient (a wrong gradient still shows: its error is its own size). The
    result is the largest over all arrays. It costs two loss evaluations per weight: meant for
    small networks.
    """
    if not isinstance(net, Network):
        raise TypeError(f"check_gradients checks a gdxp.Network, got {type(net).__name__}")
    epsilon = check_positive_number(epsilon, "epsilon")
    twin = net.copy(dtype="float64")
    analytic = [twin.backend.to_numpy(g) for g in twin.gradients(x, y, sample_weight=sample_weight)]
    floor = 1e-4 * abs(twin.loss_value(x, y, sample_weight=sample_weight))
    weights = twin.get_weights()
    worst = 0.0
    for index, (array, grad) in enumerate(zip(weights, analytic)):
        numeric = np.empty_like(array)
        for position in np.ndindex(array.shape):
            numeric[position] = _central_difference(twin, weights, index, position, x, y, epsilon, sample_weight)
        scale = max(float(np.max(np.abs(grad), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)), floor)
        if scale > 0.0:
            worst = max(worst, float(np.max(np.abs(grad - numeric))) / scale)
    return worst


def _central_difference(twin: Network, weights: list[np.ndarray], index: int, position: tuple[int, ...],
                        x: Any, y: Any, epsilon: float, sample_weight: Any) -> float:
    """(loss(w + eps) - loss(w - eps)) / (2 eps) for one weight entry; puts the weight back after."""
    original = weights[index][position]
    losses = []
    for shift in (epsilon, -epsilon):
        weights[index][position] = original + shift
        twin.set_weights(weights)
        losses.append(twin.loss_value(x, y, sample_weight=sample_weight))
    weights[index][position] = original
    return (losses[0] - losses[1]) / (2.0 * epsilon)
