"""fit: full-batch, per-sample and mini-batch descent, shuffling from the seed, and the History."""

import copy
import sys
import warnings

import numpy as np
import pytest
from helpers import assert_same_weights, fit_tolerance, host, make_problem, tolerance

import gdxp


def test_full_batch_fit_is_repeated_steps(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=1, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=5, learning_rate=0.5, verbose=0)
    losses = [float(host(backend, twin.step(x, y, learning_rate=0.5, return_loss=True))) for _ in range(5)]
    if backend.compiler is None:
        assert history.loss == losses
    np.testing.assert_allclose(history.loss, losses, **fit_tolerance(backend))
    assert history.epochs == 5 and all(isinstance(loss, float) for loss in history.loss)
    assert_same_weights(net, twin, **fit_tolerance(backend))


def test_per_sample_fit_without_shuffle_steps_through_the_samples_in_order(backend):
    x, y = make_problem(4)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=2, learning_rate=0.2, batch_size=1, shuffle=False, verbose=0)
    for _ in range(2):
        losses = [host(backend, twin.step(x[i], y[i], learning_rate=0.2, return_loss=True)) for i in range(4)]
    assert_same_weights(net, twin, **fit_tolerance(backend))
    np.testing.assert_allclose(history.loss[-1], np.mean(losses), **tolerance(backend))


def test_mini_batches_weigh_the_last_short_batch_by_its_size(backend):
    x, y = make_problem(5)
    net = gdxp.Network([3, 2], activation="sigmoid", seed=3, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=1, learning_rate=0.1, batch_size=3, shuffle=False, verbose=0)
    first = host(backend, twin.step(x[:3], y[:3], learning_rate=0.1, return_loss=True))
    second = host(backend, twin.step(x[3:], y[3:], learning_rate=0.1, return_loss=True))
    np.testing.assert_allclose(history.loss[0], (3 * first + 2 * second) / 5, **tolerance(backend))
    assert_same_weights(net, twin, **fit_tolerance(backend))


def test_shuffling_follows_the_seed(backend):
    x, y = make_problem(8)

    def train(seed, shuffle=True):
        net = gdxp.Network([3, 4, 2], seed=seed, backend=backend)
        net.fit(x, y, epochs=3, learning_rate=0.3, batch_size=2, shuffle=shuffle, verbose=0)
        return net

    assert_same_weights(train(4), train(4))
    unshuffled, shuffled = train(4, shuffle=False), train(4)
    assert not np.array_equal(unshuffled.get_weights()[0], shuffled.get_weights()[0])


