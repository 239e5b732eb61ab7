"""Saving and loading: round trips across backends, the optimizer's state, plain arrays only, atomic
writes, clear errors for bad files, and no code ever run by loading."""

import gc
import io
import os
import pickle
import re
import signal
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_weights, has_float64, host, make_problem, tolerance

import gdxp
import gdxp.serialization
from gdxp.optimizers import SGD, Adam, Momentum

ARCHITECTURE = {"sizes": (3, 5, 2), "activations": ["tanh", "softmax"], "loss": "cross_entropy", "bias": True}


def _data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 3))
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    return x, np.eye(2)[labels]


def _trained(backend="numpy", epochs=5, optimizer="sgd", **kwargs):
    net = gdxp.Network([3, 5, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", bias=True,
                       seed=3, backend=backend, **kwargs)
    x, y = _data()
    net.fit(x, y, epochs=epochs, learning_rate=0.1, optimizer=optimizer, verbose=0)
    return net


def _architecture(net):
    return {"sizes": net.sizes, "activations": [a.name for a in net.activations], "loss": net.loss.name,
            "bias": net.bias}


def _saved_arrays(tmp_path, include_optimizer=False):
    """The arrays of a good saved file but its manifest, as a dict to tamper with (``_savez`` adds a
    manifest of what it writes)."""
    path = tmp_path / "good.npz"
    _trained(optimizer="adam").save(path, include_optimizer=include_optimizer)
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files if key != "manifest"}


# -- round trips -----------------------------------------------------------------------------------

