"""net.trace: every named step of one backprop pass, consistent with the engine's own numbers."""

import numpy as np
import pytest
from helpers import tolerance

import gdxp


def test_trace_names_every_chain_rule_factor():
    net = gdxp.Network([3, 5, 1], bias=False, init="uniform", seed=0)
    trace = net.trace([0.1, 0.4, 4.1], [0.2])
    assert trace.names() == [
        "x", "sop1", "activ1", "sop2", "activ2", "prediction", "target", "error",
        "error->prediction", "prediction->sop2", "error->sop2", "sop2->W2", "grad_W2",
        "sop2->activ1", "error->activ1", "activ1->sop1", "error->sop1", "sop1->W1", "grad_W1",
    ]
    assert [s.phase for s in trace].count("forward") == 8
    text = str(trace)
    assert text.startswith("One forward and backward pass of Network([3, 5, 1]")
    assert "  backward pass\n    error->prediction" in text and "d squared_error / d prediction" in text


def test_trace_values_are_the_engine_values(backend):
    net = gdxp.Network([4, 3, 2, 1], activation="sigmoid", output_activation="identity", init="normal",
                       bias=True, seed=1, backend=backend)
    x, y = np.array([0.5, -0.2, 0.1, 0.3]), np.array([0.4])
    trace = net.trace(x, y)
    grads = [backend.to_numpy(g) for g in net.gradients(x, y)]
    for name, grad in zip(["grad_W1", "grad_b1", "grad_W2", "grad_b2", "grad_W3", "grad_b3"], grads):
        np.testing.assert_allclose(trace[name].value, grad, **tolerance(backend))
    np.testing.assert_allclose(trace["prediction"].value[0], backend.to_numpy(net.predict(x)), **tolerance(backend))
    prediction = trace["prediction"].value
    np.testing.assert_allclose(trace["error"].value, np.sum((prediction - 0.4) ** 2), **tolerance(backend))
    # the chain rule, factor by factor
    np.testing.assert_allclose(trace["error->prediction"].value, 2 * (prediction - 0.4), **tolerance(backend))
    activ1 = trace["activ1"].value
    np.testing.assert_allclose(trace["activ1->sop1"].value, activ1 * (1 - activ1), **tolerance(backend))
    np.testing.assert_allclose(trace["error->sop1"].value, trace["error->activ1"].value * activ1 * (1 - activ1),
                               **tolerance(backend))
    assert trace["grad_W1"].shape == (4, 3) and trace["sop1"].shape == (1, 3)


def test_fused_output_is_traced_as_one_factor():
    net = gdxp.Network([2, 3], activation="softmax", loss="cross_entropy", seed=0)
    trace = net.trace([1.0, 2.0], [0.0, 1.0, 0.0])
    step = trace["error->sop1"]
    assert "softmax and cross_entropy cancel" in step.meaning
    np.testing.assert_allclose(step.value, trace["prediction"].value - [0.0, 1.0, 0.0], rtol=1e-12)
    assert "error->prediction" not in trace.names()


def test_trace_takes_one_sample_and_changes_nothing():
    net = gdxp.Network([2, 1], seed=0)
    before = net.get_weights()
    with pytest.raises(ValueError, match="trace follows one sample, got 2"):
        net.trace(np.ones((2, 2)), np.ones(2))
    net.trace(np.ones((1, 2)), np.ones((1, 1)))
    with pytest.raises(KeyError, match="no step named 'grad_W9'"):
        net.trace([1.0, 1.0], [1.0])["grad_W9"]
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
