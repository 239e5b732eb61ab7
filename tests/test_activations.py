"""Activations against plain NumPy float64 formulas: forward values, derivatives, softmax's chain rule, edges."""


import numpy as np
import pytest
from helpers import fetch, no_numpy_warnings, on_device, tolerance

from gdxp.activations import ACTIVATIONS, LEAKY_RELU_SLOPE, Activation, get_activation


def _softmax_reference(z):
    shifted = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return shifted / np.sum(shifted, axis=-1, keepdims=True)


REFERENCE = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0.0, z, 0.01 * z),
    "identity": lambda z: z,
    "exp": np.exp,
    "softmax": lambda z: np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True),
}
ELEMENTWISE = [name for name in ACTIVATIONS if name != "softmax"]

# three samples of five outputs, negatives and an exact zero included
GRID = np.array([[-4.0, -1.5, -0.3, 0.0, 0.2],
                 [1.0, 3.5, -2.2, -0.7, 0.6],
                 [1.7, -3.1, 2.5, 0.05, -0.01]])
# the same away from 0, the kink of relu and leaky_relu (nearest is 0.2)
GRID_NONZERO = np.array([[-4.0, -1.5, -0.3, 0.3, 0.2],
                         [1.0, 3.5, -2.2, -0.7, 0.6],
                         [1.7, -3.1, 2.5, 0.45, -0.25]])
EDGES = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
STEP = 1e-6


def derivative_tolerance(backend):
    """Central differences carry about 1e-10 error; float32 results carry more than that."""
    tol = tolerance(backend)
    return {"rtol": max(tol["rtol"], 1e-8), "atol": max(tol["atol"], 1e-9)}


def central_difference(f, z):
    return (f(z + STEP) - f(z - STEP)) / (2 * STEP)


def test_reference_table_covers_every_activation():
    assert set(REFERENCE) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_forward_matches_numpy_formula(backend, name):
    sop, z = on_device(backend, GRID)
    activ = ACTIVATIONS[name].forward(backend.xp, sop)
    assert activ.shape == GRID.shape
    np.testing.assert_allclose(fetch(backend, activ), REFERENCE[name](z), **tolerance(backend))


def test_forward_known_values(backend):
    sop, _ = on_device(backend, np.array([[-2.0, 0.0, 3.0]]))
    xp = backend.xp
    expected = {
        "sigmoid": [1 / (1 + np.e**2), 0.5, 1 / (1 + np.e**-3)],
        "relu": [0.0, 0.0, 3.0],
        "leaky_relu": [-0.02, 0.0, 3.0],
        "identity": [-2.0, 0.0, 3.0],
        "softmax": np.exp([-2.0, 0.0, 3.0]) / np.sum(np.exp([-2.0, 0.0, 3.0])),
    }
    assert LEAKY_RELU_SLOPE == 0.01
    for name, values in expected.items():
        got = fetch(backend, ACTIVATIONS[name].forward(xp, sop))
        np.testing.assert_allclose(got, [values], **tolerance(backend), err_msg=name)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_finite_differences(backend, name):
    sop, z = on_device(backend, GRID_NONZERO)
    activation = ACTIVATIONS[name]
    xp = backend.xp
    with backend.activate():  # where gdxp runs its math: arrays made inside land on the backend's device
        activ = activation.forward(xp, sop)
        derivative = activation.derivative(xp, activ)
        numeric = central_difference(REFERENCE[name], z)
        np.testing.assert_allclose(fetch(backend, derivative), numeric, **derivative_tolerance(backend))
        # the chain rule through an elementwise activation multiplies by that derivative
        grad_activ, g = on_device(backend, np.linspace(-1.3, 2.1, GRID.size).reshape(GRID.shape))
        np.testing.assert_allclose(fetch(backend, activation.backward(xp, activ, grad_activ)), g * numeric,
                                   **derivative_tolerance(backend))


@pytest.mark.parametrize(("name", "slopes"), [("relu", (0.0, 1.0)), ("leaky_relu", (0.01, 1.0))])
def test_kinked_derivatives_are_exact_slopes(backend, name, slopes):
    sop, z = on_device(backend, GRID_NONZERO)
    activation = ACTIVATIONS[name]
    got = fetch(backend, activation.derivative(backend.xp, activation.forward(backend.xp, sop)))
    np.testing.assert_allclose(got, np.where(z > 0, slopes[1], slopes[0]), **tolerance(backend))


def test_softmax_backward_is_jacobian_transpose_product(backend):
    softmax = ACTIVATIONS["softmax"]
    assert softmax.derivative is None and softmax.output_only
    sop, z = on_device(backend, GRID)
    grad_activ, g = on_device(backend, np.array([[0.3, -1.2, 0.8, 2.0, -0.4],
                                                 [1.1, 0.0, -0.6, 0.25, 0.9],
                                                 [-2.0, 0.5, 0.5, 1.5, -0.1]]))
    xp = backend.xp
    got = fetch(backend, softmax.backward(xp, softmax.forward(xp, sop), grad_activ))
    s = _softmax_reference(z)
    expected = np.empty_like(z)
    for row in range(z.shape[0]):
        jacobian = np.diag(s[row]) - np.outer(s[row], s[row])  # d s_i / d z_j (checked below)
        expected[row] = jacobian.T @ g[row]
    np.testing.assert_allclose(got, expected, **tolerance(backend))
    # each sample's gradient wrt sop sums to zero: softmax is invariant to shifting all inputs
    np.testing.assert_allclose(got.sum(axis=-1), 0.0, atol=10 * tolerance(backend)["atol"])


