"""The second round of hardening (issue 19): memory guards against what a run needs, bounded compiled runs,
exact step counts, non-finite optimizer state as divergence, copies of the caller's arrays, the exceptions
and messages of odd inputs, and one fit at a time on a network. (Hostile files: ``test_serialization.py``;
the command line: ``test_cli.py``.)"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import adam_tolerance, running_on

import gdxp

X = np.random.default_rng(0).normal(size=(8, 3))
Y = 1.0 / (1.0 + np.exp(-X[:, :1]))


def _snapshot(net: gdxp.Network) -> dict:
    """Everything a refused call must leave as it was."""
    return {"weights": net.get_weights(), "optimizer": net.optimizer,
            "state": [[np.array(net.backend.to_numpy(a)) for a in slot] for slot in net.state.optimizer_state],
            "steps": net.state.steps, "epoch": net.state.epoch,
            "shuffle": copy.deepcopy(net.shuffle_rng.bit_generator.state)}


def _assert_unchanged(net: gdxp.Network, before: dict) -> None:
    after = _snapshot(net)
    assert (after["optimizer"], after["steps"], after["epoch"], after["shuffle"]) == \
        (before["optimizer"], before["steps"], before["epoch"], before["shuffle"])
    for mine, old in zip([*after["weights"], *sum(after["state"], [])], [*before["weights"], *sum(before["state"], [])],
                         strict=True):
        np.testing.assert_array_equal(mine, old)


# -- item 7: the memory guard counts what training needs against the memory available -----------------------


def test_weights_are_counted_with_their_draws_against_available_memory(monkeypatch):
    monkeypatch.setattr(gdxp.memory, "available", lambda: 23 * 10**9)  # the 23 GB machine
    with pytest.raises(ValueError, match=r"^sizes \[3, 500000000, 1\] make 2,500,000,001 weights, which need 44.0 GB "
                                         r"to draw in float64, more than the 23.0 GB of memory available"):
        gdxp.Network([3, 5 * 10**8, 1])  # 20 GB of weights, and 24 GB of temporaries drawing the first layer


def test_fit_refuses_a_run_that_would_not_fit_before_changing_anything(monkeypatch):
    net = gdxp.Network([3, 1000, 1], seed=0)  # 5,001 weights
    net.fit(X, Y, epochs=1, learning_rate=0.1, optimizer="sgd", verbose=0)
    before = _snapshot(net)
    # Adam in place: gradients, two moments, the three copies of weights and moments a divergence falls back on
    needed = 8 * ((1 + 2 + 3 * 3) * 5001 + 3 * 8 * 1004)
    monkeypatch.setattr(gdxp.memory, "SMALL", 0)  # checked however small
    monkeypatch.setattr(gdxp.memory, "available", lambda: needed - 1)
    with pytest.raises(ValueError, match=r"^training sizes \[3, 1000, 1\] with adam in batches of 8 samples "
                                         r"\(batch_size\) needs 0.0 GB of memory, more than the 0.0 GB available"):
        net.fit(X, Y, epochs=1, learning_rate=0.1, optimizer="adam", verbose=0)
    _assert_unchanged(net, before)
    monkeypatch.setattr(gdxp.memory, "available", lambda: needed)
    net.fit(X, Y, epochs=1, learning_rate=0.1, optimizer="adam", verbose=0)
    assert net.state.steps == 1


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux says what is available in /proc/meminfo")
def test_available_memory_is_what_linux_says_is_available_not_all_there_is():
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total, reported = (int(meminfo[key].split()[0]) * 1024 for key in ("MemTotal", "MemAvailable"))
    assert 0 < gdxp.memory.available() <= 1.1 * reported < 1.1 * total  # it changes between reads


# -- item 5: the network keeps copies, never the caller's arrays -------------------------------------------


def _source(library: str, values: np.ndarray):
    if library == "numpy":
        return values.copy()
    torch = pytest.importorskip("torch")
    return torch.tensor(values)  # 64-byte aligned: what a library may share rather than copy


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["numpy", "torch", "jax", "array_api_strict"])
def test_the_callers_arrays_are_copied_and_its_later_writes_change_nothing(name, library):
    pytest.importorskip({"array_api_strict": "array_api_strict"}.get(name, name))
    shapes = gdxp.Network([3, 64, 2]).weight_shapes()
    values = [np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 100 for shape in shapes]
    given = [_source(library, v) for v in values]
    net = gdxp.Network([3, 64, 2], backend=name, weights=given)
    asked = net.backend.asarray(given[0], copy=True)
    for array in given:
        array[...] = 7.0  # the caller goes on to use its arrays
    np.testing.assert_array_equal(net.backend.to_numpy(asked), values[0])
    for mine, expected in zip(net.get_weights(), values, strict=True):
        np.testing.assert_array_equal(mine, expected)
    given = [_source(library, v) for v in values]
    net.set_weights(given)
    for array in given:
        array[...] = 9.0
    for mine, expected in zip(net.get_weights(), values, strict=True):
        np.testing.assert_array_equal(mine, expected)


# -- item 9: the right exception, naming what was wrong -----------------------------------------------------


@pytest.mark.parametrize("kind", ["bfloat16", "sparse"])
def test_a_torch_tensor_numpy_cannot_read_is_a_type_error_naming_the_argument(kind):
    torch = pytest.importorskip("torch")
    tensor = torch.ones(8, 3, dtype=torch.bfloat16) if kind == "bfloat16" else torch.ones(8, 3).to_sparse()
    net = gdxp.Network([3, 2, 1], seed=0)
    net.fit(X, Y, epochs=1, learning_rate=0.1, optimizer="adam", verbose=0)
    before = _snapshot(net)
    with pytest.raises(TypeError, match=r"^x: expected a dense array of real numbers NumPy can read, got Tensor"):
        net.fit(tensor, Y, epochs=1, learning_rate=0.1, optimizer="adam", verbose=0)
    with pytest.raises(TypeError, match=r"^weight array 0: expected a dense array of real numbers"):
        net.set_weights([tensor[:3, :2] if kind == "bfloat16" else torch.ones(3, 2).to_sparse(),
                         *net.get_weights()[1:]])
    _assert_unchanged(net, before)


@pytest.mark.parametrize("y", [["a", "b", "c", "a", "b", "c", "a", "b"], [[0], [1, 1], [0], [1], [0], [1], [0], [1]]],
                         ids=["text", "ragged"])
def test_a_softmax_networks_bad_labels_are_named_y(y):
    net = gdxp.Network([3, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    before = _snapshot(net)
    with pytest.raises((TypeError, ValueError), match=r"^y: expected "):
        net.fit(X, y, epochs=1, learning_rate=0.1, verbose=0)
    _assert_unchanged(net, before)


@pytest.mark.parametrize("argument", ["x", "y"])
def test_dask_data_of_unknown_chunk_sizes_is_refused_by_name(argument):
    da = pytest.importorskip("dask.array")
    unknown = da.from_array(X, chunks=4)
    unknown = unknown[unknown[:, 0] < np.inf]  # all 8 rows, in chunks of sizes Dask does not know
    data = {"x": X, "y": Y[:, 0]}
    data[argument] = unknown if argument == "x" else unknown[:, 0]
    net = gdxp.Network([3, 2, 1], backend="dask", seed=0)
    before = _snapshot(net)
    with pytest.raises(ValueError, match=rf"^{argument} has a shape of unknown size \((nan, 3|nan,)\); where it is "
                                         rf"a Dask array, compute its chunk sizes first \({argument}.compute_chunk"):
        net.fit(data["x"], data["y"], epochs=1, learning_rate=0.1, verbose=0)
    _assert_unchanged(net, before)


@pytest.mark.parametrize("device", [5, "torch"], ids=["int", "torch.device"])
def test_jax_refuses_a_device_it_cannot_name_rather_than_picking_its_first(device):
    pytest.importorskip("jax")
    if device == "torch":
        device = pytest.importorskip("torch").device("cpu")
    with pytest.raises(ValueError, match=r"^a jax device is a jax.Device or 'platform:index' like 'cpu:0' or 'gpu:0'; "
                                         rf"got {re.escape(repr(device))}"):
        gdxp.get_backend("jax", device=device)


def test_a_save_error_names_the_path_once_and_a_nul_byte_is_refused_by_name(tmp_path):
    net = gdxp.Network([3, 2, 1], seed=0)
    missing = tmp_path / "no-such-folder" / "model.npz"
    with pytest.raises(FileNotFoundError) as excinfo:
        net.save(missing)
    assert str(excinfo.value) == f"[Errno 2] No such file or directory: '{missing}'"  # not "... -> None"
    with pytest.raises(ValueError, match=r"^path must not hold a NUL character, got '.*a\\x00b.npz'$"):
        net.save(str(tmp_path / "a\0b.npz"))
    assert list(tmp_path.iterdir()) == []


# -- item 10: one fit or step at a time on a network ----------------------------------------------------------


def test_a_second_fit_or_step_while_one_runs_is_refused_naming_the_network():
    net = gdxp.Network([3, 2, 1], seed=0)
    inside, release = threading.Event(), threading.Event()

    def hold(epoch, history):
        inside.set()
        release.wait(30)

    first = threading.Thread(target=net.fit, args=(X, Y), kwargs={
        "epochs": 2, "learning_rate": 0.1, "optimizer": "adam", "verbose": 0, "callbacks": [hold]})
    first.start()
    try:
        assert inside.wait(30)
        before = _snapshot(net)  # after the first epoch, which the callback is looking at
        busy = rf"^{re.escape(repr(net))} is already training \(a fit or step in another thread"
        with pytest.raises(RuntimeError, match=busy):
            net.fit(X, Y, epochs=1, learning_rate=0.1, optimizer="adam", verbose=0)
        with pytest.raises(RuntimeError, match=busy):
            net.step(X, Y, learning_rate=0.1)
        _assert_unchanged(net, before)
    finally:
        release.set()
        first.join(30)
    assert net.state.epoch == 2  # the first run went on to its end, unchanged by the refused ones
    net.step(X, Y, learning_rate=0.1)  # and the network is free again
    with pytest.raises(RuntimeError, match="already training"):  # a callback's own fit, inside a fit
        net.fit(X, Y, epochs=1, learning_rate=0.1, verbose=0, callbacks=[lambda epoch, history: net.step(
            X, Y, learning_rate=0.1)])
    net.fit(X, Y, epochs=1, learning_rate=0.1, verbose=0)


# -- item 3: step counts past 2**31 on compiled JAX ------------------------------------------------------------


@pytest.mark.slow  # JAX compiles
@pytest.mark.parametrize("start", [2**31 - 5, 2**40], ids=["across-2**31", "2**40"])
def test_a_step_count_past_int32_trains_on_jax_as_on_numpy_through_a_file(tmp_path, start):
    pytest.importorskip("jax")
    numpy_net = gdxp.Network([3, 4, 1], seed=0, dtype="float32")
    numpy_net.fit(X, Y, epochs=1, learning_rate=0.01, optimizer="adam", verbose=0)
    numpy_net.state = numpy_net.state._replace(steps=start)  # 2**31 steps: ~12 minutes of per-sample training
    numpy_net.save(tmp_path / "long.npz", include_optimizer=True)
    jax_net = gdxp.load(tmp_path / "long.npz", backend="jax")  # float32, JAX's 32-bit integers
    assert jax_net.state.steps == start
    for net in (numpy_net, jax_net):
        net.fit(X, Y, epochs=3, learning_rate=0.01, optimizer="adam", batch_size=2, verbose=0)
    assert jax_net.state.steps == numpy_net.state.steps == start + 12
    # Adam's bias corrections there are 1: truncated to int32 the count wraps around and they are not
    for a, b in zip(jax_net.get_weights(), numpy_net.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- item 2: a compiled run's memory does not grow with its length ---------------------------------------------

COMPILED_RUN_MEMORY = """
import resource
import numpy as np
import gdxp
rng = np.random.default_rng(0)
net = gdxp.Network([2, 5, 1], seed=0, backend="jax")
net.fit(rng.normal(size=(10, 2)), rng.random((10, 1)), epochs=2, learning_rate=0.1, verbose=0)  # JAX's first buffers
for rows, settings in ((1_000, {"record_predictions": True}), (20_000, {"batch_size": 1000})):
    x, y = rng.normal(size=(rows, 2)).astype(np.float32), rng.random((rows, 1)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # a million epochs asked for; patience stops them at the second, after the first run of epochs
    net.fit(x, y, epochs=10**6, learning_rate=1e-30, validation_data=(x[:10], y[:10]), patience=1, verbose=0,
            **settings)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


@pytest.mark.slow  # a subprocess that imports JAX and compiles twice: seconds
def test_a_compiled_run_holds_a_bounded_amount_of_orders_and_predictions():
    pytest.importorskip("jax")
    result = subprocess.run([sys.executable, "-c", COMPILED_RUN_MEMORY], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    recorded, shuffled = (int(line) for line in result.stdout.split())
    # CHUNK_BYTES on the host and on the device, and as much for a run's other temporaries; before, a run of
    # 2**14 epochs recorded 1,000 predictions each (271 MB more) and one of 2**11 epochs drew 20,000-row
    # orders for each (507 MB more)
    bound = 4 * gdxp.compiled.CHUNK_BYTES + 32 * 2**20
    assert recorded < bound and shuffled < bound, (recorded, shuffled)


# -- item 4: an optimizer state that is not finite is divergence, and never saved --------------------------------


def _overflowing_adam(name: str) -> tuple[gdxp.Network, np.ndarray, np.ndarray]:
    """A float32 network whose first weights meet an input of 1e22 at zero: the sums stay finite, and so does
    the loss, but the gradient there is ~1e21, whose square overflows Adam's second moment to inf."""
    x = np.array([[1e22, 1.0, 1.0], [1e22, -1.0, 0.5]], dtype=np.float32)
    weights = gdxp.Network([3, 2, 1], seed=0).get_weights()
    weights[0][0, :] = 0.0
    return gdxp.Network([3, 2, 1], activation="tanh", output_activation="sigmoid", dtype="float32", weights=weights,
                        backend=name), x, np.array([[0.2], [0.7]])


@pytest.mark.parametrize("name", ["numpy", pytest.param("jax", marks=pytest.mark.slow)])
def test_adams_second_moment_overflowing_is_divergence_and_what_is_restored_saves_and_loads(name, tmp_path):
    pytest.importorskip(name)
    net, x, y = _overflowing_adam(name)
    start = net.get_weights()
    with pytest.raises(gdxp.TrainingDiverged, match=r"the loss, the weights or the optimizer's state are not finite"):
        net.fit(x, y, epochs=3, learning_rate=0.01, optimizer="adam", verbose=0)
    for slot in net.state.optimizer_state:
        assert all(np.isfinite(net.backend.to_numpy(a)).all() for a in slot)
    for mine, first in zip(net.get_weights(), start, strict=True):  # every epoch's state overflowed: the start
        np.testing.assert_array_equal(mine, first)
    net.save(tmp_path / "restored.npz", include_optimizer=True)
    assert gdxp.load(tmp_path / "restored.npz").state.steps == net.state.steps


def test_save_refuses_what_load_would_refuse_before_writing(tmp_path):
    net, x, y = _overflowing_adam("numpy")
    net.fit(x, y, epochs=1, learning_rate=0.01, optimizer="sgd", verbose=0)  # a file with an optimizer
    net.save(tmp_path / "model.npz", include_optimizer=True)
    kept = (tmp_path / "model.npz").read_bytes()
    moments = [[np.full_like(w, np.inf) for w in net.get_weights()]] * 2
    net.optimizer, net.state = gdxp.optimizers.Adam(), net.state._replace(optimizer_state=moments, steps=1)
    with pytest.raises(ValueError, match=r"^cannot save: the network's optimizer's state hold numbers that are not "
                                         r"finite \(optimizer_state_0_0, .*\), which gdxp.load refuses$"):
        net.save(tmp_path / "model.npz", include_optimizer=True)
    net.state = net.state._replace(weights=[np.full_like(w, np.nan) for w in net.get_weights()])
    with pytest.raises(ValueError, match=r"^cannot save: the network's weights hold numbers that are not finite"):
        net.save(tmp_path / "model.npz")
    assert (tmp_path / "model.npz").read_bytes() == kept and len(list(tmp_path.iterdir())) == 1


# -- item 12: float64 on another backend equals NumPy as the README says, Adam's way included --------------------


@pytest.mark.slow  # 2 random networks x 4 optimizers x 2 backends, JAX compiling each
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_float64_runs_on_another_backend_agree_with_numpy_as_promised(name):
    pytest.importorskip(name)
    with running_on(name, "float64"):
        for seed in range(2):
            rng = np.random.default_rng(seed)
            sizes = [int(rng.integers(1, 6)), int(rng.integers(1, 8)), int(rng.integers(1, 4))]
            x, y = rng.normal(size=(10, sizes[0])), rng.random((10, sizes[-1]))
            for optimizer in ("sgd", "momentum", "adam", "adamw"):
                settings = {"epochs": 20, "learning_rate": 0.05, "batch_size": [1, 3, None][seed % 3],
                            "optimizer": optimizer, "verbose": 0}
                nets = [gdxp.Network(sizes, activation="tanh", output_activation="sigmoid", seed=seed, backend=backend,
                                     dtype="float64") for backend in ("numpy", name)]
                histories = [net.fit(x, y, **settings) for net in nets]
                # SGD and momentum to 1e-12; Adam and AdamW to 1e-12 relative and 1e-6 of the rate a step
                promised = (adam_tolerance(nets[0].state.steps, 0.05) if optimizer.startswith("adam")
                            else {"rtol": 1e-12, "atol": 1e-12})
                np.testing.assert_allclose(histories[1].loss, histories[0].loss, **promised)
                for mine, theirs in zip(nets[1].get_weights(), nets[0].get_weights(), strict=True):
                    np.testing.assert_allclose(mine, theirs, **promised)
