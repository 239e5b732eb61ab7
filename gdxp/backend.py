"""Array libraries and devices: the one module that knows which library runs the math.

Everything else in gdxp writes its math against ``backend.xp``, an array API standard namespace, and
asks a :class:`Backend` to move data between the host and the device. This module is the only one that
imports CuPy (lazily: importing gdxp never does), picks devices, copies arrays to or from a device,
waits for queued device work, and draws seeded random numbers, on the host so that one seed gives
bit-identical weights on every backend.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from ._typing import Array

__all__ = [
    "BACKEND_NAMES",
    "ENV_VAR",
    "Backend",
    "BackendStatus",
    "BackendUnavailableError",
    "available_backends",
    "get_backend",
]

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict")
ENV_VAR = "GDXP_BACKEND"
FLOAT_DTYPES = ("float32", "float64")
_INSTALL_CUPY = "pip install 'gdxp[cuda12]' (or 'gdxp[cuda13]' for CUDA 13)"


class BackendUnavailableError(RuntimeError):
    """A known backend that cannot run here (library missing, or no usable device)."""


class Backend:
    """An array namespace on one device with one floating dtype.

    Attributes: ``name`` (one of ``BACKEND_NAMES``), ``xp`` (the array API namespace), ``device``
    (the library's own device object) and ``dtype`` (``xp.float32`` or ``xp.float64``).
    """

    name: str

    def __init__(self, xp: Any, device: Any, dtype_name: str) -> None:
        self.xp = xp
        self.device = device
        self.dtype = getattr(xp, dtype_name)
        self.dtype_name = dtype_name

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device_name!r}, dtype={self.dtype_name!r})"

    @property
    def device_name(self) -> str:
        """The device as plain text, for messages and reports."""
        return str(self.device)

    # -- host <-> device -------------------------------------------------------------------------

    def asarray(self, obj: Any, *, dtype: Any = None, copy: bool = False) -> Array:
        """Return ``obj`` as an array of this namespace, on this device, with ``dtype`` (default: ours).

        ``obj`` may be a Python sequence or scalar, a NumPy array, or an array of this or another
        known library on any device. An array already in place is returned as is unless ``copy``.
        Non-numeric data raises ``TypeError``; ragged data raises ``ValueError``.
        """
        dtype = self.dtype if dtype is None else dtype
        if not copy and self._is_native(obj) and obj.dtype == dtype and self._is_here(obj):
            return obj  # the common case on the hot path: already in place
        if not self._is_native(obj):
            host = _numeric_host_array(_any_to_host(obj))
            return self._from_host(host.copy() if copy else host, dtype)
        if not self.xp.isdtype(obj.dtype, ("bool", "integral", "real floating")):
            raise TypeError(f"expected real numbers, got an array of dtype {obj.dtype}")
        arr = obj if self._is_here(obj) else self._move(obj)
        if arr.dtype != dtype:
            arr = self.xp.astype(arr, dtype)
        return self._copy(arr) if copy and arr is obj else arr

    def zeros(self, shape: Sequence[int]) -> Array:
        """An array of zeros on this device, with our dtype."""
        return self._from_host(np.zeros(tuple(shape)), self.dtype)

    def to_numpy(self, arr: Array) -> np.ndarray:
        """The values of ``arr`` as a host NumPy array: a copy from a device (waiting for it), the
        array itself on NumPy, so callers that keep or change it copy it themselves."""
        return np.asarray(arr)

    def to_float(self, arr: Array) -> float:
        """A 0-d device array as a Python float (one device-to-host sync)."""
        return float(self.to_numpy(arr))

    def synchronize(self) -> None:
        """Wait until all work queued on the device is done (for honest timing). No-op on the CPU."""

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """Context in which gdxp's math runs: on this backend's device, with IEEE overflow semantics.

        The math relies on overflow giving infinity quietly, as it does on a GPU: ``1 / (1 + exp(-sop))``
        is exactly 0 when ``exp`` overflows. NumPy (under array_api_strict too) would warn there, so on
        the CPU this silences NumPy's overflow warning, and only that, inside gdxp's own computations.
        """
        return np.errstate(over="ignore")

    # -- seeded random numbers, drawn on the host ------------------------------------------------

    def uniform(self, rng: np.random.Generator, shape: Sequence[int], low: float, high: float) -> Array:
        """Uniform draws in [low, high): ``low + (high - low) * rng.random(shape)``, then moved here."""
        return self.asarray(low + (high - low) * rng.random(tuple(shape)))

    def normal(self, rng: np.random.Generator, shape: Sequence[int], std: float) -> Array:
        """Normal draws with mean 0 and standard deviation ``std``, then moved here."""
        return self.asarray(std * rng.standard_normal(tuple(shape)))

    def permutation(self, rng: np.random.Generator, n: int) -> Array:
        """A random ordering of ``range(n)`` as an index array on this device."""
        return self.asarray(rng.permutation(n), dtype=self.xp.int64)

    # -- what each library does its own way -------------------------------------------------------

    def _is_native(self, obj: Any) -> bool:
        raise NotImplementedError

    def _is_here(self, arr: Array) -> bool:
        return True

    def _move(self, arr: Array) -> Array:
        return arr

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return self.xp.asarray(host, dtype=dtype)

    def _copy(self, arr: Array) -> Array:
        return self.xp.asarray(arr, copy=True)


class NumpyBackend(Backend):
    """NumPy on the CPU, through array-api-compat's NumPy namespace."""

    name = "numpy"

    def __init__(self, device: Any, dtype_name: str) -> None:
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on device 'cpu' only, got device={device!r}")
        super().__init__(importlib.import_module("array_api_compat.numpy"), "cpu", dtype_name)

    def to_float(self, arr: Array) -> float:
        return float(arr)

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)


