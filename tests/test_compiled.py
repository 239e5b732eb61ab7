"""Compiled training (JAX): runs of epochs as one program give what the eager loop gives on NumPy.

Every JAX case of the other tests already trains compiled; these force short chunks, so that patience,
divergence and the shuffling generator meet chunk boundaries, and check what only compiling has.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import adam_tolerance, make_problem, running_on

import gdxp
from gdxp import compiled

jax = pytest.importorskip("jax")
pytestmark = pytest.mark.slow  # JAX compiles each new shape


@pytest.fixture
def short_chunks(monkeypatch):
    """Four epochs per compiled call, whatever the network, so that runs cross chunk boundaries."""
    monkeypatch.setattr(compiled, "_chunk_length", lambda sizes, n, size, epochs: 4)


def _pair(network=None, **settings):
    """The same network trained eagerly on NumPy and compiled on JAX's second CPU device, float64."""
    x, y = make_problem(10)
    settings = {"epochs": 15, "learning_rate": 0.3, "batch_size": 3, "verbose": 0, **settings}
    network = {"activation": "tanh", "output_activation": "sigmoid", **(network or {})}
    nets, histories, errors = [], [], []
    for backend, device in (("numpy", None), ("jax", "cpu:1")):
        net = gdxp.Network([3, 5, 2], **network, seed=4, backend=backend, device=device, dtype="float64")
        try:
            histories.append(net.fit(x, y, **settings))
            errors.append(None)
        except gdxp.TrainingDiverged as err:
            histories.append(err.history)
            errors.append(err)
        nets.append(net)
    return nets, histories, errors


def _assert_same_runs(nets, histories, exact=None):
    exact = exact or {"rtol": 1e-12, "atol": 1e-12}  # relative too: a diverging run's numbers reach 1e112
    eager, fused = histories
    np.testing.assert_allclose(fused.loss, eager.loss, **exact)
    np.testing.assert_allclose(fused.val_loss, eager.val_loss, **exact)
    assert fused.val_accuracy == eager.val_accuracy
    assert (fused.best_epoch, fused.stopped_early) == (eager.best_epoch, eager.stopped_early)
    for a, b in zip(nets[1].get_weights(), nets[0].get_weights(), strict=True):
        np.testing.assert_allclose(a, b, **exact)
    assert nets[1].state.steps == nets[0].state.steps
    for slot_a, slot_b in zip(nets[1].state.optimizer_state, nets[0].state.optimizer_state, strict=True):
        for a, b in zip(slot_a, slot_b, strict=True):
            np.testing.assert_allclose(nets[1].backend.to_numpy(a), b, **exact)
    # the shuffling generator stands where the eager loop left it
    assert nets[1].shuffle_rng.bit_generator.state == nets[0].shuffle_rng.bit_generator.state


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [1, 3, None], ids=["per-sample", "mini-batch", "full-batch"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_chunked_runs_equal_the_eager_loop(short_chunks, optimizer, batch_size, shuffle):
    x, y = make_problem(10)
    with running_on("jax", "float64"):
        nets, histories, _ = _pair(optimizer=optimizer, batch_size=batch_size, shuffle=shuffle,
                                   validation_data=(x[:4], y[:4]))
    # Adam as the README promises it (one case of the 18 differs by 2e-12 on this VM's XLA)
    _assert_same_runs(nets, histories, adam_tolerance(nets[0].state.steps, 0.3) if optimizer == "adam" else None)


@pytest.mark.parametrize("patience", [1, 3])
def test_patience_inside_a_chunk_stops_at_the_same_epoch_with_the_best_weights(short_chunks, patience):
    x, y = make_problem(10, seed=1)
    with running_on("jax", "float64"):
        nets, histories, _ = _pair(epochs=40, learning_rate=2.0, optimizer="adam", patience=patience,
                                   validation_data=(x[:3], y[:3]))
    assert histories[0].stopped_early  # the settings do stop early, so the test means something
    _assert_same_runs(nets, histories)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")  # NumPy's
def test_divergence_inside_a_chunk_stops_at_the_same_epoch_with_the_same_weights(short_chunks):
    with running_on("jax", "float64"):  # linear layers at this rate blow up in epoch 7, inside the second chunk
        nets, histories, errors = _pair({"activation": "identity", "output_activation": "identity"}, epochs=30,
                                        learning_rate=1.0, batch_size=None)
    assert errors[0] is not None and errors[1] is not None
    assert errors[1].epoch == errors[0].epoch and errors[0].epoch % 4 != 1  # inside a chunk, not at its start
    assert errors[1].last_finite_loss == pytest.approx(errors[0].last_finite_loss, rel=1e-12)
    _assert_same_runs(nets, histories)


def test_recorded_predictions_and_one_sample_runs_match(short_chunks):
    with running_on("jax", "float64"):
        nets, histories, _ = _pair(batch_size=None, record_predictions=True)
    for fused, eager in zip(histories[1].predictions, histories[0].predictions, strict=True):
        np.testing.assert_allclose(fused, eager, rtol=0, atol=1e-12)
    _assert_same_runs(nets, histories)


def test_a_new_learning_rate_or_schedule_reuses_the_program_and_new_shapes_compile(capfd):
    x, y = np.random.default_rng(5).normal(size=(7, 6)), np.random.default_rng(6).random((7, 1))
    with running_on("jax", "float32"):
        net = gdxp.Network([6, 3, 1], seed=0, backend="jax")
        first = net.fit(x, y, epochs=36, learning_rate=0.1, verbose=1)
        assert first.compile_seconds > 0
        assert "compiled 36 epochs per call in" in capfd.readouterr().err  # verbose=1 shows it
        again = net.fit(x, y, epochs=33, learning_rate=0.05, verbose=0)
        assert again.compile_seconds == 0.0 and again.epochs == 33  # 36 a call, the last 3 skipped
        # a schedule's rates are data of a program of their own: compiled once, then any schedule reuses it
        assert net.fit(x, y, epochs=36, learning_rate=0.1, learning_rate_schedule="cosine", verbose=0).compile_seconds
        assert net.fit(x, y, epochs=36, learning_rate=0.2, learning_rate_schedule="step",
                       verbose=0).compile_seconds == 0.0
        other = net.fit(x[:5], y[:5], epochs=9, learning_rate=0.1, verbose=0)
        assert other.compile_seconds > 0


def test_ctrl_c_between_chunks_leaves_whole_steps(short_chunks, monkeypatch):
    x, y = make_problem(6)
    with running_on("jax", "float64"):
        net = gdxp.Network([3, 4, 2], seed=1, backend="jax", dtype="float64")
        reference = net.copy()
        calls = {"n": 0}
        original = compiled._read

        def interrupt_on_the_second_chunk(*args):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return original(*args)

        monkeypatch.setattr(compiled, "_read", interrupt_on_the_second_chunk)
        with pytest.raises(KeyboardInterrupt):
            net.fit(x, y, epochs=12, learning_rate=0.2, optimizer="adam", verbose=0)
        # the network holds the state after a whole number of steps: four or eight epochs of full batches
        assert net.state.steps in (4, 8)
        reference.fit(x, y, epochs=net.state.steps, learning_rate=0.2, optimizer="adam", verbose=0)
        for a, b in zip(net.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