def test_same_seed_same_training_on_every_backend(backend):
    x, y = make_problem(6)
    kwargs = {"epochs": 20, "learning_rate": 0.5, "batch_size": 4}
    mine = gdxp.Network([3, 5, 2], activation="tanh", output_activation="sigmoid", seed=9, backend=backend)
    history = mine.fit(x, y, **kwargs, verbose=0)
    reference = gdxp.Network([3, 5, 2], activation="tanh", output_activation="sigmoid", seed=9)
    expected = reference.fit(x, y, **kwargs, verbose=0)
    tol = {"rtol": 1e-10, "atol": 1e-12} if backend.dtype_name == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(history.loss, expected.loss, **tol)
    assert_same_weights(mine, reference, **tol)
    host(backend, mine.predict(x))  # still on the network's own device after training


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("batch_size", [1, 4, None], ids=["per-sample", "mini-batch", "full-batch"])
def test_every_float64_backend_equals_numpy_to_1e_12(backend, optimizer, batch_size):
    """The seeds' exactness on every path: the same seed gives NumPy's losses, validation losses,
    weights, optimizer state and predictions to 1e-12 on every library and device."""
    if backend.dtype_name != "float64":
        pytest.skip("float32 agrees to float32's precision; the 1e-12 promise is float64's")
    x, y = make_problem(10)
    chosen = gdxp.optimizers.Momentum(nesterov=True) if optimizer == "nesterov" else optimizer
    settings = {"epochs": 6, "learning_rate": 0.3, "batch_size": batch_size, "validation_data": (x[:4], y[:4]),
                "verbose": 0}
    nets, histories = [], []
    for on in (backend, None):
        net = gdxp.Network([3, 5, 2], activation="tanh", output_activation="sigmoid", seed=4, backend=on)
        histories.append(net.fit(x, y, optimizer=chosen if isinstance(chosen, str) else copy.deepcopy(chosen),
                                 **settings))
        nets.append(net)
    exact = {"rtol": 0, "atol": 1e-12}
    np.testing.assert_allclose(histories[0].loss, histories[1].loss, **exact)
    np.testing.assert_allclose(histories[0].val_loss, histories[1].val_loss, **exact)
    assert_same_weights(nets[0], nets[1], **exact)
    for mine, theirs in zip(nets[0].state.optimizer_state, nets[1].state.optimizer_state, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(host(backend, a), b, **exact)
    np.testing.assert_allclose(host(backend, nets[0].predict(x)), nets[1].predict(x), **exact)


def test_training_reduces_the_loss(backend):
    x, y = make_problem(32)
    net = gdxp.Network([3, 8, 2], activation="tanh", output_activation="sigmoid", seed=0, backend=backend)
    history = net.fit(x, y, epochs=60, learning_rate=1.0, batch_size=8, verbose=0)
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert net.loss_value(x, y) < history.loss[0]


def test_zero_epochs_change_nothing():
    x, y = make_problem()
    net = gdxp.Network([3, 2], seed=0)
    before = net.copy()
    assert net.fit(x, y, epochs=0, learning_rate=0.1, verbose=0).loss == []
    assert_same_weights(net, before)


def test_verbose_shows_a_progress_bar_and_quiet_shows_nothing(capsys):
    x, y = make_problem()
    gdxp.Network([3, 2], seed=0).fit(x, y, epochs=50, learning_rate=0.1, verbose=0)
    assert capsys.readouterr() == ("", "")
    history = gdxp.Network([3, 2], seed=0).fit(x, y, epochs=50, learning_rate=0.1,
                                               validation_data=(x, y), verbose=1)
    bar = capsys.readouterr().err.strip().splitlines()[-1]
    assert "50/50" in bar and "epoch" in bar
    assert f"loss={history.loss[-1]:.4g}" in bar and f"val_loss={history.val_loss[-1]:.4g}" in bar


def test_validation_loss_is_scored_after_each_epoch(backend):
    x, y = make_problem(12)
    net = gdxp.Network([3, 4, 2], seed=6, backend=backend)
    history = net.fit(x[:8], y[:8], epochs=3, learning_rate=0.5, validation_data=(x[8:], y[8:]), verbose=0)
    assert len(history.val_loss) == 3
    np.testing.assert_allclose(history.val_loss[-1], net.loss_value(x[8:], y[8:]), **tolerance(backend))


def test_patience_stops_early_and_keeps_the_best_weights(backend):
    x, y = make_problem(20, seed=1)
    val_x, val_y = x[16:], 1.0 - y[16:]  # validation data the training cannot fit: it soon gets worse
    net = gdxp.Network([3, 6, 2], activation="tanh", output_activation="sigmoid", seed=7, backend=backend)
    twin = net.copy()
    history = net.fit(x[:16], y[:16], epochs=200, learning_rate=2.0, validation_data=(val_x, val_y),
                      patience=3, verbose=0)
    assert history.stopped_early and history.epochs == history.best_epoch + 3 < 200
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)
    twin.fit(x[:16], y[:16], epochs=history.best_epoch, learning_rate=2.0, verbose=0)
    assert_same_weights(net, twin)