class StrictBackend(Backend):
    """array_api_strict: the standard and nothing more, with simulated devices that refuse mixing."""

    name = "array_api_strict"

    def __init__(self, device: Any, dtype_name: str) -> None:
        xp = importlib.import_module("array_api_strict")
        devices = xp.__array_namespace_info__().devices()
        by_name = {_strict_device_name(d): d for d in devices}
        if device is None:
            device = xp.Device("CPU_DEVICE")
        elif isinstance(device, str):
            if device not in by_name:
                raise ValueError(f"array_api_strict device must be one of {sorted(by_name)}, got {device!r}")
            device = by_name[device]
        elif device not in devices:
            raise ValueError(f"array_api_strict device must be one of {sorted(by_name)}, got {device!r}")
        super().__init__(xp, device, dtype_name)
        self._cpu = xp.Device("CPU_DEVICE")
        self._array_type = type(xp.asarray(0.0))

    @property
    def device_name(self) -> str:
        return _strict_device_name(self.device)

    def to_numpy(self, arr: Array) -> np.ndarray:
        return np.asarray(arr.to_device(self._cpu))

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._array_type)

    def _is_here(self, arr: Array) -> bool:
        return arr.device == self.device

    def _move(self, arr: Array) -> Array:
        return arr.to_device(self.device)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return self.xp.asarray(host, dtype=dtype, device=self.device)


class CupyBackend(Backend):
    """CuPy on one NVIDIA GPU. Arrays are created inside the device's context, because
    array-api-compat's creation functions ignore ``device=`` for CuPy."""

    name = "cupy"

    def __init__(self, device: Any, dtype_name: str) -> None:
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
        super().__init__(importlib.import_module("array_api_compat.cupy"), cupy.cuda.Device(device_id), dtype_name)
        self._cupy = cupy

    @property
    def device_name(self) -> str:
        return f"cuda:{self.device.id}"

    def to_numpy(self, arr: Array) -> np.ndarray:
        return self._cupy.asnumpy(arr)

    def synchronize(self) -> None:
        self.device.synchronize()

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return self.device

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

    def _copy(self, arr: Array) -> Array:
        with self.device:
            return arr.copy()


_BACKEND_CLASSES = {"numpy": NumpyBackend, "cupy": CupyBackend, "array_api_strict": StrictBackend}
_DEFAULT_DTYPES = {"numpy": "float64", "cupy": "float32", "array_api_strict": "float64"}


