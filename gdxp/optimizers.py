"""Optimizers: how a gradient becomes a weight update.

:meth:`Optimizer.update` is a pure function of arrays: ``(weights, gradients, state, learning_rate,
step)`` in, new weights and new state out, nothing changed in place or on the object. The state
(velocities, moment estimates) is arrays beside the weights, on the same device. The training loop
calls ``update`` and keeps weights and state itself; :meth:`Optimizer.apply` is the stateful
convenience that keeps them on the optimizer (``state``, ``steps``), as :meth:`Network.step` uses it.
Either way new arrays come back and are swapped in at once, so an interrupted step never leaves half
the weights updated.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from ._typing import Array, Namespace
from .registry import lookup
from .validation import check_positive_number

__all__ = ["OPTIMIZERS", "Adam", "AdamW", "Momentum", "Optimizer", "SGD", "get_optimizer"]


class Optimizer:
    """Base class: ``update`` computes new weights and state; ``apply`` also keeps the state here.

    ``state`` holds per-weight arrays (``state_size`` lists of them, empty before the first step);
    ``steps`` counts the steps taken.
    """

    name = "optimizer"
    state_size = 0  # arrays of state kept per weight array

    def __init__(self) -> None:
        self.steps = 0
        self.state: list[list[Array]] = []

    def hyperparameters(self) -> dict[str, float | bool]:
        """The settings that define this optimizer (saved with a model, shown in its repr)."""
        return {}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"

    def update(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array], state: Sequence[Sequence[Array]],
               learning_rate: float, step: int) -> tuple[list[Array], list[list[Array]]]:
        """New weights and new state after step number ``step`` (from 1); empty ``state`` starts at zero.

        Pure: reads only its arguments and the settings, changes nothing in place.
        """
        raise NotImplementedError

    def initial_state(self, xp: Namespace, weights: Sequence[Array]) -> list[list[Array]]:
        """The state before the first step: ``state_size`` lists of zeros shaped like the weights."""
        return [[xp.zeros_like(w) for w in weights] for _ in range(self.state_size)]

    def apply(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array],
              learning_rate: float) -> list[Array]:
        """New weights after one :meth:`update`; keeps its state and counts the step here (swapped in only
        once all are computed, after checking the state fits these weights)."""
        if self.state:
            self.check_state([tuple(w.shape) for w in weights])
        step = self.steps + 1
        new_weights, new_state = self.update(xp, weights, grads, self.state, learning_rate, step)
        self.state, self.steps = new_state, step
        return new_weights

    def check_state(self, expected: Sequence[tuple[int, ...]]) -> None:
        """Refuse state that belongs to a network whose weights have other shapes than ``expected``."""
        expected = [tuple(shape) for shape in expected]
        for slot in self.state:
            shapes = [tuple(a.shape) for a in slot]
            if shapes != expected:
                raise ValueError(f"{type(self).__name__} holds state for weights of shapes {shapes}, "
                                 f"but this network's are {expected}; use a new optimizer")


class SGD(Optimizer):
    """Plain gradient descent, ``W -= learning_rate * grad``: the tutorials' ``update_w``."""

    name = "sgd"

    def update(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array], state: Sequence[Sequence[Array]],
               learning_rate: float, step: int) -> tuple[list[Array], list[list[Array]]]:
        return [w - learning_rate * g for w, g in zip(weights, grads)], state

    def apply(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array],
              learning_rate: float) -> list[Array]:
        self.steps += 1  # no state to keep: the update's one expression, without a call on Network.step's path
        return [w - learning_rate * g for w, g in zip(weights, grads)]


