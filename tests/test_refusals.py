"""Calls that used to go wrong quietly or with the wrong error (issue 12): each refused clearly, nothing changed."""

import numpy as np
import pytest

import gdxp

# -- item 5: output and loss pairings without an exact gradient, targets outside a loss's range ---------------


@pytest.mark.parametrize("output, loss", [
    ("relu", "binary_cross_entropy"), ("tanh", "binary_cross_entropy"), ("identity", "binary_cross_entropy"),
    ("leaky_relu", "binary_cross_entropy"),
])
def test_binary_cross_entropy_needs_a_probability_output(output, loss):
    with pytest.raises(ValueError, match=r"output_activation='sigmoid'"):
        gdxp.Network([2, 3, 2], activation="relu", output_activation=output, loss=loss)
    with pytest.raises(ValueError, match=r"output_activation='sigmoid'"):
        gdxp.Network([2, 2], activation=output, loss=loss)  # the hidden activation reused as the output


@pytest.mark.parametrize("output", ["relu", "tanh", "identity", "leaky_relu"])
def test_cross_entropy_needs_a_probability_output(output):
    with pytest.raises(ValueError, match=r"output_activation='softmax'"):
        gdxp.Network([2, 3, 3], activation="relu", output_activation=output, loss="cross_entropy")


def test_softmax_over_one_output_is_refused():
    for loss in ("cross_entropy", "squared_error"):
        with pytest.raises(ValueError, match=r"softmax over one output.*output_activation='sigmoid'"):
            gdxp.Network([2, 1], activation="softmax", loss=loss)


def test_cross_entropy_on_a_sigmoid_output_is_refused_naming_the_sigmoids_loss():
    # -sum t log p over sigmoid outputs is least with every output at 1: it would train to nothing useful
    message = (r"loss 'cross_entropy' does not fit a 'sigmoid' output: use loss='binary_cross_entropy', the "
               r"sigmoid's loss, or output_activation='softmax' with 'cross_entropy'")
    with pytest.raises(ValueError, match=message):
        gdxp.Network([2, 3, 2], activation="relu", output_activation="sigmoid", loss="cross_entropy")
    with pytest.raises(ValueError, match=message):
        gdxp.Network([2, 2], loss="cross_entropy")  # sigmoid, the default, reused as the output


def test_probability_outputs_with_their_losses_still_build():
    for output, loss, n_out in (("sigmoid", "binary_cross_entropy", 1), ("softmax", "cross_entropy", 2),
                                ("softmax", "binary_cross_entropy", 3)):
        net = gdxp.Network([2, n_out], activation=output, loss=loss)
        assert (net.activations[-1].name, net.loss.name) == (output, loss)


def _calls(net, x, y):
    return {
        "fit": lambda: net.fit(x, y, epochs=1, learning_rate=0.1, verbose=0),
        "fit validation": lambda: net.fit(x, np.full_like(y, 0.5) if net.loss.name == "binary_cross_entropy"
                                          else np.eye(y.shape[1])[np.zeros(len(y), int)],
                                          epochs=1, learning_rate=0.1, verbose=0, validation_data=(x, y)),
        "evaluate": lambda: net.evaluate(x, y),
        "gradients": lambda: net.gradients(x, y),
        "step": lambda: net.step(x, y, learning_rate=0.1, check_finite=True),  # scans NumPy arrays too
    }


@pytest.mark.parametrize("y, message", [
    (np.array([[5.0], [0.0]]), r"y must hold probabilities in \[0, 1\] for binary_cross_entropy, got 5 at index"),
    (np.array([[0.5], [-0.1]]), r"y must hold probabilities in \[0, 1\] .*got -0.1 at index \(1, 0\)"),
])
def test_binary_cross_entropy_targets_outside_0_1_are_refused(backend, y, message):
    net = gdxp.Network([2, 1], activation="sigmoid", loss="binary_cross_entropy", seed=0, backend=backend)
    _assert_every_call_refuses(net, y, message)


def _assert_every_call_refuses(net, y, message):
    """Every call that takes targets refuses ``y`` with ``message`` (naming y_val for validation data),
    and the weights stay as they were."""
    before = net.get_weights()
    for name, call in _calls(net, np.ones((2, 2)), y).items():
        named = message.replace("y must", "y_val must") if "validation" in name else message
        with pytest.raises(ValueError, match=named):
            call()
        for mine, old in zip(net.get_weights(), before):
            np.testing.assert_array_equal(mine, old, err_msg=name)