def get_backend(name: str | Backend | None = None, *, device: Any = None, dtype: Any = None) -> Backend:
    """Return the backend ``name`` on ``device`` with floating ``dtype``.

    ``name=None`` reads the ``GDXP_BACKEND`` environment variable, else uses ``"numpy"``.
    ``dtype=None`` means float64 on the CPU backends and float32 on CuPy. A ``Backend`` passed as
    ``name`` is returned as is (then ``device`` and ``dtype`` must be None).
    """
    if isinstance(name, Backend):
        if device is not None or dtype is not None:
            raise ValueError("pass device= and dtype= to get_backend() only with a backend name, not a Backend")
        return name
    if name is None:
        name = os.environ.get(ENV_VAR) or "numpy"
    if name not in _BACKEND_CLASSES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    dtype_name = _DEFAULT_DTYPES[name] if dtype is None else _dtype_name(dtype)
    return _BACKEND_CLASSES[name](device, dtype_name)


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can run here: its library version and devices, or why it cannot."""

    name: str
    usable: bool
    reason: str | None
    version: str | None
    devices: tuple[str, ...]
    default_dtype: str

    def __str__(self) -> str:
        if not self.usable:
            return f"{self.name}: unavailable ({self.reason})"
        return (f"{self.name} {self.version}: devices {', '.join(self.devices)}; "
                f"default dtype {self.default_dtype}")


def available_backends() -> dict[str, BackendStatus]:
    """For every known backend, whether it is usable here, and if not, why (never raises)."""
    return {name: _status(name) for name in BACKEND_NAMES}


def _status(name: str) -> BackendStatus:
    try:
        devices = _list_devices(name)
    except BackendUnavailableError as err:
        return BackendStatus(name, False, str(err), _version(name), (), _DEFAULT_DTYPES[name])
    return BackendStatus(name, True, None, _version(name), devices, _DEFAULT_DTYPES[name])


def _list_devices(name: str) -> tuple[str, ...]:
    if name == "numpy":
        return ("cpu",)
    if name == "array_api_strict":
        try:
            xp = importlib.import_module("array_api_strict")
        except ImportError:
            raise BackendUnavailableError(
                "array-api-strict is not installed: pip install array-api-strict") from None
        return tuple(_strict_device_name(d) for d in xp.__array_namespace_info__().devices())
    cupy = _import_usable_cupy()
    names = []
    for i in range(cupy.cuda.runtime.getDeviceCount()):
        gpu = cupy.cuda.runtime.getDeviceProperties(i)["name"]
        names.append(f"cuda:{i} ({gpu.decode() if isinstance(gpu, bytes) else gpu})")
    return tuple(names)


def _import_usable_cupy() -> Any:
    """Import CuPy, or say exactly why it cannot run here."""
    try:
        cupy = importlib.import_module("cupy")
    except ModuleNotFoundError:
        raise BackendUnavailableError(f"CuPy is not installed: {_INSTALL_CUPY}") from None
    except Exception as err:  # a broken CUDA install raises all sorts of errors on import
        raise BackendUnavailableError(f"CuPy is installed but failed to import: {err}") from None
    if not cupy.is_available():
        raise BackendUnavailableError(f"CuPy is installed but no CUDA device is usable: {_cuda_problem(cupy)}")
    return cupy


def _cuda_problem(cupy: Any) -> str:
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # the CUDA runtime's own words are the most useful reason
        return str(err).strip() or type(err).__name__
    return "no CUDA device found" if count == 0 else f"{count} device(s) found but not usable"


def _version(name: str) -> str | None:
    dist = {"numpy": "numpy", "array_api_strict": "array-api-strict"}.get(name)
    candidates = [dist] if dist else ["cupy-cuda13x", "cupy-cuda12x", "cupy"]
    for candidate in candidates:
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _dtype_name(dtype: Any) -> str:
    """'float32' or 'float64' from a name, a NumPy dtype or type, or an array API dtype object."""
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None)
    if name is None or name not in FLOAT_DTYPES:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype).rsplit(".", 1)[-1]
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, got {dtype!r}")
    return name


def _strict_device_name(device: Any) -> str:
    return str(device).split("'")[1] if "'" in str(device) else str(device)


def _any_to_host(obj: Any) -> Any:
    """Bring an array of any known library to the host; leave everything else for NumPy to read."""
    if array_api_compat.is_cupy_array(obj):
        return obj.get()
    if type(obj).__module__.startswith("array_api_strict"):
        return np.asarray(obj.to_device(importlib.import_module("array_api_strict").Device("CPU_DEVICE")))
    return obj


def _numeric_host_array(obj: Any) -> np.ndarray:
    """``obj`` as a host NumPy array of real numbers, or a clear TypeError / ValueError."""
    try:
        host = np.asarray(obj)
    except (ValueError, TypeError) as err:
        raise ValueError(f"expected a rectangular array of real numbers, got {type(obj).__name__} ({err})") from None
    if host.dtype.kind not in "biuf":
        raise TypeError(f"expected real numbers, got {type(obj).__name__} of dtype {host.dtype}")
    return host