def test_round_trip_from_every_backend_onto_numpy(backend, tmp_path):
    net = _trained(backend=backend)
    path = tmp_path / "model.npz"
    net.save(path)
    x, _ = _data()
    expected = host(backend, net.predict(x))

    loaded = gdxp.load(path, backend="numpy", dtype="float64")
    assert _architecture(loaded) == ARCHITECTURE
    assert (loaded.backend.name, loaded.backend.dtype_name) == ("numpy", "float64")
    for mine, saved in zip(loaded.get_weights(), net.get_weights()):
        assert mine.dtype == np.float64
        np.testing.assert_array_equal(mine, saved)  # float32 -> float64 is exact
    np.testing.assert_allclose(loaded.predict(x), expected, **tolerance(backend))

    kept = gdxp.load(path, backend="numpy")  # no dtype: the saved one
    assert kept.backend.dtype_name == backend.dtype_name
    assert [w.dtype for w in kept.get_weights()] == [np.dtype(backend.dtype_name)] * 4
    for mine, saved in zip(kept.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(mine, saved)
    np.testing.assert_allclose(kept.predict(x), expected, **tolerance(backend))


def test_round_trip_from_numpy_onto_every_backend(backend, tmp_path):
    net = _trained()
    path = tmp_path / "model.npz"
    net.save(path)
    x, _ = _data()

    loaded = gdxp.load(path, backend=backend.name, device=backend.device, dtype=backend.dtype_name)
    assert _architecture(loaded) == ARCHITECTURE
    assert loaded.backend.name == backend.name
    assert loaded.backend.device == backend.device
    assert loaded.backend.dtype_name == backend.dtype_name
    for mine, saved in zip(loaded.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(mine, saved.astype(backend.dtype_name))
    prediction = loaded.predict(x)
    assert prediction.dtype == backend.dtype
    np.testing.assert_allclose(host(backend, prediction), net.predict(x), **tolerance(backend))

    # no dtype: the saved float64, on the fixture's backend and device (refused where it has no float64)
    if not has_float64(backend):
        with pytest.raises(ValueError, match="has no float64"):
            gdxp.load(path, backend=backend.name, device=backend.device)
        return
    kept = gdxp.load(path, backend=backend.name, device=backend.device)
    assert kept.backend.dtype_name == "float64"
    assert kept.backend.device == backend.device
    for mine, saved in zip(kept.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(mine, saved)


@pytest.mark.parametrize("sizes, activation, output, loss, bias", [
    ([2, 1], "sigmoid", "sigmoid", "squared_error", False),
    ([4, 3, 3, 2], ["relu", "tanh"], "identity", "squared_error", True),
    ([3, 4, 2], "tanh", "softmax", "cross_entropy", False),
])
def test_round_trip_keeps_other_architectures(tmp_path, sizes, activation, output, loss, bias):
    net = gdxp.Network(sizes, activation=activation, output_activation=output, loss=loss, bias=bias, seed=5)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = gdxp.load(path)
    assert loaded.sizes == tuple(sizes)
    assert [a.name for a in loaded.activations] == [a.name for a in net.activations]
    assert (loaded.loss.name, loaded.bias) == (loss, bias)
    assert loaded.weight_shapes() == net.weight_shapes()
    x = np.random.default_rng(0).normal(size=(4, sizes[0]))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.optimizer is None


def test_save_writes_exactly_the_given_name(tmp_path):
    path = tmp_path / "weights.bin"
    _trained().save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]
    assert gdxp.load(str(path)).sizes == (3, 5, 2)


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "model.npz"
    first, second = _trained(epochs=1), _trained(epochs=6)
    first.save(path)
    second.save(path)
    for mine, saved in zip(gdxp.load(path).get_weights(), second.get_weights()):
        np.testing.assert_array_equal(mine, saved)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


# -- the optimizer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: Adam(beta1=0.8, beta2=0.99, epsilon=1e-7),
    lambda: Momentum(0.7, nesterov=True),
    SGD,
], ids=["adam", "momentum", "sgd"])
def test_optimizer_round_trip_continues_training_identically(backend, tmp_path, make):
    original = make()
    net = _trained(backend=backend, epochs=3, optimizer=original)
    path = tmp_path / "model.npz"
    net.save(path, include_optimizer=True)
    loaded = gdxp.load(path, backend=backend.name, device=backend.device)

    restored = loaded.optimizer
    assert type(restored) is type(original)
    assert restored is not original
    assert restored.name == original.name
    assert restored.hyperparameters() == original.hyperparameters()  # non-default settings, not the defaults
    assert loaded.state.steps == 3 and loaded.state.epoch == 3
    assert len(loaded.state.optimizer_state) == type(original).state_size
    for mine_slot, saved_slot in zip(loaded.state.optimizer_state, net.state.optimizer_state):
        assert len(mine_slot) == len(saved_slot) == 4
        for mine, saved in zip(mine_slot, saved_slot):
            assert mine.dtype == backend.dtype
            np.testing.assert_array_equal(host(backend, mine), host(backend, saved))

    x, y = _data()
    for model in (net, loaded):  # a name continues the optimizer of the last fit, state and all
        model.fit(x, y, epochs=4, learning_rate=0.1, optimizer=original.name, verbose=0)
    assert loaded.optimizer is restored and loaded.state.steps == 7
    for mine, saved in zip(loaded.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(mine, saved)


def test_without_the_optimizer_continuing_starts_afresh(tmp_path):
    net = _trained(epochs=3, optimizer="adam")
    path = tmp_path / "model.npz"
    net.save(path)  # include_optimizer=False
    loaded = gdxp.load(path)
    assert loaded.optimizer is None
    x, y = _data()
    for model in (net, loaded):
        model.fit(x, y, epochs=2, learning_rate=0.1, optimizer="adam", verbose=0)
    assert loaded.state.steps == 2 and net.state.steps == 5
    assert not np.allclose(loaded.get_weights()[0], net.get_weights()[0])  # the state mattered


def test_optimizer_state_moves_to_the_loading_backend(backend, tmp_path):
    net = _trained(epochs=3, optimizer="adam")
    path = tmp_path / "model.npz"
    net.save(path, include_optimizer=True)
    loaded = gdxp.load(path, backend=backend.name, device=backend.device, dtype=backend.dtype_name)
    assert loaded.state.steps == 3
    for mine_slot, saved_slot in zip(loaded.state.optimizer_state, net.state.optimizer_state):
        for mine, saved in zip(mine_slot, saved_slot):
            assert mine.dtype == backend.dtype
            np.testing.assert_array_equal(host(backend, mine), saved.astype(backend.dtype_name))
    x, y = _data()
    for model in (net, loaded):
        model.fit(x, y, epochs=1, learning_rate=0.1, optimizer="adam", verbose=0)
    assert loaded.state.steps == 4
    for mine, saved in zip(loaded.get_weights(), net.get_weights()):
        np.testing.assert_allclose(mine, saved, rtol=1e-4, atol=1e-5)


def test_include_optimizer_before_any_fit_is_refused(tmp_path):
    net = gdxp.Network([3, 5, 2], seed=0)
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match="no optimizer yet"):
        net.save(path, include_optimizer=True)
    assert list(tmp_path.iterdir()) == []
    net.save(path)  # without the optimizer it is fine
    assert gdxp.load(path).optimizer is None


# -- exact resume ----------------------------------------------------------------------------------

def _shuffled_run(net, epochs):
    x = np.random.default_rng(11).normal(size=(10, 3))
    y = np.eye(2)[np.random.default_rng(12).integers(0, 2, size=10)]
    net.fit(x, y, epochs=epochs, learning_rate=0.05, batch_size=3, optimizer="adam", verbose=0)
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_run_split_by_save_and_load_equals_an_unbroken_run(tmp_path, dtype):
    def network():
        return gdxp.Network([3, 5, 2], activation="tanh", output_activation="softmax", loss="cross_entropy",
                            seed=4, dtype=dtype)

    unbroken = _shuffled_run(network(), epochs=6)
    path = tmp_path / "half.npz"
    _shuffled_run(network(), epochs=3).save(path, include_optimizer=True)
    resumed = _shuffled_run(gdxp.load(path), epochs=3)

    assert resumed.state.steps == unbroken.state.steps == 6 * 4  # four shuffled batches an epoch
    assert resumed.state.epoch == unbroken.state.epoch == 6
    _assert_same_network(resumed, unbroken)  # bit for bit: weights, Adam's moments, the shuffling state


