"""A training step as a plain function of arrays, and the scores the loop reads between steps.

:func:`make_step` is the one step every way of training runs: backprop through the backend's
:meth:`~gdxp.backend.Backend.batch_means` (the whole batch, or a task per chunk on Dask), then the
optimizer's update. It reads and writes no object's attributes, so JAX traces it as it is; on mutable
arrays the update changes the weights and the optimizer's state in place, between two steps and never
half-way (:class:`UpdateGuard`).
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import backprop
from ._typing import Array, BatchMeans, Namespace
from .activations import ACTIVATIONS
from .architecture import Architecture
from .backend import Backend
from .losses import LOSSES
from .metrics import accuracy, metric_name
from .optimizers import Optimizer

__all__ = ["Step", "Trained", "UpdateGuard", "all_finite", "batches", "make_step", "score_function",
           "scores", "surely_finite_loss", "training_loss"]

Trained = tuple[Sequence[Array], Sequence[Sequence[Array]], Any]  # weights, optimizer state, steps: a step's carry
Step = Callable[..., tuple[Trained, Array, Array]]  # (trained, x, y[, sample_weight]) -> (trained, loss, prediction)


class UpdateGuard:
    """Ctrl-C that comes while an in-place update runs is held until the loop has recorded the step
    (:meth:`deliver`), so the weights are never half updated nor ahead of the step count; at any other moment
    it interrupts at once, as usual. It takes effect in the main thread (where Python delivers Ctrl-C) while
    used as a context manager."""

    def __init__(self) -> None:
        self.updating = False
        self._held: tuple[int, Any] | None = None
        self._previous: Any = None

    def __enter__(self) -> UpdateGuard:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.updating:
            self._held = (signum, frame)
        else:
            self._previous(signum, frame)

    def deliver(self) -> None:
        """Once the step is recorded: a Ctrl-C held during its update interrupts now."""
        if self._held is not None:
            held, self._held = self._held, None
            self._previous(*held)


def make_step(backend: Backend, architecture: Architecture, optimizer: Optimizer, learning_rate: float | Array,
              weight_decay: float = 0.0, guard: UpdateGuard | None = None) -> Step:
    """One training step: ``step((weights, optimizer_state, steps), x, y[, sample_weight]) -> ((weights, state,
    steps + 1), loss, prediction)``, the gradients taken at the weights from before the step and the loss the
    batch's before it, a mean weighted by ``sample_weight`` where given (scikit-learn's; a batch whose weights
    sum to 0 has loss 0 and gradients 0). ``weight_decay`` adds scikit-learn's L2 penalty,
    ``weight_decay / 2 * sum(W**2)`` over the batch's samples (its weight sum, with ``sample_weight``), to the
    loss and its gradient, for the weights W only (not the biases). ``guard`` holds Ctrl-C while an in-place
    update runs, for the caller to deliver once it has recorded the step."""
    update, batch_means, settled = optimizer.update, backend.batch_means, backend.settled
    pieces = backend.parameters.pieces
    gradients = backprop.gradient_function(architecture.layers, architecture.loss, want_loss=True)
    held = backend.parameters.xp
    decayed = [layer.weight_index for layer in architecture.layers]

    def step(trained: Trained, x: Array, y: Array, sample_weight: Array | None = None) -> tuple[Trained, Array, Array]:
        weights, state, steps = trained
        means, prediction = batch_means(gradients, weights, x, y, sample_weight)
        grads = settled(means)
        total = None if sample_weight is None else grads.pop()  # the batch's weight sum, last
        value = grads.pop()  # the loss, after the gradients
        if weight_decay:
            per_sample = weight_decay / (x.shape[0] if total is None else held.where(total > 0.0, total, math.inf))
            for index in decayed:
                flat = held.reshape(weights[index], (-1,))
                grads[index] = grads[index] + per_sample * weights[index]
                value = value + 0.5 * per_sample * held.vecdot(flat, flat)
        steps += 1
        if guard is None:
            new_weights, new_state = update(held, weights, grads, state, learning_rate, steps, pieces)
        else:
            guard.updating = True
            try:
                new_weights, new_state = update(held, weights, grads, state, learning_rate, steps, pieces)
            finally:
                guard.updating = False
        return (new_weights, new_state, steps), value, prediction

    return step


def batches(backend: Backend, rng: np.random.Generator | None, size: int, inputs: Array, targets: Array,
            sample_weight: Array | None = None) -> Iterator[tuple[Array, ...]]:
    """The data in batches of ``size`` samples, ``(x, y)`` or with ``sample_weight`` ``(x, y, w)``, reshuffled
    first with ``rng`` unless it is None (the weights with their samples)."""
    n_samples = inputs.shape[0]
    if rng is not None:
        inputs, targets, *weights = backend.shuffled(rng, inputs, targets,
                                                     *(() if sample_weight is None else (sample_weight,)))
        sample_weight = weights[0] if weights else None
    for start in range(0, n_samples, size):
        stop = min(start + size, n_samples)
        if sample_weight is None:
            yield inputs[start:stop, ...], targets[start:stop, ...]
        else:
            yield inputs[start:stop, ...], targets[start:stop, ...], sample_weight[start:stop, ...]


def score_function(architecture: Architecture) -> BatchMeans:
    """What :func:`scores` has a backend run: ``(xp, weights, x, y[, shares]) -> ([loss, accuracy],
    prediction)``, the accuracy only where the loss is a cross-entropy (:func:`gdxp.metrics.metric_name`):
    both are means over the samples (weighted by the shares where given), so a task per chunk can compute
    them (R² is not)."""
    layers, loss = architecture.layers, architecture.loss
    classifies = metric_name(loss) == "accuracy"

    def scored(xp: Namespace, weights: Sequence[Array], x: Array, y: Array,
               shares: Array | None = None) -> tuple[list[Array], Array]:
        value, prediction = backprop.loss_and_prediction(xp, layers, loss, weights, x, y, shares)
        if not classifies:
            return [value], prediction
        return [value, xp.astype(accuracy(xp, loss, prediction, y, shares), value.dtype)], prediction

    return scored


def scores(backend: Backend, architecture: Architecture, weights: Sequence[Array], data: tuple[Array, Array]) -> Array:
    """The loss, and the accuracy where the loss is a cross-entropy, on ``data`` as one 1-D array: one read
    from the device (on Dask, the means of a task per chunk, computed here)."""
    means, _ = backend.batch_means(score_function(architecture), weights, *data)
    return backend.parameters.xp.stack(backend.settled(means))


def training_loss(backend: Backend, architecture: Architecture, weights: Sequence[Array],
                  data: tuple[Array, Array]) -> float:
    """The loss of ``weights`` on ``data`` as a float (inf where a weight is not finite)."""
    if not all_finite(backend, weights):
        return math.inf
    return float(backend.parameters.to_numpy(scores(backend, architecture, weights, data))[0])


_BOUNDED = tuple(ACTIVATIONS[name] for name in ("sigmoid", "tanh", "softmax"))  # outputs within [-1, 1]
_NO_LARGER = tuple(ACTIVATIONS[name] for name in ("relu", "leaky_relu", "identity"))  # |f(s)| <= |s|
_SQUARED = tuple(LOSSES[name] for name in ("squared_error", "half_squared_error", "mse"))


def surely_finite_loss(backend: Backend, architecture: Architecture, weights: Sequence[Array],
                       data: tuple[Array, Array]) -> bool:
    """Whether the loss of ``weights`` on ``data`` is certainly finite, from bounds that cost far less than a
    forward pass: ``|sop| <= max|x| * max_j sum_i |W_ij| + max|b|`` layer by layer (gdxp's own activations
    keep or shrink that bound), then the loss's own bound (squared errors; the fused cross-entropies).
    False means not known: then the loss is computed (:func:`training_loss`). NaN anywhere makes it False."""
    layers, loss = architecture.layers, architecture.loss
    if loss not in _SQUARED and loss.fused.get(architecture.output.name) is None:
        return False  # a log of a probability that may be exactly 0
    if not all(layer.activation in _BOUNDED + _NO_LARGER for layer in layers):
        return False
    held = backend.parameters
    sizes = [held.xp.max(held.xp.sum(held.xp.abs(weights[layer.weight_index]), axis=0)) for layer in layers]
    offsets = [held.xp.max(held.xp.abs(weights[layer.bias_index])) if layer.bias_index is not None
               else held.xp.zeros_like(sizes[0]) for layer in layers]
    parts = [float(v) for v in held.to_numpy(held.xp.stack(sizes + offsets))]  # Python floats: inf, never a warning
    bound, target = (backend.largest_magnitude(a) for a in data)
    limit = float(np.finfo(backend.dtype_name).max) / 1e3  # far from overflow, whatever the rounding
    for layer, size, offset in zip(layers, parts[:len(layers)], parts[len(layers):]):
        sop = 1.1 * (bound * size + offset)  # the sums of products, with room for their rounding
        if not sop < limit:
            return False
        bound = 1.0 if layer.activation in _BOUNDED else sop
    n_out = architecture.sizes[-1]
    if loss in _SQUARED:
        return bound + target < math.sqrt(limit / n_out)
    return n_out * (2.0 * bound * (1.0 + target) + n_out) < limit


def all_finite(backend: Backend, weights: Sequence[Array]) -> bool:
    """Whether every weight is a number (one read from the device for all of them; none for no arrays)."""
    held = backend.parameters
    if not weights:
        return True
    return bool(np.all(held.to_numpy(held.xp.stack([held.xp.all(held.xp.isfinite(w)) for w in weights]))))
