"""The backend module: choosing a library and device, moving data, seeded draws, and why a backend is missing."""

import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from helpers import host

import gdxp
from gdxp.backend.base import import_library
from gdxp.backend.cupy import CupyBackend, cuda_device_id


def test_default_backend_is_numpy_float64(monkeypatch):
    monkeypatch.delenv("GDXP_BACKEND", raising=False)
    chosen = gdxp.get_backend()
    assert (chosen.name, chosen.device_name, chosen.dtype_name) == ("numpy", "cpu", "float64")
    assert chosen.dtype == np.float64


def test_environment_variable_picks_the_backend(monkeypatch):
    monkeypatch.setenv("GDXP_BACKEND", "array_api_strict")
    assert gdxp.get_backend().name == "array_api_strict"
    assert gdxp.Network([2, 1]).backend.name == "array_api_strict"


@pytest.mark.parametrize("dtype", ["float32", np.float32, np.dtype("float32")])
def test_dtype_spellings(dtype):
    assert gdxp.get_backend("numpy", dtype=dtype).dtype == np.float32


def test_strict_dtype_object_and_device():
    import array_api_strict as xp

    chosen = gdxp.get_backend("array_api_strict", device="device1", dtype=xp.float32)
    assert chosen.dtype == xp.float32 and chosen.device == xp.Device("device1")
    assert repr(chosen) == "Backend(name='array_api_strict', device='device1', dtype='float32')"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "tensorflow"}, "unknown backend 'tensorflow'; choose one of numpy, cupy, torch, jax, array_api_strict"),
    ({"name": "numpy", "dtype": "float16"}, "dtype must be one of float32, float64, got 'float16'"),
    ({"name": "numpy", "dtype": "int64"}, "dtype must be one of float32, float64"),
    ({"name": "numpy", "device": "cuda:0"}, "runs on device 'cpu' only, got device='cuda:0'"),
    ({"name": "array_api_strict", "device": "gpu"}, "must be one of"),
])
def test_bad_choices_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gdxp.get_backend(**kwargs)


def test_backend_object_passes_through():
    chosen = gdxp.get_backend("numpy", dtype="float32")
    assert gdxp.get_backend(chosen) is chosen
    with pytest.raises(ValueError, match="only with a backend name"):
        gdxp.get_backend(chosen, dtype="float64")


def test_asarray_round_trip(backend):
    values = np.array([[1.5, -2.0], [0.0, 3.25]])
    arr = backend.asarray(values)
    assert arr.dtype == backend.dtype
    np.testing.assert_array_equal(host(backend, arr), values)
    np.testing.assert_array_equal(host(backend, backend.asarray([[1, 2], [3, 4]])), [[1, 2], [3, 4]])
    assert backend.asarray(arr) is arr  # already in place: no copy
    copied = backend.asarray(arr, copy=True)
    assert copied is not arr
    np.testing.assert_array_equal(host(backend, copied), values)


def test_asarray_copy_protects_from_later_changes_to_the_source(backend):
    source = np.array([1.0, 2.0])
    arr = backend.asarray(source, copy=True)
    source[0] = 99.0
    np.testing.assert_array_equal(host(backend, arr), [1.0, 2.0])


@pytest.mark.parametrize(("data", "error", "message"), [
    (["a", "b"], TypeError, "expected real numbers, got list of dtype <U1"),
    (np.array([1 + 2j]), TypeError, "expected real numbers"),
    ([[1.0, 2.0], [3.0]], ValueError, "expected a rectangular array of real numbers"),
    ([None, 1.0], TypeError, "expected real numbers, got list of dtype object"),
])
def test_asarray_rejects_what_is_not_real_numbers(backend, data, error, message):
    with pytest.raises(error, match=message):
        backend.asarray(data)


def test_arrays_move_between_strict_devices():
    import array_api_strict as xp

    on_cpu = xp.asarray([1.0, 2.0])
    device1 = gdxp.get_backend("array_api_strict", device="device1")
    moved = device1.asarray(on_cpu)
    assert moved.device == xp.Device("device1")
    np.testing.assert_array_equal(device1.to_numpy(moved), [1.0, 2.0])
    # and a strict array reaches the numpy backend through the host
    np.testing.assert_array_equal(gdxp.get_backend("numpy").asarray(moved), [1.0, 2.0])