def test_copy_keeps_the_optimizer_and_the_shuffling(tmp_path):
    net = _shuffled_run(_trained(epochs=2, optimizer=Adam(beta1=0.8)), epochs=2)
    twin = net.copy()
    assert twin.optimizer is not net.optimizer and type(twin.optimizer) is Adam
    _assert_same_network(twin, net)
    before = [np.array(a) for slot in net.state.optimizer_state for a in slot]

    _shuffled_run(twin, epochs=3)  # training the copy leaves the original's state alone
    for mine, kept in zip((a for slot in net.state.optimizer_state for a in slot), before, strict=True):
        np.testing.assert_array_equal(mine, kept)
    _assert_same_network(twin, _shuffled_run(net, epochs=3))  # and goes on as the original does


def test_copy_moves_the_optimizer_state_to_the_copys_backend(backend):
    net = _trained(epochs=3, optimizer="momentum")
    twin = net.copy(backend=backend.name, device=backend.device, dtype=backend.dtype_name)
    assert (twin.optimizer.name, twin.state.steps) == ("momentum", 3)
    for mine, saved in zip(twin.state.optimizer_state[0], net.state.optimizer_state[0], strict=True):
        assert mine.dtype == twin.backend.dtype
        np.testing.assert_array_equal(host(backend, mine), saved.astype(backend.dtype_name))


# -- what the file holds ---------------------------------------------------------------------------

def test_the_file_holds_only_plain_arrays(tmp_path):
    path = tmp_path / "model.npz"
    net = _trained(epochs=2, optimizer=Adam(beta1=0.8))
    net.save(path, include_optimizer=True)
    with np.load(path, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files}
    for key, value in data.items():
        assert value.dtype.kind in "biufU", key
    weights = {f"weight_{i}" for i in range(4)}
    state = {f"optimizer_state_{slot}_{i}" for slot in range(2) for i in range(4)}
    settings = {"optimizer", "optimizer_steps", "optimizer_beta1", "optimizer_beta2", "optimizer_epsilon"}
    architecture = {"format_version", "sizes", "activations", "loss", "bias", "dtype", "epoch"}
    assert set(data) == architecture | weights | state | settings | {"shuffle_rng_pcg64", "manifest"}
    assert data["manifest"].tolist() == sorted(set(data) - {"manifest"})  # what the file holds, but itself
    assert data["format_version"] == gdxp.serialization.FORMAT_VERSION == 3
    assert data["epoch"] == 2 and data["epoch"].dtype == np.int64
    np.testing.assert_array_equal(data["sizes"], [3, 5, 2])
    assert data["activations"].tolist() == ["tanh", "softmax"]
    assert (str(data["loss"]), bool(data["bias"]), str(data["dtype"])) == ("cross_entropy", True, "float64")
    assert (str(data["optimizer"]), int(data["optimizer_steps"]), float(data["optimizer_beta1"])) == ("adam", 2, 0.8)
    for i, w in enumerate(net.get_weights()):
        np.testing.assert_array_equal(data[f"weight_{i}"], w)

    net.save(path)  # without the optimizer, no optimizer entries
    with np.load(path, allow_pickle=False) as archive:
        assert not [key for key in archive.files if key.startswith("optimizer")]


# -- atomic writes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("crash", [OSError("disk full"), KeyboardInterrupt()], ids=["oserror", "interrupt"])
def test_a_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch, crash):
    path = tmp_path / "model.npz"
    old = _trained(epochs=2)
    old.save(path)
    x, _ = _data()
    before = old.predict(x)
    calls = []

    def crashing_savez(file, *args, **kwargs):
        calls.append(file)
        file.write(b"PK\x03\x04 half of an archive")
        raise crash

    monkeypatch.setattr(gdxp.serialization.np, "savez", crashing_savez)
    with pytest.raises(type(crash)):
        _trained(epochs=7).save(path)
    monkeypatch.undo()

    assert len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary file left behind
    np.testing.assert_array_equal(gdxp.load(path).predict(x), before)


def test_a_crash_on_a_first_save_leaves_nothing(tmp_path, monkeypatch):
    def crashing_savez(file, *args, **kwargs):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(gdxp.serialization.np, "savez", crashing_savez)
    with pytest.raises(OSError, match="disk full"):
        _trained(epochs=1).save(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


# -- where a save writes --------------------------------------------------------------------------

def test_saving_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "store").mkdir()
    link = tmp_path / "model.npz"
    link.symlink_to(Path("store") / "model.npz")  # relative, and dangling until the first save
    first, second = _trained(epochs=1), _trained(epochs=4)
    first.save(link)
    second.save(link)
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "model.npz")
    assert_same_weights(gdxp.load(tmp_path / "store" / "model.npz"), second)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["model.npz"]  # no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "store"]


def _folder(path):
    path.mkdir()