@pytest.mark.parametrize("y, message", [
    (np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]),
     r"y must hold rows of probabilities summing to 1 .*row 0 summing to 2"),
    (np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), r"row 0 summing to 0"),
    (np.array([[1.5, -0.5, 0.0], [0.0, 1.0, 0.0]]), r"y must hold rows of probabilities .*got -0.5 at index \(0, 1\)"),
])
def test_cross_entropy_targets_must_be_rows_of_probabilities(backend, y, message):
    net = gdxp.Network([2, 3], activation="softmax", loss="cross_entropy", seed=0, backend=backend)
    _assert_every_call_refuses(net, y, message)


def test_soft_cross_entropy_targets_within_rounding_pass(backend):
    net = gdxp.Network([2, 3], activation="softmax", loss="cross_entropy", seed=0, backend=backend)
    soft = np.random.default_rng(0).dirichlet(np.ones(3), size=4).astype(np.float32)  # sums off by float32 rounding
    assert np.isfinite(net.evaluate(np.ones((4, 2)), soft)["loss"])


def test_device_targets_are_range_checked_only_when_asked(backend):
    net = gdxp.Network([2, 1], activation="sigmoid", loss="binary_cross_entropy", seed=0, backend=backend)
    with backend.activate():
        y = backend.asarray(np.array([[5.0], [0.0]]))
    if gdxp.backend.host_array(y, backend.dtype_name) is not None:
        pytest.skip(f"{backend.name}'s arrays are host data, always checked")
    net.gradients(np.ones((2, 2)), y)  # no wait for the device by default
    with pytest.raises(ValueError, match=r"y must hold probabilities in \[0, 1\]"):
        net.step(np.ones((2, 2)), y, learning_rate=0.1, check_finite=True)


def test_class_labels_for_a_softmax_output_are_their_one_hot_rows_and_other_shapes_get_the_hint(backend):
    # issue 13: whole-number labels of shape (n,) from the host train as np.eye(k)[labels] would
    x, labels = np.random.default_rng(0).normal(size=(6, 2)), np.array([0, 2, 1, 1, 0, 2])
    net = gdxp.Network([2, 3], activation="softmax", loss="cross_entropy", seed=0, backend=backend)
    twin = net.copy()
    history = net.fit(x, labels, epochs=3, learning_rate=0.1, verbose=0)
    expected = twin.fit(x, np.eye(3)[labels], epochs=3, learning_rate=0.1, verbose=0)
    assert history.loss == expected.loss and net.evaluate(x, labels) == twin.evaluate(x, np.eye(3)[labels])
    with pytest.raises(ValueError, match=r"y holds class labels, which must be whole numbers in 0\.\.2 .*got 3"):
        net.fit(x, np.array([0, 2, 1, 3, 0, 2]), epochs=1, learning_rate=0.1, verbose=0)
    with pytest.raises(ValueError, match=r"class labels, give them as whole numbers .* np\.eye\(3\)\[labels\]"):
        net.fit(x, labels.astype(float), epochs=1, learning_rate=0.1, verbose=0)


# -- item 7: the wrong exception types -------------------------------------------------------------------------


def test_huge_whole_numbers_are_value_errors_not_overflow():
    net = gdxp.Network([2, 1], seed=0)
    before = net.get_weights()
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number above 0, got 1000.*characters"):
        net.fit(np.ones((2, 2)), np.zeros(2), epochs=1, learning_rate=10**400, verbose=0)
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number above 0"):
        net.step(np.ones((2, 2)), np.zeros(2), learning_rate=10**400)
    with pytest.raises(ValueError, match=r"epsilon must be a finite number above 0"):
        gdxp.optimizers.Adam(epsilon=10**400)
    np.testing.assert_array_equal(net.get_weights()[0], before[0])


def test_dtype_that_numpy_cannot_parse_is_a_value_error():
    with pytest.raises(ValueError, match=r"dtype must be one of float32, float64, got 'f8,,'"):
        gdxp.Network([2, 1], dtype="f8,,")


