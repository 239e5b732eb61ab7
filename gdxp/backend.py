"""Array libraries and devices: the one module that knows which library runs the math.

Everything else in gdxp writes its math against ``backend.xp``, an array API standard namespace, and
asks a :class:`Backend` to move data between the host and the device. One generic class does that for
any library through array-api-compat (``array_namespace``, ``device``, ``to_device``) and DLPack; each
library's subclass only says what that library does its own way (CuPy's device context, JAX's device
placement and 64-bit switch, torch's device names). This module is the only one that imports an array
library (lazily: importing gdxp imports none but NumPy), picks devices, copies arrays to or from a
device, waits for queued device work, and draws seeded random numbers, on the host, so that one seed
gives bit-identical weights on every backend.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from ._typing import Array, Namespace

__all__ = [
    "ARRAY_API_VERSION",
    "BACKEND_NAMES",
    "ENV_VAR",
    "Backend",
    "BackendUnavailableError",
    "get_backend",
    "host_array",
]

ENV_VAR = "GDXP_BACKEND"
FLOAT_DTYPES = ("float32", "float64")
# The math passes Python scalars to maximum/where and arithmetic, which the standard allows from 2024.12.
ARRAY_API_VERSION = "2024.12"
_DLPACK_CPU = 1  # kDLCPU, the device type of host memory in DLPack


class BackendUnavailableError(RuntimeError):
    """A known backend that cannot run here (library missing, or no usable device)."""


class Backend:
    """An array namespace on one device with one floating dtype.

    Attributes: ``name`` (one of ``BACKEND_NAMES``), ``xp`` (the array API namespace), ``device``
    (the library's own device object), ``dtype`` (``xp.float32`` or ``xp.float64``) and ``dtype_name``.
    Construct one with :func:`get_backend`.
    """

    name: ClassVar[str]
    module: ClassVar[str]  # the library's module, imported when a backend is made
    library: ClassVar[str]  # the library's own name, for messages
    install: ClassVar[str]  # how to get the library, for messages
    distributions: ClassVar[tuple[str, ...]]  # the library's package names, for its version

    def __init__(self, xp: Namespace, device: Any, dtype: Any) -> None:
        version = getattr(xp, "__array_api_version__", "0")
        if version < ARRAY_API_VERSION:
            raise BackendUnavailableError(f"{self.name} implements array API {version}; gdxp needs "
                                          f"{ARRAY_API_VERSION} or later: upgrade it")
        self.xp = xp
        self.device = device
        info = xp.__array_namespace_info__()
        self.dtype_name = self._default_dtype_name() if dtype is None else _dtype_name(dtype)
        if self.dtype_name not in info.dtypes(device=device, kind="real floating"):
            raise ValueError(f"{self.name} on {self.device_name} has no {self.dtype_name}{self._dtype_hint()}")
        self.dtype = getattr(xp, self.dtype_name)
        self.index_dtype = info.default_dtypes(device=device)["indexing"]

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device_name!r}, dtype={self.dtype_name!r})"

    @property
    def device_name(self) -> str:
        """The device as plain text, for messages and reports."""
        return str(self.device)

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        """Names of the devices this backend can use here (raises BackendUnavailableError if none)."""
        raise NotImplementedError

    # -- host <-> device -------------------------------------------------------------------------

    def asarray(self, obj: Any, *, dtype: Any = None, copy: bool = False) -> Array:
        """Return ``obj`` as an array of this namespace, on this device, with ``dtype`` (default: ours).

        ``obj`` may be a Python sequence or scalar, a NumPy array, or an array of this or another
        library on any device: arrays of another library come through DLPack (without a copy where
        both live in host memory), arrays on another device of this library move with ``to_device``.
        An array already in place is returned as is unless ``copy``. Non-numeric data raises
        ``TypeError``; ragged data raises ``ValueError``.
        """
        dtype = self.dtype if dtype is None else dtype
        if not self._is_native(obj):
            if _is_foreign_array(obj):
                return self._from_foreign(obj, dtype)
            host = _numeric_host_array(obj)
            return self._from_host(host.copy() if copy else host, dtype)
        if not copy and obj.dtype == dtype and self._is_here(obj):
            return obj  # the common case on the hot path: already in place
        arr = self._plain(obj)
        if not self.xp.isdtype(arr.dtype, ("bool", "integral", "real floating")):
            raise TypeError(f"expected real numbers, got an array of dtype {arr.dtype}")
        with self.activate():
            if not self._is_here(arr):
                arr = self._move(arr)
            if arr.dtype != dtype:
                arr = self.xp.astype(arr, dtype)
            return self.xp.asarray(arr, copy=True) if copy and arr is obj else arr

    def zeros(self, shape: Sequence[int]) -> Array:
        """An array of zeros made on this device, with our dtype."""
        with self.activate():
            return self.xp.zeros(tuple(shape), dtype=self.dtype, device=self.device)

    def to_numpy(self, arr: Array) -> np.ndarray:
        """The values of ``arr`` as a host NumPy array: a copy from a device (waiting for it), possibly
        read-only or the array itself on the host, so callers that keep or change it copy it themselves."""
        return np.asarray(arr)

    def to_float(self, arr: Array) -> float:
        """A 0-d array as a Python float (one device-to-host sync)."""
        return float(self.to_numpy(arr))

    def synchronize(self) -> None:
        """Wait until all work queued on the device is done (for honest timing). No-op on the CPU."""

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """Context in which gdxp's math runs: arrays made inside land on this backend's device, and
        overflow gives infinity quietly, as IEEE arithmetic does on a GPU (``1 / (1 + exp(-sop))`` is
        exactly 0 when ``exp`` overflows)."""
        return contextlib.nullcontext()

    # -- seeded random numbers, drawn on the host ------------------------------------------------

    def uniform(self, rng: np.random.Generator, shape: Sequence[int], low: float, high: float) -> Array:
        """Uniform draws in [low, high): ``low + (high - low) * rng.random(shape)``, then moved here."""
        return self.asarray(low + (high - low) * rng.random(tuple(shape)))

    def normal(self, rng: np.random.Generator, shape: Sequence[int], std: float) -> Array:
        """Normal draws with mean 0 and standard deviation ``std``, then moved here."""
        return self.asarray(std * rng.standard_normal(tuple(shape)))

    def permutation(self, rng: np.random.Generator, n: int) -> Array:
        """A random ordering of ``range(n)`` as an index array on this device."""
        return self.asarray(rng.permutation(n), dtype=self.index_dtype)

    # -- what a library may do its own way --------------------------------------------------------

    def _default_dtype_name(self) -> str:
        """The library's own default floating dtype on this device."""
        return _dtype_name(self.xp.__array_namespace_info__().default_dtypes(device=self.device)["real floating"])

    def _dtype_hint(self) -> str:
        return ""

    def _is_native(self, obj: Any) -> bool:
        raise NotImplementedError

    def _is_here(self, arr: Array) -> bool:
        return array_api_compat.device(arr) == self.device

    def _plain(self, arr: Array) -> Array:
        """A native array as plain data (torch: without its autograd graph)."""
        return arr

    def _move(self, arr: Array) -> Array:
        return array_api_compat.to_device(arr, self.device)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        with self.activate():
            return self.xp.asarray(host, dtype=dtype, device=self.device)

    def _from_foreign(self, obj: Any, dtype: Any) -> Array:
        """An array of another library: host memory is read in place through DLPack; device memory is
        imported by this library through DLPack where it can, else copied to the host explicitly."""
        source = _plain_foreign(obj)
        if source.__dlpack_device__()[0] == _DLPACK_CPU:
            return self._from_host(_numeric_host_array(np.from_dlpack(source)), dtype)
        try:
            imported = self.xp.from_dlpack(source)
        except (BufferError, RuntimeError, TypeError, ValueError):
            return self._from_host(_numeric_host_array(np.from_dlpack(source, device="cpu", copy=True)), dtype)
        return self.asarray(imported, dtype=dtype)


class NumpyBackend(Backend):
    """NumPy on the CPU, through array-api-compat's NumPy namespace."""

    name = "numpy"
    module = "numpy"
    library = "NumPy"
    install = "pip install numpy"
    distributions = ("numpy",)

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on device 'cpu' only, got device={device!r}")
        super().__init__(importlib.import_module("array_api_compat.numpy"), "cpu", dtype)

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        return ("cpu",)

    def to_float(self, arr: Array) -> float:
        return float(arr)

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return np.errstate(over="ignore")  # only overflow: an invalid value or a division by 0 still warns

    def _is_native(self, obj: Any) -> bool:
        return type(obj) is np.ndarray  # subclasses (np.matrix, masked arrays) are read as plain arrays

    def _is_here(self, arr: Array) -> bool:
        return True

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return np.asarray(host, dtype=dtype)


class StrictBackend(Backend):
    """array_api_strict: the standard and nothing more, with simulated devices that refuse mixing."""

    name = "array_api_strict"
    module = "array_api_strict"
    library = "array-api-strict"
    install = "pip install array-api-strict"
    distributions = ("array-api-strict",)

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        xp = _import_library(type(self))
        by_name = {_strict_device_name(d): d for d in xp.__array_namespace_info__().devices()}
        if device is None:
            device = "CPU_DEVICE"
        key = device if isinstance(device, str) else _strict_device_name(device)
        if key not in by_name or not isinstance(device, (str, xp.Device)):
            raise ValueError(f"array_api_strict device must be one of {sorted(by_name)}, got {device!r}")
        super().__init__(xp, by_name[key], dtype)
        self._cpu = by_name["CPU_DEVICE"]
        self._array_type = type(xp.asarray(0.0))

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        xp = _import_library(cls)
        return tuple(_strict_device_name(d) for d in xp.__array_namespace_info__().devices())

    @property
    def device_name(self) -> str:
        return _strict_device_name(self.device)

    def to_numpy(self, arr: Array) -> np.ndarray:
        return np.asarray(arr.to_device(self._cpu))

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return np.errstate(over="ignore")  # array_api_strict computes with NumPy, which would warn

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._array_type)