def _fifo(path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(path)


def _link_to_dev_null(path):
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    path.symlink_to("/dev/null")


@pytest.mark.parametrize(("make", "kind"), [(_folder, "a folder"), (_fifo, "a named pipe"),
                                            (_link_to_dev_null, r"\(/dev/null\): it is a character device")])
def test_saving_onto_what_is_not_a_regular_file_is_refused(tmp_path, make, kind):
    path = tmp_path / "model.npz"
    make(path)
    before = os.lstat(path)
    with pytest.raises(ValueError, match=rf"cannot save to .*model.npz{'' if '(' in kind else ':'}.*{kind}"):
        _trained().save(path)
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # left as it was
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_save_errors_name_the_path_given_not_a_temporary_file(tmp_path):
    missing = tmp_path / "no-such-folder" / "model.npz"
    with pytest.raises(FileNotFoundError) as excinfo:
        _trained().save(missing)
    assert excinfo.value.filename == str(missing) and ".tmp" not in str(excinfo.value)

    loop = tmp_path / "loop.npz"
    loop.symlink_to(tmp_path / "other.npz")
    (tmp_path / "other.npz").symlink_to(loop)
    with pytest.raises(OSError, match="symbolic links") as excinfo:  # ELOOP
        _trained().save(loop)
    assert excinfo.value.filename == str(loop)
    assert loop.is_symlink() and (tmp_path / "other.npz").is_symlink()


KILLED_MID_SAVE = """
import os, signal, sys
import gdxp, gdxp.serialization

def killed(file, *args, **kwargs):
    file.write(b"PK\\x03\\x04 the first bytes of an archive")
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

gdxp.serialization.np.savez = killed
gdxp.Network([2, 1], seed=0).save(sys.argv[1])
"""


def test_a_save_removes_what_killed_saves_of_the_same_file_left(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / "model.npz"
    package_root = str(Path(gdxp.__file__).resolve().parent.parent)
    result = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(path)], capture_output=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": package_root})
    assert result.returncode == -signal.SIGKILL, result.stderr
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.npz.") and leftovers[0].endswith(".tmp")

    others = [".model.npz.notes.tmp", "model.npz.abcdefgh.tmp", ".other.npz.abcdefgh.tmp", ".model.npz.abcdefgh.bak"]
    for name in [*others, ".model.npz.inflight.tmp"]:
        (tmp_path / name).write_bytes(b"not ours to remove")
    with open(tmp_path / ".model.npz.inflight.tmp", "rb") as in_use:
        fcntl.flock(in_use, fcntl.LOCK_EX)  # as a save still running holds its temporary file
        _trained().save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, ".model.npz.inflight.tmp", "model.npz"])
    assert gdxp.load(path).sizes == (3, 5, 2)


# -- bad files -------------------------------------------------------------------------------------

def _patience(best_epoch):
    """Patience's three numbers as a file holds them (its best weights left out)."""
    return {"patience_best_loss": np.array(0.5), "patience_best_epoch": np.array(best_epoch),
            "patience_waited": np.array(1)}


def _savez(path, arrays, manifest=True):
    """Write ``arrays`` as gdxp would: with a manifest of their names (unless ``manifest`` is False)."""
    if manifest:
        arrays = {**arrays, "manifest": np.array(sorted(arrays))}
    with open(path, "wb") as file:  # exactly this name, whatever numpy would append
        np.savez(file, **arrays)


def _without(arrays, *keys):
    return {k: v for k, v in arrays.items() if k not in keys}


def _object_entry(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, allow_pickle=True, **arrays, manifest=np.array(sorted([*arrays, "notes"])),
                 notes=np.array([{"epochs": 3}, None], dtype=object))


def _object_sizes(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, allow_pickle=True, **{**arrays, "sizes": np.array([3, 5, 2], dtype=object)})


def _transposed(path, arrays):
    _savez(path, {**arrays, "weight_0": arrays["weight_0"].T})


def _non_finite_weight(path, arrays):
    bad = arrays["weight_1"].copy()
    bad[2] = np.nan
    _savez(path, {**arrays, "weight_1": bad})


def _truncated(path, arrays):
    _savez(path, arrays)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _corrupt_entry(path, arrays):
    """Flip bits inside weight_0's stored bytes, leaving the archive's directory intact."""
    _savez(path, arrays)
    data = bytearray(path.read_bytes())
    start = bytes(data).index(arrays["weight_0"].tobytes())
    data[start + 3] ^= 0xFF
    path.write_bytes(bytes(data))


def _single_array(path, arrays):
    np.save(path, arrays["weight_0"])  # the name ends in .npy, so numpy keeps it


def _text(path, arrays):
    path.write_text("sizes: [3, 5, 2]\nactivations: [tanh, softmax]\n")


def _empty(path, arrays):
    path.write_bytes(b"")


