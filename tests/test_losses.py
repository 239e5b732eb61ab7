"""Losses against per-sample NumPy float64 formulas; gradients and fused output deltas against finite differences."""


import array_api_compat.numpy as np_xp
import numpy as np
import pytest
from helpers import fetch, no_numpy_warnings, on_device, tolerance

from gdxp.activations import ACTIVATIONS
from gdxp.losses import LOSSES, FusedOutput, Loss, get_loss

STEP = 1e-6

# a batch of 3 samples x 4 outputs
P_REGRESSION = np.array([[0.5, -1.2, 2.0, 0.0],
                         [-0.3, 0.8, 1.1, -2.4],
                         [1.5, 0.25, -0.7, 0.9]])
T_REGRESSION = np.array([[0.1, -1.0, 2.5, 0.3],
                         [0.0, 1.4, 0.6, -2.0],
                         [-0.5, 0.25, 0.2, 1.7]])
P_BINARY = np.array([[0.05 + 1e-3, 0.3, 0.62, 0.9],
                     [0.77, 0.12, 0.5, 0.95 - 1e-3],
                     [0.4, 0.66, 0.08, 0.21]])
T_BINARY_HARD = np.array([[0.0, 1.0, 1.0, 0.0],
                          [1.0, 0.0, 0.0, 1.0],
                          [1.0, 1.0, 0.0, 0.0]])
T_BINARY_SOFT = np.array([[0.2, 0.9, 0.5, 0.0],
                          [1.0, 0.35, 0.1, 0.75],
                          [0.6, 0.05, 0.45, 0.3]])
P_CLASSES = np.array([[0.1, 0.2, 0.3, 0.4],  # each row sums to 1
                      [0.55, 0.15, 0.2, 0.1],
                      [0.25, 0.25, 0.06, 0.44]])
T_ONE_HOT = np.array([[0.0, 0.0, 0.0, 1.0],
                      [1.0, 0.0, 0.0, 0.0],
                      [0.0, 1.0, 0.0, 0.0]])
T_SOFT = np.array([[0.7, 0.1, 0.1, 0.1],
                   [0.25, 0.25, 0.25, 0.25],
                   [0.0, 0.5, 0.5, 0.0]])
T_UNNORMALIZED = np.array([[0.2, 0.1, 0.0, 0.4],  # rows sum to 0.7, 1.5, 0.0
                           [1.0, 0.0, 0.0, 0.5],
                           [0.0, 0.0, 0.0, 0.0]])
P_COUNTS = np.array([[0.5, 1.2, 2.0, 0.1],  # positive, as an exp output gives
                     [3.0, 0.8, 1.1, 2.4],
                     [1.5, 0.25, 0.7, 0.9]])
T_COUNTS = np.array([[0.0, 1.0, 3.0, 0.0],  # counts (zeros included) and a rate
                     [2.0, 0.0, 1.0, 4.0],
                     [1.0, 0.5, 0.0, 2.0]])
SOP = np.random.default_rng(20240617).uniform(-3.0, 3.0, size=(3, 4))

