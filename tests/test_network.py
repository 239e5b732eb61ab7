"""The Network: construction, weights, prediction, gradients and one step, on every backend."""

import numpy as np
import pytest
from helpers import host, tolerance

import gdxp
from gdxp.backend import host_array


def _reference_forward(weights, x, bias):
    """A NumPy tanh -> sigmoid forward pass from host weights."""
    step = 2 if bias else 1
    activ = x
    for layer in range(len(weights) // step):
        sop = activ @ weights[layer * step] + (weights[layer * step + 1] if bias else 0.0)
        activ = np.tanh(sop) if layer < len(weights) // step - 1 else 1 / (1 + np.exp(-sop))
    return activ


def test_sizes_activations_and_repr():
    net = gdxp.Network([4, 3, 2, 1], activation="tanh", output_activation="sigmoid", seed=0)
    assert net.sizes == (4, 3, 2, 1)
    assert [a.name for a in net.activations] == ["tanh", "tanh", "sigmoid"]
    assert repr(net) == ("Network([4, 3, 2, 1], activation='tanh', output_activation='sigmoid', "
                         "loss='squared_error', bias=True, backend='numpy', device='cpu', dtype='float64')")
    mixed = gdxp.Network([2, 3, 3, 1], activation=["relu", "tanh"], output_activation="identity")
    assert repr(mixed).startswith("Network([2, 3, 3, 1], activation=['relu', 'tanh'], output_activation='identity'")
    assert [a.name for a in gdxp.Network([2, 1], activation="linear").activations] == ["identity"]


def test_weight_layout_is_keras_order():
    net = gdxp.Network([3, 5, 2], seed=0)
    assert [w.shape for w in net.get_weights()] == [(3, 5), (5,), (5, 2), (2,)]
    assert [w.shape for w in gdxp.Network([3, 5, 2], bias=False).get_weights()] == [(3, 5), (5, 2)]
    np.testing.assert_array_equal(net.get_weights()[1], np.zeros(5))  # biases start at zero


@pytest.mark.parametrize("init", ["uniform", "normal", "glorot_uniform", "he_normal"])
def test_initializers_draw_the_documented_distributions(init):
    weights = gdxp.Network([400, 300, 1], init=init, seed=1).get_weights()[0]
    expected_std = {"uniform": (1 / 12) ** 0.5, "normal": 400**-0.5, "glorot_uniform": (6 / 700) ** 0.5 / 3**0.5,
                    "he_normal": (2 / 400) ** 0.5}[init]
    assert weights.std() == pytest.approx(expected_std, rel=0.02)
    if init == "uniform":
        assert weights.min() >= 0.0 and weights.max() < 1.0
    if init == "glorot_uniform":
        assert np.abs(weights).max() <= (6 / 700) ** 0.5


def test_same_seed_same_weights_on_every_backend(backend):
    mine = gdxp.Network([3, 4, 2], seed=11, backend=backend).get_weights()
    reference = gdxp.Network([3, 4, 2], seed=11, dtype=backend.dtype_name).get_weights()
    for a, b in zip(mine, reference):
        np.testing.assert_array_equal(a, b)
    other = gdxp.Network([3, 4, 2], seed=12, backend=backend).get_weights()
    assert not np.array_equal(mine[0], other[0])


def test_predict_matches_a_plain_forward_pass(backend):
    net = gdxp.Network([3, 4, 2], activation="tanh", output_activation="sigmoid", seed=0, backend=backend)
    x = np.random.default_rng(0).normal(size=(5, 3))
    expected = _reference_forward([w.astype(np.float64) for w in net.get_weights()], x, bias=True)
    out = net.predict(x)
    assert tuple(out.shape) == (5, 2) and out.dtype == backend.dtype
    np.testing.assert_allclose(host(backend, out), expected, **tolerance(backend))
    one = net.predict(x[0])  # one sample in, one sample out
    assert tuple(one.shape) == (2,)
    np.testing.assert_allclose(host(backend, one), expected[0], **tolerance(backend))
    # device arrays are taken as they are
    np.testing.assert_allclose(host(backend, net.predict(backend.asarray(x))), expected, **tolerance(backend))


def test_gradients_order_shapes_and_device(backend):
    net = gdxp.Network([3, 4, 2], seed=0, backend=backend)
    grads = net.gradients(np.ones((2, 3)), np.zeros((2, 2)))
    assert [tuple(g.shape) for g in grads] == [w.shape for w in net.get_weights()]
    for g in grads:
        host(backend, g)  # asserts the gradient stayed on the network's device


def test_step_is_gradient_descent_from_the_weights_before_the_step(backend):
    net = gdxp.Network([3, 4, 2], activation="sigmoid", seed=5, backend=backend)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 3)), rng.random((6, 2))
    before = net.get_weights()
    grads = [host(backend, g) for g in net.gradients(x, y)]
    assert net.step(x, y, learning_rate=0.3) is None
    for new, old, grad in zip(net.get_weights(), before, grads):
        np.testing.assert_allclose(new, old - 0.3 * grad, **tolerance(backend))