BAD_FILES = {
    "object-entry": (_object_entry, r"entry 'notes' holds Python objects"),
    "object-sizes": (_object_sizes, r"entry 'sizes' holds Python objects"),
    "missing-sizes": (lambda p, a: _savez(p, _without(a, "sizes")), r"not a gdxp model: it lacks sizes$"),
    "missing-loss-and-dtype": (lambda p, a: _savez(p, _without(a, "loss", "dtype")), r"it lacks loss, dtype$"),
    "transposed-weight": (_transposed, r"weight array 0 must have shape \(3, 5\), got \(5, 3\)"),
    "missing-weight": (lambda p, a: _savez(p, _without(a, "weight_3")), r"lacks weight arrays weight_3 \(expected 4\)"),
    "non-finite-weight": (_non_finite_weight, r"weight array 1 must hold finite numbers"),
    "newer-format": (lambda p, a: _savez(p, {**a, "format_version": np.array(4)}), r"newer gdxp \(format 4\)"),
    "negative-epoch": (lambda p, a: _savez(p, {**a, "epoch": np.array(-1)}), r"epoch must be at least 0, got -1"),
    "patience-without-weights": (lambda p, a: _savez(p, {**a, **_patience(3)}),
                                 r"lacks patience's best weights patience_weight_0"),
    "patience-epoch-zero": (lambda p, a: _savez(p, {**a, **_patience(0)}),
                            r"patience's record must be a finite loss, an epoch >= 1 and a count >= 0"),
    "format-as-text": (lambda p, a: _savez(p, {**a, "format_version": np.array("1")}),
                       r"entry 'format_version' must be a single value"),
    "fractional-sizes": (lambda p, a: _savez(p, {**a, "sizes": np.array([3.0, 5.0, 2.0])}),
                         r"'sizes' must be a list of whole numbers"),
    "too-few-activations": (lambda p, a: _savez(p, {**a, "activations": np.array(["tanh"])}),
                            r"'activations' must name one activation per layer \(2\)"),
    "unknown-activation": (lambda p, a: _savez(p, {**a, "activations": np.array(["tanh", "swirl"])}),
                           r"unknown activation 'swirl'"),
    "integer-dtype": (lambda p, a: _savez(p, {**a, "dtype": np.array("int32")}), r"dtype must be one of"),
    "bad-shuffle-state": (lambda p, a: _savez(p, {**a, "shuffle_rng_pcg64": a["shuffle_rng_pcg64"][:5]}),
                          r"shuffle_rng_pcg64 must be 6 unsigned 64-bit words"),
    "unknown-optimizer": (lambda p, a: _savez(p, {**a, "optimizer": np.array("lion")}), r"unknown optimizer 'lion'"),
    "missing-optimizer-state": (lambda p, a: _savez(p, _without(a, "optimizer_state_1_2")),
                                r"lacks optimizer state arrays optimizer_state_1_2"),
    "wrong-optimizer-state": (lambda p, a: _savez(p, {**a, "optimizer_state_0_0": np.zeros((5, 3))}),
                              r"Adam state for weights of shapes"),
    "corrupt-entry": (_corrupt_entry, r"entry 'weight_0' cannot be read; the file is truncated or corrupt"),
    "single-array": (_single_array, r"holds a single array, not a gdxp model"),
    "text": (_text, r"is not a readable \.npz archive"),
    "empty": (_empty, r"is not a readable \.npz archive"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_says_what_is_wrong(tmp_path, case):
    make, message = BAD_FILES[case]
    arrays = _saved_arrays(tmp_path, include_optimizer=True)
    path = tmp_path / ("bad.npy" if case == "single-array" else "bad.npz")
    make(path, arrays)
    with pytest.raises(ValueError, match=message) as excinfo:
        gdxp.load(path)
    assert str(path) in str(excinfo.value)  # every message names the file, the constructor's too


def _with_member(path, arrays, name, payload):
    """A file whose member ``name`` holds ``payload`` (raw .npy bytes) instead of its array, CRCs intact."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in {**arrays, "manifest": np.array(sorted(arrays))}.items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(f"{key}.npy", payload if key == name else buffer.getvalue())


def _npy_with_header(header):
    """A version 1.0 .npy member with this header text and 8 bytes of data."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(8)


def _patch_directory(path, member, field, value):
    """Set a little-endian 2-byte field, ``field`` bytes into ``member``'s central directory record."""
    data = bytearray(path.read_bytes())
    record = data.rindex(member.encode()) - 46  # the central directory's copy of the name comes last
    assert data[record:record + 4] == b"PK\x01\x02"
    data[record + field:record + field + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))


def _patched_directory(field, value):
    """A tampering helper: the archive with a field of weight_0.npy's central directory record set to ``value``."""
    def make(path, arrays):
        _savez(path, arrays)
        _patch_directory(path, "weight_0.npy", field, value)
    return make


CORRUPT = "cannot be read; the file is truncated or corrupt|is not a readable .npz archive"

# what each raised before load turned every error on a damaged file into a ValueError naming it
DAMAGED_FILES = {
    "compression-method": (_patched_directory(10, 99), CORRUPT),  # NotImplementedError
    "deflate-on-stored-bytes": (_patched_directory(10, zipfile.ZIP_DEFLATED), CORRUPT),  # zlib.error
    "version-needed": (_patched_directory(6, 255), CORRUPT),  # NotImplementedError: zip file version 25.5
    "patched-data-flag": (_patched_directory(8, 0x20), CORRUPT),  # NotImplementedError
    "encrypted-flag": (_patched_directory(8, 0x01), CORRUPT),  # RuntimeError: password required
    "npy-header-syntax": (lambda p, a: _with_member(p, a, "weight_0", _npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, }")), CORRUPT),  # tokenize.TokenError
    "npy-header-huge-shape": (lambda p, a: _with_member(p, a, "weight_0", _npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }")),
        r"claims shape \(1000000000000,\) of float64 \(8000000000000 bytes\) but holds 8"),  # MemoryError
    "huge-sizes": (lambda p, a: _savez(p, {**a, "sizes": np.array([10**9, 5, 2])}),
                   r"weight array 0 must have shape \(1000000000, 5\), got \(3, 5\)"),  # MemoryError
    "integer-weights": (lambda p, a: _savez(p, {**a, "weight_2": a["weight_2"].astype(np.int64)}),
                        "weight array 2 must hold floating-point numbers, got int64"),
    "text-optimizer-state": (lambda p, a: _savez(p, {**a, "optimizer_state_0_1": a["optimizer_state_0_1"].astype(str)}),
                             "optimizer_state_0_1 must hold finite floating-point numbers"),
}


@pytest.mark.parametrize("case", list(DAMAGED_FILES))
def test_a_damaged_file_is_a_value_error_naming_it(tmp_path, case):
    make, message = DAMAGED_FILES[case]
    path = tmp_path / "damaged.npz"
    make(path, _saved_arrays(tmp_path, include_optimizer=True))
    with pytest.raises(ValueError, match=message) as excinfo:
        gdxp.load(path)
    assert str(path) in str(excinfo.value)


def _assert_same_network(loaded, net):
    """Architecture, weights and optimizer (settings, steps, state) all equal."""
    assert _architecture(loaded) == _architecture(net)
    assert loaded.backend.dtype_name == net.backend.dtype_name
    for mine, saved in zip(loaded.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, saved)
    assert (loaded.optimizer is None) == (net.optimizer is None)
    if net.optimizer is not None:
        assert (loaded.optimizer.name, loaded.state.steps) == (net.optimizer.name, net.state.steps)
        assert loaded.optimizer.hyperparameters() == net.optimizer.hyperparameters()
        for mine, saved in zip(loaded.state.optimizer_state, net.state.optimizer_state, strict=True):
            for a, b in zip(mine, saved, strict=True):
                np.testing.assert_array_equal(a, b)
    assert loaded.shuffle_rng.bit_generator.state == net.shuffle_rng.bit_generator.state


CENTRAL_DIRECTORY_COMMENT_LENGTH = 32  # bytes into a record; a wrong one makes the zip reader skip records


def test_entries_lost_to_a_damaged_directory_are_an_error(tmp_path):
    """The issue's case: one wrong length in the archive's directory hid the optimizer's entries, and the
    file loaded as a network without an optimizer. The manifest makes the loss an error."""
    path = tmp_path / "model.npz"
    _trained(epochs=2, optimizer="adam").save(path, include_optimizer=True)
    _patch_directory(path, "weight_3.npy", CENTRAL_DIRECTORY_COMMENT_LENGTH, 0xFFFF)
    with zipfile.ZipFile(path) as archive:  # the control: the zip reader itself sees no optimizer entries
        assert "weight_3.npy" in archive.namelist() and "optimizer.npy" not in archive.namelist()
    with pytest.raises(ValueError, match=r"model.npz lacks its manifest .* the file is damaged") as excinfo:
        gdxp.load(path)
    assert str(path) in str(excinfo.value)


def test_a_cut_at_any_directory_record_is_an_error_or_changes_nothing(tmp_path):
    path = tmp_path / "model.npz"
    net = _trained(epochs=2, optimizer="adam")
    net.save(path, include_optimizer=True)
    good = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
    for member in members:
        path.write_bytes(good)
        _patch_directory(path, member, CENTRAL_DIRECTORY_COMMENT_LENGTH, 0xFFFF)
        try:
            loaded = gdxp.load(path)
        except ValueError as err:
            assert str(path) in str(err), member
        else:
            _assert_same_network(loaded, net)


@pytest.mark.parametrize(("manifest", "message"), [
    (["extra_entry"], r"lacks extra_entry, which its manifest lists: the file is damaged"),
    ([], r"holds optimizer_state_0_0, which its manifest does not list"),
])
def test_entries_must_be_exactly_those_the_manifest_lists(tmp_path, manifest, message):
    arrays = _saved_arrays(tmp_path, include_optimizer=True)
    listed = sorted(arrays) + manifest if manifest else sorted(set(arrays) - {"optimizer_state_0_0"})
    path = tmp_path / "listed.npz"
    _savez(path, {**arrays, "manifest": np.array(listed)}, manifest=False)
    with pytest.raises(ValueError, match=message):
        gdxp.load(path)


def test_a_format_1_file_still_loads(tmp_path):
    """Files written before the manifest and the shuffling state (format 1) have neither, nor the epoch count
    (format 3), and load as they did, at epoch 0."""
    net = _trained(epochs=3, optimizer="adam")
    path = tmp_path / "model.npz"
    net.save(path, include_optimizer=True)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files if key not in ("manifest", "shuffle_rng_pcg64", "epoch")}
    _savez(tmp_path / "v1.npz", {**arrays, "format_version": np.array(1)}, manifest=False)
    loaded = gdxp.load(tmp_path / "v1.npz")
    assert loaded.state.epoch == 0 and net.state.epoch == 3
    loaded.shuffle_rng.bit_generator.state = net.shuffle_rng.bit_generator.state  # not in the file: a fresh one
    _assert_same_network(loaded, net)


@pytest.mark.slow  # one load per byte of a 5.5 KB file: seconds
def test_every_flipped_byte_is_a_value_error_naming_the_file_or_changes_nothing(tmp_path):
    """Each byte of a small saved file with its optimizer inverted in turn (XOR 0xFF): in the data, the
    headers, the archive's directory. Only a ValueError naming the file, or the very same network, will do."""
    x, y = make_problem(n_samples=6)
    net = gdxp.Network([3, 2], activation="sigmoid", bias=False, seed=0)
    net.fit(x, y, epochs=2, learning_rate=0.1, batch_size=4, optimizer="adam", verbose=0)
    path = tmp_path / "flipped.npz"
    net.save(path, include_optimizer=True)
    good = path.read_bytes()
    outcomes = {"refused": 0, "same": 0}
    for index in range(len(good)):
        flipped = bytearray(good)
        flipped[index] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            loaded = gdxp.load(path)
        except ValueError as err:
            assert str(path) in str(err), (index, str(err))
            outcomes["refused"] += 1
        else:
            _assert_same_network(loaded, net)
            outcomes["same"] += 1
    assert outcomes["refused"] > outcomes["same"] > 0  # the control: most bytes matter, a few (dates) do not


def test_the_tampering_helpers_alone_leave_a_loadable_file(tmp_path):
    """The control for the cases above: rewriting the arrays untouched gives a good file."""
    arrays = _saved_arrays(tmp_path, include_optimizer=True)
    path = tmp_path / "rewritten.npz"
    _savez(path, arrays)
    loaded = gdxp.load(path)
    assert loaded.optimizer.name == "adam" and loaded.state.steps == 5
    np.testing.assert_array_equal(loaded.get_weights()[0], arrays["weight_0"])


def _load_truncated(tmp_path):
    """Load a good file cut to half; the ValueError's message, and any ResourceWarning of a file left open."""
    arrays = _saved_arrays(tmp_path)
    path = tmp_path / "truncated.npz"
    _truncated(path, arrays)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as excinfo:
            gdxp.load(path)
        message = str(excinfo.value)
        del excinfo
        gc.collect()
    return message, [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_truncated_archive_says_so(tmp_path):
    message, _ = _load_truncated(tmp_path)
    assert "truncated.npz is not a readable .npz archive" in message


def test_a_truncated_archive_leaves_no_file_open(tmp_path):
    _, leaked = _load_truncated(tmp_path)
    assert leaked == []


def test_a_missing_file_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read .*nowhere\.npz: No such file or directory"):
        gdxp.load(tmp_path / "nowhere.npz")


# -- loading never runs code -----------------------------------------------------------------------

UNPICKLED = []


def _record_unpickling(tag):
    UNPICKLED.append(tag)
    return tag


class _Payload:
    """Unpickling this calls _record_unpickling: the side effect shows whether anything was unpickled."""

    def __reduce__(self):
        return _record_unpickling, ("payload ran",)


@pytest.fixture
def unpickled():
    UNPICKLED.clear()
    yield UNPICKLED
    UNPICKLED.clear()


def test_a_pickled_entry_is_never_unpickled(tmp_path, unpickled):
    arrays = _saved_arrays(tmp_path)
    path = tmp_path / "evil.npz"
    with open(path, "wb") as file:
        np.savez(file, allow_pickle=True, **arrays, manifest=np.array(sorted([*arrays, "payload"])),
                 payload=np.array([_Payload()], dtype=object))

    with np.load(path, allow_pickle=True) as archive:  # the control: unpickling does run the payload
        archive["payload"]
    assert unpickled == ["payload ran"]
    unpickled.clear()

    with pytest.raises(ValueError, match="entry 'payload' holds Python objects"):
        gdxp.load(path)
    assert unpickled == []


def test_a_pickle_file_is_never_unpickled(tmp_path, unpickled):
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Payload()))
    pickle.loads(path.read_bytes())  # the control
    assert unpickled == ["payload ran"]
    unpickled.clear()

    with pytest.raises(ValueError, match="not a readable .npz archive"):
        gdxp.load(path)
    assert unpickled == []