PER_SAMPLE = {
    "squared_error": lambda p, t: np.sum((p - t) ** 2, axis=1),
    "half_squared_error": lambda p, t: 0.5 * np.sum((p - t) ** 2, axis=1),
    "mse": lambda p, t: np.mean((p - t) ** 2, axis=1),
    "binary_cross_entropy": lambda p, t: -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=1),
    "cross_entropy": lambda p, t: -np.sum(t * np.log(p), axis=1),
    "poisson": lambda p, t: np.sum(t * np.log(np.where(t > 0, t, 1.0) / p) - t + p, axis=1),  # half the deviance
}
GRADIENT = {  # d mean(per sample) / d p, written out by hand
    "squared_error": lambda p, t: 2 * (p - t) / p.shape[0],
    "half_squared_error": lambda p, t: (p - t) / p.shape[0],
    "mse": lambda p, t: 2 * (p - t) / p.size,
    "binary_cross_entropy": lambda p, t: (-t / p + (1 - t) / (1 - p)) / p.shape[0],
    "cross_entropy": lambda p, t: -t / p / p.shape[0],
    "poisson": lambda p, t: (1 - t / p) / p.shape[0],
}
CASES = [
    pytest.param("squared_error", P_REGRESSION, T_REGRESSION, id="squared_error"),
    pytest.param("half_squared_error", P_REGRESSION, T_REGRESSION, id="half_squared_error"),
    pytest.param("mse", P_REGRESSION, T_REGRESSION, id="mse"),
    pytest.param("binary_cross_entropy", P_BINARY, T_BINARY_HARD, id="bce-hard"),
    pytest.param("binary_cross_entropy", P_BINARY, T_BINARY_SOFT, id="bce-soft"),
    pytest.param("cross_entropy", P_CLASSES, T_ONE_HOT, id="ce-one-hot"),
    pytest.param("cross_entropy", P_CLASSES, T_SOFT, id="ce-soft"),
    pytest.param("poisson", P_COUNTS, T_COUNTS, id="poisson"),
]
FUSED = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax", "poisson": "exp"}
FUSED_CASES = [
    pytest.param("binary_cross_entropy", T_BINARY_HARD, id="sigmoid-bce-hard"),
    pytest.param("binary_cross_entropy", T_BINARY_SOFT, id="sigmoid-bce-soft"),
    pytest.param("cross_entropy", T_ONE_HOT, id="softmax-ce-one-hot"),
    pytest.param("cross_entropy", T_SOFT, id="softmax-ce-soft"),
    pytest.param("poisson", T_COUNTS, id="exp-poisson"),
]


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _log_softmax(z):
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


FUSED_PER_SAMPLE = {  # the loss of the activation's output, from the sop, without overflow
    "binary_cross_entropy": lambda z, t: np.sum(np.logaddexp(0.0, z) - t * z, axis=1),
    "cross_entropy": lambda z, t: -np.sum(t * _log_softmax(z), axis=1),
    "poisson": lambda z, t: np.sum(t * (np.log(np.where(t > 0, t, 1.0)) - z) - t + np.exp(z), axis=1),
}
ACTIVATION_REFERENCE = {"binary_cross_entropy": _sigmoid, "cross_entropy": lambda z: np.exp(_log_softmax(z)),
                        "poisson": np.exp}


def central_differences(f, x):
    """d f / d x for scalar ``f`` of a host float64 array, one entry at a time."""
    grad = np.empty_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += STEP
        down[index] -= STEP
        grad[index] = (f(up) - f(down)) / (2 * STEP)
    return grad


def numeric_gradient(backend, function, x, target):
    """Central differences of ``function(xp, x, target)`` in float64: on the backend itself when it
    computes in float64, else through NumPy (a float32 value has too few digits to difference)."""
    if backend.dtype_name == "float64":
        target_dev = backend.asarray(target)
        return central_differences(lambda a: backend.to_float(function(backend.xp, backend.asarray(a), target_dev)), x)
    return central_differences(lambda a: float(function(np_xp, a, target)), x)


def fd_tolerance(backend):
    tol = tolerance(backend)
    return {"rtol": max(tol["rtol"], 1e-7), "atol": max(tol["atol"], 1e-8)}


def test_reference_tables_cover_every_loss():
    assert set(PER_SAMPLE) == set(GRADIENT) == set(LOSSES)
    assert {name for name, loss in LOSSES.items() if loss.fused} == set(FUSED)
    for name, activation in FUSED.items():
        assert set(LOSSES[name].fused) == {activation}


