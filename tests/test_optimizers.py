"""Optimizers: each update rule against a NumPy reference, state on the device, how fit picks and
continues an optimizer, refused settings, and that Adam and momentum beat plain descent on XOR."""

import numpy as np
import pytest
from helpers import assert_same_weights, fit_tolerance, host, make_problem, tolerance

import gdxp
from gdxp.optimizers import SGD, Adam, AdamW, Momentum, get_optimizer

# -- NumPy float64 references, written from the docstrings' formulas ---------------------------------

def _sgd_rule(lr):
    def rule(weights, grads, step):
        return [w - lr * g for w, g in zip(weights, grads, strict=True)]
    return rule


def _momentum_rule(lr, mu, nesterov):
    velocities = None

    def rule(weights, grads, step):
        nonlocal velocities
        if velocities is None:
            velocities = [np.zeros_like(w) for w in weights]
        velocities = [mu * v - lr * g for v, g in zip(velocities, grads, strict=True)]
        if nesterov:
            return [w + mu * v - lr * g for w, v, g in zip(weights, velocities, grads, strict=True)]
        return [w + v for w, v in zip(weights, velocities, strict=True)]
    return rule


def _adam_rule(lr, b1, b2, eps):
    moments = None

    def rule(weights, grads, step):
        nonlocal moments
        if moments is None:
            moments = [[np.zeros_like(w) for w in weights] for _ in range(2)]
        first = [b1 * m + (1 - b1) * g for m, g in zip(moments[0], grads, strict=True)]
        second = [b2 * v + (1 - b2) * g**2 for v, g in zip(moments[1], grads, strict=True)]
        moments = [first, second]
        return [w - lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + eps)
                for w, m, v in zip(weights, first, second, strict=True)]
    return rule


def _adamw_rule(lr, b1, b2, eps, decay):
    adam = _adam_rule(lr, b1, b2, eps)

    def rule(weights, grads, step):  # Adam's step, then every weight shrinks by lr * decay * W (the old W)
        return [n - lr * decay * w for n, w in zip(adam(weights, grads, step), weights, strict=True)]
    return rule


CASES = [
    pytest.param("sgd", 0.5, lambda: _sgd_rule(0.5), id="sgd"),
    pytest.param(Momentum(), 0.2, lambda: _momentum_rule(0.2, 0.9, False), id="momentum-default"),
    pytest.param(Momentum(0.7, nesterov=True), 0.2, lambda: _momentum_rule(0.2, 0.7, True), id="nesterov"),
    pytest.param("adam", 0.05, lambda: _adam_rule(0.05, 0.9, 0.999, 1e-8), id="adam-default"),
    pytest.param(Adam(beta1=0.8, beta2=0.95, epsilon=1e-3), 0.05, lambda: _adam_rule(0.05, 0.8, 0.95, 1e-3),
                 id="adam-custom"),
    pytest.param(AdamW(weight_decay=0.3), 0.05, lambda: _adamw_rule(0.05, 0.9, 0.999, 1e-8, 0.3), id="adamw"),
]


@pytest.mark.parametrize(("optimizer", "lr", "make_rule"), CASES)
def test_update_rule_matches_numpy_reference(backend, optimizer, lr, make_rule):
    if not isinstance(optimizer, str):
        optimizer = type(optimizer)(**optimizer.hyperparameters())  # a fresh object per backend
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=1, backend=backend)
    twin = net.copy()
    steps = 5
    net.fit(x, y, epochs=steps, learning_rate=lr, optimizer=optimizer, verbose=0)
    rule, weights = make_rule(), twin.get_weights()
    for step in range(1, steps + 1):
        grads = [host(backend, g).astype(np.float64) for g in twin.gradients(x, y)]
        weights = rule(weights, grads, step)
        twin.set_weights(weights)
    assert net.state.steps == steps
    for got, want, start in zip(net.get_weights(), weights, gdxp.Network([3, 4, 2], seed=1).get_weights(),
                                strict=True):
        assert not np.allclose(want, start)  # every array moved, so the comparison means something
        np.testing.assert_allclose(got.astype(np.float64), want, **tolerance(backend))


def test_sgd_by_name_is_the_plain_step(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=2, backend=backend)
    twin = net.copy()
    net.fit(x, y, epochs=3, learning_rate=0.4, optimizer="sgd", verbose=0)
    for _ in range(3):
        twin.step(x, y, learning_rate=0.4)
    assert_same_weights(net, twin, **fit_tolerance(backend))
    assert isinstance(net.optimizer, SGD) and not net.state.optimizer_state and net.state.steps == 3


