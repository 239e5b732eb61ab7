"""CuPy on one NVIDIA GPU, usable only once a kernel and a matrix product ran (once a process)."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, BackendUnavailableError, first_line, import_library


class CupyBackend(Backend):
    """CuPy on one NVIDIA GPU (``0``, ``"cuda:0"``, ``"cuda"`` for the current one, or a ``cupy.cuda.Device``).
    Arrays are created inside the device's context, because array-api-compat's creation functions ignore
    ``device=`` for CuPy."""

    name = "cupy"
    module = "cupy"
    library = "CuPy"
    install = "pip install 'gdxp[cuda12]' (or 'gdxp[cuda13]' for CUDA 13)"
    distributions = ("cupy-cuda13x", "cupy-cuda12x", "cupy")

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        cupy = _import_usable_cupy()
        chosen = device.id if isinstance(device, cupy.cuda.Device) else device
        device_id = cuda_device_id(chosen, cupy.cuda.Device().id, cupy.cuda.runtime.getDeviceCount())
        self._cupy = cupy
        super().__init__(importlib.import_module("array_api_compat.cupy"), cupy.cuda.Device(device_id), dtype)

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        cupy = _import_usable_cupy()
        names = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            gpu = cupy.cuda.runtime.getDeviceProperties(i)["name"]
            names.append(f"cuda:{i} ({gpu.decode() if isinstance(gpu, bytes) else gpu})")
        return tuple(names)

    @property
    def device_name(self) -> str:
        return f"cuda:{self.device.id}"

    def to_numpy(self, arr: Array) -> np.ndarray:
        return self._cupy.asnumpy(arr)

    def synchronize(self, *arrays: Array) -> None:
        self.device.synchronize()

    def activate(self, *, training: bool = False) -> contextlib.AbstractContextManager[Any]:
        return self.device

    def _default_dtype_name(self) -> str:
        return "float32"  # GPUs run float32 many times faster than float64

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._cupy.ndarray)

    def _is_here(self, arr: Array) -> bool:
        return arr.device.id == self.device.id

    def _move(self, arr: Array) -> Array:
        with self.device:
            return self._cupy.asarray(arr)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        with self.device:
            return self._cupy.asarray(host, dtype=dtype)


def cuda_device_id(device: Any, current: int, count: int) -> int:
    """The id of a CUDA device spelled as torch and CuPy spell it: ``None`` or ``"cuda"`` (the current
    device, ``current``), an id like ``0``, or ``"cuda:0"``; a ValueError for anything else or past ``count``."""
    chosen = current if device is None or device == "cuda" else device
    if isinstance(chosen, str) and chosen.startswith("cuda:"):
        chosen = chosen[len("cuda:"):]
    try:
        device_id = int(chosen)
    except (TypeError, ValueError):
        raise ValueError(f"a cupy device is an id like 0, 'cuda:0' or 'cuda' (the current one), got {device!r}") \
            from None
    if isinstance(chosen, (bool, float)) or not 0 <= device_id < count:
        raise ValueError(f"a cupy device is an id in 0..{count - 1} here, got {device!r}")
    return device_id


_probed: tuple[Any, str | None] | None = None  # the CuPy module probed, and why it cannot run (None: it can)
# the CUDA runtime's words for a machine with no GPU, or without a driver (new enough) to reach one
_NO_GPU = ("cudaErrorNoDevice", "cudaErrorInsufficientDriver")


def _import_usable_cupy() -> Any:
    """Import CuPy and probe it once a process: a tiny elementwise kernel and a matrix product on the
    current device, or exactly why it cannot run here (a machine with only a driver counts devices but
    fails on both)."""
    global _probed
    cupy = import_library(CupyBackend)
    if _probed is None or _probed[0] is not cupy:
        _probed = cupy, _probe(cupy)
    if _probed[1] is not None:
        raise BackendUnavailableError(_probed[1])
    return cupy


def _probe(cupy: Any) -> str | None:
    """Why CuPy cannot compute here, in a sentence; None where it can."""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        if any(name in str(err) for name in _NO_GPU):
            return (f"CuPy is installed but found no NVIDIA GPU with a driver that runs it here: no GPU, no "
                    f"NVIDIA driver, or one too old ({first_line(err)})")
        return _cannot_compute(err)
    if count == 0:
        return "CuPy is installed but no CUDA device was found"
    try:
        probe = cupy.ones((2, 2), dtype=cupy.float32)
        cupy.exp(probe) @ probe
        cupy.cuda.Device().synchronize()
    except Exception as err:  # the CUDA runtime's, NVRTC's or cuBLAS's own words are the useful reason
        return _cannot_compute(err)
    return None


def _cannot_compute(err: Exception) -> str:
    return (f"CuPy is installed but cannot compute on the GPU ({first_line(err)}); install CuPy with its CUDA "
            f"libraries: {CupyBackend.install}")
