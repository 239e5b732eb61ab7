"""Loss functions, each the mean over the samples of a batch, and their gradients.

``gradient`` is the tutorials' first chain-rule factor, error -> prediction (``error_predicted_deriv``),
already divided by the number of samples. Where an output activation and a loss cancel into
``prediction - target`` (softmax with cross-entropy, sigmoid with binary cross-entropy), the pair is
fused: the loss is computed from the sum of products (SOP) itself, so it stays finite when a prediction
saturates at 0 or 1, and the gradient skips the division by a vanishing derivative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ._typing import Array, Namespace
from .registry import lookup

__all__ = ["LOSSES", "FusedOutput", "Loss", "TargetRange", "get_loss"]

LossFunction = Callable[[Namespace, Array, Array], Array]


@dataclass(frozen=True)
class FusedOutput:
    """A loss paired with an output activation: ``value(xp, sop, target)`` and
    ``delta(xp, prediction, target)`` = d loss / d sop, both exact and stable."""

    value: LossFunction
    delta: LossFunction


@dataclass(frozen=True)
class TargetRange:
    """The targets a loss is defined on, checked where the targets live: ``rows_outside(xp, targets)`` flags
    the rows outside the range in array code (on any device, chunk by chunk on Dask), and
    ``describe(row, values)`` says what is wrong with one such row, the only one read to the host."""

    rows_outside: Callable[[Namespace, Array], Array]
    describe: Callable[[int, np.ndarray], str]


@dataclass(frozen=True)
class Loss:
    """A named loss: ``value(xp, prediction, target)`` (0-d) and ``gradient`` = d loss / d prediction.

    ``value_and_gradient`` computes the two together; a loss whose two share work (``p - t``) gives
    its own, otherwise it is the two calls one after the other. ``outputs`` names the output
    activations whose values the loss is defined on (empty: any), the first being the fused one to
    suggest; ``target_range`` says which targets it is defined on (None: any); ``instead`` names, for an
    output activation this loss refuses, the loss that belongs to it.
    """

    name: str
    value: LossFunction
    gradient: LossFunction
    fused: Mapping[str, FusedOutput] = field(default_factory=dict)
    value_and_gradient: Callable[[Namespace, Array, Array], tuple[Array, Array]] | None = None
    outputs: tuple[str, ...] = ()
    target_range: TargetRange | None = None
    instead: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value_and_gradient is None:
            value, gradient = self.value, self.gradient
            object.__setattr__(self, "value_and_gradient", lambda xp, p, t: (value(xp, p, t), gradient(xp, p, t)))

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"

    def check_output(self, activation: str) -> None:
        """Refuse an output activation whose values lie outside this loss's domain: clipped into it, the
        loss would train on a gradient that is not its own."""
        if activation in self.instead:
            raise ValueError(f"loss {self.name!r} does not fit a {activation!r} output: use "
                             f"loss={self.instead[activation]!r}, the {activation}'s loss, or "
                             f"output_activation={self.outputs[0]!r} with {self.name!r}")
        if self.outputs and activation not in self.outputs:
            raise ValueError(f"loss {self.name!r} takes probabilities, which a {activation!r} output does not "
                             f"give: use output_activation={self.outputs[0]!r}")


def _samples(prediction: Array) -> int:
    return prediction.shape[0]


def squared_loss(name: str, scale: float, *, per_output: bool) -> Loss:
    """``scale * sum((p - t)**2)``, averaged over the samples (and over the outputs with ``per_output``).

    Its gradient is ``2 * scale * (p - t)`` over the same count; value and gradient share ``p - t``.
    """
    def mean_factor(diff: Array) -> float:
        count = diff.shape[0] * diff.shape[1] if per_output else diff.shape[0]  # (torch's .size is a method)
        return scale / count

    def value(xp: Namespace, prediction: Array, target: Array) -> Array:
        diff = prediction - target
        flat = xp.reshape(diff, (-1,))  # the sum of squares as one dot product
        return xp.vecdot(flat, flat) * mean_factor(diff)

    def gradient(xp: Namespace, prediction: Array, target: Array) -> Array:
        diff = prediction - target
        return diff * (2.0 * mean_factor(diff))

    def both(xp: Namespace, prediction: Array, target: Array) -> tuple[Array, Array]:
        diff = prediction - target
        factor = mean_factor(diff)
        flat = xp.reshape(diff, (-1,))
        return xp.vecdot(flat, flat) * factor, diff * (2.0 * factor)

    return Loss(name, value, gradient, value_and_gradient=both)


def _clip_probability(xp: Namespace, prediction: Array) -> Array:
    """Keep a probability off exact 0 and 1, where its log and the log's derivative are infinite."""
    finfo = xp.finfo(prediction.dtype)
    # minimum and maximum, not clip: array-api-compat's clip for CuPy waits on the GPU several times a call
    return xp.minimum(xp.maximum(prediction, float(finfo.smallest_normal)), 1.0 - float(finfo.eps))


