"""The tutorials' printed numbers and training loops, reproduced from their own weights."""

import numpy as np
import pytest
from helpers import host
from tutorial_loops import part3_loop, part4_loop

import gdxp

STEPS = 2000


def test_delta_rule_neuron(backend):
    # seed 002, cell 1: one sigmoid neuron, x = [1, 2, 3, 4], target 0.5, learning rate 0.5
    net = gdxp.Network([4, 1], loss="half_squared_error", bias=False, backend=backend)
    w = np.array([0.5, -0.5, 0.3, 0.1])
    net.set_weights([w[:, None]])
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array(0.5)
    output = host(backend, net.predict(x))
    np.testing.assert_allclose(output, [0.689974481128], rtol=1e-11 if backend.dtype_name == "float64" else 1e-6)
    net.step(x, y, learning_rate=0.5)
    change = net.get_weights()[0][:, 0] - w
    # the notebook prints 8 decimals: [-0.02031869 -0.04063738 -0.06095608 -0.08127477]
    printed = [-0.02031869, -0.04063738, -0.06095608, -0.08127477]
    np.testing.assert_allclose(change, printed, atol=5.01e-9 if backend.dtype_name == "float64" else 1e-7)


def test_three_two_one_step(backend):
    # seed 002, cell 2: one step through a 3-2-1 sigmoid network
    net = gdxp.Network([3, 2, 1], loss="half_squared_error", bias=False, backend=backend)
    w_ih = np.array([[0.5, -0.6], [0.1, -0.2], [0.1, 0.7]])
    w_ho = np.array([[0.1], [-0.3]])
    net.set_weights([w_ih, w_ho])
    net.step(np.array([0.5, 0.1, -0.2]), np.array([0.6]), learning_rate=0.5)
    new_ih, new_ho = net.get_weights()
    exact = backend.dtype_name == "float64"
    np.testing.assert_allclose(new_ho[:, 0] - w_ho[:, 0], [0.00804047, 0.00555918], atol=5.01e-9 if exact else 1e-7)
    printed = np.array([[1.77005547e-04, -5.11178506e-04],
                        [3.54011093e-05, -1.02235701e-04],
                        [-7.08022187e-05, 2.04471402e-04]])
    np.testing.assert_allclose(new_ih - w_ih, printed, rtol=5.01e-9 if exact else 1e-3)


def _seed_network(backend, n_in, n_hidden):
    return gdxp.Network([n_in, n_hidden, 1], activation="sigmoid", bias=False, init="uniform", seed=n_in * n_hidden,
                        backend=backend)


def _compare(backend, mine, reference):
    tol = {"rtol": 0, "atol": 1e-10} if backend.dtype_name == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(mine, reference, **tol)


X3 = np.array([0.1, 0.4, 4.1])
X10 = np.array([0.1, 0.4, 4.1, 4.3, 1.8, 2.0, 0.01, 0.9, 3.8, 1.6])
TARGET = np.array([0.2])


@pytest.mark.slow
@pytest.mark.parametrize("x", [X3, X10], ids=["3-inputs", "10-inputs"])
def test_part3_loop(backend, x):
    net = _seed_network(backend, x.shape[0], 2)
    w_ih, w_ho = (w.astype(np.float64) for w in net.get_weights())
    (w1, w2, w3_2), _, errors = part3_loop(x, TARGET, w_ih[:, 0], w_ih[:, 1], w_ho[:, 0], 0.001, STEPS)
    history = net.fit(x, TARGET, epochs=STEPS, learning_rate=0.001, batch_size=1)
    new_ih, new_ho = net.get_weights()
    _compare(backend, new_ih, np.stack([w1, w2], axis=1))
    _compare(backend, new_ho[:, 0], w3_2)
    _compare(backend, history.loss, errors)  # the loss of each epoch is the error the tutorial computed


@pytest.mark.slow
@pytest.mark.parametrize(("n_in", "n_hidden"), [(3, 5), (3, 8), (10, 8)])
def test_part4_loop(backend, n_in, n_hidden):
    x = X3 if n_in == 3 else X10
    net = _seed_network(backend, n_in, n_hidden)
    w_ih, w_ho = (w.astype(np.float64) for w in net.get_weights())
    (w_hidden, w_output), _, errors = part4_loop(x, TARGET, w_ih.T, w_ho.T, 0.001, STEPS)
    history = net.fit(x, TARGET, epochs=STEPS, learning_rate=0.001, batch_size=1)
    new_ih, new_ho = net.get_weights()
    _compare(backend, new_ih, w_hidden.T)
    _compare(backend, new_ho, w_output.T)
    _compare(backend, history.loss, errors)  # the error the tutorial computed each step
    reference_prediction = 1 / (1 + np.exp(-(w_output @ (1 / (1 + np.exp(-(w_hidden @ x)))))))
    _compare(backend, host(backend, net.predict(x)), reference_prediction)


@pytest.mark.slow
def test_seed_loop_reference_reaches_target():
    # the reference loop itself must train (a guard for the guard)
    rng = np.random.default_rng(0)
    _, predictions, errors = part4_loop(X3, TARGET, rng.random((5, 3)), rng.random((1, 5)), 0.001, 20000)
    assert predictions[0] > 0.5 and abs(predictions[-1] - 0.2) < 0.02
    assert errors[-1] == pytest.approx((predictions[-1] - 0.2) ** 2) and errors[-1] < errors[0]