class TorchBackend(Backend):
    """PyTorch on any device torch can use here (``"cpu"``, ``"cuda:1"``, a ``torch.device``)."""

    name = "torch"
    module = "torch"
    library = "PyTorch"
    install = "pip install 'gdxp[torch]'"
    distributions = ("torch",)

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        torch = _import_library(type(self))
        try:
            chosen = torch.device("cpu" if device is None else device)
            if chosen.type != "cpu" and chosen.index is None:
                chosen = torch.device(chosen.type, torch.get_device_module(chosen.type).current_device())
            torch.zeros((), device=chosen)
        except (RuntimeError, TypeError, ValueError, AssertionError) as err:
            raise ValueError(f"torch cannot use device {device!r} here ({_first_line(err)}); "
                             f"its devices here are {', '.join(self.devices())}") from None
        super().__init__(importlib.import_module("array_api_compat.torch"), chosen, dtype)
        self._torch = torch

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        torch = _import_library(cls)
        gpus = range(torch.cuda.device_count()) if torch.cuda.is_available() else ()
        return ("cpu", *(f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in gpus))

    def to_numpy(self, arr: Array) -> np.ndarray:
        return arr.cpu().numpy()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._torch.Tensor)

    def _is_here(self, arr: Array) -> bool:
        # a tensor that records autograd history is not in place: it goes through _plain first
        return arr.device == self.device and not arr.requires_grad

    def _plain(self, arr: Array) -> Array:
        return arr.detach()

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        if not host.flags.writeable:  # torch would share it and warn that it cannot keep it read-only
            host = host.copy()
        return self.xp.asarray(host, dtype=dtype, device=self.device)


