"""Activation functions and their derivatives, written once against the array API.

Each derivative is computed from the activation's *output* (the cached ``activ``), not from its input:
the tutorials' ``sigmoid_sop_deriv(sop)`` recomputes the sigmoid, while ``activ * (1 - activ)`` is the
same number for free. ``backward`` is the chain rule through the activation: given the gradient of the
error with respect to the output, it returns the gradient with respect to the sum of products (SOP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._typing import Array, Namespace
from .registry import lookup

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]


LEAKY_RELU_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(xp, sop) -> activ`` and ``derivative(xp, activ) -> d activ / d sop``.

    ``derivative`` is None for ``softmax``, whose outputs all depend on every input; its chain rule
    step is a Jacobian-vector product, done by :meth:`backward`.
    """

    name: str
    forward: Callable[[Namespace, Array], Array]
    derivative: Callable[[Namespace, Array], Array] | None
    output_only: bool = False

    def backward(self, xp: Namespace, activ: Array, grad_activ: Array) -> Array:
        """d error / d sop, from the output ``activ`` and ``grad_activ`` = d error / d activ."""
        if self.derivative is not None:
            return grad_activ * self.derivative(xp, activ)
        return activ * (grad_activ - xp.sum(grad_activ * activ, axis=-1, keepdims=True))

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def sigmoid(xp: Namespace, sop: Array) -> Array:
    """1 / (1 + exp(-sop)), the tutorials' formula. Below sop = -709 (float64) or -88 (float32)
    ``exp`` overflows to infinity and the result is exactly 0, the nearest number to the true value;
    :meth:`gdxp.backend.Backend.activate` keeps NumPy from warning about that overflow."""
    return 1.0 / (1.0 + xp.exp(-sop))


def sigmoid_derivative(xp: Namespace, activ: Array) -> Array:
    return activ * (1.0 - activ)


def tanh(xp: Namespace, sop: Array) -> Array:
    return xp.tanh(sop)


def tanh_derivative(xp: Namespace, activ: Array) -> Array:
    return 1.0 - activ * activ


def relu(xp: Namespace, sop: Array) -> Array:
    return xp.maximum(sop, 0.0)


def relu_derivative(xp: Namespace, activ: Array) -> Array:
    return xp.astype(activ > 0.0, activ.dtype)


def leaky_relu(xp: Namespace, sop: Array) -> Array:
    return xp.where(sop > 0.0, sop, LEAKY_RELU_SLOPE * sop)


def leaky_relu_derivative(xp: Namespace, activ: Array) -> Array:
    # the output has the sign of the input, so the output tells which slope applies
    positive = activ > 0.0
    return xp.where(positive, xp.astype(positive, activ.dtype), LEAKY_RELU_SLOPE)


def identity(xp: Namespace, sop: Array) -> Array:
    return sop


def identity_derivative(xp: Namespace, activ: Array) -> Array:
    return xp.ones_like(activ)


def exp(xp: Namespace, sop: Array) -> Array:
    """The log link's inverse: scikit-learn's output for its Poisson loss (``MLPRegressor(loss="poisson")``)."""
    return xp.exp(sop)


def exp_derivative(xp: Namespace, activ: Array) -> Array:
    return activ


def softmax(xp: Namespace, sop: Array) -> Array:
    """exp(sop) / sum(exp(sop)) over the outputs of each sample, shifted by the max so nothing overflows."""
    shifted = xp.exp(sop - xp.max(sop, axis=-1, keepdims=True))
    return shifted / xp.sum(shifted, axis=-1, keepdims=True)


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, tanh_derivative),
    "relu": Activation("relu", relu, relu_derivative),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_derivative),
    "identity": Activation("identity", identity, identity_derivative),
    "exp": Activation("exp", exp, exp_derivative, output_only=True),  # a log link's inverse, not a hidden layer's
    "softmax": Activation("softmax", softmax, None, output_only=True),
}
_ALIASES = {"linear": "identity"}


def get_activation(name: str | Activation, *, hidden: bool, argument: str = "activation") -> Activation:
    """The activation called ``name`` (``"linear"`` is ``"identity"``); ``hidden`` rejects output-only ones.
    ``argument`` is what the errors call it (``output_activation`` for the output layer's)."""
    if isinstance(name, Activation):
        activation = name
    else:
        activation = lookup(ACTIVATIONS, name, "activation", "an activation is a name like 'sigmoid'", _ALIASES,
                            argument=argument)
    if hidden and activation.output_only:
        raise ValueError(f"activation {activation.name!r} can only be used on the output layer")
    return activation
