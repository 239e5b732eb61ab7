"""fit: full-batch, per-sample and mini-batch descent, shuffling from the seed, and the History."""

import numpy as np
import pytest
from conftest import host, tolerance

import gdxp


def _problem(n_samples=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, 3))
    y = 1 / (1 + np.exp(-(x @ np.array([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]]))))
    return x, y


def _assert_same_weights(a, b, **tol):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, **tol) if tol else np.testing.assert_array_equal(wa, wb)


def test_full_batch_fit_is_repeated_steps(backend):
    x, y = _problem()
    net = gdxp.Network([3, 4, 2], seed=1, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=5, learning_rate=0.5)
    losses = [float(host(backend, twin.step(x, y, learning_rate=0.5, return_loss=True))) for _ in range(5)]
    assert history.loss == losses and history.epochs == 5
    assert all(isinstance(loss, float) for loss in history.loss)
    _assert_same_weights(net, twin)


def test_per_sample_fit_without_shuffle_steps_through_the_samples_in_order(backend):
    x, y = _problem(4)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=2, learning_rate=0.2, batch_size=1, shuffle=False)
    for _ in range(2):
        losses = [host(backend, twin.step(x[i], y[i], learning_rate=0.2, return_loss=True)) for i in range(4)]
    _assert_same_weights(net, twin)
    np.testing.assert_allclose(history.loss[-1], np.mean(losses), **tolerance(backend))


def test_mini_batches_weigh_the_last_short_batch_by_its_size(backend):
    x, y = _problem(5)
    net = gdxp.Network([3, 2], activation="sigmoid", seed=3, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=1, learning_rate=0.1, batch_size=3, shuffle=False)
    first = host(backend, twin.step(x[:3], y[:3], learning_rate=0.1, return_loss=True))
    second = host(backend, twin.step(x[3:], y[3:], learning_rate=0.1, return_loss=True))
    np.testing.assert_allclose(history.loss[0], (3 * first + 2 * second) / 5, **tolerance(backend))
    _assert_same_weights(net, twin)


def test_shuffling_follows_the_seed(backend):
    x, y = _problem(8)

    def train(seed, shuffle=True):
        net = gdxp.Network([3, 4, 2], seed=seed, backend=backend)
        net.fit(x, y, epochs=3, learning_rate=0.3, batch_size=2, shuffle=shuffle)
        return net

    _assert_same_weights(train(4), train(4))
    unshuffled, shuffled = train(4, shuffle=False), train(4)
    assert not np.array_equal(unshuffled.get_weights()[0], shuffled.get_weights()[0])


def test_same_seed_same_training_on_every_backend(backend):
    x, y = _problem(6)
    kwargs = {"epochs": 20, "learning_rate": 0.5, "batch_size": 4}
    mine = gdxp.Network([3, 5, 2], activation="tanh", output_activation="sigmoid", seed=9, backend=backend)
    history = mine.fit(x, y, **kwargs)
    reference = gdxp.Network([3, 5, 2], activation="tanh", output_activation="sigmoid", seed=9)
    expected = reference.fit(x, y, **kwargs)
    tol = {"rtol": 1e-10, "atol": 1e-12} if backend.dtype_name == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(history.loss, expected.loss, **tol)
    _assert_same_weights(mine, reference, **tol)
    host(backend, mine.predict(x))  # still on the network's own device after training


def test_training_reduces_the_loss(backend):
    x, y = _problem(32)
    net = gdxp.Network([3, 8, 2], activation="tanh", output_activation="sigmoid", seed=0, backend=backend)
    history = net.fit(x, y, epochs=60, learning_rate=1.0, batch_size=8)
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert net.loss_value(x, y) < history.loss[0]


def test_zero_epochs_change_nothing():
    x, y = _problem()
    net = gdxp.Network([3, 2], seed=0)
    before = net.copy()
    assert net.fit(x, y, epochs=0, learning_rate=0.1).loss == []
    _assert_same_weights(net, before)


@pytest.mark.parametrize(("verbose", "lines"), [(0, 0), (1, 10)])
def test_verbose_prints_about_ten_lines(capsys, verbose, lines):
    x, y = _problem()
    history = gdxp.Network([3, 2], seed=0).fit(x, y, epochs=50, learning_rate=0.1, verbose=verbose)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == lines
    if lines:
        assert out[-1] == f"epoch 50/50  loss {history.loss[-1]:.6g}"
