"""What each array library does its own way: device names, dtypes, data from other libraries, transfers.

The math itself is tested on every library through the ``backend`` fixture; these tests cover the
corners of :mod:`gdxp.backend` that differ between torch, JAX and the rest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import host, running_on

import gdxp

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")


def _inputs_of_every_library():
    """The same 2 x 3 batch as each library's array, on its default device."""
    values = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    import array_api_strict

    yield pytest.param(values.tolist(), id="list")
    yield pytest.param(values, id="numpy")
    yield pytest.param(torch.asarray(values), id="torch")
    yield pytest.param(torch.asarray(values).requires_grad_(True), id="torch-requires-grad")
    yield pytest.param(jax.device_put(values.astype(np.float32), jax.devices("cpu")[0]), id="jax-cpu0")
    yield pytest.param(array_api_strict.asarray(values, device=array_api_strict.Device("device1")), id="strict-device1")


@pytest.mark.parametrize("data", list(_inputs_of_every_library()))
def test_every_call_takes_data_from_any_library_and_answers_on_the_network_device(backend, data):
    net = gdxp.Network([3, 2], activation="sigmoid", seed=0, backend=backend)
    reference = gdxp.Network([3, 2], activation="sigmoid", seed=0, dtype=backend.dtype_name)
    values = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=backend.dtype_name)
    prediction = net.predict(data)
    assert prediction.dtype == backend.dtype
    tol = {"rtol": 1e-6} if backend.dtype_name == "float32" or "jax" in repr(type(data)) else {"rtol": 1e-15}
    np.testing.assert_allclose(host(backend, prediction), reference.predict(values), **tol)
    grads = net.gradients(data, prediction)
    assert all(g.dtype == backend.dtype for g in grads)
    host(backend, grads[0])  # on the network's device


def test_torch_devices_and_default_dtype():
    net = gdxp.Network([2, 1], backend="torch")
    assert net.backend.device == torch.device("cpu") and net.backend.dtype_name == "float32"  # torch's own default
    assert gdxp.get_backend("torch", device=torch.device("cpu")).device_name == "cpu"
    with pytest.raises(ValueError, match=r"torch cannot use device 'cuda:7' here .*its devices here are cpu"):
        gdxp.get_backend("torch", device="cuda:7")
    with pytest.raises(ValueError, match="torch cannot use device 'abacus'"):
        gdxp.get_backend("torch", device="abacus")


def test_jax_devices_by_platform_and_index():
    second = jax.devices("cpu")[1]
    for spelling in ("cpu:1", second):
        chosen = gdxp.get_backend("jax", device=spelling, dtype="float32")
        assert chosen.device == second and chosen.device_name == "cpu:1"
    assert gdxp.get_backend("jax", device="cpu").device_name == "cpu:0"
    here = gdxp.backend_status("jax").devices  # "gpu:0, ..." first on a GPU machine, then "cpu:0, cpu:1"
    assert here[-2:] == ("cpu:0", "cpu:1")
    with pytest.raises(ValueError, match=rf"like 'cpu:0'.*got 'cpu:9', and the devices here are {', '.join(here)}$"):
        gdxp.get_backend("jax", device="cpu:9")
    if "gpu:0" in here:
        assert gdxp.get_backend("jax", device="gpu:0", dtype="float32").device_name == "gpu:0"
    else:
        with pytest.raises(ValueError, match="got 'gpu:0'"):  # no GPU platform here
            gdxp.get_backend("jax", device="gpu:0")


def test_jax_math_runs_in_full_float32_precision_unless_the_caller_chose_one():
    """On recent GPUs JAX multiplies float32 in TF32 by default (a relative error near 1e-3): gdxp asks for
    full precision where its math runs eagerly and where it compiles, and leaves a caller's own choice be."""
    backend = gdxp.get_backend("jax", device="cpu:1", dtype="float32")
    x = backend.asarray(np.ones((2, 2)))
    seen = []

    def product(a):
        seen.append(jax.config.jax_default_matmul_precision)  # read while JAX traces
        return a @ a

    program, _ = backend.compiler.compile(product, x)
    assert seen == ["highest"] and "operand_precision={highest,highest}" in program.as_text()
    assert jax.config.jax_default_matmul_precision is None  # nothing global changed
    with backend.activate():
        assert jax.config.jax_default_matmul_precision == "highest"
    with jax.default_matmul_precision("bfloat16"):
        with backend.activate():
            assert jax.config.jax_default_matmul_precision == "bfloat16"
        backend.compiler.compile(product, x)
        assert seen[-1] == "bfloat16"


def test_jax_training_compiles_its_runs_in_full_precision(monkeypatch):
    import gdxp.backend.jax as jax_backend

    programs = []
    compile_in_place = jax_backend.JaxCompiler.compile

    def recorded(compiler, function, *args):
        program, seconds = compile_in_place(compiler, function, *args)
        programs.append(program.as_text())
        return program, seconds

    monkeypatch.setattr(jax_backend.JaxCompiler, "compile", recorded)
    net = gdxp.Network([3, 4, 2], seed=0, backend="jax", device="cpu:1", dtype="float32")
    net.fit(np.ones((6, 3)), np.full((6, 2), 0.5), epochs=2, learning_rate=0.1, batch_size=3, verbose=0)
    assert programs and all("operand_precision={highest,highest}" in text for text in programs)
    assert not any("operand_precision={default" in text for text in programs)


