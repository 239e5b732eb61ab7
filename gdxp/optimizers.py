"""Optimizers: how a gradient becomes a weight update.

An optimizer object holds only its settings. Its state (velocities, moment estimates: ``state_size`` lists
of arrays shaped like the weights, beside them on the same device) and the step count live in the
training state (:class:`gdxp.state.TrainState`), which the training loop carries from step to step.
:meth:`Optimizer.update` is written once with augmented operators (``m *= beta1``): on arrays that can
change in place (NumPy, CuPy, torch) it updates the weights and the state where they are, using the
gradients as scratch space, with a few temporaries; on immutable arrays (JAX) the same lines build new
ones. Either way it returns the arrays to use from then on. Plain descent (:class:`SGD`, no state)
writes the new weights into the gradients' buffers, so the weights it was given stay as they were.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ._typing import Array, Namespace
from .registry import lookup
from .validation import check_positive_number

__all__ = ["OPTIMIZERS", "Adam", "AdamEpsilonHat", "AdamW", "Momentum", "Optimizer", "SGD", "get_optimizer"]

State = list[list[Array]]
Pieces = Callable[..., Sequence[tuple[Array, ...]]]  # a backend's pieces(*arrays): how an update goes through them


def whole(*arrays: Array) -> Sequence[tuple[Array, ...]]:
    """The arrays as one piece: an update goes through them whole."""
    return (arrays,)


class Optimizer:
    """Base class: the settings of an update rule; :meth:`init` makes its state, :meth:`update` takes a step."""

    name = "optimizer"
    state_size = 0  # arrays of state kept per weight array

    def __init__(self) -> None:
        """No settings (a subclass adds its own): a setting given anyway is named in the TypeError."""

    def hyperparameters(self) -> dict[str, float | bool]:
        """The settings that define this optimizer (saved with a model, shown in its repr)."""
        return {}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"

    def init(self, xp: Namespace, weights: Sequence[Array]) -> State:
        """The state before the first step: ``state_size`` lists of zeros shaped like the weights."""
        return [[xp.zeros_like(w) for w in weights] for _ in range(self.state_size)]

    def update(self, xp: Namespace, weights: Sequence[Array], grads: list[Array], state: State,
               learning_rate: float | Array, step: int | Array, pieces: Pieces = whole) -> tuple[list[Array], State]:
        """The weights and state after step number ``step`` (from 1); ``state`` as :meth:`init` made it or
        an earlier update returned it. Mutable arrays are changed in place (``grads`` too: they are
        scratch), immutable ones replaced; use what comes back. ``pieces``: how an in-place update may go
        through the arrays (:meth:`gdxp.backend.Backend.pieces`), whole by default."""
        raise NotImplementedError

    def check_state(self, state: State, expected: Sequence[tuple[int, ...]]) -> None:
        """Refuse ``state`` made for weights of other shapes than ``expected``."""
        expected = [tuple(shape) for shape in expected]
        if state and len(state) != self.state_size:
            raise ValueError(f"{type(self).__name__} keeps {self.state_size} arrays of state per weight, "
                             f"got {len(state)}")
        for slot in state:
            shapes = [tuple(a.shape) for a in slot]
            if shapes != expected:
                raise ValueError(f"{type(self).__name__} state for weights of shapes {shapes} does not fit "
                                 f"this network's {expected}; use a new optimizer")


class SGD(Optimizer):
    """Plain gradient descent, ``W -= learning_rate * grad``: the tutorials' ``update_w``. The new weights
    are written into the gradients' buffers (``-lr * g + W``, the same number), so no array is allocated
    and the weights given stay as they were."""

    name = "sgd"

    def update(self, xp: Namespace, weights: Sequence[Array], grads: list[Array], state: State,
               learning_rate: float | Array, step: int | Array, pieces: Pieces = whole) -> tuple[list[Array], State]:
        rate = -learning_rate
        for index, w in enumerate(weights):
            g = grads[index]
            g *= rate
            g += w
            grads[index] = g  # on immutable arrays, the new one
        return grads, state


class Momentum(Optimizer):
    """Gradient descent with momentum: ``v = momentum * v - lr * grad``, then ``W += v``.

    With ``nesterov=True`` the step looks ahead along the velocity: ``W += momentum * v - lr * grad``.
    """

    name = "momentum"
    state_size = 1

    def __init__(self, momentum: float = 0.9, *, nesterov: bool = False) -> None:
        self.momentum = _check_fraction(momentum, "momentum")
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = nesterov

    def hyperparameters(self) -> dict[str, float | bool]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def update(self, xp: Namespace, weights: Sequence[Array], grads: list[Array], state: State,
               learning_rate: float | Array, step: int | Array, pieces: Pieces = whole) -> tuple[list[Array], State]:
        momentum, new_weights, velocities = self.momentum, [], []
        for w, g, v in zip(weights, grads, state[0]):
            g *= learning_rate  # lr * grad
            v *= momentum
            v -= g
            if self.nesterov:
                ahead = momentum * v
                ahead -= g
                w += ahead
            else:
                w += v
            new_weights.append(w)
            velocities.append(v)
        return new_weights, [velocities]


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): moving averages of the gradient and its square, bias-corrected.

    ``W -= lr * m_hat / (sqrt(v_hat) + epsilon)`` with ``m_hat = m / (1 - beta1**t)`` and
    ``v_hat = v / (1 - beta2**t)``. Where the arrays change in place, the update goes through them in the
    cache-sized pieces the backend's :meth:`~gdxp.backend.Backend.pieces` gives (``pieces``), so that its
    temporaries never leave the cache.
    """

    name = "adam"
    state_size = 2

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8) -> None:
        self.beta1 = _check_fraction(beta1, "beta1")
        self.beta2 = _check_fraction(beta2, "beta2")
        self.epsilon = check_positive_number(epsilon, "epsilon")

    def hyperparameters(self) -> dict[str, float | bool]:
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}

    def update(self, xp: Namespace, weights: Sequence[Array], grads: list[Array], state: State,
               learning_rate: float | Array, step: int | Array, pieces: Pieces = whole) -> tuple[list[Array], State]:
        corrections = _bias_correction(xp, self.beta1, step), _bias_correction(xp, self.beta2, step)
        new_weights, firsts, seconds = [], [], []
        for arrays in zip(weights, grads, state[0], state[1]):
            moved = [self._moved(xp, *piece, learning_rate, *corrections) for piece in pieces(*arrays)]
            w, _, m, v = arrays if len(moved) > 1 else (moved[0][0], None, *moved[0][1:])  # whole: what came back
            new_weights.append(w)
            firsts.append(m)
            seconds.append(v)
        return new_weights, [firsts, seconds]

    def _moved(self, xp: Namespace, w: Array, g: Array, m: Array, v: Array, learning_rate: float | Array,
               first_correction: float | Array, second_correction: float | Array) -> tuple[Array, Array, Array]:
        """One piece's step: its weights, first and second moments after it (changed in place where they can)."""
        m, v = self._moved_moments(g, m, v)
        denominator = xp.sqrt(v / second_correction)
        denominator += self.epsilon
        change = m / first_correction
        change *= learning_rate
        change /= denominator
        w -= change
        return w, m, v

    def _moved_moments(self, g: Array, m: Array, v: Array) -> tuple[Array, Array]:
        """``m`` and ``v`` moved towards the gradient and its square (in place where they can change, ``g``
        then scratch; new arrays on immutable ones: use what comes back)."""
        b1, b2 = self.beta1, self.beta2
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        g *= g  # the gradient is not needed again: its square in its place
        g *= 1.0 - b2
        v += g
        return m, v


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019): after Adam's step every weight also
    shrinks by ``learning_rate * weight_decay * W`` (``W`` from before the step), apart from the moments,
    where an L2 penalty in the loss would be rescaled by Adam's ``1 / sqrt(v_hat)``. Biases decay too, as
    in PyTorch's AdamW."""

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

    def _moved(self, xp: Namespace, w: Array, g: Array, m: Array, v: Array, learning_rate: float | Array,
               first_correction: float | Array, second_correction: float | Array) -> tuple[Array, Array, Array]:
        decay = (learning_rate * self.weight_decay) * w  # from the weights before Adam's step changes them
        w, m, v = super()._moved(xp, w, g, m, v, learning_rate, first_correction, second_correction)
        w -= decay
        return w, m, v


class AdamEpsilonHat(Adam):
    """Adam in the order Kingma and Ba give at the end of their section 2, as scikit-learn's MLP and
    TensorFlow run it: the bias corrections fold into the step size, ``lr * sqrt(1 - beta2**t) / (1 - beta1**t)``,
    and ``epsilon`` ("epsilon hat") is added to ``sqrt(v)`` rather than to ``sqrt(v_hat)``: in the first
    steps it weighs ``1 / sqrt(1 - beta2**t)`` times more than :class:`Adam`'s."""

    name = "adam_epsilon_hat"

    def _moved(self, xp: Namespace, w: Array, g: Array, m: Array, v: Array, learning_rate: float | Array,
               first_correction: float | Array, second_correction: float | Array) -> tuple[Array, Array, Array]:
        m, v = self._moved_moments(g, m, v)
        denominator = xp.sqrt(v)
        denominator += self.epsilon
        change = m * (learning_rate * second_correction**0.5 / first_correction)
        change /= denominator
        w -= change
        return w, m, v


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adamw": AdamW,
                                          "adam_epsilon_hat": AdamEpsilonHat}


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
