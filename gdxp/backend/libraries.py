"""Which array library an array belongs to, on which device, and its values on the host: the questions a
caller outside the backend (the estimators, with scikit-learn's array-API dispatch) asks of arrays it
did not make."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["device_key", "library_name", "read_in_place", "to_host"]

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