class Momentum(Optimizer):
    """Gradient descent with momentum: ``v = momentum * v - lr * grad``, then ``W += v``.

    With ``nesterov=True`` the step looks ahead along the velocity: ``W += momentum * v - lr * grad``.
    """

    name = "momentum"
    state_size = 1

    def __init__(self, momentum: float = 0.9, *, nesterov: bool = False) -> None:
        super().__init__()
        self.momentum = _check_fraction(momentum, "momentum")
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = nesterov

    def hyperparameters(self) -> dict[str, float | bool]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def update(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array], state: Sequence[Sequence[Array]],
               learning_rate: float, step: int) -> tuple[list[Array], list[list[Array]]]:
        previous = (state or self.initial_state(xp, weights))[0]
        velocities = [self.momentum * v - learning_rate * g for v, g in zip(previous, grads)]
        if self.nesterov:
            steps = [self.momentum * v - learning_rate * g for v, g in zip(velocities, grads)]
        else:
            steps = velocities
        return [w + s for w, s in zip(weights, steps)], [velocities]


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): moving averages of the gradient and its square, bias-corrected.

    ``W -= lr * m_hat / (sqrt(v_hat) + epsilon)`` with ``m_hat = m / (1 - beta1**t)`` and
    ``v_hat = v / (1 - beta2**t)``.
    """

    name = "adam"
    state_size = 2

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.beta1 = _check_fraction(beta1, "beta1")
        self.beta2 = _check_fraction(beta2, "beta2")
        self.epsilon = check_positive_number(epsilon, "epsilon")

    def hyperparameters(self) -> dict[str, float | bool]:
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}

    def update(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array], state: Sequence[Sequence[Array]],
               learning_rate: float, step: int) -> tuple[list[Array], list[list[Array]]]:
        b1, b2 = self.beta1, self.beta2
        moments = state or self.initial_state(xp, weights)
        first = [b1 * m + (1.0 - b1) * g for m, g in zip(moments[0], grads)]
        second = [b2 * v + (1.0 - b2) * (g * g) for v, g in zip(moments[1], grads)]
        first_correction, second_correction = _bias_correction(xp, b1, step), _bias_correction(xp, b2, step)
        new_weights = [
            w - learning_rate * (m / first_correction) / (xp.sqrt(v / second_correction) + self.epsilon)
            for w, m, v in zip(weights, first, second)]
        return new_weights, [first, second]


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019): after Adam's step every weight also
    shrinks by ``learning_rate * weight_decay * W``, apart from the moments, where an L2 penalty in the
    loss would be rescaled by Adam's ``1 / sqrt(v_hat)``. Biases decay too, as in PyTorch's AdamW."""

    name = "adamw"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(beta1, beta2, epsilon)
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
            raise TypeError(f"weight_decay must be a number, got {weight_decay!r}")
        if not (-1e308 < weight_decay < 1e308 and weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)

    def hyperparameters(self) -> dict[str, float | bool]:
        return {**super().hyperparameters(), "weight_decay": self.weight_decay}

    def update(self, xp: Namespace, weights: Sequence[Array], grads: Sequence[Array], state: Sequence[Sequence[Array]],
               learning_rate: float, step: int) -> tuple[list[Array], list[list[Array]]]:
        stepped, new_state = super().update(xp, weights, grads, state, learning_rate, step)
        shrink = learning_rate * self.weight_decay
        return [n - shrink * w for n, w in zip(stepped, weights)], new_state


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adamw": AdamW}


def get_optimizer(optimizer: str | Optimizer) -> Optimizer:
    """An optimizer object: a new one with default settings for a name, or the object itself."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    return lookup(OPTIMIZERS, optimizer, "optimizer", "optimizer must be a name like 'adam' or an Optimizer")()


def _bias_correction(xp: Namespace, beta: float, step: int | Array) -> float | Array:
    """``1 - beta**step``, as ``-expm1(step * log(beta))``: exact to the last digit where the step count is a
    device array of the network's dtype too (a compiled run's), where ``1 - 0.999`` in float32 loses five."""
    if beta == 0.0:
        return 1.0
    exponent = step * math.log(beta)
    return -math.expm1(exponent) if isinstance(exponent, float) else -xp.expm1(exponent)


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)