def test_a_pickled_npy_file_is_never_unpickled(tmp_path, unpickled):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        gdxp.load(path)
    assert unpickled == []


def test_an_entry_that_is_not_an_array_says_so(tmp_path):
    arrays = _saved_arrays(tmp_path)
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in {**arrays, "manifest": np.array(sorted(arrays))}.items():
            if key == "sizes":
                archive.writestr("sizes", b"3,5,2")  # no .npy: numpy hands back the bytes
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{key}.npy", buffer.getvalue())
    with pytest.raises(ValueError, match="sizes"):
        gdxp.load(path)


@pytest.mark.parametrize(("change", "message"), [
    ({"format_version": np.array(0)}, "format_version must be at least 1, got 0"),
    ({"optimizer_steps": np.array(-1)}, "optimizer_steps must be at least 0, got -1"),
    ({"weight_9": np.ones(2)}, "holds weight arrays weight_9 beyond the 4 its architecture has"),
    ({"optimizer_beta1": np.array(True)}, "bad adam settings"),
    ({"weight_1": np.ones(7)}, r"tampered.npz: weight array 1 must have shape \(5,\), got \(7,\)"),
])
def test_values_that_cannot_be_right_are_refused_naming_the_file(tmp_path, change, message):
    arrays = {**_saved_arrays(tmp_path, include_optimizer=True), **change}
    path = tmp_path / "tampered.npz"
    _savez(path, arrays)
    with pytest.raises(ValueError, match=message):
        gdxp.load(path)