def test_test_data_is_in_range():
    assert np.all((P_BINARY > 0.05) & (P_BINARY < 0.95))
    assert np.all((P_CLASSES > 0.05) & (P_CLASSES < 0.95))
    np.testing.assert_allclose(P_CLASSES.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(T_SOFT.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert np.all(T_ONE_HOT.sum(axis=1) == 1.0)


@pytest.mark.parametrize(("name", "prediction", "target"), CASES)
def test_value_is_mean_of_per_sample_loss(backend, name, prediction, target):
    p_dev, p = on_device(backend, prediction)
    t_dev, t = on_device(backend, target)
    value = LOSSES[name].value(backend.xp, p_dev, t_dev)
    assert value.shape == ()
    expected = np.mean(PER_SAMPLE[name](p, t))
    np.testing.assert_allclose(fetch(backend, value), expected, **tolerance(backend))


@pytest.mark.parametrize(("name", "prediction", "target"), CASES)
def test_rows_are_each_samples_loss_and_their_mean_the_value(backend, name, prediction, target):
    p_dev, p = on_device(backend, prediction)
    t_dev, t = on_device(backend, target)
    rows = LOSSES[name].rows(backend.xp, p_dev, t_dev)
    assert rows.shape == (prediction.shape[0],)
    np.testing.assert_allclose(fetch(backend, rows), PER_SAMPLE[name](p, t), **tolerance(backend))
    np.testing.assert_allclose(np.mean(fetch(backend, rows)), fetch(backend, LOSSES[name].value(backend.xp, p_dev,
                                                                                                    t_dev)),
                               **tolerance(backend))


@pytest.mark.parametrize(("name", "target"), FUSED_CASES)
def test_fused_rows_are_each_samples_loss_from_the_sop(backend, name, target):
    fused = LOSSES[name].fused[FUSED[name]]
    sop_dev, z = on_device(backend, SOP)
    t_dev, t = on_device(backend, target)
    rows = fused.rows(backend.xp, sop_dev, t_dev)
    assert rows.shape == (SOP.shape[0],)
    np.testing.assert_allclose(fetch(backend, rows), FUSED_PER_SAMPLE[name](z, t), **tolerance(backend))


def test_values_by_hand(backend):
    xp = backend.xp
    p, _ = on_device(backend, np.array([[1.0, 2.0], [0.0, -1.0]]))
    t, _ = on_device(backend, np.array([[0.0, 0.0], [0.0, 1.0]]))
    # squared errors per output: 1, 4, 0, 4 -> 9 over 2 samples, 4 outputs
    for name, expected in [("squared_error", 4.5), ("half_squared_error", 2.25), ("mse", 2.25)]:
        np.testing.assert_allclose(fetch(backend, LOSSES[name].value(xp, p, t)), expected,
                                   **tolerance(backend), err_msg=name)
    half, _ = on_device(backend, np.full((2, 2), 0.5))
    np.testing.assert_allclose(fetch(backend, LOSSES["binary_cross_entropy"].value(xp, half, t)),
                               2 * np.log(2.0), **tolerance(backend))
    np.testing.assert_allclose(fetch(backend, LOSSES["cross_entropy"].value(xp, half, t)),
                               0.5 * np.log(2.0), **tolerance(backend))


@pytest.mark.parametrize(("name", "prediction", "target"), CASES)
def test_gradient_matches_finite_differences(backend, name, prediction, target):
    loss = LOSSES[name]
    p_dev, p = on_device(backend, prediction)
    t_dev, t = on_device(backend, target)
    gradient = loss.gradient(backend.xp, p_dev, t_dev)
    assert gradient.shape == prediction.shape
    got = fetch(backend, gradient)
    np.testing.assert_allclose(got, GRADIENT[name](p, t), **tolerance(backend))
    np.testing.assert_allclose(got, numeric_gradient(backend, loss.value, p, t), **fd_tolerance(backend))


@pytest.mark.parametrize(("name", "target"), FUSED_CASES)
def test_fused_value_equals_unfused_value(backend, name, target):
    loss, activation = LOSSES[name], ACTIVATIONS[FUSED[name]]
    fused = loss.fused[activation.name]
    xp = backend.xp
    sop_dev, z = on_device(backend, SOP)
    t_dev, t = on_device(backend, target)
    value = fused.value(xp, sop_dev, t_dev)
    assert value.shape == ()
    unfused = loss.value(xp, activation.forward(xp, sop_dev), t_dev)
    np.testing.assert_allclose(fetch(backend, value), fetch(backend, unfused), **tolerance(backend))
    expected = np.mean(PER_SAMPLE[name](ACTIVATION_REFERENCE[name](z), t))
    np.testing.assert_allclose(fetch(backend, value), expected, **tolerance(backend))


@pytest.mark.parametrize(("name", "target"), FUSED_CASES)
def test_fused_delta_is_prediction_minus_target(backend, name, target):
    activation = ACTIVATIONS[FUSED[name]]
    fused = LOSSES[name].fused[activation.name]
    xp = backend.xp
    sop_dev, z = on_device(backend, SOP)
    t_dev, t = on_device(backend, target)
    delta = fused.delta(xp, activation.forward(xp, sop_dev), t_dev)
    assert delta.shape == SOP.shape
    got = fetch(backend, delta)
    np.testing.assert_allclose(got, (ACTIVATION_REFERENCE[name](z) - t) / SOP.shape[0], **tolerance(backend))
    # and it is the derivative of the fused value with respect to the sop
    np.testing.assert_allclose(got, numeric_gradient(backend, fused.value, z, t), **fd_tolerance(backend))


def test_softmax_cross_entropy_delta_for_targets_that_do_not_sum_to_one(backend):
    fused = LOSSES["cross_entropy"].fused["softmax"]
    xp = backend.xp
    sop_dev, z = on_device(backend, SOP)
    t_dev, t = on_device(backend, T_UNNORMALIZED)
    got = fetch(backend, fused.delta(xp, ACTIVATIONS["softmax"].forward(xp, sop_dev), t_dev))
    s = np.exp(_log_softmax(z))
    np.testing.assert_allclose(got, (s * t.sum(axis=1, keepdims=True) - t) / SOP.shape[0], **tolerance(backend))
    np.testing.assert_allclose(got, numeric_gradient(backend, fused.value, z, t), **fd_tolerance(backend))


SATURATED = {
    "binary_cross_entropy": (
        np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0],
                  [1000.0, 50.0, -3.0, -50.0, -1000.0]]),
        np.array([[1.0, 1.0, 1.0, 0.0, 0.0],
                  [1.0, 0.0, 0.3, 1.0, 0.0]])),
    "cross_entropy": (
        np.array([[-1000.0, 0.0, 1000.0],
                  [50.0, -50.0, 0.0],
                  [1000.0, 1000.0, -1000.0],
                  [-50.0, 50.0, 1000.0]]),
        np.array([[1.0, 0.0, 0.0],
                  [0.0, 1.0, 0.0],
                  [0.0, 0.0, 1.0],
                  [0.5, 0.25, 0.25]])),
    "poisson": (  # predictions near 0 for counts: -t log p is large, log p read from the sop itself
        np.array([[-50.0, -300.0, 0.0], [-700.0, 2.0, -40.0]]),
        np.array([[5.0, 1.0, 0.0], [2.0, 3.0, 4.0]]))
}


