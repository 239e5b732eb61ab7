"""The training engine (issue 18): one state, one loop, hooks that see the live network.

Each of the issue's five defects has a test here that failed before the redesign: callbacks see, save and
set the live network; divergence is checked after the last step and whatever is restored has a finite
loss; compiled programs are cached by what the math is, not by names; schedules and patience are
functions of the network's global epoch (a split run equals the run in one call, through a file too);
a compiled estimator's records never run ahead of its weights, and early stopping checks its data once.
"""

import contextlib
import math
import signal
import threading
import warnings

import numpy as np
import pytest
from helpers import assert_same_weights, fit_tolerance, make_problem

import gdxp
from gdxp import compiled, eager, validation
from gdxp.activations import ACTIVATIONS, Activation
from gdxp.losses import LOSSES, Loss
from gdxp.optimizers import Adam
from gdxp.options import FitOptions

FIT = {"learning_rate": 0.3, "batch_size": 3, "verbose": 0}


# -- item 1: callbacks see, save and set the live network ----------------------------------------------------

def test_a_callback_sees_the_weights_of_the_epoch_that_just_ended(backend):
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()
    seen = []
    net.fit(x, y, epochs=4, callbacks=[lambda epoch, history: seen.append(net.loss_value(x, y))], **FIT)
    expected = []
    for _ in range(4):
        twin.fit(x, y, epochs=1, **FIT)
        expected.append(twin.loss_value(x, y))
    np.testing.assert_allclose(seen, expected, **fit_tolerance(backend))
    assert seen[-1] < seen[0]


def test_a_callback_that_saves_writes_the_weights_of_its_epoch(backend, tmp_path):
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()

    def checkpoint(epoch, history):
        net.save(tmp_path / f"epoch{epoch}.npz", include_optimizer=True)

    net.fit(x, y, epochs=3, optimizer="adam", callbacks=[checkpoint], **FIT)
    twin.fit(x, y, epochs=2, optimizer="adam", **FIT)
    saved = gdxp.load(tmp_path / "epoch2.npz", backend=backend.name, device=backend.device)
    assert_same_weights(saved, twin, **fit_tolerance(backend))
    assert saved.state.epoch == 2 and saved.state.steps == twin.state.steps == 2 * 3


def test_weights_a_callback_sets_are_what_training_goes_on_from(backend):
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()
    replacement = [np.full(shape, 0.1) for shape in net.weight_shapes()]

    def reset_after_the_second(epoch, history):
        if epoch == 2:
            net.set_weights(replacement)

    net.fit(x, y, epochs=4, callbacks=[reset_after_the_second], **FIT)
    twin.fit(x, y, epochs=2, **FIT)
    twin.set_weights(replacement)
    twin.fit(x, y, epochs=2, **FIT)
    assert_same_weights(net, twin, **fit_tolerance(backend))


# -- item 2: divergence after the last step, and what is restored ---------------------------------------------

def test_a_last_step_whose_loss_overflows_is_divergence(backend):
    # the weights stay finite (-2e200) while their loss is inf: only scoring the last weights can tell
    net = gdxp.Network([1, 1], activation="identity", bias=False, weights=[[[1.0]]], backend=backend)
    with pytest.raises(gdxp.TrainingDiverged, match="training diverged at epoch 1"):
        net.fit([[1.0]], [[0.0]], epochs=1, learning_rate=1e200, verbose=0)
    np.testing.assert_array_equal(net.get_weights()[0], [[1.0]])
    assert math.isfinite(net.loss_value([[1.0]], [[0.0]]))


@pytest.mark.parametrize("batch_size", [None, 2])
@pytest.mark.parametrize("rate", [3.0, 30.0, 300.0])
def test_whatever_a_divergence_restores_has_a_finite_loss(backend, batch_size, rate):
    x, y = make_problem(6)
    net = gdxp.Network([3, 4, 2], activation="identity", seed=8, backend=backend)
    with contextlib.suppress(gdxp.TrainingDiverged):
        net.fit(x, y * 1e3, epochs=200, learning_rate=rate, batch_size=batch_size, optimizer="adam", verbose=0)
    assert math.isfinite(net.loss_value(x, y * 1e3))
    assert all(np.all(np.isfinite(w)) for w in net.get_weights())