def test_seeded_draws_are_identical_on_every_backend(backend):
    reference = gdxp.get_backend("numpy", dtype=backend.dtype_name)
    for draw in (lambda b, rng: b.uniform(rng, (3, 4), -1.0, 1.0), lambda b, rng: b.normal(rng, (3, 4), 0.5)):
        mine = host(backend, draw(backend, np.random.default_rng(7)))
        np.testing.assert_array_equal(mine, draw(reference, np.random.default_rng(7)))
    rows = np.arange(12.0).reshape(6, 2)
    inputs, targets = backend.shuffled(np.random.default_rng(7), backend.asarray(rows), backend.asarray(-rows[:, :1]))
    order = np.random.default_rng(7).permutation(6)
    np.testing.assert_array_equal(host(backend, inputs), rows[order])
    np.testing.assert_array_equal(host(backend, targets), -rows[order, :1])


def test_uniform_matches_numpy_random_rand_layout():
    # init="uniform" is the tutorials' numpy.random.rand: [0, 1), drawn in C order
    draws = gdxp.get_backend("numpy").uniform(np.random.default_rng(3), (2, 3), 0.0, 1.0)
    np.testing.assert_array_equal(draws, np.random.default_rng(3).random((2, 3)))


def test_zeros_and_synchronize(backend):
    np.testing.assert_array_equal(host(backend, backend.zeros((2, 3))), np.zeros((2, 3)))
    made = backend.zeros((2, 3))
    backend.synchronize()  # returns once queued work is done; a no-op on the CPU
    backend.synchronize(made)  # once these arrays are computed (JAX waits per array)
    assert backend.to_float(backend.asarray(2.5)) == 2.5


def test_available_backends_report_every_known_backend():
    statuses = gdxp.available_backends()
    assert list(statuses) == ["numpy", "cupy", "torch", "jax", "array_api_strict", "dask"]
    assert statuses["numpy"].usable and statuses["numpy"].devices == ("cpu",)
    assert statuses["numpy"].default_dtype == "float64"
    assert statuses["cupy"].install == "pip install 'gdxp[cuda12]' (or 'gdxp[cuda13]' for CUDA 13)"
    assert "device1" in statuses["array_api_strict"].devices
    assert str(statuses["numpy"]).startswith(f"numpy {np.__version__}: devices cpu")


def test_cupy_not_installed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail as if absent
    status = gdxp.available_backends()["cupy"]
    assert not status.usable
    assert status.reason == "CuPy is not installed: pip install 'gdxp[cuda12]' (or 'gdxp[cuda13]' for CUDA 13)"
    with pytest.raises(gdxp.BackendUnavailableError, match="CuPy is not installed"):
        gdxp.get_backend("cupy")


def _fake_cupy(device_count=None, kernel_error=None, count_error="cudaErrorNoDevice: no CUDA-capable device is "
               "detected", probes=None):
    """A stand-in for CuPy that counts devices (or fails to, with ``count_error``) and fails its first kernel like
    a driver-only install (or, without ``kernel_error``, runs it, appending to ``probes``)."""
    def count():
        if device_count is None:
            raise RuntimeError(count_error)
        return device_count

    def ones(*args, **kwargs):
        if kernel_error is not None:
            raise kernel_error
        probes.append(args)
        return np.ones(*args)

    device = lambda: types.SimpleNamespace(id=0, synchronize=lambda: None)  # noqa: E731
    runtime = types.SimpleNamespace(getDeviceCount=count, getDeviceProperties=lambda i: {"name": b"Fake GPU"})
    return types.SimpleNamespace(is_available=lambda: True, cuda=types.SimpleNamespace(runtime=runtime, Device=device),
                                 ones=ones, exp=np.exp, float32="float32")


@pytest.mark.parametrize("error", ["cudaErrorNoDevice: no CUDA-capable device is detected",
                                   "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA "
                                   "runtime version"])
