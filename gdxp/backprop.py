"""The forward pass and backpropagation for a stack of dense layers, vectorized over samples and neurons.

This is the tutorials' chain rule, one layer at a time instead of one neuron at a time. Names follow
them: the sum of products ``sop = activ_prev @ W + b``, the activation ``activ = f(sop)``, and the
factors error->prediction, prediction->sop and sop->W whose product is each weight's gradient.
``delta`` is error->sop, the factor all of a layer's weights share.

:func:`forward` and :func:`gradients` take an optional ``record(name, value, meaning)`` callback that
sees each named intermediate; :mod:`gdxp.trace` uses it to print a walkthrough. Training passes None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._typing import Array, Namespace
from .activations import Activation
from .losses import Loss

__all__ = ["Layer", "forward", "gradients", "layers_for", "output_loss"]

Recorder = Callable[[str, Array, str], None] | None


@dataclass(frozen=True)
class Layer:
    """A dense layer's place in the flat weight list (Keras order) and its activation.

    ``weights`` indexes W, of shape (n_in, n_out); ``bias`` indexes b, of shape (n_out,), or is None.
    """

    activation: Activation
    weights: int
    bias: int | None


def layers_for(activations: Sequence[Activation], bias: bool) -> tuple[Layer, ...]:
    """The layers of a network with these activations, weights stored ``[W1, b1, W2, b2, ...]``."""
    step = 2 if bias else 1
    return tuple(Layer(a, i * step, i * step + 1 if bias else None) for i, a in enumerate(activations))


def forward(xp: Namespace, layers: Sequence[Layer], weights: Sequence[Array], x: Array,
            record: Recorder = None) -> tuple[list[Array], Array]:
    """Run ``x`` through every layer; return each layer's activation (``x`` first, the prediction
    last) and the output layer's sum of products."""
    activs = [x]
    sop = x
    if record:
        record("x", x, "the input sample")
    for layer in layers:
        sop = activs[-1] @ weights[layer.weights]
        if layer.bias is not None:
            sop = sop + weights[layer.bias]
        activs.append(layer.activation.forward(xp, sop))
        if record:
            number = len(activs) - 1
            inputs = "x" if number == 1 else f"activ{number - 1}"
            plus_bias = f" + b{number}" if layer.bias is not None else ""
            record(f"sop{number}", sop, f"sum of products: {inputs} @ W{number}{plus_bias}")
            record(f"activ{number}", activs[-1], f"{layer.activation.name}(sop{number})")
    return activs, sop


def output_loss(xp: Namespace, activation: Activation, loss: Loss, prediction: Array, sop: Array,
                target: Array) -> Array:
    """The loss of a batch (0-d), from the SOP where the pair is fused, so it stays finite."""
    fused = loss.fused.get(activation.name)
    if fused is not None:
        return fused.value(xp, sop, target)
    return loss.value(xp, prediction, target)


def gradients(xp: Namespace, layers: Sequence[Layer], loss: Loss, weights: Sequence[Array], x: Array,
              target: Array, *, want_loss: bool = False,
              record: Recorder = None) -> tuple[list[Array], Array | None, Array]:
    """One forward and one backward pass: the gradient of the loss for every weight array (in the
    order of ``weights``), the loss (with ``want_loss``, else None) and the prediction.

    Written as one function on purpose: this is the training hot path, where every Python call
    costs as much as a NumPy operation on the tutorials' tiny arrays.
    """
    activs, sop = forward(xp, layers, weights, x, record)
    prediction, number = activs[-1], len(layers)
    output = layers[-1].activation

    # the output layer: error->sop = error->prediction * prediction->sop, or the fused form
    fused, value, error_prediction = loss.fused.get(output.name), None, None
    if fused is not None:
        delta = fused.delta(xp, prediction, target)
        if want_loss or record:
            value = fused.value(xp, sop, target)
    else:
        if want_loss or record:
            value, error_prediction = loss.value_and_gradient(xp, prediction, target)
        else:
            error_prediction = loss.gradient(xp, prediction, target)
        delta = output.backward(xp, prediction, error_prediction)
    if record:
        record("prediction", prediction, f"activ{number}, the network's output")
        record("target", target, "the wanted output")
        record("error", value, f"{loss.name}(prediction, target)")
        if fused is not None:
            record(f"error->sop{number}", delta,
                   f"{output.name} and {loss.name} cancel: (prediction - target) / n_samples")
        else:
            record("error->prediction", error_prediction, f"d {loss.name} / d prediction")
            _record_derivative(xp, output, prediction, "prediction", f"sop{number}", record)
            record(f"error->sop{number}", delta, "error->prediction * prediction->sop (chain rule)")

    # back through the layers: each layer's gradient from its input and its error->sop
    grads: list[Array] = [None] * len(weights)
    for index in range(len(layers) - 1, -1, -1):
        layer, number, layer_input = layers[index], index + 1, activs[index]
        grads[layer.weights] = layer_input.T @ delta
        if layer.bias is not None:
            grads[layer.bias] = xp.sum(delta, axis=0)
        if record:
            source = "x" if number == 1 else f"activ{index}"
            record(f"sop{number}->W{number}", layer_input, f"d sop{number} / d W{number} = {source}")
            record(f"grad_W{number}", grads[layer.weights], f"{source}.T @ error->sop{number}")
            if layer.bias is not None:
                record(f"grad_b{number}", grads[layer.bias], f"sum over samples of error->sop{number}")
        if index == 0:
            break
        error_activ = delta @ weights[layer.weights].T
        previous = layers[index - 1].activation  # a hidden layer's: elementwise, so it has a derivative
        delta = error_activ * previous.derivative(xp, activs[index])
        if record:
            record(f"sop{number}->activ{index}", weights[layer.weights], f"d sop{number} / d activ{index} = W{number}")
            record(f"error->activ{index}", error_activ, f"error->sop{number} @ W{number}.T")
            _record_derivative(xp, previous, activs[index], f"activ{index}", f"sop{index}", record)
            record(f"error->sop{index}", delta, f"error->activ{index} * activ{index}->sop{index}")
    return grads, value, prediction


def _record_derivative(xp: Namespace, activation: Activation, activ: Array, out: str, sop: str,
                       record: Callable[[str, Array, str], None]) -> None:
    if activation.derivative is not None:
        record(f"{out}->{sop}", activation.derivative(xp, activ), f"{activation.name}' from {out}")
