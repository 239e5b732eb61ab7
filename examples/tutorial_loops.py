"""The tutorials' own training loops, one neuron at a time, as they wrote them.

gdxp's tests use them as the reference that the vectorized engine must reproduce, and
``benchmark.py`` times them, so they follow the tutorials line by line (helper functions, the error
computed every step, ``numpy.arange`` for the neuron loop), with two changes to part 4: the output
weights used for the hidden layer's gradients are a real copy of the weights from before the step
(``w_old = w`` aliased them), and its ragged ``numpy.array(w)``, which current NumPy refuses, is a
plain list of per-layer arrays. In both, each step's prediction and error are kept instead of printed.
"""

import numpy


def sigmoid(sop):
    return 1.0 / (1 + numpy.exp(-1 * sop))


def error(predicted, target):
    return numpy.power(predicted - target, 2)


def error_predicted_deriv(predicted, target):
    return 2 * (predicted - target)


def sigmoid_sop_deriv(sop):
    return sigmoid(sop) * (1.0 - sigmoid(sop))


def sop_w_deriv(x):
    return x


def update_w(w, grad, learning_rate):
    return w - learning_rate * grad


def part3_loop(x, target, w1, w2, w3_2, learning_rate, steps):
    """Part 3: two hidden neurons with weights ``w1`` and ``w2``, output weights ``w3_2``.

    Returns the new weights, and each step's prediction and error."""
    w3_2_old = w3_2
    predictions, errors = [], []
    for _ in range(steps):
        sop1 = numpy.sum(w1 * x)
        sop2 = numpy.sum(w2 * x)
        sig1 = sigmoid(sop1)
        sig2 = sigmoid(sop2)
        sop3 = numpy.sum(w3_2 * numpy.array([sig1, sig2]))
        predicted = sigmoid(sop3)
        err = error(predicted, target)
        g1 = error_predicted_deriv(predicted, target)
        g2 = sigmoid_sop_deriv(sop3)
        g3 = numpy.zeros(w3_2.shape[0])
        g3[0] = sop_w_deriv(sig1)
        g3[1] = sop_w_deriv(sig2)
        w3_2 = update_w(w3_2, g3 * g2 * g1, learning_rate)
        g3 = sop_w_deriv(w3_2_old[0])
        g4 = sigmoid_sop_deriv(sop1)
        g5 = sop_w_deriv(x)
        w1 = update_w(w1, g5 * g4 * g3 * g2 * g1, learning_rate)
        g3 = sop_w_deriv(w3_2_old[1])
        g4 = sigmoid_sop_deriv(sop2)
        g5 = sop_w_deriv(x)
        w2 = update_w(w2, g5 * g4 * g3 * g2 * g1, learning_rate)
        w3_2_old = w3_2  # a new array each step (update_w), so this one is no alias
        predictions.append(float(predicted))
        errors.append(float(err[0]))
    return [w1, w2, w3_2], predictions, errors


def part4_loop(x, target, w_hidden, w_output, learning_rate, steps):
    """Part 4: any number of hidden neurons; ``w_hidden`` is (n_hidden, n_in), ``w_output`` (1, n_hidden).

    Returns the new weights, and each step's prediction and error."""
    w = [w_hidden.copy(), w_output.copy()]
    predictions, errors = [], []
    for _ in range(steps):
        w_old = [layer.copy() for layer in w]
        sop_hidden = numpy.matmul(w[0], x)
        sig_hidden = sigmoid(sop_hidden)
        sop_output = numpy.sum(w[1][0] * sig_hidden)
        predicted = sigmoid(sop_output)
        err = error(predicted, target)
        g1 = error_predicted_deriv(predicted, target)
        g2 = sigmoid_sop_deriv(sop_output)
        g3 = sop_w_deriv(sig_hidden)
        w[1][0] = update_w(w[1][0], g3 * g2 * g1, learning_rate)
        g5 = sop_w_deriv(x)
        for neuron_idx in numpy.arange(w[0].shape[0]):
            g3 = sop_w_deriv(w_old[1][0][neuron_idx])
            g4 = sigmoid_sop_deriv(sop_hidden[neuron_idx])
            w[0][neuron_idx] = update_w(w[0][neuron_idx], g5 * g4 * g3 * g2 * g1, learning_rate)
        predictions.append(float(predicted))  # the tutorial printed it and plotted both
        errors.append(float(err[0]))
    return w, predictions, errors