def test_saved_files_get_ordinary_permissions(tmp_path):
    path = tmp_path / "model.npz"
    umask = os.umask(0o022)
    try:
        _trained().save(path)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o640)
    _trained().save(path)  # replacing a file keeps its permissions
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_load_draws_no_random_weights(tmp_path, monkeypatch):
    # issue 12, item 8: loading initialised a random network first, then replaced its weights
    saved = gdxp.Network([3, 4, 2], seed=1)
    saved.save(tmp_path / "net.npz")

    def never(*args):
        raise AssertionError("a random draw while loading")

    monkeypatch.setattr(gdxp.backend.base.Backend, "uniform", never)
    monkeypatch.setattr(gdxp.backend.base.Backend, "normal", never)
    for a, b in zip(gdxp.load(tmp_path / "net.npz").get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_network_can_start_from_given_weights():
    reference = gdxp.Network([3, 2], seed=4)
    given = gdxp.Network([3, 2], weights=reference.get_weights())
    for a, b in zip(given.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"weight array 0 must have shape \(3, 2\)"):
        gdxp.Network([3, 2], weights=[np.ones((2, 2)), np.ones(2)])


# -- hostile files load in bounded memory and time (issue 19, item 1) -----------------------------------------

BOUNDED_LOAD = """
import resource, sys
import numpy, gdxp
size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
limit = size + 128 * 2**20  # what importing numpy and gdxp took, and 128 MiB more
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    gdxp.load(sys.argv[1])
except ValueError as err:
    print(err)
"""


def _bomb(path, good, members=4, mebibytes=64):
    """A good model's file with ``members`` more entries, each a .npy of ``mebibytes`` MiB of zeros (deflated
    229 to 1, under the per-member limit), all listed in the manifest: a few hundred KB on disk."""
    with np.load(good) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "manifest"}
    extra = [f"padding_{i}" for i in range(members)]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (mebibytes * 2**17,)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in {**arrays, "manifest": np.array(sorted([*arrays, *extra]))}.items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())
        for key in extra:
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                for _ in range(mebibytes):
                    member.write(bytes(2**20))