def test_divergence_stops_and_restores_the_last_finite_weights(backend):
    x, y = make_problem(6)
    y = y * 1e3  # a regression target far away, and a step far too long
    net = gdxp.Network([3, 4, 2], activation="identity", seed=8, backend=backend)
    twin = net.copy()
    with pytest.raises(gdxp.TrainingDiverged, match=r"training diverged at epoch (\d+)") as caught, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own overflow warnings on the way up
        net.fit(x, y, epochs=500, learning_rate=5.0, verbose=0)
    error = caught.value
    assert error.epoch > 2 and error.last_finite_loss == error.history.loss[-1]
    assert len(error.history.loss) == error.epoch - 1 and np.isfinite(error.history.loss).all()
    # full batches: the weights from before the diverging epoch are the ones whose loss overflowed, so the
    # network goes back one epoch more, to the weights whose loss was the last finite one
    twin.fit(x, y, epochs=error.epoch - 2, learning_rate=5.0, verbose=0)
    assert_same_weights(net, twin, **fit_tolerance(backend))
    assert all(np.isfinite(w).all() for w in net.get_weights())
    assert net.loss_value(x, y) == pytest.approx(error.last_finite_loss, rel=1e-4)


def test_weights_restored_after_divergence_give_a_finite_loss(backend):
    # issue 12, item 1: linear, one weight, a step of a million: |w| grows 2e6-fold an epoch until w**2 overflows
    net = gdxp.Network([1, 1], activation="identity", bias=False, seed=0, backend=backend)
    with pytest.raises(gdxp.TrainingDiverged):
        net.fit([[1.0]], [[0.0]], epochs=100, learning_rate=1e6, verbose=0)
    assert np.isfinite(net.get_weights()[0]).all() and np.isfinite(net.loss_value([[1.0]], [[0.0]]))


def test_a_last_step_that_makes_the_weights_infinite_is_divergence(backend):
    # issue 12, item 2: the loss is measured before each step, so only the weights can tell
    net = gdxp.Network([1, 1], activation="identity", bias=False, seed=0, backend=backend)
    before = net.get_weights()
    with pytest.raises(gdxp.TrainingDiverged, match="diverged at epoch 1: the loss, the weights or the optimizer"):
        net.fit([[1.0]], [[0.0]], epochs=1, learning_rate=1e308, verbose=0)
    np.testing.assert_array_equal(net.get_weights()[0], before[0])


def test_divergence_is_reported_even_where_every_warning_is_an_error(backend):
    # issue 12, item 3: inf - inf on the way up is NumPy's "invalid value" warning, which must not replace it
    x, y = make_problem(6)
    net = gdxp.Network([3, 4, 2], activation="identity", seed=8, backend=backend)
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        with pytest.raises(gdxp.TrainingDiverged):
            net.fit(x, y * 1e3, epochs=500, learning_rate=5.0, verbose=0)