@pytest.mark.parametrize("name", list(FUSED))
def test_fused_pairs_stay_finite_when_saturated(backend, name):
    fused = LOSSES[name].fused[FUSED[name]]
    sop, target = SATURATED[name]
    sop_dev, z = on_device(backend, sop)
    t_dev, t = on_device(backend, target)
    # predictions from the float64 reference, so that this checks the loss code alone
    # (test_activations.py checks sigmoid and softmax themselves at these inputs)
    p_dev, p = on_device(backend, ACTIVATION_REFERENCE[name](z))
    with no_numpy_warnings():
        value = fetch(backend, fused.value(backend.xp, sop_dev, t_dev))
        delta = fetch(backend, fused.delta(backend.xp, p_dev, t_dev))
    assert np.isfinite(value) and np.all(np.isfinite(delta))
    expected = np.mean(FUSED_PER_SAMPLE[name](z, t))
    assert expected > 100.0  # far beyond what clipping a saturated prediction would give
    np.testing.assert_allclose(value, expected, **tolerance(backend))
    np.testing.assert_allclose(delta, (p - t) / sop.shape[0], **tolerance(backend))


@pytest.mark.parametrize(("sop", "target", "expected"), [
    (-1000.0, 1.0, 1000.0), (1000.0, 0.0, 1000.0), (-50.0, 1.0, 50.0), (50.0, 0.0, 50.0),
    (1000.0, 1.0, 0.0), (-1000.0, 0.0, 0.0), (0.0, 1.0, np.log(2.0)),
])
def test_sigmoid_binary_cross_entropy_single_sample(backend, sop, target, expected):
    fused = LOSSES["binary_cross_entropy"].fused["sigmoid"]
    sop_dev, _ = on_device(backend, np.array([[sop]]))
    t_dev, _ = on_device(backend, np.array([[target]]))
    p_dev, p = on_device(backend, _sigmoid(np.array([[sop]])))
    with no_numpy_warnings():
        value = fetch(backend, fused.value(backend.xp, sop_dev, t_dev))
        delta = fetch(backend, fused.delta(backend.xp, p_dev, t_dev))
    np.testing.assert_allclose(value, expected, **tolerance(backend))
    np.testing.assert_allclose(delta, p - target, **tolerance(backend))
    assert abs(delta[0, 0]) <= 1.0