def _load_bounded(path):
    """What ``gdxp.load(path)`` prints in a subprocess under an address space of 128 MiB more than importing
    took, and with a time limit: its ValueError's message, or the subprocess's failure."""
    result = subprocess.run([sys.executable, "-c", BOUNDED_LOAD, str(path)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr  # no MemoryError
    return result.stdout


UNDER_PROC = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from Linux's /proc")


@pytest.mark.slow  # a subprocess, and 256 MiB to deflate: about a second
@UNDER_PROC
def test_a_file_claiming_more_than_its_architecture_is_refused_before_inflating(tmp_path):
    good, bomb = tmp_path / "good.npz", tmp_path / "bomb.npz"
    _trained().save(good, include_optimizer=True)
    _bomb(bomb, good)
    assert bomb.stat().st_size < 2 * 2**20
    assert re.fullmatch(rf"{re.escape(str(bomb))}: its entries claim \d+ bytes, more than the \d+ its "
                        rf"architecture needs; the file is corrupt\n", _load_bounded(bomb))
    gdxp.load(good)  # the control: the same file without the padding loads


@pytest.mark.slow  # a subprocess a case
@UNDER_PROC
@pytest.mark.parametrize("kind", ["a character device", "a named pipe", "a folder"])
def test_only_a_regular_file_is_read(tmp_path, kind):
    paths = {"a character device": "/dev/zero", "a named pipe": str(tmp_path / "pipe.npz"), "a folder": str(tmp_path)}
    path = paths[kind]
    if kind == "a named pipe":
        os.mkfifo(path)  # with no writer, opening it to read would block for ever; /dev/zero never ends
    assert _load_bounded(path) == f"cannot read {path}: it is {kind}; a network is read from a regular file\n"


def test_an_unreadable_path_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"path must not hold a NUL character, got '.*a\\x00b.npz'"):
        gdxp.load(str(tmp_path / "a\0b.npz"))
    locked = tmp_path / "locked.npz"
    _trained().save(locked)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("running as a user that reads any file (root)")
    with pytest.raises(ValueError, match=rf"cannot read {re.escape(str(locked))}: Permission denied"):
        gdxp.load(locked)


def test_an_architecture_entry_is_read_first_and_small(tmp_path):
    arrays = _saved_arrays(tmp_path)
    path = tmp_path / "long.npz"
    _savez(path, {**arrays, "activations": np.array(["tanh" * 100_000, "softmax"])})
    with pytest.raises(ValueError, match=r"entry 'activations.npy' claims \d+ bytes, more than 1048576"):
        gdxp.load(path)