def test_softmax_jacobian_reference_matches_finite_differences():
    z = GRID[0]
    s = _softmax_reference(z)
    numeric = np.empty((z.size, z.size))
    for j in range(z.size):
        bump = np.zeros_like(z)
        bump[j] = STEP
        numeric[:, j] = (_softmax_reference(z + bump) - _softmax_reference(z - bump)) / (2 * STEP)
    np.testing.assert_allclose(np.diag(s) - np.outer(s, s), numeric, rtol=1e-7, atol=1e-10)


def test_sigmoid_saturates_without_overflow(backend):
    sop, _ = on_device(backend, EDGES)
    xp = backend.xp
    sigmoid = ACTIVATIONS["sigmoid"]
    with no_numpy_warnings(), backend.activate():  # where the engine runs it: overflow to inf is quiet
        activ = sigmoid.forward(xp, sop)
        derivative = sigmoid.derivative(xp, activ)
        got, slope = fetch(backend, activ), fetch(backend, derivative)
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(slope))
    assert np.all((got >= 0.0) & (got <= 1.0))
    expected = np.array([0.0, 1.0 / (1.0 + np.exp(50.0)), 0.5, 1.0, 1.0])
    np.testing.assert_allclose(got, expected, **tolerance(backend))
    assert got[2] == 0.5 and got[3] == 1.0 and got[4] == 1.0
    assert got[0] < 1e-30
    np.testing.assert_allclose(slope, [0.0, expected[1], 0.25, 0.0, 0.0], **tolerance(backend))


def test_softmax_saturates_without_overflow(backend):
    rows = np.array([EDGES,
                     [1000.0, 1000.0, -1000.0, -1000.0, 0.0],
                     [-1000.0] * 5,
                     [50.0, 0.0, -50.0, 0.0, 50.0]])
    sop, z = on_device(backend, rows)
    grad_activ, _ = on_device(backend, np.linspace(-1.0, 1.0, rows.size).reshape(rows.shape))
    xp = backend.xp
    softmax = ACTIVATIONS["softmax"]
    with no_numpy_warnings():
        activ = softmax.forward(xp, sop)
        backward = softmax.backward(xp, activ, grad_activ)
        got, grad = fetch(backend, activ), fetch(backend, backward)
        expected = _softmax_reference(z)
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(got[0], [0.0, 0.0, 0.0, 0.0, 1.0], **tolerance(backend))
    np.testing.assert_allclose(got[1], [0.5, 0.5, 0.0, 0.0, 0.0], **tolerance(backend))
    np.testing.assert_allclose(got[2], [0.2] * 5, **tolerance(backend))
    np.testing.assert_allclose(got, expected, **tolerance(backend))
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, **tolerance(backend))


def test_softmax_rows_sum_to_one(backend):
    sop, _ = on_device(backend, 3.0 * GRID)
    got = fetch(backend, ACTIVATIONS["softmax"].forward(backend.xp, sop))
    assert np.all(got > 0.0)
    np.testing.assert_allclose(got.sum(axis=-1), np.ones(GRID.shape[0]), **tolerance(backend))


def test_linear_is_an_alias_of_identity():
    assert get_activation("linear", hidden=True) is ACTIVATIONS["identity"]
    assert get_activation("identity", hidden=False) is ACTIVATIONS["identity"]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_get_activation_by_name_and_instance(name):
    activation = ACTIVATIONS[name]
    assert get_activation(name, hidden=False) is activation
    assert get_activation(activation, hidden=False) is activation
    assert activation.name == name and repr(activation) == f"Activation({name!r})"


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="unknown activation 'swish'") as info:
        get_activation("swish", hidden=True)
    for choice in [*ACTIVATIONS, "linear"]:
        assert choice in str(info.value)
    with pytest.raises(ValueError, match="sigmoid"):
        get_activation("Sigmoid", hidden=False)
    with pytest.raises(ValueError, match="leaky_relu"):
        get_activation("leaky-relu", hidden=False)


@pytest.mark.parametrize("bad", [None, 3, 1.5, ["sigmoid"], b"sigmoid"])
def test_activation_that_is_not_a_string_is_a_type_error(bad):
    with pytest.raises(TypeError, match="sigmoid"):
        get_activation(bad, hidden=True)


def test_softmax_is_output_only():
    with pytest.raises(ValueError, match="'softmax'.*output layer"):
        get_activation("softmax", hidden=True)
    with pytest.raises(ValueError, match="output layer"):
        get_activation(ACTIVATIONS["softmax"], hidden=True)
    assert get_activation("softmax", hidden=False) is ACTIVATIONS["softmax"]
    assert {name for name, activation in ACTIVATIONS.items() if activation.output_only} == {"softmax", "exp"}


def test_activation_is_frozen():
    activation = Activation("custom", ACTIVATIONS["tanh"].forward, ACTIVATIONS["tanh"].derivative)
    with pytest.raises(AttributeError):
        activation.name = "other"
