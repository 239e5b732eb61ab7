"""fit beyond plain descent: L2 weight decay (scikit-learn's alpha), learning-rate schedules, callbacks,
and the optimizers fit refuses before anything changes."""

import math

import numpy as np
import pytest
from helpers import assert_same_weights, fit_tolerance, host, make_problem, tolerance

import gdxp
from gdxp.optimizers import Adam


def test_weight_decay_is_scikit_learns_alpha(backend):
    # one full-batch step by hand: grad + alpha * W / n on the weights, nothing on the biases, and the
    # loss grows by alpha / 2 * sum(W**2) / n, as scikit-learn's MLP computes them
    x, y = make_problem(6)
    net = gdxp.Network([3, 4, 2], seed=3, backend=backend)
    before = net.get_weights()
    grads = [host(backend, g).astype(np.float64) for g in net.gradients(x, y)]
    loss = net.loss_value(x, y)
    history = net.fit(x, y, epochs=1, learning_rate=0.2, weight_decay=0.5, verbose=0)
    for after, w, g in zip(net.get_weights(), before, grads, strict=True):
        decay = 0.5 * w / 6 if w.ndim == 2 else 0.0
        np.testing.assert_allclose(after, w - 0.2 * (g + decay), **tolerance(backend))
    penalty = 0.25 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in before if w.ndim == 2) / 6
    np.testing.assert_allclose(history.loss[0], loss + penalty, **tolerance(backend))


@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine", lambda epoch: 0.3 / epoch],
                         ids=["step", "exponential", "cosine", "callable"])
def test_a_schedule_sets_each_epochs_rate(backend, schedule):
    x, y = make_problem(5)
    net = gdxp.Network([3, 2], activation="sigmoid", seed=1, backend=backend)
    twin = net.copy()
    net.fit(x, y, epochs=12, learning_rate=0.3, learning_rate_schedule=schedule, verbose=0)
    rates = {"step": [0.3] * 10 + [0.15] * 2, "exponential": [0.3 * 0.96**k for k in range(12)],
             "cosine": [0.3 * 0.5 * (1 + math.cos(math.pi * k / 12)) for k in range(12)]}
    for rate in rates[schedule] if isinstance(schedule, str) else [0.3 / epoch for epoch in range(1, 13)]:
        twin.step(x, y, learning_rate=rate)
    assert_same_weights(net, twin, **fit_tolerance(backend))


def test_callbacks_see_each_epoch_and_can_stop_the_run(backend):
    x, y = make_problem(8)
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()
    seen = []

    def stop_after_three(epoch, history):
        seen.append((epoch, len(history.loss)))
        return epoch == 3

    history = net.fit(x, y, epochs=10, learning_rate=0.3, batch_size=3, callbacks=[stop_after_three], verbose=0)
    assert seen == [(1, 1), (2, 2), (3, 3)] and history.epochs == 3 and history.stopped_early
    twin.fit(x, y, epochs=3, learning_rate=0.3, batch_size=3, verbose=0)
    assert_same_weights(net, twin, **fit_tolerance(backend))
    # the shuffling generator stands where three epochs leave it
    assert net.shuffle_rng.bit_generator.state == twin.shuffle_rng.bit_generator.state


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"learning_rate_schedule": lambda epoch: 0.0}, ValueError,
     "learning_rate_schedule's rate for epoch 1 must be a finite number above 0"),
    ({"learning_rate_schedule": "linear"}, ValueError, "unknown learning-rate schedule 'linear'; choose one of step"),
    ({"learning_rate_schedule": 3}, TypeError, "learning_rate_schedule must be a name like 'cosine'"),
    ({"weight_decay": -1.0}, ValueError, "weight_decay must be a finite number >= 0, got -1.0"),
    ({"weight_decay": 10**400}, ValueError, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": "a"}, TypeError, "weight_decay must be a number, got 'a'"),
    ({"callbacks": [print, 3]}, TypeError, "callbacks must be a list of functions callback"),
    ({"callbacks": print}, TypeError, "callbacks must be a list of functions callback"),
])
def test_bad_options_are_refused_before_anything_changes(settings, error, message):
    x, y = make_problem(4)
    net = gdxp.Network([3, 2], seed=0)
    before = net.get_weights()
    with pytest.raises(error, match=message.replace("(", r"\(")):
        net.fit(x, y, epochs=6, learning_rate=0.1, verbose=0, **settings)
    assert_same_weights(net, gdxp.Network([3, 2], seed=0))
    assert net.optimizer is None and all(np.array_equal(a, b) for a, b in zip(net.get_weights(), before))


def test_a_rate_that_fails_later_stops_the_run_at_that_epoch_with_the_weights_before_it():
    # issue 18, item 4: rates are computed as their epochs come, none kept ahead
    x, y = make_problem(4)
    net, twin = gdxp.Network([3, 2], seed=0), gdxp.Network([3, 2], seed=0)
    with pytest.raises(ValueError, match="learning_rate_schedule's rate for epoch 5 must be a finite number above 0"):
        net.fit(x, y, epochs=6, learning_rate=0.1, verbose=0,
                learning_rate_schedule=lambda epoch: 0.1 if epoch < 5 else 0.0)
    twin.fit(x, y, epochs=4, learning_rate=0.1, verbose=0)
    assert_same_weights(net, twin, rtol=0, atol=0)
    assert net.state.epoch == 4


def test_an_optimizer_object_carries_no_state_from_one_network_to_another():
    # issue 18: the state lives in the network's TrainState, so one Adam serves a float64 and a float32 network
    x, y = make_problem(4)
    adam = Adam()
    gdxp.Network([3, 2], seed=0).fit(x, y, epochs=1, learning_rate=0.1, optimizer=adam, verbose=0)
    net = gdxp.Network([3, 2], seed=0, dtype="float32")
    net.fit(x, y, epochs=1, learning_rate=0.1, optimizer=adam, verbose=0)
    assert net.optimizer is adam and net.state.steps == 1
    assert all(a.dtype == np.float32 for slot in net.state.optimizer_state for a in slot)
    assert all(w.dtype == np.float32 for w in net.get_weights())


def test_zero_epochs_keep_the_optimizer_and_its_state():
    # issue 12, item 4: fit(epochs=0, optimizer="momentum") used to drop the Adam state silently
    x, y = make_problem(4)
    net = gdxp.Network([3, 2], seed=0)
    net.fit(x, y, epochs=2, learning_rate=0.1, optimizer="adam", verbose=0)
    adam, state = net.optimizer, net.state.optimizer_state
    history = net.fit(x, y, epochs=0, learning_rate=0.1, optimizer="momentum", verbose=0)
    assert history.epochs == 0 and net.optimizer is adam and net.state.optimizer_state is state


def test_save_refuses_a_flag_that_is_not_a_bool(tmp_path):
    # issue 12, item 7: include_optimizer='no' was taken as true
    with pytest.raises(TypeError, match="include_optimizer must be True or False"):
        gdxp.Network([2, 1]).save(tmp_path / "net.npz", include_optimizer="no")
    assert not (tmp_path / "net.npz").exists()