def test_an_early_stopping_estimator_that_diverges_says_so_and_keeps_finite_weights(backend):
    pytest.importorskip("sklearn")
    from gdxp.estimators import MLPRegressor
    if backend.name in ("dask", "array_api_strict"):
        pytest.skip("the estimators pick the backend from the data's library")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=60) * 1e3
    model = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0, early_stopping=True,
                         max_iter=50, random_state=0, backend=backend.name, dtype=backend.dtype_name)
    with pytest.raises(gdxp.TrainingDiverged):
        model.fit(x, y)
    assert all(np.all(np.isfinite(w)) for w in model.net_.get_weights())
    assert len(model.loss_curve_) == model.n_iter_


# -- item 3: compiled programs are cached by what the math is -----------------------------------------------

def _thrice_squared_error():
    base = LOSSES["squared_error"]
    return Loss("squared_error", lambda xp, p, t: 3.0 * base.value(xp, p, t),
                lambda xp, p, t: 3.0 * base.gradient(xp, p, t))


def _steeper_sigmoid():
    base = ACTIVATIONS["sigmoid"]
    return Activation("sigmoid", lambda xp, sop: base.forward(xp, 2.0 * sop),
                      lambda xp, activ: 2.0 * base.derivative(xp, activ))


@pytest.mark.slow
@pytest.mark.parametrize("custom", ["loss", "activation"])
def test_a_custom_piece_that_shares_a_built_in_name_trains_as_itself_on_jax(custom):
    pytest.importorskip("jax")
    x, y = make_problem(8)
    settings = {"loss": _thrice_squared_error()} if custom == "loss" else {"output_activation": _steeper_sigmoid()}
    trained = {}
    for backend in ("numpy", "jax"):
        for kind, extra in (("built-in", {}), ("custom", settings)):
            net = gdxp.Network([3, 4, 2], seed=2, backend=backend, dtype="float32", **extra)
            net.fit(x, y, epochs=5, **FIT)  # the built-in first: its program is cached when the custom comes
            trained[backend, kind] = net
    np.testing.assert_allclose(trained["jax", "custom"].get_weights()[0], trained["numpy", "custom"].get_weights()[0],
                               rtol=2e-5, atol=2e-6)
    assert not np.allclose(trained["jax", "custom"].get_weights()[0], trained["jax", "built-in"].get_weights()[0])


# -- item 4: schedules and patience count the network's epochs ------------------------------------------------

def test_a_schedule_keeps_no_rate_ahead_of_its_epoch():
    options = FitOptions(epochs=10**8, learning_rate=0.1, learning_rate_schedule="cosine")
    assert options.rate(1) == 0.1 and 0 < options.rate(10**8) < 1e-10
    assert options.rates(10**8 - 1, 2) == [options.rate(10**8 - 1), options.rate(10**8)]


SPLIT_RUNS = [
    pytest.param({"learning_rate_schedule": "exponential"}, id="exponential"),
    pytest.param({"learning_rate_schedule": lambda epoch: 0.4 / epoch}, id="function"),
    pytest.param({"learning_rate_schedule": "step", "patience": 2}, id="step-and-patience"),
]


def _split_data():
    rng = np.random.default_rng(3)
    x, x_val = rng.normal(size=(12, 3)), rng.normal(size=(6, 3))
    return x, np.tanh(x[:, :2]), x_val, np.tanh(x_val[:, :2])


@pytest.mark.parametrize("settings", SPLIT_RUNS)
@pytest.mark.parametrize("through_a_file", [False, True], ids=["in-memory", "save-load"])
def test_a_run_split_across_fits_equals_the_run_in_one(backend, settings, through_a_file, tmp_path):
    x, y, x_val, y_val = _split_data()
    fit = {"learning_rate": 0.4, "batch_size": 5, "optimizer": "adam", "verbose": 0,
           "validation_data": (x_val, y_val), **settings}
    whole = gdxp.Network([3, 4, 2], activation="tanh", output_activation="identity", seed=5, backend=backend)
    split = whole.copy()
    history = whole.fit(x, y, epochs=12, **fit)
    first = split.fit(x, y, epochs=5, **fit)
    if through_a_file:
        split.save(tmp_path / "half.npz", include_optimizer=True)
        split = gdxp.load(tmp_path / "half.npz", backend=backend.name, device=backend.device)
    second = split.fit(x, y, epochs=12 - first.epochs, **fit) if not first.stopped_early else first
    exact = {"rtol": 0, "atol": 0} if backend.name == "numpy" else fit_tolerance(backend)
    assert_same_weights(split, whole, **exact)
    np.testing.assert_allclose(first.loss + (second.loss if second is not first else []), history.loss, **exact)
    assert split.state.epoch == whole.state.epoch and split.state.steps == whole.state.steps
    assert (second.stopped_early, second.best_epoch) == (history.stopped_early, history.best_epoch)


