"""Sample weights (scikit-learn's ``sample_weight``): a batch's loss is ``sum(w * loss) / sum(w)`` over its samples,
its gradients those of that weighted mean, ``weight_decay`` over ``sum(w)``; equal to NumPy on every backend."""

import numpy as np
import pytest
from helpers import has_float64, host, make_problem, tolerance

import gdxp
from gdxp.losses import LOSSES, Loss

PAIRS = [("identity", "half_squared_error"), ("tanh", "mse"), ("sigmoid", "squared_error"),
         ("sigmoid", "binary_cross_entropy"), ("softmax", "binary_cross_entropy"), ("softmax", "cross_entropy")]
WEIGHTS = np.array([1.0, 0.0, 2.5, 0.5, 0.0, 3.0, 1.0, 0.25, 2.0, 1.5])  # zeros: per-sample steps that count 0


def _net(backend=None, output="sigmoid", loss="squared_error", n_out=2, seed=4):
    return gdxp.Network([3, 5, n_out], activation="tanh", output_activation=output, loss=loss, seed=seed,
                        backend=backend)


def _targets(y, loss):
    return y / np.sum(y, axis=1, keepdims=True) if loss == "cross_entropy" else y


def _close(backend):
    return {"rtol": 1e-12, "atol": 1e-13} if backend.dtype_name == "float64" else tolerance(backend)


def _fits(backend):
    """The backend, for a test that fits: a compiled one's float32 case is skipped (each fit compiles for seconds;
    float64 holds the 1e-12 promise and runs the same program)."""
    if backend.compiler is not None and backend.dtype_name != "float64":
        pytest.skip("compiled fits are checked in float64, where they must equal NumPy to 1e-12")
    return backend


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batch_size", [1, 4, None], ids=["per-sample", "mini-batch", "full-batch"])
def test_weighted_training_equals_numpy_eager(backend, optimizer, batch_size):
    """Every backend (JAX compiled, Dask's weighted sums) takes NumPy's weighted steps: to 1e-12 in float64, the
    weights following their rows through each epoch's shuffle."""
    x, y = make_problem(10)
    settings = {"epochs": 3, "learning_rate": 0.3, "batch_size": batch_size, "optimizer": optimizer,
                "weight_decay": 0.05, "sample_weight": WEIGHTS, "verbose": 0}
    mine, reference = _net(_fits(backend)), _net()
    got, expected = mine.fit(x, y, **settings), reference.fit(x, y, **settings)
    close = _close(backend)
    np.testing.assert_allclose(got.loss, expected.loss, **close)
    for a, b in zip(mine.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, **close)
    unweighted = _net()
    unweighted.fit(x, y, **{**settings, "sample_weight": None})
    assert not np.allclose(unweighted.get_weights()[0], reference.get_weights()[0])  # the weights mattered


@pytest.mark.parametrize(("output", "loss"), [("identity", "half_squared_error"), ("softmax", "cross_entropy")])
def test_weighted_gradients_loss_and_score_equal_numpy(backend, output, loss):
    x, y = make_problem(10)
    y = _targets(y, loss)
    mine, reference = _net(backend, output, loss), _net(None, output, loss)
    close = _close(backend)
    for a, b in zip(mine.gradients(x, y, sample_weight=WEIGHTS), reference.gradients(x, y, sample_weight=WEIGHTS)):
        np.testing.assert_allclose(host(backend, a), b, **close)
    got, expected = mine.evaluate(x, y, sample_weight=WEIGHTS), reference.evaluate(x, y, sample_weight=WEIGHTS)
    assert got.keys() == expected.keys()
    np.testing.assert_allclose(list(got.values()), list(expected.values()), **close)


def test_integer_weights_equal_repeated_rows(backend):
    """Weight 2 on a row is that row twice, weight 0 no row at all: the loss, its gradients, the scores, and a
    full-batch fit with weight decay."""
    x, y = make_problem(10)
    counts = np.array([1, 0, 2, 1, 0, 3, 1, 1, 2, 1])
    repeated = np.repeat(np.arange(10), counts)
    weighted, copies = _net(_fits(backend)), _net(backend)
    close = _close(backend)
    np.testing.assert_allclose(weighted.loss_value(x, y, sample_weight=counts), copies.loss_value(x[repeated],
                                                                                                  y[repeated]), **close)
    for a, b in zip(weighted.gradients(x, y, sample_weight=counts), copies.gradients(x[repeated], y[repeated])):
        np.testing.assert_allclose(host(backend, a), host(backend, b), **close)
    np.testing.assert_allclose(weighted.evaluate(x, y, sample_weight=counts)["r2"],
                               copies.evaluate(x[repeated], y[repeated])["r2"], **close)
    if backend.compiler is not None:
        return  # a compiled fit compiles for each data shape: it equals NumPy's weighted fit (above), which this checks
    settings = {"epochs": 2, "learning_rate": 0.3, "weight_decay": 0.1, "optimizer": "adam", "verbose": 0}
    got = weighted.fit(x, y, sample_weight=counts, **settings)
    expected = copies.fit(x[repeated], y[repeated], **settings)
    np.testing.assert_allclose(got.loss, expected.loss, **close)
    for a, b in zip(weighted.get_weights(), copies.get_weights()):
        np.testing.assert_allclose(a, b, **close)


