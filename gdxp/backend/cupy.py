"""CuPy on one NVIDIA GPU, usable only once a kernel and a matrix product ran."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, BackendUnavailableError, first_line, import_library


class CupyBackend(Backend):
    """CuPy on one NVIDIA GPU (``0``, ``"cuda:0"`` or a ``cupy.cuda.Device``). Arrays are created
    inside the device's context, because array-api-compat's creation functions ignore ``device=``
    for CuPy."""

    name = "cupy"
    module = "cupy"
    library = "CuPy"
    install = "pip install 'gdxp[cuda12]' (or 'gdxp[cuda13]' for CUDA 13)"
    distributions = ("cupy-cuda13x", "cupy-cuda12x", "cupy")

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        cupy = _import_usable_cupy()
        count = cupy.cuda.runtime.getDeviceCount()
        device_id = device.id if isinstance(device, cupy.cuda.Device) else device
        if device_id is None:
            device_id = cupy.cuda.Device().id
        if isinstance(device_id, str) and device_id.startswith("cuda:"):
            device_id = device_id[len("cuda:"):]
        try:
            device_id = int(device_id)
        except (TypeError, ValueError):
            raise ValueError(f"a cupy device is an id like 0 or 'cuda:0', got {device!r}") from None
        if not 0 <= device_id < count:
            raise ValueError(f"cupy device id must be in 0..{count - 1}, got {device_id}")
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

    def synchronize(self) -> None:
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


def _import_usable_cupy() -> Any:
    """Import CuPy and run a tiny elementwise kernel and a matrix product on the current device, or say
    exactly why it cannot run here: a machine with only a driver counts devices but fails on both."""
    cupy = import_library(CupyBackend)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:
            raise BackendUnavailableError("CuPy is installed but no CUDA device was found")
        probe = cupy.ones((2, 2), dtype=cupy.float32)
        cupy.exp(probe) @ probe
        cupy.cuda.Device().synchronize()
    except BackendUnavailableError:
        raise
    except Exception as err:  # the CUDA runtime's, NVRTC's or cuBLAS's own words are the useful reason
        raise BackendUnavailableError(
            f"CuPy is installed but cannot compute on the GPU ({first_line(err)}); install CuPy with its "
            f"CUDA libraries: {CupyBackend.install}") from None
    return cupy