def test_update_changes_the_arrays_it_is_given_only_where_they_can_change(backend):
    # issue 18: one formula, in place on mutable arrays (state and weights), building new ones on immutable ones
    xp = backend.xp
    g_values = [np.array([[0.1, 0.2], [-0.3, 0.4]]), np.array([1.0, -1.0])]
    weights = [backend.asarray(np.array([[1.0, -2.0], [0.5, 0.0]])), backend.asarray(np.array([0.25, -0.5]))]
    before = [host(backend, w).copy() for w in weights]
    adam = Adam()
    with backend.activate():  # where gdxp runs its math: the state is made on the backend's device
        state = adam.init(xp, weights)
        new, state = adam.update(xp, weights, [backend.asarray(g.copy()) for g in g_values], state, 0.1, 1)
    # first Adam step: m_hat = g, v_hat = g^2, so each weight moves by lr * g / (|g| + eps)
    for n, w, g in zip(new, before, g_values, strict=True):
        np.testing.assert_allclose(host(backend, n), w - 0.1 * g / (np.abs(g) + 1e-8), **tolerance(backend))
    for given, made in zip(weights, new, strict=True):
        assert (given is made) == backend.mutable
    for m, g in zip(state[0], g_values, strict=True):
        np.testing.assert_allclose(host(backend, m), 0.1 * g, **tolerance(backend))


def test_sgd_writes_the_new_weights_into_the_gradients_and_leaves_the_weights_alone(backend):
    xp = backend.xp
    weights = [backend.asarray(np.array([[1.0, -2.0], [0.5, 0.0]]))]
    grads = [backend.asarray(np.array([[0.1, 0.2], [-0.3, 0.4]]))]
    new, state = SGD().update(xp, weights, grads, [], 0.5, 1)
    np.testing.assert_array_equal(host(backend, weights[0]), [[1.0, -2.0], [0.5, 0.0]])
    np.testing.assert_allclose(host(backend, new[0]), [[0.95, -2.1], [0.65, -0.2]], **tolerance(backend))
    assert state == []


@pytest.mark.parametrize(("name", "slots"), [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_state_lives_on_the_device_with_the_weights_shapes(backend, name, slots):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=3, backend=backend)
    net.fit(x, y, epochs=2, learning_rate=0.1, optimizer=name, verbose=0)
    opt = net.optimizer
    assert opt.name == name and net.state.steps == 2 and len(net.state.optimizer_state) == slots
    for slot in net.state.optimizer_state:
        assert [tuple(a.shape) for a in slot] == [(3, 4), (4,), (4, 2), (2,)]
        for arr in slot:
            assert arr.dtype == backend.dtype
            assert np.all(np.isfinite(host(backend, arr)))
    net.fit(x, y, epochs=3, learning_rate=0.1, optimizer=name, verbose=0)
    assert net.optimizer is opt and net.state.steps == 5


def test_momentum_velocity_and_adam_moments_hold_the_documented_values(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=4, backend=backend)
    grads = [host(backend, g).astype(np.float64) for g in net.copy().gradients(x, y)]
    net.fit(x, y, epochs=1, learning_rate=0.3, optimizer="momentum", verbose=0)
    for v, g in zip(net.state.optimizer_state[0], grads, strict=True):  # v = 0.9 * 0 - lr * g
        np.testing.assert_allclose(host(backend, v), -0.3 * g, **tolerance(backend))
    other = gdxp.Network([3, 4, 2], seed=4, backend=backend)
    other.fit(x, y, epochs=1, learning_rate=0.3, optimizer="adam", verbose=0)
    first, second = other.state.optimizer_state
    for m, v, g in zip(first, second, grads, strict=True):
        np.testing.assert_allclose(host(backend, m), 0.1 * g, **tolerance(backend))
        np.testing.assert_allclose(host(backend, v), 0.001 * g**2, **tolerance(backend))


# -- how fit chooses and continues an optimizer ------------------------------------------------------

def test_fit_by_name_continues_the_same_optimizer(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=5, backend=backend)
    once = net.copy()
    net.fit(x, y, epochs=3, learning_rate=0.05, optimizer="adam", verbose=0)
    adam = net.optimizer
    assert isinstance(adam, Adam) and net.state.steps == 3
    net.fit(x, y, epochs=4, learning_rate=0.05, optimizer="adam", verbose=0)
    assert net.optimizer is adam and net.state.steps == 7
    once.fit(x, y, epochs=7, learning_rate=0.05, optimizer="adam", verbose=0)
    assert once.state.steps == 7
    assert_same_weights(net, once, **tolerance(backend))
    for slot_a, slot_b in zip(net.state.optimizer_state, once.state.optimizer_state, strict=True):
        for a, b in zip(slot_a, slot_b, strict=True):
            np.testing.assert_allclose(host(backend, a), host(backend, b), **tolerance(backend))


def test_a_restarted_adam_differs_from_a_continued_one(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=5, backend=backend)
    restarted = net.copy()
    net.fit(x, y, epochs=6, learning_rate=0.05, optimizer="adam", verbose=0)
    restarted.fit(x, y, epochs=3, learning_rate=0.05, optimizer="adam", verbose=0)
    restarted.fit(x, y, epochs=3, learning_rate=0.05, optimizer=Adam(), verbose=0)
    assert restarted.state.steps == 3
    assert not np.allclose(net.get_weights()[0], restarted.get_weights()[0], rtol=1e-4, atol=1e-5)


def test_fit_uses_a_given_optimizer_object(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=6, backend=backend)
    twin = net.copy()
    adam = Adam(beta1=0.8)
    net.fit(x, y, epochs=4, learning_rate=0.05, optimizer=adam, verbose=0)
    assert net.optimizer is adam and net.state.steps == 4 and adam.beta1 == 0.8
    net.fit(x, y, epochs=1, learning_rate=0.05, optimizer="adam", verbose=0)  # the name continues it
    assert net.optimizer is adam and net.state.steps == 5
    net.fit(x, y, epochs=1, learning_rate=0.05, optimizer=adam, verbose=0)  # and so does the object
    assert net.optimizer is adam and net.state.steps == 6
    net.fit(x, y, epochs=1, learning_rate=0.05, verbose=0)
    twin.fit(x, y, epochs=1, learning_rate=0.05, verbose=0)
    twin.fit(x, y, epochs=6, learning_rate=0.05, optimizer="adam", verbose=0)  # default beta1=0.9
    assert twin.optimizer.beta1 == 0.9
    assert not np.allclose(net.get_weights()[0], twin.get_weights()[0], rtol=1e-4, atol=1e-5)


def test_switching_names_starts_a_new_optimizer(backend):
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=7, backend=backend)
    net.fit(x, y, epochs=2, learning_rate=0.05, optimizer="adam", verbose=0)
    adam = net.optimizer
    net.fit(x, y, epochs=3, learning_rate=0.05, optimizer="sgd", verbose=0)
    assert isinstance(net.optimizer, SGD) and net.state.steps == 3 and not net.state.optimizer_state
    net.fit(x, y, epochs=1, learning_rate=0.05, optimizer="adam", verbose=0)
    assert isinstance(net.optimizer, Adam) and net.optimizer is not adam and net.state.steps == 1