def test_patience_counts_on_across_fits_and_stops_where_one_fit_would():
    x, y, x_val, y_val = _split_data()
    fit = {"learning_rate": 2.0, "batch_size": 4, "optimizer": "adam", "verbose": 0,
           "validation_data": (x_val, y_val), "patience": 3}
    whole = gdxp.Network([3, 4, 2], activation="tanh", output_activation="identity", seed=5)
    split = whole.copy()
    history = whole.fit(x, y, epochs=60, **fit)
    assert history.stopped_early, "the settings must make patience stop the run"
    epochs = 0
    while epochs < history.epochs:
        part = split.fit(x, y, epochs=2, **fit)
        epochs += part.epochs
        if part.stopped_early:
            break
    assert part.stopped_early and epochs == history.epochs and part.best_epoch == history.best_epoch
    assert_same_weights(split, whole, rtol=0, atol=0)


# -- item 5: a compiled estimator's records, and early stopping's data ----------------------------------------

@pytest.mark.slow
def test_ctrl_c_in_a_compiled_estimator_fit_leaves_records_that_match_the_weights(monkeypatch):
    pytest.importorskip("sklearn")
    pytest.importorskip("jax")
    from gdxp.estimators import MLPRegressor
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    model = MLPRegressor(hidden_layer_sizes=(6,), max_iter=10**6, tol=0, n_iter_no_change=10**7, random_state=0,
                         backend="jax", batch_size=40)
    real_read, reads = compiled._read, []

    def interrupted(*args):
        reads.append(1)
        if len(reads) == 2:
            raise KeyboardInterrupt
        return real_read(*args)

    monkeypatch.setattr(compiled, "_read", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y)
    assert 0 < model.n_iter_ == model.net_.state.epoch == len(model.loss_curve_) < 10**6


