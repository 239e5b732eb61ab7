"""Which array library an array belongs to, on which device, and its values on the host: the questions asked
of arrays gdxp did not make, by the backends (host data or a library's array?) and by callers outside them (the
estimators, with scikit-learn's array-API dispatch)."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["device_key", "host_array", "is_foreign_array", "library_name", "numeric_host_array", "plain_foreign",
           "read_in_place", "to_host"]

_LIBRARIES = (("numpy", array_api_compat.is_numpy_array), ("torch", array_api_compat.is_torch_array),
              ("jax", array_api_compat.is_jax_array), ("cupy", array_api_compat.is_cupy_array),
              ("dask", array_api_compat.is_dask_array))


def library_name(arr: Any) -> str:
    """gdxp's backend name for the array library of ``arr`` (a TypeError for anything else)."""
    for name, test in _LIBRARIES:
        if test(arr):
            return name
    if array_api_compat.is_array_api_obj(arr) and array_api_compat.is_array_api_strict_namespace(
            array_api_compat.array_namespace(arr)):
        return "array_api_strict"
    raise TypeError(f"gdxp has no backend for arrays of type {type(arr).__name__}")


def device_key(arr: Any) -> str:
    """The device of ``arr`` as text, to tell two arrays' places apart."""
    return str(array_api_compat.device(arr))


def to_host(arr: Any) -> Any:
    """An array of any library as a host NumPy array (through DLPack: in place from host memory, copied from
    a device); anything that is not an array library's (lists, NumPy arrays, None) as it is."""
    if arr is None or isinstance(arr, np.ndarray) or not array_api_compat.is_array_api_obj(arr):
        return arr
    if array_api_compat.is_dask_array(arr):
        return np.asarray(arr)
    try:
        return np.from_dlpack(arr)
    except (BufferError, RuntimeError, TypeError, ValueError):  # on a device: copied to the host
        return np.from_dlpack(arr, device="cpu", copy=True)


def read_in_place(arr: Any) -> np.ndarray:
    """An array of another library in host memory as a NumPy array sharing it (DLPack); a TypeError for one
    NumPy cannot read (bfloat16, a sparse layout), rather than the library's BufferError or RuntimeError."""
    try:
        return np.from_dlpack(arr)
    except (BufferError, RuntimeError, TypeError) as err:
        why = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise TypeError(f"expected a dense array of real numbers NumPy can read, got {type(arr).__name__} of dtype "
                        f"{getattr(arr, 'dtype', '?')} ({why})") from None


def is_foreign_array(obj: Any) -> bool:
    """An array of some library (it speaks DLPack), as opposed to host data NumPy reads directly."""
    return hasattr(obj, "__dlpack_device__") and not isinstance(obj, (np.ndarray, np.generic))


def plain_foreign(obj: Any) -> Any:
    """An array of another library, without what stops DLPack from sharing it (torch's autograd graph)."""
    return obj.detach() if array_api_compat.is_torch_array(obj) else obj


def host_array(obj: Any, dtype: str) -> np.ndarray | None:
    """Host data (a NumPy array, a nested sequence, a scalar) as a plain NumPy array of ``dtype``, so
    that it can be checked where it is before it moves; None for an array of some array library."""
    if type(obj) is not np.ndarray and (is_foreign_array(obj) or array_api_compat.is_array_api_obj(obj)):
        return None
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, which the caller reports
        return numeric_host_array(obj).astype(dtype, copy=False)


def numeric_host_array(obj: Any) -> np.ndarray:
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