def test_state_for_another_shape_is_refused():
    momentum, xp = Momentum(), gdxp.get_backend("numpy").xp
    momentum.check_state(momentum.init(xp, [np.ones((2, 3))]), [(2, 3)])
    with pytest.raises(ValueError, match=r"Momentum state for weights of shapes \[\(2, 3\)\].*\[\(3, 2\)\]"):
        momentum.check_state(momentum.init(xp, [np.ones((2, 3))]), [(3, 2)])
    with pytest.raises(ValueError, match="Momentum keeps 1 arrays of state per weight, got 2"):
        momentum.check_state([[np.ones((2, 3))], [np.ones((2, 3))]], [(2, 3)])


# -- settings ----------------------------------------------------------------------------------------

def test_unknown_names_and_wrong_types_are_refused():
    x, y = make_problem()
    net = gdxp.Network([3, 4, 2], seed=0)
    before = net.get_weights()
    with pytest.raises(ValueError, match="sgd, momentum, adam"):
        net.fit(x, y, epochs=1, learning_rate=0.1, optimizer="rmsprop", verbose=0)
    with pytest.raises(TypeError, match="optimizer must be a name"):
        net.fit(x, y, epochs=1, learning_rate=0.1, optimizer=Adam, verbose=0)
    with pytest.raises(TypeError):
        net.fit(x, y, epochs=1, learning_rate=0.1, optimizer=3, verbose=0)
    with pytest.raises(ValueError, match="sgd, momentum, adam"):
        get_optimizer("Adam")  # names are exact
    assert net.optimizer is None
    assert_same_weights(net, _with_weights(before))