def test_step_can_return_the_loss_before_the_step_without_leaving_the_device(backend):
    net = gdxp.Network([2, 3, 1], seed=2, backend=backend)
    x, y = np.array([[0.5, -1.0], [2.0, 0.1]]), np.array([0.3, 0.7])
    expected = np.mean(np.sum((host(backend, net.predict(x)) - y[:, None]) ** 2, axis=1))
    loss = net.step(x, y, learning_rate=0.1, return_loss=True, check_finite=False)
    assert tuple(loss.shape) == ()
    np.testing.assert_allclose(host(backend, loss), expected, **tolerance(backend))
    assert net.loss_value(x, y) < expected


def test_predict_gradients_and_step_never_wait_for_the_device_unless_asked(backend, monkeypatch):
    net = gdxp.Network([2, 3, 1], seed=2, backend=backend)
    x, y = backend.asarray(np.array([[0.5, -1.0], [2.0, 0.1]])), backend.asarray(np.array([[0.3], [0.7]]))

    def waits(*args):
        raise AssertionError("read from the device")

    with monkeypatch.context() as patch:
        patch.setattr(net.backend, "to_numpy", waits)
        patch.setattr(net.backend, "to_float", waits)
        net.predict(x)
        net.gradients(x, y)
        net.step(x, y, learning_rate=0.1, return_loss=True)
        if host_array(x, backend.dtype_name) is None:  # on a device (not NumPy): the scan, when asked for, waits
            with pytest.raises(AssertionError, match="read from the device"):
                net.step(x, y, learning_rate=0.1, check_finite=True)
    bad = backend.asarray(np.array([[0.5, np.nan], [2.0, 0.1]]))
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        net.step(bad, y, learning_rate=0.1, check_finite=True)
    with pytest.raises(ValueError, match="x must hold finite numbers"):  # host data is always checked
        net.predict([[0.5, np.nan]])


def test_set_weights_copies_and_accepts_device_arrays(backend):
    net = gdxp.Network([2, 2], seed=0, backend=backend)
    weights = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])]
    net.set_weights(weights)
    weights[0][0, 0] = 100.0  # the caller's array is not the network's
    np.testing.assert_array_equal(net.get_weights()[0], [[1.0, 2.0], [3.0, 4.0]])
    returned = net.get_weights()
    returned[1][:] = 0.0
    np.testing.assert_array_equal(net.get_weights()[1], [0.5, -0.5])
    net.set_weights([backend.asarray(w) for w in returned])
    np.testing.assert_array_equal(net.get_weights()[1], [0.0, 0.0])


def test_copy_moves_a_network_between_backends(backend):
    source = gdxp.Network([3, 4, 1], activation="relu", output_activation="identity", seed=4)
    twin = source.copy(backend=backend.name, device=backend.device, dtype=backend.dtype_name)
    assert twin.backend.name == backend.name and twin.backend.dtype_name == backend.dtype_name
    assert [a.name for a in twin.activations] == ["relu", "identity"]
    x = np.random.default_rng(4).normal(size=(3, 3))
    np.testing.assert_allclose(host(backend, twin.predict(x)), source.predict(x), **tolerance(backend))


def test_softmax_output_rows_are_probabilities(backend):
    net = gdxp.Network([4, 5, 3], activation="relu", output_activation="softmax", loss="cross_entropy",
                       init="he_normal", seed=0, backend=backend)
    out = host(backend, net.predict(np.random.default_rng(0).normal(size=(7, 4)) * 1e3))
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def test_saturated_cross_entropy_still_trains(backend):
    # huge inputs saturate softmax and sigmoid outputs; the fused gradients stay finite
    for output, loss, n_out in (("softmax", "cross_entropy", 3), ("sigmoid", "binary_cross_entropy", 1)):
        net = gdxp.Network([2, n_out], activation=output, loss=loss, seed=0, backend=backend)
        x = np.array([[1e3, -1e3], [-1e3, 1e3]])
        y = np.eye(n_out)[[0, n_out - 1]] if n_out > 1 else np.array([[1.0], [0.0]])
        for g in net.gradients(x, y):
            assert np.all(np.isfinite(host(backend, g)))
        assert np.isfinite(net.loss_value(x, y))


def test_evaluate_reports_scikit_learns_r2_for_regression_outputs(backend):
    from sklearn.metrics import r2_score

    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.stack([x[:, 0] * 2, np.full(20, 0.5)], axis=1)  # the second output's target is constant
    net = gdxp.Network([3, 5, 2], activation="tanh", output_activation="identity", seed=0, backend=backend)
    scores = net.evaluate(x, y)
    assert set(scores) == {"loss", "r2"}
    expected = r2_score(y, host(backend, net.predict(x)).astype(np.float64))
    np.testing.assert_allclose(scores["r2"], expected, **tolerance(backend))


def test_summary_lists_layers_shapes_activations_and_parameters():
    text = gdxp.Network([3, 5, 2], activation="relu", output_activation="softmax", loss="cross_entropy").summary()
    lines = text.splitlines()
    assert lines[0].startswith("Network([3, 5, 2]")
    assert lines[2].split() == ["1", "3", "->", "5", "relu", "20"]
    assert lines[3].split() == ["2", "5", "->", "2", "softmax", "12"]
    assert lines[4].split() == ["total", "32"]
    assert gdxp.Network([3, 5, 2], bias=False).summary().splitlines()[-1].split() == ["total", "25"]