def test_softmax_cross_entropy_single_sample(backend):
    fused = LOSSES["cross_entropy"].fused["softmax"]
    sop_dev, _ = on_device(backend, np.array([[-1000.0, 0.0, 1000.0]]))
    t_dev, _ = on_device(backend, np.array([[1.0, 0.0, 0.0]]))
    with no_numpy_warnings():
        value = fetch(backend, fused.value(backend.xp, sop_dev, t_dev))
    np.testing.assert_allclose(value, 2000.0, **tolerance(backend))


@pytest.mark.parametrize("name", list(LOSSES))
def test_get_loss_by_name_and_instance(name):
    loss = LOSSES[name]
    assert get_loss(name) is loss
    assert get_loss(loss) is loss
    assert loss.name == name and repr(loss) == f"Loss({name!r})"
    assert all(isinstance(pair, FusedOutput) for pair in loss.fused.values())


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'hinge'") as info:
        get_loss("hinge")
    for choice in LOSSES:
        assert choice in str(info.value)


@pytest.mark.parametrize("bad", [None, 3, ["mse"], b"mse"])
def test_loss_that_is_not_a_string_is_a_type_error(bad):
    with pytest.raises(TypeError, match="squared_error"):
        get_loss(bad)


def test_loss_is_frozen():
    loss = Loss("custom", LOSSES["mse"].value, LOSSES["mse"].gradient)
    assert dict(loss.fused) == {}
    with pytest.raises(AttributeError):
        loss.name = "other"


@pytest.mark.parametrize("name", list(LOSSES))
def test_value_and_gradient_together_equal_them_apart(backend, name):
    prediction, _ = on_device(backend, P_CLASSES)
    target, _ = on_device(backend, T_SOFT)
    loss = LOSSES[name]
    value, gradient = loss.value_and_gradient(backend.xp, prediction, target)
    np.testing.assert_array_equal(fetch(backend, value), fetch(backend, loss.value(backend.xp, prediction, target)))
    np.testing.assert_array_equal(fetch(backend, gradient),
                                  fetch(backend, loss.gradient(backend.xp, prediction, target)))