class JaxBackend(Backend):
    """JAX on one device: a ``jax.Device`` or ``"platform:index"`` (``"cpu:1"``, ``"gpu:0"``, the
    index-th device of that platform). float64 needs JAX's 64-bit mode, which gdxp never switches on."""

    name = "jax"
    module = "jax"
    library = "JAX"
    install = "pip install 'gdxp[jax]'"
    distributions = ("jax",)

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        jax = _import_library(type(self))
        self._jax = jax
        super().__init__(importlib.import_module("jax.numpy"), self._find_device(device), dtype)

    def _find_device(self, device: Any) -> Any:
        jax = self._jax
        if device is None:
            return jax.config.jax_default_device or jax.devices()[0]
        if isinstance(device, jax.Device):
            return device
        platform, _, index = str(device).partition(":") if isinstance(device, str) else ("", "", "")
        try:
            return jax.devices(platform)[int(index or 0)]
        except (RuntimeError, ValueError, IndexError):
            raise ValueError(f"a jax device is a jax.Device or 'platform:index' like 'cpu:0' or 'gpu:0'; "
                             f"got {device!r}, and the devices here are {', '.join(self.devices())}") from None

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        jax = _import_library(cls)
        return tuple(_jax_device_name(jax, d) for platform in ("gpu", "tpu", "cpu")
                     for d in _jax_platform_devices(jax, platform))

    @property
    def device_name(self) -> str:
        return _jax_device_name(self._jax, self.device)

    def to_numpy(self, arr: Array) -> np.ndarray:
        return np.asarray(self._jax.device_get(arr))

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return self._jax.default_device(self.device)  # creation functions would otherwise use device 0

    def _dtype_hint(self) -> str:
        if self.dtype_name == "float64" and not self._jax.config.jax_enable_x64:
            return (": JAX computes in float64 only in its 64-bit mode; switch it on yourself with "
                    "jax.config.update('jax_enable_x64', True) before making any array (gdxp never flips "
                    "that global switch), or use dtype='float32'")
        return ""

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._jax.Array)

    def _is_here(self, arr: Array) -> bool:
        return arr.devices() == {self.device}

    def _move(self, arr: Array) -> Array:
        return self._jax.device_put(arr, self.device)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return self._jax.device_put(np.asarray(host, dtype=np.dtype(dtype)), self.device)  # an explicit copy


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

    def activate(self) -> contextlib.AbstractContextManager[Any]:
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


BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend for backend in (NumpyBackend, CupyBackend, TorchBackend, JaxBackend, StrictBackend)}
BACKEND_NAMES = tuple(BACKENDS)


def get_backend(name: str | Backend | None = None, *, device: Any = None, dtype: Any = None) -> Backend:
    """Return the backend ``name`` on ``device`` with floating ``dtype``.

    ``name=None`` reads the ``GDXP_BACKEND`` environment variable, else uses ``"numpy"``.
    ``dtype=None`` is the library's own default (float64 for NumPy and array_api_strict, float32 for
    torch and for JAX outside its 64-bit mode) except on CuPy, where it is float32. A ``Backend``
    passed as ``name`` is returned as is (then ``device`` and ``dtype`` must be None).
    """
    if isinstance(name, Backend):
        if device is not None or dtype is not None:
            raise ValueError("pass device= and dtype= to get_backend() only with a backend name, not a Backend")
        return name
    if name is None:
        name = os.environ.get(ENV_VAR) or "numpy"
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name like 'numpy' or a Backend, got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name](device, dtype)


def _import_library(backend: type[Backend]) -> Any:
    """Import a backend's array library, or say why it cannot be used."""
    try:
        return importlib.import_module(backend.module)
    except ModuleNotFoundError:
        raise BackendUnavailableError(f"{backend.library} is not installed: {backend.install}") from None
    except Exception as err:  # a broken install raises all sorts of errors on import
        raise BackendUnavailableError(
            f"{backend.library} is installed but failed to import: {_first_line(err)}") from None


def _import_usable_cupy() -> Any:
    """Import CuPy and run a tiny elementwise kernel and a matrix product on the current device, or say
    exactly why it cannot run here: a machine with only a driver counts devices but fails on both."""
    cupy = _import_library(CupyBackend)
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
            f"CuPy is installed but cannot compute on the GPU ({_first_line(err)}); install CuPy with its "
            f"CUDA libraries: {CupyBackend.install}") from None
    return cupy


def _jax_platform_devices(jax: Any, platform: str) -> list[Any]:
    try:
        return jax.devices(platform)
    except RuntimeError:  # no such platform here
        return []


def _jax_device_name(jax: Any, device: Any) -> str:
    return f"{device.platform}:{jax.devices(device.platform).index(device)}"


def _dtype_name(dtype: Any) -> str:
    """'float32' or 'float64' from a name, a NumPy dtype or type, or a library's dtype object."""
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None)
    if name is None or name not in FLOAT_DTYPES:
        try:
            name = np.dtype(dtype).name
        except (TypeError, ValueError, SyntaxError):
            name = str(dtype).rsplit(".", 1)[-1]
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, got {dtype!r}")
    return name


def _strict_device_name(device: Any) -> str:
    return str(device).split("'")[1] if "'" in str(device) else str(device)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _is_foreign_array(obj: Any) -> bool:
    """An array of some library (it speaks DLPack), as opposed to host data NumPy reads directly."""
    return hasattr(obj, "__dlpack_device__") and not isinstance(obj, (np.ndarray, np.generic))


def _plain_foreign(obj: Any) -> Any:
    """An array of another library, without what stops DLPack from sharing it (torch's autograd graph)."""
    return obj.detach() if array_api_compat.is_torch_array(obj) else obj


def host_array(obj: Any, dtype: str) -> np.ndarray | None:
    """Host data (a NumPy array, a nested sequence, a scalar) as a plain NumPy array of ``dtype``, so
    that it can be checked where it is before it moves; None for an array of some array library."""
    if type(obj) is not np.ndarray and (_is_foreign_array(obj) or array_api_compat.is_array_api_obj(obj)):
        return None
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, which the caller reports
        return _numeric_host_array(obj).astype(dtype, copy=False)


def _numeric_host_array(obj: Any) -> np.ndarray:
    """``obj`` as a plain host NumPy array of real numbers, or a clear TypeError / ValueError."""
    if isinstance(obj, np.ma.MaskedArray):
        raise TypeError("masked arrays are not accepted: the values under the mask would be used; "
                        "fill them first (arr.filled(value)) or drop those samples")
    try:
        host = np.asarray(obj)  # also a plain ndarray for subclasses such as np.matrix
    except (ValueError, TypeError) as err:
        raise ValueError(f"expected a rectangular array of real numbers, got {type(obj).__name__} ({err})") from None
    if host.dtype.kind not in "biuf":
        raise TypeError(f"expected real numbers, got {type(obj).__name__} of dtype {host.dtype}")
    return host