def test_set_weights_while_fit_runs_never_mixes_old_and_new_weights(monkeypatch):
    # issue 12, item 4: the loop reads the weights it carries, once per step, never the network's
    x, y = make_problem(8)
    net, twin = gdxp.Network([3, 4, 2], seed=9), gdxp.Network([3, 4, 2], seed=9)
    original, calls = gdxp.backprop.gradients, []

    def set_weights_meanwhile(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # another thread's set_weights, in the middle of the run
            net.set_weights([np.zeros_like(w) for w in net.get_weights()])
        return original(*args, **kwargs)

    monkeypatch.setattr(gdxp.backprop, "gradients", set_weights_meanwhile)
    net.fit(x, y, epochs=3, learning_rate=0.3, batch_size=2, verbose=0)
    monkeypatch.undo()
    twin.fit(x, y, epochs=3, learning_rate=0.3, batch_size=2, verbose=0)
    assert_same_weights(net, twin)


def test_ctrl_c_leaves_the_weights_of_the_last_completed_step(monkeypatch):
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=9)
    twin = net.copy()
    real_gradients, calls = gdxp.backprop.gradients, []

    def interrupted_gradients(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_gradients(*args, **kwargs)

    monkeypatch.setattr(gdxp.backprop, "gradients", interrupted_gradients)
    with pytest.raises(KeyboardInterrupt):
        net.fit(x, y, epochs=10, learning_rate=0.3, batch_size=2, shuffle=False, optimizer="adam", verbose=0)
    monkeypatch.undo()
    twin.fit(x, y, epochs=1, learning_rate=0.3, batch_size=2, shuffle=False, optimizer="adam", verbose=0)
    twin.fit(x[:2], y[:2], epochs=1, learning_rate=0.3, optimizer="adam", verbose=0)  # the 5th completed step
    assert_same_weights(net, twin)
    assert net.state.steps == 5


def test_record_predictions_keeps_the_prediction_of_each_step(backend):
    x, y = np.array([0.1, 0.4, 4.1]), np.array([0.2])
    net = gdxp.Network([3, 5, 1], bias=False, init="uniform", seed=0, backend=backend)
    twin = net.copy()
    history = net.fit(x, y, epochs=4, learning_rate=0.5, record_predictions=True, verbose=0)
    expected = []
    for _ in range(4):
        expected.append(host(backend, twin.predict(x)))
        twin.step(x, y, learning_rate=0.5)
    assert [p.shape for p in history.predictions] == [(1, 1)] * 4
    np.testing.assert_allclose(np.concatenate(history.predictions).ravel(), np.ravel(expected),
                               **tolerance(backend))
    with pytest.raises(ValueError, match="record_predictions .* needs one batch per epoch"):
        net.fit(np.ones((4, 3)), np.ones(4), epochs=1, learning_rate=0.1, batch_size=2, record_predictions=True)


def test_evaluate_reports_loss_and_accuracy(backend):
    net = gdxp.Network([2, 3], activation="softmax", loss="cross_entropy", seed=0, backend=backend)
    net.set_weights([np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]), np.zeros(3)])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    y = np.eye(3)[[0, 1, 1, 2]]  # right, right, wrong, and a three-way tie (arg-max picks class 0): wrong
    scores = net.evaluate(x, y)
    assert scores["accuracy"] == 0.5
    np.testing.assert_allclose(scores["loss"], net.loss_value(x, y), **tolerance(backend))
    sigmoid = gdxp.Network([2, 2], activation="sigmoid", loss="binary_cross_entropy", backend=backend)
    sigmoid.set_weights([np.array([[4.0, -4.0], [0.0, 0.0]]), np.zeros(2)])
    scores = sigmoid.evaluate([[1.0, 0.0], [-1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]])
    assert scores["accuracy"] == 0.5  # label by label: 2 of 4 right
    regression = gdxp.Network([2, 1], activation="identity", backend=backend)
    assert set(regression.evaluate([[1.0, 2.0], [0.0, 1.0]], [3.0, 1.0])) == {"loss", "r2"}  # issue 13


def test_history_plot_draws_the_tutorials_figures(tmp_path):
    x, y = np.array([0.1, 0.4, 4.1]), np.array([0.2])
    history = gdxp.Network([3, 2, 1], bias=False, init="uniform", seed=0).fit(
        x, y, epochs=30, learning_rate=0.5, record_predictions=True, verbose=0)
    figure = history.plot(tmp_path / "curves.png")
    assert [axes.get_title() for axes in figure.axes] == ["Error per epoch", "Predicted output per epoch"]
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), history.loss)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_plot_without_matplotlib_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"History.plot needs matplotlib: pip install 'gdxp\[plot\]'"):
        gdxp.History(loss=[1.0]).plot()


def test_history_keeps_the_validation_accuracy_of_class_outputs(backend):
    # issue 13: each epoch's accuracy on validation_data, read with its loss
    x, labels = np.random.default_rng(3).normal(size=(12, 2)), np.random.default_rng(4).integers(0, 3, 12)
    net = gdxp.Network([2, 4, 3], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=1,
                       backend=backend)
    history = net.fit(x, labels, epochs=4, learning_rate=0.5, batch_size=5, verbose=0,
                      validation_data=(x[:6], labels[:6]))
    assert len(history.val_accuracy) == 4
    assert history.val_accuracy[-1] == net.evaluate(x[:6], labels[:6])["accuracy"]
    regression = gdxp.Network([2, 1], activation="identity", backend=backend)
    assert regression.fit(x, x[:, :1], epochs=2, learning_rate=0.1, verbose=0,
                          validation_data=(x, x[:, :1])).val_accuracy == []
