"""Backpropagation against central finite differences: every activation x loss x bias, random shapes."""

import array_api_compat.numpy as np_xp
import numpy as np
import pytest
from helpers import has_float64, host
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gdxp
from gdxp.activations import ACTIVATIONS

REGRESSION_LOSSES = ("squared_error", "half_squared_error", "mse")
PROBABILITY_LOSSES = ("binary_cross_entropy", "cross_entropy")
KINKED = ("relu", "leaky_relu")


@st.composite
def problems(draw, activation: str, loss: str):
    """A network shape, a batch (one sample or several) and a seed for weights and data."""
    if activation == "softmax":  # output only: train it under tanh hidden layers
        hidden, output = "tanh", "softmax"
    elif loss == "binary_cross_entropy":  # probability losses need probability outputs
        hidden, output = activation, draw(st.sampled_from(["sigmoid", "softmax"]))
    elif loss == "cross_entropy":  # outputs that sum to 1
        hidden, output = activation, "softmax"
    else:
        hidden, output = activation, activation
    n_layers = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n_layers + 1, max_size=n_layers + 1))
    if output == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    n_samples = draw(st.sampled_from([1, draw(st.integers(2, 5))]))
    return sizes, hidden, output, n_samples, draw(st.integers(0, 2**32 - 1))


def _data(rng, loss, n_samples, n_in, n_out):
    x = rng.normal(size=(n_samples, n_in))
    if loss == "cross_entropy":
        return x, rng.dirichlet(np.ones(n_out), size=n_samples)
    if loss == "binary_cross_entropy":
        return x, rng.random((n_samples, n_out))
    return x, rng.normal(size=(n_samples, n_out))


def _smallest_sop(net, x):
    """The |sum of products| nearest a kink of relu/leaky_relu, on the host."""
    weights, smallest, activ = net.get_weights(), np.inf, x
    step = 2 if net.bias else 1
    for layer, activation in enumerate(net.activations):
        sop = activ @ weights[layer * step] + (weights[layer * step + 1] if net.bias else 0.0)
        smallest = min(smallest, float(np.min(np.abs(sop))))
        activ = activation.forward(np_xp, sop)
    return smallest


@pytest.mark.slow
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("loss", [*REGRESSION_LOSSES, *PROBABILITY_LOSSES])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradients_match_finite_differences(backend, activation, loss, bias):
    if not has_float64(backend):
        pytest.skip(f"the check runs in float64, which {backend.name} lacks here; its float64 case checks this code")
    # numpy float64 explores most; Dask computes each finite difference as a graph, so one problem per case
    examples = 8 if backend.name == "numpy" and backend.dtype_name == "float64" else 1 if backend.name == "dask" else 3

    @settings(max_examples=examples)
    @given(problem=problems(activation, loss))
    def check(problem):
        sizes, hidden, output, n_samples, seed = problem
        rng = np.random.default_rng(seed)
        net = gdxp.Network(sizes, activation=hidden, output_activation=output, loss=loss, bias=bias,
                           seed=seed, backend=backend)
        if bias:  # nonzero biases, so their gradients matter too
            net.set_weights([w + rng.normal(scale=0.5, size=w.shape) for w in net.get_weights()])
        x, y = _data(rng, loss, n_samples, sizes[0], sizes[-1])
        if hidden in KINKED or output in KINKED:
            assume(_smallest_sop(net, x.astype(net.get_weights()[0].dtype)) > 1e-3)
        assert gdxp.check_gradients(net, x, y) < 1e-5
        # the network's own dtype agrees with the float64 gradients too
        exact = net.copy(dtype="float64").gradients(x, y)
        rtol = 1e-12 if backend.dtype_name == "float64" else 2e-3
        for mine, reference in zip(net.gradients(x, y), exact):
            reference = host(backend, reference)
            np.testing.assert_allclose(host(backend, mine), reference, rtol=rtol,
                                       atol=rtol * max(1.0, float(np.max(np.abs(reference), initial=0))))

    check()


def test_check_gradients_catches_a_wrong_gradient(monkeypatch):
    # a derivative off by 10% must show up as a relative error of about that size
    net = gdxp.Network([3, 4, 2], activation="tanh", seed=1)
    x, y = np.random.default_rng(1).normal(size=(5, 3)), np.random.default_rng(2).normal(size=(5, 2))
    assert gdxp.check_gradients(net, x, y) < 1e-7
    broken = gdxp.activations.Activation("tanh", ACTIVATIONS["tanh"].forward,
                                         lambda xp, a: 1.1 * (1.0 - a * a))
    net = gdxp.Network([3, 4, 2], activation=broken, output_activation=broken, seed=1)
    assert gdxp.check_gradients(net, x, y) > 0.01


def test_check_gradients_leaves_the_network_alone():
    net = gdxp.Network([2, 3, 1], seed=3, backend="array_api_strict", device="device1", dtype="float32")
    before = net.get_weights()
    gdxp.check_gradients(net, np.ones((2, 2)), np.ones((2, 1)))
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32