def test_check_gradients_refuses_a_zero_step_and_a_non_network():
    net = gdxp.Network([2, 1], seed=0)
    for epsilon, error in ((0, ValueError), (-1e-5, ValueError), (float("nan"), ValueError), ("1e-5", TypeError)):
        with pytest.raises(error, match="epsilon must be"):
            gdxp.check_gradients(net, np.ones((2, 2)), np.zeros(2), epsilon=epsilon)
    with pytest.raises(TypeError, match="check_gradients checks a gdxp.Network, got NoneType"):
        gdxp.check_gradients(None, np.ones((2, 2)), np.zeros(2))


@pytest.mark.parametrize("flag", ["return_loss", "check_finite"])
@pytest.mark.parametrize("value", ["no", "yes", 0, 1, None])
def test_step_flags_are_true_or_false(flag, value):
    net = gdxp.Network([2, 1], seed=0)
    before = net.get_weights()
    with pytest.raises(TypeError, match=f"{flag} must be True or False, got {value!r}"):
        net.step(np.ones((2, 2)), np.zeros(2), learning_rate=0.1, **{flag: value})
    np.testing.assert_array_equal(net.get_weights()[0], before[0])


# -- item 9: messages that named the wrong thing ---------------------------------------------------------------


@pytest.mark.parametrize("x_val, y_val, message", [
    (np.ones((4, 5)), np.zeros((4, 1)), r"x_val must have 3 features per sample .the network's inputs., got 5"),
    (np.ones((4, 3)), np.zeros((5, 1)), r"y_val must have one row per sample of x_val \(4\), got 5"),
    (np.ones((4, 3)), np.full((4, 1), np.nan), r"y_val must hold finite numbers"),
    (np.ones((0, 3)), np.zeros((0, 1)), r"x_val holds no samples"),
])
def test_bad_validation_data_is_named_as_such(x_val, y_val, message):
    net = gdxp.Network([3, 1], seed=0)
    before = net.get_weights()
    with pytest.raises(ValueError, match=message):
        net.fit(np.ones((4, 3)), np.zeros(4), epochs=1, learning_rate=0.1, verbose=0, validation_data=(x_val, y_val))
    np.testing.assert_array_equal(net.get_weights()[0], before[0])


def test_a_backend_in_a_list_is_a_type_error():
    with pytest.raises(TypeError, match="backend must be a name like 'numpy' or a Backend, got list"):
        gdxp.Network([2, 1], backend=["numpy"])


@pytest.mark.parametrize("activation", [b"relu", bytearray(b"relu")])
def test_an_activation_in_bytes_is_a_type_error_saying_it_is_a_name(activation):
    for sizes in ([2, 1], [2, 3, 1], [2, 3, 3, 1]):
        with pytest.raises(TypeError, match=r"an activation is a name like 'sigmoid' \(a str\), got byte"):
            gdxp.Network(sizes, activation=activation)
    with pytest.raises(TypeError, match=r"an activation is a name like 'sigmoid', got bytes"):
        gdxp.Network([2, 3, 1], activation="relu", output_activation=b"sigmoid")


# -- item 8: a size guard before anything is allocated ---------------------------------------------------------


@pytest.mark.parametrize("sizes", [[10**9, 10**9], [10**6, 10**6, 1], [2, 10**12]])
def test_weights_that_cannot_fit_in_memory_are_refused_before_allocating(sizes):
    with pytest.raises(ValueError, match=r"sizes \[.*\] make [\d,]+ weights, which need [\d,.]+ GB to draw in "
                                         r"float64, more than the [\d,.]+ GB of memory available"):
        gdxp.Network(sizes, bias=False)


def test_the_size_guard_counts_every_weight(monkeypatch):
    monkeypatch.setattr(gdxp.memory, "SMALL", 0)  # checked however small
    monkeypatch.setattr(gdxp.memory, "available", lambda: 8 * (16 + 2 * 12))
    gdxp.Network([3, 4, 1], bias=False)  # 16 weights and twice the largest layer's 12: 320 bytes fit
    with pytest.raises(ValueError, match=r"make 21 weights, which need 0.0 GB"):
        gdxp.Network([3, 4, 1])  # and 5 biases: 360 bytes do not