def test_weighted_accuracy_counts_each_sample_by_its_weight():
    net = _net(None, "softmax", "cross_entropy", n_out=3)
    x, _ = make_problem(10)
    labels = np.argmax(host(net.backend, net.predict(x)), axis=1)
    labels[:3] = (labels[:3] + 1) % 3  # the first three predicted wrong
    weights = np.array([2.0, 1.0, 1.0] + [0.5] * 7)
    assert net.evaluate(x, labels, sample_weight=weights)["accuracy"] == pytest.approx(3.5 / 7.5, rel=1e-15)
    assert net.evaluate(x, labels)["accuracy"] == pytest.approx(0.7, rel=1e-15)


@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_weighted_gradients_match_finite_differences(backend, output, loss):
    if not has_float64(backend):
        pytest.skip(f"the check runs in float64, which {backend.name} lacks here; its float64 case checks this code")
    if backend.name in ("dask", "jax") and (output, loss) not in PAIRS[:1] + PAIRS[-2:-1]:
        pytest.skip("a graph or a dispatch per finite difference: one fused pair and one not on this backend")
    x, y = make_problem(5, seed=3)
    net = _net(backend, output, loss, seed=7)
    assert gdxp.check_gradients(net, x, _targets(y, loss), sample_weight=[0.5, 0.0, 2.0, 1.0, 3.0]) < 1e-6


def test_a_batch_whose_weights_sum_to_zero_has_loss_zero_and_gradients_zero(backend):
    """Weights already on the device are taken as they are by ``step``: all 0 gives a loss of 0 and no change.
    In ``fit``, a mini-batch of zero weights is a step without gradients, weight decay included (SGD: none)."""
    x, y = make_problem(6)
    net = _net(_fits(backend))
    before = net.get_weights()
    inputs, targets = backend.asarray(x), backend.asarray(y)
    loss = net.step(inputs, targets, learning_rate=0.5, sample_weight=backend.zeros((6,)), return_loss=True)
    assert backend.to_float(loss) == 0.0
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    settings = {"epochs": 2, "learning_rate": 0.3, "batch_size": 2, "shuffle": False, "weight_decay": 0.1,
                "verbose": 0}
    skipping, without = _net(backend), _net(backend)
    skipping.fit(x, y, sample_weight=[1.0, 2.0, 0.0, 0.0, 1.0, 0.5], **settings)
    kept = [0, 1, 4, 5]
    without.fit(x[kept], y[kept], sample_weight=[1.0, 2.0, 1.0, 0.5], **settings)
    for a, b in zip(skipping.get_weights(), without.get_weights()):
        np.testing.assert_allclose(a, b, **_close(backend))


def test_weights_of_one_equal_no_weights_and_the_epoch_loss_is_the_loss_before_it():
    x, y = make_problem(10)
    ones, plain = _net(), _net()
    assert ones.loss_value(x, y, sample_weight=np.ones(10)) == pytest.approx(plain.loss_value(x, y), rel=1e-15)
    before = ones.loss_value(x, y, sample_weight=WEIGHTS)
    history = ones.fit(x, y, epochs=1, learning_rate=0.3, sample_weight=WEIGHTS, verbose=0)
    assert history.loss[0] == pytest.approx(before, rel=1e-14)
    ones.fit(x, y, epochs=3, learning_rate=0.3, sample_weight=np.ones(10), verbose=0)
    plain.fit(x, y, epochs=4, learning_rate=0.3, verbose=0)
    assert not np.array_equal(ones.get_weights()[0], plain.get_weights()[0])  # a WEIGHTS epoch came first
    weighted_step, step = _net(), _net()
    weighted_step.step(x, y, learning_rate=0.3, sample_weight=[3] * 10)
    step.step(x, y, learning_rate=0.3)
    for a, b in zip(weighted_step.get_weights(), step.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)


def test_weighted_steps_in_place_take_the_device_weights_as_they_are(backend):
    x, y = make_problem(6)
    weights = np.array([1.0, 2.0, 0.0, 0.5, 1.0, 3.0])
    on_device, from_host = _net(backend), _net(backend)
    on_device.step(backend.asarray(x), backend.asarray(y), learning_rate=0.3, sample_weight=backend.asarray(weights))
    from_host.step(x, y, learning_rate=0.3, sample_weight=weights)
    for a, b in zip(on_device.get_weights(), from_host.get_weights()):
        np.testing.assert_allclose(a, b, **_close(backend))


def test_a_loss_without_each_samples_values_refuses_sample_weight_and_changes_nothing():
    custom = Loss("custom", LOSSES["mse"].value, LOSSES["mse"].gradient)
    net = gdxp.Network([3, 2], activation="identity", loss=custom, seed=0)
    x, y = make_problem(4)
    before = net.get_weights()
    with pytest.raises(ValueError, match="sample_weight weighs each sample's loss, which loss 'custom'"):
        net.fit(x, y, epochs=1, learning_rate=0.1, sample_weight=np.ones(4), verbose=0)
    assert net.optimizer is None and net.state.epoch == 0
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    net.fit(x, y, epochs=1, learning_rate=0.1, verbose=0)  # unweighted, it trains


def test_saving_keeps_no_sample_weights(tmp_path):
    x, y = make_problem(10)
    net = _net()
    net.fit(x, y, epochs=2, learning_rate=0.3, batch_size=4, sample_weight=WEIGHTS, verbose=0, optimizer="adam")
    net.save(tmp_path / "net.npz", include_optimizer=True)
    loaded = gdxp.load(tmp_path / "net.npz")
    for model in (net, loaded):
        model.fit(x, y, epochs=1, learning_rate=0.3, batch_size=4, sample_weight=WEIGHTS, verbose=0, optimizer="adam")
    for a, b in zip(net.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
