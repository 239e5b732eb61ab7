"""The forward pass and backpropagation for a stack of dense layers, vectorized over samples and neurons.

This is the tutorials' chain rule, one layer at a time instead of one neuron at a time. Names follow
them: the sum of products ``sop = activ_prev @ W + b``, the activation ``activ = f(sop)``, and the
factors error->prediction, prediction->sop and sop->W whose product is each weight's gradient.
``delta`` is error->sop, the factor all of a layer's weights share.

:func:`forward` and :func:`gradients` take an optional ``record(number, **terms)`` callback that sees
each intermediate under a short term (``sop``, ``error_sop``, ``grad_W``, ...) with the number of the
layer it belongs to; :mod:`gdxp.trace` holds the table of what each term is called and means, and
prints the walkthrough. A term given as None does not exist in this network. Training passes None.

Sample weights come in as ``shares``, one per sample: the loss is then ``sum_i shares_i * loss_i``
(scikit-learn's weighted mean where the shares are the weights over their sum), and its gradients scale
each sample's output delta by ``shares_i * n_samples``, its weight in the mean the losses compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._typing import Array, BatchMeans, Namespace
from .activations import Activation
from .losses import Loss

__all__ = ["Layer", "forward", "gradients", "layers_for", "loss_and_prediction", "output_loss"]

Recorder = Callable[..., None] | None


@dataclass(frozen=True)
class Layer:
    """A dense layer's place in the flat weight list (Keras order) and its activation.

    ``weight_index`` indexes W, of shape (n_in, n_out); ``bias_index`` indexes b, of shape (n_out,),
    or is None.
    """

    activation: Activation
    weight_index: int
    bias_index: int | None


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
        record(0, x=x)
    for layer in layers:
        sop = activs[-1] @ weights[layer.weight_index]
        if layer.bias_index is not None:
            sop = sop + weights[layer.bias_index]
        activs.append(layer.activation.forward(xp, sop))
        if record:
            record(len(activs) - 1, sop=sop, activ=activs[-1])
    return activs, sop


def output_loss(xp: Namespace, activation: Activation, loss: Loss, prediction: Array, sop: Array,
                target: Array, shares: Array | None = None) -> Array:
    """The loss of a batch (0-d), from the SOP where the pair is fused, so it stays finite; with ``shares``
    (one per sample) the sum of each sample's loss times its share."""
    fused = loss.fused.get(activation.name)
    if shares is not None:
        rows = loss.rows(xp, prediction, target) if fused is None else fused.rows(xp, sop, target)
        return xp.vecdot(rows, shares)
    if fused is not None:
        return fused.value(xp, sop, target)
    return loss.value(xp, prediction, target)


def loss_and_prediction(xp: Namespace, layers: Sequence[Layer], loss: Loss, weights: Sequence[Array], x: Array,
                        target: Array, shares: Array | None = None) -> tuple[Array, Array]:
    """The loss (0-d, weighted by ``shares`` where given) and the prediction for a batch, forward only."""
    activs, sop = forward(xp, layers, weights, x)
    return output_loss(xp, layers[-1].activation, loss, activs[-1], sop, target, shares), activs[-1]


def gradient_function(layers: Sequence[Layer], loss: Loss, *, want_loss: bool) -> BatchMeans:
    """:func:`gradients` for these layers and this loss as what a backend's ``batch_means`` runs, on a whole
    batch or (Dask) on each of its chunks: ``(xp, weights, x, target[, shares]) -> (gradients [+ loss],
    prediction)``."""

    def batch(xp: Namespace, weights: Sequence[Array], x: Array, target: Array,
              shares: Array | None = None) -> tuple[list[Array], Array]:
        grads, value, prediction = gradients(xp, layers, loss, weights, x, target, want_loss=want_loss,
                                             shares=shares)
        if value is not None:
            grads.append(value)  # a list made by this call: the means are the gradients, then the loss
        return grads, prediction

    return batch


def gradients(xp: Namespace, layers: Sequence[Layer], loss: Loss, weights: Sequence[Array], x: Array,
              target: Array, *, want_loss: bool = False, record: Recorder = None,
              shares: Array | None = None) -> tuple[list[Array], Array | None, Array]:
    """One forward and one backward pass: the gradient of the loss for every weight array (in the
    order of ``weights``), the loss (with ``want_loss``, else None) and the prediction; with ``shares``,
    of the loss weighted by them (see the module's docstring).

    Written as one function on purpose: this is the training hot path, where every Python call
    costs as much as a NumPy operation on the tutorials' tiny arrays.
    """
    activs, sop = forward(xp, layers, weights, x, record)
    prediction, number = activs[-1], len(layers)
    output = layers[-1].activation

    # the output layer: error->sop = error->prediction * prediction->sop, or the fused form
    fused, value = loss.fused.get(output.name), None
    if fused is not None:
        delta = fused.delta(xp, prediction, target)
        if want_loss or record:
            value = fused.value(xp, sop, target)
        if record:
            record(number, prediction=prediction, target=target, error=value, error_sop_fused=delta)
    else:
        if want_loss or record:
            value, error_prediction = loss.value_and_gradient(xp, prediction, target)
        else:
            error_prediction = loss.gradient(xp, prediction, target)
        delta = output.backward(xp, prediction, error_prediction)
        if record:
            prediction_sop = None if output.derivative is None else output.derivative(xp, prediction)
            record(number, prediction=prediction, target=target, error=value, error_prediction=error_prediction,
                   prediction_sop=prediction_sop, error_sop_output=delta)
    if shares is not None:  # each sample's delta scaled by its weight in the mean the loss took
        delta = delta * xp.reshape(shares * prediction.shape[0], (-1, 1))
        if want_loss:
            value = output_loss(xp, output, loss, prediction, sop, target, shares)

    # back through the layers: each layer's gradient from its input and its error->sop
    grads: list[Array] = [None] * len(weights)
    for index in range(len(layers) - 1, -1, -1):
        layer, layer_input = layers[index], activs[index]
        grads[layer.weight_index] = layer_input.T @ delta
        if layer.bias_index is not None:
            grads[layer.bias_index] = xp.sum(delta, axis=0)
        if record:
            record(index + 1, sop_W=layer_input, grad_W=grads[layer.weight_index],
                   grad_b=None if layer.bias_index is None else grads[layer.bias_index])
        if index == 0:
            break
        # into the hidden layer below: its activation is elementwise, so it has a derivative
        error_activ = delta @ weights[layer.weight_index].T
        activ_sop = layers[index - 1].activation.derivative(xp, activs[index])
        delta = error_activ * activ_sop
        if record:
            record(index, sop_activ=weights[layer.weight_index], error_activ=error_activ, activ_sop=activ_sop,
                   error_sop=delta)
    return grads, value, prediction