def _with_weights(weights):
    net = gdxp.Network([3, 4, 2], seed=0)
    net.set_weights(weights)
    return net


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: Momentum(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: Momentum(momentum=-0.1), ValueError, "momentum"),
    (lambda: Momentum(momentum="0.9"), TypeError, "momentum"),
    (lambda: Momentum(momentum=True), TypeError, "momentum"),
    (lambda: Momentum(nesterov=1), TypeError, "nesterov must be True or False"),
    (lambda: Adam(beta1=1.0), ValueError, "beta1"),
    (lambda: Adam(beta2=-0.1), ValueError, r"beta2 must be in \[0, 1\)"),
    (lambda: Adam(epsilon=0), ValueError, "epsilon must be a finite number above 0"),
    (lambda: Adam(epsilon=-1e-8), ValueError, "epsilon"),
    (lambda: Adam(epsilon=float("inf")), ValueError, "epsilon"),
    (lambda: Adam(epsilon=float("nan")), ValueError, "epsilon"),
])
def test_bad_settings_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_defaults_and_repr():
    assert repr(Adam()) == "Adam(beta1=0.9, beta2=0.999, epsilon=1e-08)"
    assert repr(Momentum()) == "Momentum(momentum=0.9, nesterov=False)"
    assert repr(Momentum(0.5, nesterov=True)) == "Momentum(momentum=0.5, nesterov=True)"
    assert repr(SGD()) == "SGD()"
    assert repr(Adam(beta1=0, beta2=0.5, epsilon=1)) == "Adam(beta1=0.0, beta2=0.5, epsilon=1.0)"
    assert [type(get_optimizer(n)) for n in ("sgd", "momentum", "adam")] == [SGD, Momentum, Adam]
    adam = Adam()
    assert get_optimizer(adam) is adam
    assert not hasattr(adam, "state") and not hasattr(adam, "steps")  # the state is the network's


# -- Adam and momentum help on a harder problem ------------------------------------------------------

def test_adam_and_momentum_beat_plain_descent_on_xor():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float64)  # XOR of the signs
    final = {}
    for name in ("sgd", "momentum", "adam"):
        net = gdxp.Network([2, 8, 1], activation="tanh", output_activation="sigmoid", seed=3)
        history = net.fit(x, y, epochs=300, learning_rate=0.05, optimizer=name, verbose=0)
        final[name] = history.loss[-1]
        assert history.loss[-1] < history.loss[0]
    assert final["adam"] < 0.1 * final["sgd"], final
    assert final["momentum"] < 0.8 * final["sgd"], final


def test_adamw_saves_and_resumes_exactly_and_refuses_a_bad_decay(tmp_path):
    x, y = make_problem()
    net, unbroken = gdxp.Network([3, 4, 2], seed=5), gdxp.Network([3, 4, 2], seed=5)
    net.fit(x, y, epochs=3, learning_rate=0.05, optimizer=AdamW(weight_decay=0.2), batch_size=4, verbose=0)
    net.save(tmp_path / "net.npz", include_optimizer=True)
    resumed = gdxp.load(tmp_path / "net.npz")
    assert isinstance(resumed.optimizer, AdamW) and resumed.optimizer.weight_decay == 0.2
    resumed.fit(x, y, epochs=2, learning_rate=0.05, optimizer="adamw", batch_size=4, verbose=0)
    unbroken.fit(x, y, epochs=5, learning_rate=0.05, optimizer=AdamW(weight_decay=0.2), batch_size=4, verbose=0)
    assert_same_weights(resumed, unbroken)
    for bad, error in ((-0.1, ValueError), (float("inf"), ValueError), (10**400, ValueError), ("0.1", TypeError)):
        with pytest.raises(error, match="weight_decay must be a"):
            AdamW(weight_decay=bad)


@pytest.mark.parametrize("make", [Adam, lambda: AdamW(weight_decay=0.1)], ids=["adam", "adamw"])
def test_an_update_in_cache_sized_pieces_equals_the_update_whole_bit_for_bit(backend, make):
    # issue 18: on a CPU the backend cuts large arrays into pieces so that the update's temporaries stay in cache
    optimizer, rng = make(), np.random.default_rng(0)
    shapes = [(700, 1000), (1000,)]  # the first is several pieces of a megabyte, the second one piece
    host_weights = [rng.normal(size=shape) for shape in shapes]
    host_grads = [rng.normal(size=shape) for shape in shapes]
    results, held = [], backend.parameters  # where the weights live (Dask: NumPy on the client)
    for pieces in (None, held.pieces):
        weights = [held.asarray(w, copy=True) for w in host_weights]  # the update changes them in place
        grads = [held.asarray(g, copy=True) for g in host_grads]
        with backend.activate():
            state = optimizer.init(held.xp, weights)
            extra = {} if pieces is None else {"pieces": pieces}
            new, state = optimizer.update(held.xp, weights, grads, state, 0.01, 3, **extra)
        results.append([np.asarray(held.to_numpy(a)) for a in (*new, *state[0], *state[1])])
    for whole, pieced in zip(*results, strict=True):
        np.testing.assert_array_equal(pieced, whole)
    if backend.name == "numpy":
        assert len(backend.pieces(*[backend.asarray(w) for w in host_weights[:1]] * 4)) > 1