def test_jax_synchronize_waits_for_the_arrays_it_is_given_or_every_array_on_its_device(monkeypatch):
    backend = gdxp.get_backend("jax", device="cpu:1", dtype="float32")
    mine, elsewhere = backend.asarray(np.ones(3)), jax.device_put(np.ones(2), jax.devices("cpu")[0])
    waited = []
    monkeypatch.setattr(jax, "block_until_ready", lambda arrays: waited.append(list(arrays)) or arrays)
    backend.synchronize(mine)
    assert waited.pop() == [mine]
    backend.synchronize()
    on_device = waited.pop()
    assert any(a is mine for a in on_device) and not any(a is elsewhere for a in on_device)


def test_jax_float64_needs_its_64_bit_mode_and_gdxp_never_switches_it_on():
    with jax.enable_x64(False):
        assert gdxp.get_backend("jax").dtype_name == "float32"  # JAX's own default outside 64-bit mode
        with pytest.raises(ValueError, match=r"jax.config.update\('jax_enable_x64', True\)"):
            gdxp.Network([2, 1], backend="jax", dtype="float64")
        assert not jax.config.jax_enable_x64
    with jax.enable_x64(True):
        assert gdxp.get_backend("jax").dtype_name == "float64"


TRAIN_UNDER_THE_LOG_GUARD = """
import os, sys
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import gdxp

x, y = np.random.default_rng(0).normal(size=(12, 3)), np.random.default_rng(1).random((12, 2))
net = gdxp.Network([3, 4, 2], seed=0, backend="jax", device="cpu:1")
inputs, targets = net.backend.asarray(x), net.backend.asarray(y)
with jax.transfer_guard_device_to_device("disallow"), jax.transfer_guard_host_to_device("log"):
    net.fit(inputs, targets, epochs=3, batch_size=5, optimizer="adam", validation_data=(inputs, targets),
            learning_rate=0.1, verbose=0)
    sys.stderr.flush()
    os.write(2, b"CONTROL\\n")
    inputs + np.ones(inputs.shape)  # an array from the host, as a bug in the loop would pass one
"""


@pytest.mark.slow
def test_jax_training_moves_no_array_between_devices_and_none_from_the_host_inside_the_loop():
    """The data goes to the device once, at the top; inside the loop no array comes from the host (a
    compiled fit holds its Python scalars as constants of the program; eager code would copy them, 0-d).

    JAX logs the shape of what it copies the first time an operation runs in a process (later runs take
    a fast path that logs no shape), so this runs in a fresh process, where every first call shows."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", TRAIN_UNDER_THE_LOG_GUARD], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    training, control = result.stderr.split("CONTROL")
    shapes = re.findall(r"host-to-device transfer: aval=ShapedArray\((\w+\[[\d,]*\])", training)
    assert all(shape.endswith("[]") for shape in shapes), shapes  # 0-d at most: Python scalars, never data
    assert "ShapedArray(float64[12,3])" in control  # the log shows an array when one is copied


@pytest.mark.parametrize("source", ["torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_a_network_trained_on_torch_or_jax_loads_on_numpy_and_back_with_identical_weights(source, tmp_path):
    x, y = np.random.default_rng(0).normal(size=(8, 3)), np.random.default_rng(1).random((8, 2))
    with running_on(source, "float64"):
        trained = gdxp.Network([3, 4, 2], seed=2, backend=source, dtype="float64")
        trained.fit(x, y, epochs=5, learning_rate=0.3, batch_size=3, optimizer="adam", verbose=0)
        trained.save(tmp_path / "net.npz", include_optimizer=True)
        on_numpy = gdxp.load(tmp_path / "net.npz")
        assert on_numpy.backend.name == "numpy"
        for mine, theirs in zip(on_numpy.get_weights(), trained.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)
        on_numpy.save(tmp_path / "back.npz", include_optimizer=True)
        back = gdxp.load(tmp_path / "back.npz", backend=source)
        assert back.backend.name == source
        for mine, theirs in zip(back.get_weights(), trained.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)
        # and both go on training identically
        for net in (trained, back):
            net.fit(x, y, epochs=2, learning_rate=0.3, optimizer="adam", verbose=0)
        for mine, theirs in zip(back.get_weights(), trained.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_a_masked_array_is_refused_and_a_matrix_is_read_as_a_plain_array():
    net = gdxp.Network([3, 1], seed=0)
    masked = np.ma.masked_invalid(np.array([[0.1, np.nan, 0.3]]))
    with pytest.raises(TypeError, match=r"masked arrays are not accepted.*filled"):
        net.predict(masked)
    matrix = np.matrix([[0.1, 0.2, 0.3]])
    net.step(matrix, np.matrix([[0.5]]), learning_rate=0.1)
    assert all(type(w) is np.ndarray for w in net.get_weights())
    assert type(net.predict(matrix)) is np.ndarray


def test_a_finite_value_beyond_float32_is_called_an_overflow():
    net = gdxp.Network([2, 1], dtype="float32")
    with pytest.raises(ValueError, match=r"x holds 1e\+39 at index \(0, 1\), which overflows float32"):
        net.predict([[0.5, 1e39]])
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        net.predict([[0.5, np.inf]])
