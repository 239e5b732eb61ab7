"""What the tests share: the backend configurations to run on, tolerances, and host-side checks.

A plain module, imported as ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``);
``conftest.py`` keeps only what pytest itself reads.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import re
import warnings

import array_api_compat
import numpy as np
import pytest

import gdxp

__all__ = [
    "adam_tolerance",
    "assert_same_weights",
    "backend_combinations",
    "fetch",
    "fit_tolerance",
    "has_float64",
    "host",
    "make_backend",
    "make_problem",
    "no_numpy_warnings",
    "on_device",
    "required",
    "running_on",
    "skip_summary",
    "tolerance",
]


def backend_combinations():
    """(backend, device, dtype) for every configuration the math must hold on.

    Following scikit-learn's ``yield_namespace_device_dtype_combinations``: numpy (float64, float32),
    array_api_strict on its CPU device (float64) and on the simulated ``device1`` (float32), where any
    silent mixing of devices raises, torch on the CPU, and JAX on the second of two simulated CPU
    devices (float32, and float64 in JAX's 64-bit mode) under a transfer guard that refuses any copy
    from one device to another. The GPU cases (cupy, torch cuda, jax gpu) are marked ``gpu`` and
    skipped with the reason where no GPU is usable; JAX is marked ``slow`` too, since eager JAX takes
    most of the run. A new library is one more ``pytest.param`` here.
    """
    yield pytest.param(("numpy", None, "float64"), id="numpy-float64")
    yield pytest.param(("numpy", None, "float32"), id="numpy-float32")
    yield pytest.param(("array_api_strict", "CPU_DEVICE", "float64"), id="strict-cpu-float64")
    yield pytest.param(("array_api_strict", "device1", "float32"), id="strict-device1-float32")
    yield pytest.param(("torch", "cpu", "float64"), id="torch-cpu-float64")
    yield pytest.param(("torch", "cpu", "float32"), id="torch-cpu-float32")
    # eager JAX dispatches each operation for tens of microseconds: out of the quick loop
    yield pytest.param(("jax", "cpu:1", "float64"), id="jax-cpu1-float64", marks=pytest.mark.slow)
    yield pytest.param(("jax", "cpu:1", "float32"), id="jax-cpu1-float32", marks=pytest.mark.slow)
    # Dask computes each small graph through its scheduler: correct everywhere, too slow for the quick loop
    yield pytest.param(("dask", None, "float64"), id="dask-float64", marks=pytest.mark.slow)
    yield pytest.param(("cupy", None, "float32"), id="cupy-float32", marks=pytest.mark.gpu)
    yield pytest.param(("cupy", None, "float64"), id="cupy-float64", marks=pytest.mark.gpu)
    yield pytest.param(("torch", "cuda", "float32"), id="torch-cuda-float32", marks=pytest.mark.gpu)
    yield pytest.param(("torch", "cuda", "float64"), id="torch-cuda-float64", marks=pytest.mark.gpu)
    yield pytest.param(("jax", "gpu:0", "float32"), id="jax-gpu-float32", marks=pytest.mark.gpu)
    yield pytest.param(("jax", "gpu:0", "float64"), id="jax-gpu-float64", marks=pytest.mark.gpu)


# CI names the libraries it installed here, so that a broken install fails instead of skipping; a GPU run names
# the GPU devices too ("cupy,torch:cuda,jax:gpu"), so that a library that runs only on the CPU fails as well
REQUIRED_BACKENDS = {name for name in os.environ.get("GDXP_REQUIRE_BACKENDS", "").split(",") if name}


def required(name: str, device=None) -> bool:
    """Whether GDXP_REQUIRE_BACKENDS requires backend ``name`` (named alone or with a device), or with a
    ``device``, that device's platform of it (``torch:cuda`` for ``"cuda:0"``, ``jax:gpu`` for ``"gpu:0"``)."""
    if device is not None:
        return f"{name}:{str(device).split(':')[0]}" in REQUIRED_BACKENDS
    return any(entry == name or entry.startswith(f"{name}:") for entry in REQUIRED_BACKENDS)


def make_backend(name: str, device, dtype: str) -> gdxp.Backend:
    """The backend, or a skip that says why it cannot run here (a failure for a required backend).

    A device this machine lacks (a GPU) is a skip too: the library runs, but not there (a failure where that
    device is required).
    """
    status = _status(name)
    if not status.usable:
        if required(name):
            pytest.fail(f"{name} is required here (GDXP_REQUIRE_BACKENDS) but unavailable: {status.reason}")
        pytest.skip(f"{name} unavailable: {status.reason}")
    try:
        return gdxp.get_backend(name, device=device, dtype=dtype)
    except ValueError as err:
        if device is None or any(str(device).split(":")[0] in found for found in status.devices):
            raise
        if required(name, device):
            pytest.fail(f"{name} on {device!r} is required here (GDXP_REQUIRE_BACKENDS) but there is no such "
                        f"device: {err}")
        pytest.skip(f"{name} has no device {device!r} here: {err}")


@functools.cache
def _status(name: str) -> gdxp.BackendStatus:
    """Whether a library can run here, asked once per test run (each test asking costs seconds)."""
    return gdxp.backend_status(name)


@contextlib.contextmanager
def running_on(name: str, dtype: str):
    """The context a test of backend ``name`` runs in: for JAX, 64-bit mode when the test is float64,
    and a transfer guard that makes any copy from one device to another an error."""
    if name != "jax" or not _status("jax").usable:
        yield
        return
    import jax

    with jax.transfer_guard_device_to_device("disallow"), jax.enable_x64(dtype == "float64"):
        yield


def has_float64(backend: gdxp.Backend) -> bool:
    """Whether the backend's library computes in float64 on its device (JAX only in its 64-bit mode)."""
    return "float64" in backend.xp.__array_namespace_info__().dtypes(device=backend.device)


def fit_tolerance(backend: gdxp.Backend) -> dict[str, float]:
    """How closely ``fit`` must equal the same steps taken one by one: exactly where it runs them one by one,
    within :func:`tolerance` where the backend compiles runs of them (XLA fuses and reorders the arithmetic)."""
    return {} if backend.compiler is None else tolerance(backend)


def tolerance(backend: gdxp.Backend) -> dict[str, float]:
    """rtol/atol for comparing results of this backend's dtype with float64 references."""
    if backend.dtype_name == "float64":
        return {"rtol": 1e-12, "atol": 1e-14}
    return {"rtol": 2e-5, "atol": 1e-6}


def host(backend: gdxp.Backend, arr) -> np.ndarray:
    """A device array's values on the host, after checking it lives where the backend keeps arrays."""
    place = array_api_compat.device(arr)
    assert place == backend.device or backend.name == "cupy" and place.id == backend.device.id
    return backend.to_numpy(arr)


@contextlib.contextmanager
def no_numpy_warnings():
    """Every NumPy floating-point warning (overflow, invalid, divide) becomes an error.

    Underflow alone is allowed: exp(-2000) flushing to 0 is the correct answer, and unavoidable.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):
            yield


def on_device(backend, values):
    """``values`` (host float64) in the backend's dtype, and the same rounded numbers in float64."""
    arr = backend.asarray(values)
    return arr, host(backend, arr).astype(np.float64)


def fetch(backend, arr):
    """The array on the host, after checking it kept the backend's device and dtype."""
    assert arr.dtype == backend.dtype
    return host(backend, arr).astype(np.float64)


def make_problem(n_samples=10, seed=0):
    """A small regression batch: 3 features, 2 sigmoid-shaped targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, 3))
    y = 1 / (1 + np.exp(-(x @ np.array([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]]))))
    return x, y


def assert_same_weights(a, b, **tol):
    """Two networks hold the same weights: exactly, or within ``tol`` (rtol/atol) when given."""
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, **tol) if tol else np.testing.assert_array_equal(wa, wb)


def adam_tolerance(steps: int, learning_rate: float, epsilon: float = 1e-8) -> dict[str, float]:
    """How close a float64 Adam or AdamW run on another backend is to NumPy's, as the README promises: 1e-12
    relative, and 1e-14 / epsilon of the learning rate a step absolute. Adam divides each gradient by
    ``sqrt(v_hat) + epsilon``, so where a gradient is near 0 the last-bit differences of its sum (1e-14 of its
    terms at most) move the weight by up to ``learning_rate * 1e-14 / epsilon`` more (SGD: 1e-14 of it)."""
    return {"rtol": 1e-12, "atol": 1e-12 + steps * learning_rate * 1e-14 / epsilon}

_SKIPS = (  # a skip's reason -> what was skipped, and why or how to run it
    (re.compile(r"(\w+) unavailable: (.*)"), "{0}", "{1}"),
    (re.compile(r"(\w+) has no device '([^']+)' here"), "{0} on {1}",
     "no such device here: on a GPU, with {0}'s GPU build, python -m pytest -m gpu"),
    (re.compile(r"could not import '([^']+)'.*"), "tests needing {0}", "not installed: pip install -e '.[test]'"),
    (re.compile(r"(\w+) is not installed: (.*)"), "{0}", "not installed ({1})"),  # scikit-learn's own checks
)


def skip_summary(reasons: list[str]) -> list[str]:
    """Lines saying which backends (and libraries) the skipped tests needed, how many each, and why they
    could not run or how to install them (the reason most of them gave); the other skips counted in one line.
    Nothing when nothing skipped."""
    if not reasons:
        return []
    why_by_what: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for reason in reasons:
        reason = reason.removeprefix("Skipped: ")
        for pattern, what, why in _SKIPS:
            found = pattern.match(reason)
            if found:
                why_by_what[what.format(*found.groups())][why.format(*found.groups())] += 1
                break
        else:
            why_by_what["other reasons (pytest -rs lists them)"][""] += 1
    counts = {what: sum(whys.values()) for what, whys in why_by_what.items()}
    width = max(map(len, counts))
    lines = [f"{len(reasons)} tests skipped, needing:"]
    for what, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        why = why_by_what[what].most_common(1)[0][0]
        lines.append(f"  {what:<{width}} {count:>6} tests" + (f"  {why}" if why else ""))
    return lines
