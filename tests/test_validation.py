"""Bad input: a clear ValueError or TypeError, raised before anything changes."""

import numpy as np
import pytest

import gdxp


@pytest.fixture
def net(backend):
    return gdxp.Network([3, 4, 2], seed=0, backend=backend)


GOOD_X = np.ones((4, 3))
GOOD_Y = np.zeros((4, 2))


def _all_calls(net, x, y):
    """Every public call that takes data, each as a zero-argument function."""
    return [
        lambda: net.step(x, y, learning_rate=0.1, check_finite=True),  # scans NumPy arrays too
        lambda: net.fit(x, y, epochs=2, learning_rate=0.1),
        lambda: net.gradients(x, y),
        lambda: net.loss_value(x, y),
    ]


BAD_DATA = [
    (np.ones((4, 5)), GOOD_Y, ValueError, "x must have 3 features per sample .the network's inputs., got 5"),
    (np.ones((4, 3, 1)), GOOD_Y, ValueError, r"x must have shape \(n_samples, 3\) or \(3,\), got shape \(4, 3, 1\)"),
    (np.ones((0, 3)), np.ones((0, 2)), ValueError, "x holds no samples"),
    (GOOD_X, np.zeros((5, 2)), ValueError, r"y must have one row per sample of x \(4\), got 5"),
    (GOOD_X, np.zeros((4, 3)), ValueError, r"y must have 2 columns \(one per output\), got 3"),
    (GOOD_X, np.zeros(4), ValueError, r"y must have shape \(4, 2\), got shape \(4,\)"),
    (np.ones(3), np.zeros(3), ValueError, r"y must have 2 values \(one per output\), got 3"),
    (np.where(np.eye(4, 3) > 0, np.nan, 1.0), GOOD_Y, ValueError,
     r"x must hold finite numbers, got 3 NaN or infinite value\(s\), the first at index \(0, 0\)"),
    (GOOD_X, np.full((4, 2), np.inf), ValueError, "y must hold finite numbers, got 8 NaN or infinite"),
    ([["a", "b", "c"]], GOOD_Y, TypeError, "expected real numbers, got list of dtype <U1"),
    (GOOD_X, [[None, 1.0]] * 4, TypeError, "expected real numbers, got list of dtype object"),
    ([[1.0, 2.0, 3.0], [1.0]], GOOD_Y, ValueError, "expected a rectangular array of real numbers"),
]


@pytest.mark.parametrize(("x", "y", "error", "message"), BAD_DATA)
def test_bad_data_is_refused_and_nothing_changes(net, x, y, error, message):
    before = net.get_weights()
    for call in _all_calls(net, x, y):
        with pytest.raises(error, match=message):
            call()
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_predict_checks_its_input(net):
    with pytest.raises(ValueError, match="x must have 3 features per sample"):
        net.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        net.predict([np.nan, 1.0, 2.0])


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"epochs": 0.5}, TypeError, "epochs must be a whole number, got 0.5"),
    ({"epochs": -1}, ValueError, "epochs must be at least 0, got -1"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate must be a finite number above 0, got 0.0"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be a finite number above 0"),
    ({"learning_rate": "fast"}, TypeError, "learning_rate must be a number, got 'fast'"),
    ({"batch_size": 0}, ValueError, "batch_size must be at least 1, got 0"),
    ({"batch_size": True}, TypeError, "batch_size must be a whole number, got True"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False, got 'yes'"),
])
def test_bad_training_settings(net, kwargs, error, message):
    before = net.get_weights()
    settings = {"epochs": 3, "learning_rate": 0.1, **kwargs}
    with pytest.raises(error, match=message):
        net.fit(GOOD_X, GOOD_Y, **settings)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"sizes": [3]}, ValueError, r"sizes must list at least the inputs and the outputs, like \[3, 1\], got \[3\]"),
    ({"sizes": [3, 0, 1]}, ValueError, r"every layer size must be a whole number >= 1, got \[3, 0, 1\]"),
    ({"sizes": [3, 2.5, 1]}, ValueError, "every layer size must be a whole number"),
    ({"sizes": "3-5-1"}, TypeError, "sizes must be a list like"),
    ({"activation": "swish"}, ValueError, "unknown activation 'swish'; choose one of sigmoid, tanh, relu, leaky_relu,"
                                          " identity, exp, softmax, linear"),
    ({"activation": "softmax"}, ValueError, "activation 'softmax' can only be used on the output layer"),
    ({"activation": ["tanh"]}, ValueError, r"activation lists one name per hidden layer \(2\), got 1"),
    ({"activation": ["tanh", "relu"]}, ValueError, "with one activation per hidden layer, also give output_activation"),
    ({"activation": 3}, TypeError, "an activation is a name like 'sigmoid', got int"),
    ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'; choose one of squared_error, half_squared_error, mse, "
                                    "binary_cross_entropy, cross_entropy"),
    ({"init": "zeros"}, ValueError, "unknown initializer 'zeros'; choose one of uniform, normal, glorot_uniform, "
                                    "he_normal"),
    ({"bias": 1}, TypeError, "bias must be True or False, got 1"),
    ({"seed": -1}, ValueError, "seed must be at least 0, got -1"),
    ({"seed": 1.5}, TypeError, "seed must be a whole number, got 1.5"),
    ({"backend": "mlx"}, ValueError, "unknown backend 'mlx'; choose one of numpy, cupy, torch, jax, array_api_strict"),
])
def test_bad_network_settings(kwargs, error, message):
    settings = {"sizes": [3, 4, 4, 1], **kwargs}
    with pytest.raises(error, match=message):
        gdxp.Network(settings.pop("sizes"), **settings)


def test_bad_weight_lists_leave_the_network_as_it_was(net):
    before = net.get_weights()
    shapes = r"\[\(3, 4\), \(4,\), \(4, 2\), \(2,\)\]"
    with pytest.raises(ValueError, match=f"expected 4 weight arrays with shapes {shapes}, got 3"):
        net.set_weights(before[:3])
    wrong_shape = [before[0], before[1], before[2].T, before[3]]
    with pytest.raises(ValueError, match=r"weight array 2 must have shape \(4, 2\), got \(2, 4\)"):
        net.set_weights(wrong_shape)
    with pytest.raises(ValueError, match="weight array 1 must hold finite numbers"):
        net.set_weights([before[0], before[1] * np.nan, before[2], before[3]])
    with pytest.raises(TypeError, match="weights must be a list of 4 arrays, got ndarray"):
        net.set_weights(before[0])
    with pytest.raises(TypeError, match="expected real numbers"):
        net.set_weights([before[0], ["a"] * 4, before[2], before[3]])
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