def binary_cross_entropy(xp: Namespace, prediction: Array, target: Array) -> Array:
    p = _clip_probability(xp, prediction)
    per_output = target * xp.log(p) + (1.0 - target) * xp.log1p(-p)
    return -xp.sum(per_output) / _samples(prediction)


def binary_cross_entropy_gradient(xp: Namespace, prediction: Array, target: Array) -> Array:
    p = _clip_probability(xp, prediction)
    return (p - target) / (p * (1.0 - p) * _samples(prediction))


def binary_cross_entropy_from_sop(xp: Namespace, sop: Array, target: Array) -> Array:
    """-t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)) = max(z, 0) - t z + log1p(exp(-|z|))."""
    per_output = xp.maximum(sop, 0.0) - target * sop + xp.log1p(xp.exp(-xp.abs(sop)))
    return xp.sum(per_output) / _samples(sop)


def prediction_minus_target(xp: Namespace, prediction: Array, target: Array) -> Array:
    return (prediction - target) * (1.0 / _samples(prediction))


def cross_entropy(xp: Namespace, prediction: Array, target: Array) -> Array:
    p = xp.maximum(prediction, float(xp.finfo(prediction.dtype).smallest_normal))
    return -xp.sum(target * xp.log(p)) / _samples(prediction)


def cross_entropy_gradient(xp: Namespace, prediction: Array, target: Array) -> Array:
    p = xp.maximum(prediction, float(xp.finfo(prediction.dtype).smallest_normal))
    return -target / (p * _samples(prediction))


def cross_entropy_from_sop(xp: Namespace, sop: Array, target: Array) -> Array:
    """-sum t log softmax(z), with log softmax(z) = z - max z - log sum exp(z - max z)."""
    shifted = sop - xp.max(sop, axis=-1, keepdims=True)
    log_softmax = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -xp.sum(target * log_softmax) / _samples(sop)


def softmax_cross_entropy_delta(xp: Namespace, prediction: Array, target: Array) -> Array:
    """d loss / d z = p * sum(t) - t: exactly ``p - t`` for one-hot or probability targets."""
    total = xp.sum(target, axis=-1, keepdims=True)
    return (prediction * total - target) * (1.0 / _samples(prediction))


def _probabilities_outside(xp: Namespace, target: Array) -> Array:
    return xp.any((target < 0.0) | (target > 1.0), axis=-1)


def _describe_probabilities(row: int, values: np.ndarray) -> str:
    column = int(np.argmax((values < 0.0) | (values > 1.0)))
    return (f"must hold probabilities in [0, 1] for binary_cross_entropy, got {float(values[column]):g} "
            f"at index ({row}, {column})")


def _distributions_outside(xp: Namespace, target: Array) -> Array:
    # a sum of n numbers rounds by up to about n ulps: soft targets made in float32 pass
    tolerance = max(1e-4, 8 * target.shape[-1] * float(xp.finfo(target.dtype).eps))
    return xp.any(target < 0.0, axis=-1) | (xp.abs(xp.sum(target, axis=-1) - 1.0) > tolerance)


def _describe_distribution(row: int, values: np.ndarray) -> str:
    if np.any(values < 0.0):
        column = int(np.argmax(values < 0.0))
        return (f"must hold rows of probabilities for cross_entropy, got {float(values[column]):g} "
                f"at index ({row}, {column})")
    return (f"must hold rows of probabilities summing to 1 for cross_entropy (one-hot rows for classes), "
            f"got row {row} summing to {float(np.sum(values, dtype=np.float64)):g}")


PROBABILITIES = TargetRange(_probabilities_outside, _describe_probabilities)  # binary cross-entropy: each in [0, 1]
DISTRIBUTIONS = TargetRange(_distributions_outside, _describe_distribution)  # cross-entropy: rows >= 0 summing to 1


LOSSES: dict[str, Loss] = {
    "squared_error": squared_loss("squared_error", 1.0, per_output=False),
    "half_squared_error": squared_loss("half_squared_error", 0.5, per_output=False),
    "mse": squared_loss("mse", 1.0, per_output=True),
    "binary_cross_entropy": Loss(
        "binary_cross_entropy", binary_cross_entropy, binary_cross_entropy_gradient,
        {"sigmoid": FusedOutput(binary_cross_entropy_from_sop, prediction_minus_target)},
        outputs=("sigmoid", "softmax"), target_range=PROBABILITIES),
    "cross_entropy": Loss(
        "cross_entropy", cross_entropy, cross_entropy_gradient,
        {"softmax": FusedOutput(cross_entropy_from_sop, softmax_cross_entropy_delta)},
        # -sum t log p over sigmoid outputs, which need not sum to 1, is least with every output at 1
        outputs=("softmax",), target_range=DISTRIBUTIONS, instead={"sigmoid": "binary_cross_entropy"}),
}


def get_loss(name: str | Loss) -> Loss:
    """The loss called ``name``, or a clear error listing the choices."""
    if isinstance(name, Loss):
        return name
    return lookup(LOSSES, name, "loss", "a loss is a name like 'squared_error'")
