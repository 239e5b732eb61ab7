"""The generic backend: one class that runs gdxp's math on any array API namespace, and what every
library's corner shares (importing it, reading dtypes)."""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from .._typing import Array, BatchMeans, Namespace
from .compiler import Compiler
from .libraries import is_foreign_array, numeric_host_array, plain_foreign, read_in_place

__all__ = ["ARRAY_API_VERSION", "FLOAT_DTYPES", "Backend", "BackendUnavailableError"]

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
    compiler: Compiler | None = None  # set where runs of training steps compile into one program
    mutable: ClassVar[bool] = True  # whether arrays change in place (an optimizer then updates them there)
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
        self.dtype_name = self._default_dtype_name() if dtype is None else dtype_name(dtype)
        if self.dtype_name not in info.dtypes(device=device, kind="real floating"):
            raise ValueError(f"{self.name} on {self.device_name} has no {self.dtype_name}{self._dtype_hint()}")
        self.dtype = getattr(xp, self.dtype_name)
        self.index_dtype = info.default_dtypes(device=device)["indexing"]

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device_name!r}, dtype={self.dtype_name!r})"

    @property
    def parameters(self) -> Backend:
        """The backend that holds the weights and the optimizer's state: this one, except where the data
        is spread out and the weights are small (Dask: NumPy arrays on the client)."""
        return self

    def batch_means(self, function: BatchMeans, weights: Sequence[Array], x: Array, y: Array,
                    sample_weight: Array | None = None) -> tuple[Any, Array]:
        """``function(xp, weights, x, y)``: means over the batch's samples (the mean loss's gradients and the
        loss, or validation scores) and the prediction, here on the whole batch in one go (Dask: a task per
        chunk, then a sum, the means as one lazy list; see there). Read the means through :meth:`settled`. With
        ``sample_weight``: means weighted by it (``function`` given the shares ``w / sum(w)``), then ``sum(w)``."""
        if sample_weight is None:
            return function(self.xp, weights, x, y)
        total = self.xp.sum(sample_weight)  # a batch whose weights sum to 0 has shares 0, so means 0
        means, prediction = function(self.xp, weights, x, y, sample_weight / self.xp.where(total > 0.0, total, 1.0))
        return [*means, total], prediction

    def settled(self, means: Any) -> list[Array]:
        """The means of :meth:`batch_means` as a list of :attr:`parameters` arrays (a step's gradients and
        loss, which the optimizer updates the weights with): as they are, without waiting for the device,
        except where they are lazy (Dask computes them, in one graph per step, so that no graph ever holds
        the steps before it)."""
        return means

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
            if is_foreign_array(obj):
                arr = self._from_foreign(obj, dtype)
                return self.xp.asarray(arr, copy=True) if copy and self.mutable else arr  # it may share memory
            host = numeric_host_array(obj)
            return self._from_host(host.copy() if copy else host, dtype)
        if not copy and obj.dtype == dtype and self._is_here(obj):
            return obj  # the common case on the hot path: already in place
        arr = self._plain(obj)
        if not self.xp.isdtype(arr.dtype, ("bool", "integral", "real floating")):
            raise TypeError(f"expected real numbers, got an array of dtype {arr.dtype}")
        with self.activate():
            converted = False  # a move or a cast makes a new array; otherwise arr may share obj's memory
            if not self._is_here(arr):
                arr, converted = self._move(arr), True
            if arr.dtype != dtype:
                arr, converted = self.xp.astype(arr, dtype), True
            return self.xp.asarray(arr, copy=True) if copy and not converted else arr

    def holds(self, arr: Any) -> bool:
        """Whether ``arr`` is already this backend's: its library, its device and its dtype."""
        return self._is_native(arr) and arr.dtype == self.dtype and self._is_here(arr)

    def pieces(self, *arrays: Array) -> Sequence[tuple[Array, ...]]:
        """``arrays`` (of one shape) as pieces an in-place update may go through one at a time: here whole; on
        a CPU, flat views of about a megabyte (:func:`gdxp.backend.numpy.flat_pieces`) that stay in cache."""
        return (arrays,)

    def largest_magnitude(self, arr: Array) -> float:
        """``max |arr|`` as a float (one read from the device)."""
        return float(self.to_numpy(self.xp.max(self.xp.abs(arr))))

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

    def synchronize(self, *arrays: Array) -> None:
        """Wait until the device has computed ``arrays`` (for honest timing): all work queued on the device
        where the library can wait for that (CuPy, torch CUDA), those arrays where it waits per array (JAX;
        with none given, every array alive on the device). No-op on the CPU."""

    def activate(self, *, training: bool = False) -> contextlib.AbstractContextManager[Any]:
        """Context in which gdxp's math runs: arrays made inside land on this backend's device, and
        overflow gives infinity quietly, as IEEE arithmetic does on a GPU (``1 / (1 + exp(-sop))`` is
        exactly 0 when ``exp`` overflows). In a ``training`` run, where a loss that turns NaN stops the
        run with :class:`gdxp.TrainingDiverged`, invalid operations (``inf - inf``) are quiet too."""
        return contextlib.nullcontext()

    # -- seeded random numbers, drawn on the host ------------------------------------------------

    def uniform(self, rng: np.random.Generator, shape: Sequence[int], low: float, high: float) -> Array:
        """Uniform draws in [low, high): ``low + (high - low) * rng.random(shape)``, then moved here."""
        return self.asarray(low + (high - low) * rng.random(tuple(shape)))

    def normal(self, rng: np.random.Generator, shape: Sequence[int], std: float) -> Array:
        """Normal draws with mean 0 and standard deviation ``std``, then moved here."""
        return self.asarray(std * rng.standard_normal(tuple(shape)))

    def shuffled(self, rng: np.random.Generator, *arrays: Array) -> tuple[Array, ...]:
        """An epoch's samples in a new order drawn from ``rng``: ``rng.permutation(n_samples)`` of the rows
        of each of ``arrays`` (a library whose data is spread out may draw its own order, documented there)."""
        order = self.asarray(rng.permutation(arrays[0].shape[0]), dtype=self.index_dtype)
        return tuple(self.xp.take(arr, order, axis=0) for arr in arrays)

    # -- where the data lives --------------------------------------------------------------------

    def paired(self, inputs: Array, targets: Array) -> tuple[Array, Array]:
        """Inputs and targets of the same samples laid out alike, row for row (Dask: in the same chunks)."""
        return inputs, targets

    def using(self, client: Any) -> contextlib.AbstractContextManager[Any]:
        """Context in which work runs on ``client``, a cluster's client (None: where it runs anyway); only
        a backend that runs on a cluster (Dask) takes one."""
        if client is not None:
            raise ValueError(f"client= runs the work on a cluster, which the dask backend does; this network "
                             f"runs on {self.name}")
        return contextlib.nullcontext()

    # -- what a library may do its own way --------------------------------------------------------

    def _default_dtype_name(self) -> str:
        """The library's own default floating dtype on this device."""
        return dtype_name(self.xp.__array_namespace_info__().default_dtypes(device=self.device)["real floating"])

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
        source = plain_foreign(obj)
        if source.__dlpack_device__()[0] == _DLPACK_CPU:
            return self._from_host(numeric_host_array(read_in_place(source)), dtype)
        try:
            imported = self.xp.from_dlpack(source)
        except (BufferError, RuntimeError, TypeError, ValueError):
            return self._from_host(numeric_host_array(np.from_dlpack(source, device="cpu", copy=True)), dtype)
        return self.asarray(imported, dtype=dtype)


def import_library(backend: type[Backend]) -> Any:
    """Import a backend's array library, or say why it cannot be used."""
    try:
        with warnings.catch_warnings():  # a warning while importing is not a failure, even where warnings raise
            warnings.simplefilter("default")
            return importlib.import_module(backend.module)
    except ModuleNotFoundError:
        raise BackendUnavailableError(f"{backend.library} is not installed: {backend.install}") from None
    except Exception as err:  # a broken install raises all sorts of errors on import
        raise BackendUnavailableError(
            f"{backend.library} is installed but failed to import: {first_line(err)}") from None


def dtype_name(dtype: Any) -> str:
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


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def quiet_numpy(training: bool) -> contextlib.AbstractContextManager[Any]:
    """NumPy's error state for gdxp's math: overflow quiet (an exact 0 or inf is the right answer), and
    in training an invalid value too (the loss check reports it); a division by zero always warns."""
    return np.errstate(over="ignore", invalid="ignore") if training else np.errstate(over="ignore")