def test_cupy_without_a_gpu_or_a_driver_says_so_rather_than_how_to_install_it(monkeypatch, error):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count_error=error))
    status = gdxp.available_backends()["cupy"]
    assert status.reason == ("CuPy is installed but found no NVIDIA GPU with a driver that runs it here: no GPU, "
                             f"no NVIDIA driver, or one too old ({error})")
    assert str(status) == f"cupy: unavailable ({status.reason})"


def test_cupy_that_counts_a_gpu_but_cannot_compute_is_unusable(monkeypatch):
    # cupy.is_available() only counts devices: a driver without CUDA's libraries passes it, then fails
    missing = RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open shared object")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=1, kernel_error=missing))
    status = gdxp.available_backends()["cupy"]
    assert not status.usable and "cannot compute on the GPU (CuPy failed to load libnvrtc.so.12" in status.reason
    assert status.reason.endswith("install CuPy with its CUDA libraries: pip install 'gdxp[cuda12]' (or "
                                  "'gdxp[cuda13]' for CUDA 13)")
    with pytest.raises(gdxp.BackendUnavailableError, match="libnvrtc"):
        gdxp.get_backend("cupy")


def test_cupy_is_probed_once_a_process(monkeypatch):
    probes = []
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=2, probes=probes))
    for _ in range(3):
        assert CupyBackend.devices() == ("cuda:0 (Fake GPU)", "cuda:1 (Fake GPU)")
    assert len(probes) == 1
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=1, probes=probes))  # another CuPy: probed
    CupyBackend.devices()
    assert len(probes) == 2


@pytest.mark.parametrize(("device", "expected"), [(None, 1), ("cuda", 1), ("cuda:0", 0), ("cuda:2", 2), (2, 2),
                                                  ("2", 2)])
def test_cupy_takes_torchs_device_spellings(device, expected):
    assert cuda_device_id(device, current=1, count=3) == expected


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:3", -1, 1.0, True, object()])
def test_cupy_refuses_other_device_spellings(device):
    with pytest.raises(ValueError, match=r"a cupy device is an id"):
        cuda_device_id(device, current=0, count=3)


def test_a_warning_while_importing_a_library_does_not_make_it_unavailable(tmp_path, monkeypatch):
    """Under ``filterwarnings = error`` (the tests' setting) a warning a library gives on import would raise:
    the library would look broken and its tests would skip."""
    (tmp_path / "gdxp_warns_on_import.py").write_text("import warnings\nwarnings.warn('old', DeprecationWarning)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "gdxp_warns_on_import", raising=False)
    library = types.SimpleNamespace(module="gdxp_warns_on_import", library="Warner", install="pip install warner")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        assert import_library(library).__name__ == "gdxp_warns_on_import"
    assert [str(w.message) for w in caught] == ["old"]


def test_a_library_that_fails_to_import_is_unavailable_with_its_words(tmp_path, monkeypatch):
    (tmp_path / "gdxp_broken_library.py").write_text("raise OSError('libcudart.so.12: cannot open')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    library = types.SimpleNamespace(module="gdxp_broken_library", library="Broken", install="pip install broken")
    with pytest.raises(gdxp.BackendUnavailableError, match=r"^Broken is installed but failed to import: libcudart"):
        import_library(library)


def test_importing_gdxp_imports_no_array_library_but_numpy():
    libraries = ["cupy", "torch", "jax", "array_api_strict", "dask"]
    code = f"import sys, gdxp; gdxp.Network([2, 1]); sys.exit(str([m for m in {libraries} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stderr.strip() == "[]"


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_activate_keeps_overflow_quiet_and_nothing_else(name):
    backend = gdxp.get_backend(name)
    xp, big = backend.xp, backend.asarray([1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with backend.activate():
            assert host(backend, 1.0 / (1.0 + xp.exp(big)))[0] == 0.0  # exp overflows to inf, quietly
            with pytest.raises(RuntimeWarning, match="divide"):
                backend.asarray([1.0]) / backend.asarray([0.0])
    with pytest.warns(RuntimeWarning, match="overflow"):  # outside gdxp's math, NumPy's settings stand
        xp.exp(big)