def test_early_stopping_checks_and_moves_its_data_once(monkeypatch):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from gdxp.estimators import MLPClassifier
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(80, 4)), rng.integers(0, 3, size=80)
    calls = []
    real = validation.as_inputs
    monkeypatch.setattr(validation, "as_inputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(ConvergenceWarning):
        model = MLPClassifier(hidden_layer_sizes=(5,), early_stopping=True, max_iter=30, n_iter_no_change=100,
                              random_state=0).fit(x, labels)
    assert model.n_iter_ == 30
    # the training data once, then a prediction a epoch on data already on the network's device
    assert len(calls) <= 1 + model.n_iter_


# -- the state and the updates ----------------------------------------------------------------------------------

def test_optimizers_update_in_place_where_the_arrays_are_mutable(backend):
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    net.fit(x, y, epochs=1, optimizer="adam", **FIT)
    weight, moment = net.state.weights[0], net.state.optimizer_state[0][0]
    net.fit(x, y, epochs=2, optimizer="adam", **FIT)
    mutable = backend.parameters.mutable
    assert (net.state.weights[0] is weight) == mutable and (net.state.optimizer_state[0][0] is moment) == mutable


def test_ctrl_c_during_an_in_place_update_waits_for_the_update_to_end(monkeypatch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C reaches only the main thread")
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=2)
    twin = net.copy()
    real_update, calls = Adam.update, []

    def signalled(self, *args):
        calls.append(1)
        if len(calls) == 4:
            signal.raise_signal(signal.SIGINT)  # arrives while the update runs: held until it ends
        return real_update(self, *args)

    monkeypatch.setattr(Adam, "update", signalled)
    with pytest.raises(KeyboardInterrupt):
        net.fit(x, y, epochs=5, optimizer="adam", shuffle=False, **{**FIT, "batch_size": 2})
    monkeypatch.undo()
    twin.fit(x, y, epochs=1, optimizer="adam", shuffle=False, **{**FIT, "batch_size": 2})  # the four steps
    assert net.state.steps == 4
    assert_same_weights(net, twin, rtol=0, atol=0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_evaluate_scores_by_the_loss(backend):
    x, y = make_problem(8)
    regression = gdxp.Network([3, 4, 2], seed=2, backend=backend)  # the tutorials' sigmoid + squared error
    assert set(regression.evaluate(x, y)) == {"loss", "r2"}
    classes = gdxp.Network([3, 4, 2], loss="binary_cross_entropy", seed=2, backend=backend)
    assert set(classes.evaluate(x, (y > 0.5) * 1.0)) == {"loss", "accuracy"}
    if backend.dtype_name == "float64":
        sklearn_metrics = pytest.importorskip("sklearn.metrics")
        prediction = np.asarray(gdxp.Network([3, 4, 2], seed=2).predict(x))
        np.testing.assert_allclose(regression.evaluate(x, y)["r2"], sklearn_metrics.r2_score(y, prediction),
                                   rtol=1e-6)


@pytest.mark.parametrize("loss, output", [("squared_error", "sigmoid"), ("mse", "identity"),
                                          ("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3, 1e30, 1e100, 1e200, 1e300])
def test_the_cheap_finite_loss_certificate_never_vouches_for_an_infinite_loss(backend, loss, output, scale):
    # the run's ending skips scoring the last weights only where bounds prove their loss finite
    from gdxp.steps import surely_finite_loss, training_loss
    x, y = make_problem(8)
    if loss in ("cross_entropy", "binary_cross_entropy"):
        y = np.eye(2)[(y[:, 0] > y[:, 1]).astype(int)]
    net = gdxp.Network([3, 4, 2], activation="relu", output_activation=output, loss=loss, seed=3, backend=backend)
    with np.errstate(all="ignore"):
        weights = [w * np.float64(scale).astype(w.dtype) for w in net.get_weights()]
    if not all(np.all(np.isfinite(w)) for w in weights):
        pytest.skip("the weights themselves overflow this dtype")
    net.set_weights(weights)
    data = net.as_batch(x, y)
    with net.backend.activate(training=True):
        vouched = surely_finite_loss(net.backend, net.architecture, net.state.weights, data)
        loss_value = training_loss(net.backend, net.architecture, net.state.weights, data)
    assert not vouched or math.isfinite(loss_value)  # never wrong
    assert vouched or scale > 1e3  # and of use: ordinary weights are vouched for


def test_the_certificate_leaves_a_custom_activation_to_the_forward_pass():
    from gdxp.steps import surely_finite_loss
    net = gdxp.Network([3, 2], output_activation=_steeper_sigmoid(), seed=0)
    x, y = make_problem(4)
    assert not surely_finite_loss(net.backend, net.architecture, net.state.weights, net.as_batch(x, y))


# -- what the in-place updates demand elsewhere -----------------------------------------------------------------

def test_weights_given_are_copied_so_training_never_writes_into_the_callers_arrays(backend):
    # issue 19, item 5: with in-place updates an alias would now be written to; asarray(copy=True) always copies
    if backend.name == "dask":
        pytest.skip("the weights live on the client as NumPy arrays: the NumPy case")
    net = gdxp.Network([3, 2], seed=0, backend=backend)
    given = [backend.asarray(w) for w in net.get_weights()]
    before = [np.array(backend.to_numpy(w)) for w in given]
    net.set_weights(given)
    x, y = make_problem(4)
    net.fit(x, y, epochs=2, learning_rate=0.5, optimizer="adam", verbose=0)
    for arr, kept in zip(given, before, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(arr), kept)


def test_a_torch_tensor_given_as_weights_is_copied():
    torch = pytest.importorskip("torch")
    tensor = torch.ones((3, 2), dtype=torch.float64)
    net = gdxp.Network([3, 2], bias=False, backend="torch", dtype="float64", weights=[tensor])
    tensor += 1.0
    np.testing.assert_array_equal(net.get_weights()[0], np.ones((3, 2)))


def test_verbose_takes_true_and_false():
    x, y = make_problem(4)
    net = gdxp.Network([3, 2], seed=0)
    assert net.fit(x, y, epochs=1, learning_rate=0.1, verbose=False).epochs == 1
    assert FitOptions(epochs=1, learning_rate=0.1, verbose=True).verbose == 1


# -- issue 21, item 8: waiting for the device (each read of a device array is a wait on a GPU) -----------------

def counted_reads(monkeypatch, backend: gdxp.Backend) -> list[tuple[int, ...]]:
    """Every read ``backend.to_numpy`` makes from now on, by the shape it read (a test double for a GPU's waits)."""
    reads, to_numpy = [], backend.to_numpy
    monkeypatch.setattr(backend, "to_numpy", lambda arr: reads.append(tuple(arr.shape)) or to_numpy(arr))
    monkeypatch.setattr(backend, "synchronize", lambda *arrays: reads.append(("synchronize",)))
    return reads


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])  # new arrays each step; in place (kept as copies)
@pytest.mark.parametrize("diverges_at", [5, 32, 33, 40])  # inside the first read, its last, the next's first, inside
def test_epochs_of_one_step_read_in_runs_diverge_exactly_as_when_read_one_by_one(backend, monkeypatch, optimizer,
                                                                                diverges_at):
    if backend.compiler is not None:
        pytest.skip("fit runs compiled here")
    monkeypatch.setattr(eager, "RUN_SECONDS", math.inf)  # one run: the reads alone decide where it stops
    x, y = make_problem(6)
    settings = {"epochs": 100, "learning_rate": 1.0, "optimizer": optimizer, "verbose": 0,
                "learning_rate_schedule": lambda epoch: 1e-5 if epoch < diverges_at - 4 else 3.0}
    outcomes = []
    for read_every in (1, eager.READ_EVERY):
        monkeypatch.setattr(eager, "READ_EVERY", read_every)
        net = gdxp.Network([3, 4, 2], activation="identity", seed=8, backend=backend)
        with pytest.raises(gdxp.TrainingDiverged) as caught, warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own overflow warnings on the way up
            net.fit(x, y * 1e3, **settings)
        state = [backend.parameters.to_numpy(a) for slot in net.state.optimizer_state for a in slot]
        outcomes.append((caught.value.epoch, caught.value.history.loss, net.get_weights(), state, net.state.steps))
    (epoch, losses, weights, state, steps), (epoch_read, losses_read, weights_read, state_read, steps_read) = outcomes
    assert epoch_read == epoch > 2 and steps_read == steps and losses_read == losses
    for mine, theirs in zip([*weights_read, *state_read], [*weights, *state], strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_epochs_of_one_step_wait_for_the_device_once_a_run_of_them(monkeypatch):
    monkeypatch.setattr(eager, "RUN_SECONDS", math.inf)
    backend = gdxp.get_backend("numpy")
    reads = counted_reads(monkeypatch, backend)
    counts = []
    for epochs in (eager.READ_EVERY, 10 * eager.READ_EVERY):
        net = gdxp.Network([3, 5, 1], bias=False, init="uniform", seed=0, backend=backend)
        reads.clear()
        net.fit([[0.1, 0.4, 4.1]], [[0.2]], epochs=epochs, learning_rate=0.5, batch_size=1, verbose=0)
        counts.append(len(reads))
    assert counts[1] - counts[0] == 9  # one read a run of READ_EVERY epochs (it was one an epoch)


@pytest.mark.parametrize("watched", [False, True])
def test_an_epoch_a_hook_watches_waits_for_the_device_once_per_kind_of_number(monkeypatch, watched):
    """The loss and the validation scores in one read; the weights' finiteness, for a callback, in one more."""
    backend = gdxp.get_backend("numpy")
    reads = counted_reads(monkeypatch, backend)
    x, y = make_problem(8)
    extra = {"callbacks": [lambda epoch, history: None]} if watched else {"validation_data": (x, y)}
    counts = []
    for epochs in (5, 10):
        net = gdxp.Network([3, 4, 2], seed=0, backend=backend)
        reads.clear()
        net.fit(x, y, epochs=epochs, learning_rate=0.1, verbose=0, **extra)
        counts.append(len(reads))
    assert counts[1] - counts[0] == 5 * (2 if watched else 1)


def test_set_weights_scans_host_data_on_the_host_and_device_arrays_in_one_read(monkeypatch):
    torch = pytest.importorskip("torch")
    backend = gdxp.get_backend("torch", dtype="float64")
    net = gdxp.Network([3, 4, 2], seed=0, backend=backend)
    given = net.get_weights()
    reads = counted_reads(monkeypatch, backend)
    net.set_weights(given)
    assert reads == []
    net.set_weights([torch.asarray(w) for w in given])
    assert reads == [(4,)]  # the four arrays' flags together
    with pytest.raises(ValueError, match=r"weight array 1 must hold finite numbers, got 1 NaN .* index \(2,\)"):
        net.set_weights([given[0], np.array([0.0, 0.0, np.nan, 0.0]), *given[2:]])
    with pytest.raises(ValueError, match=r"weight array 3 must hold finite numbers, got 2 NaN .* index \(0,\)"):
        net.set_weights([torch.asarray(w) for w in given[:3]] + [torch.asarray([np.inf, np.nan])])


def test_a_step_on_arrays_in_place_never_waits_for_the_device(monkeypatch):
    backend = gdxp.get_backend("numpy")
    net = gdxp.Network([3, 4, 2], seed=0, backend=backend)
    inputs, targets = (backend.asarray(a) for a in make_problem(5))
    reads = counted_reads(monkeypatch, backend)
    net.step(inputs, targets, learning_rate=0.1)
    net.step(inputs, targets, learning_rate=0.1, return_loss=True)
    net.predict(inputs)
    assert reads == []
