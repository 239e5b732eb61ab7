"""The tutorials' own training loops, one neuron at a time, as they wrote them.

gdxp's tests use them as the reference that the vectorized engine must reproduce, and
``benchmark.py`` times them. Both are fixed in the one place the tutorials went wrong: the output
weights used for the hidden layer's gradients are a real copy of the weights from before the step
(``w_old = w`` aliased them). Part 4's ragged ``numpy.array(w)``, which current NumPy refuses, is a
plain list of per-layer arrays.
"""

import numpy


def sigmoid(sop):
    return 1.0 / (1 + numpy.exp(-1 * sop))


def error_predicted_deriv(predicted, target):
    return 2 * (predicted - target)


def sigmoid_sop_deriv(sop):
    return sigmoid(sop) * (1.0 - sigmoid(sop))


def update_w(w, grad, learning_rate):
    return w - learning_rate * grad


def part3_loop(x, target, w1, w2, w3_2, learning_rate, steps):
    """Part 3: two hidden neurons with weights ``w1`` and ``w2``, output weights ``w3_2``."""
    predictions = []
    for _ in range(steps):
        sop1 = numpy.sum(w1 * x)
        sop2 = numpy.sum(w2 * x)
        sig1 = sigmoid(sop1)
        sig2 = sigmoid(sop2)
        sop3 = numpy.sum(w3_2 * numpy.array([sig1, sig2]))
        predicted = sigmoid(sop3)
        predictions.append(float(predicted))
        g1 = error_predicted_deriv(predicted, target)
        g2 = sigmoid_sop_deriv(sop3)
        g3 = numpy.array([sig1, sig2])
        w3_2_old = w3_2.copy()
        w3_2 = update_w(w3_2, g3 * g2 * g1, learning_rate)
        w1 = update_w(w1, x * sigmoid_sop_deriv(sop1) * w3_2_old[0] * g2 * g1, learning_rate)
        w2 = update_w(w2, x * sigmoid_sop_deriv(sop2) * w3_2_old[1] * g2 * g1, learning_rate)
    return [w1, w2, w3_2], predictions


def part4_loop(x, target, w_hidden, w_output, learning_rate, steps):
    """Part 4: any number of hidden neurons; ``w_hidden`` is (n_hidden, n_in), ``w_output`` (1, n_hidden)."""
    w = [w_hidden.copy(), w_output.copy()]
    predictions = []
    for _ in range(steps):
        w_old = [layer.copy() for layer in w]
        sop_hidden = numpy.matmul(w[0], x)
        sig_hidden = sigmoid(sop_hidden)
        sop_output = numpy.sum(w[1][0] * sig_hidden)
        predicted = sigmoid(sop_output)
        predictions.append(float(predicted))
        g1 = error_predicted_deriv(predicted, target)
        g2 = sigmoid_sop_deriv(sop_output)
        w[1][0] = update_w(w[1][0], sig_hidden * g2 * g1, learning_rate)
        for neuron_idx in range(w[0].shape[0]):
            g3 = w_old[1][0][neuron_idx]
            g4 = sigmoid_sop_deriv(sop_hidden[neuron_idx])
            w[0][neuron_idx] = update_w(w[0][neuron_idx], x * g4 * g3 * g2 * g1, learning_rate)
    return w, predictions
