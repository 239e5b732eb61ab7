"""NumPy on the CPU, the default backend."""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, quiet_numpy

# the pieces an in-place update goes through on a CPU: a few arrays' worth stay in its cache (a blocked Adam
# update of a 2048 x 2048 float32 weight took 7.8 ms here against 17.7-20.7 ms whole; PyTorch's 18-22 ms)
UPDATE_BYTES = 2**20


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

    def activate(self, *, training: bool = False) -> contextlib.AbstractContextManager[Any]:
        return quiet_numpy(training)

    def pieces(self, *arrays: Array) -> Sequence[tuple[Array, ...]]:
        return flat_pieces(arrays, all(a.flags.c_contiguous for a in arrays), arrays[0].itemsize)

    def _is_native(self, obj: Any) -> bool:
        return type(obj) is np.ndarray  # subclasses (np.matrix, masked arrays) are read as plain arrays

    def _is_here(self, arr: Array) -> bool:
        return True

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return np.asarray(host, dtype=dtype)


def flat_pieces(arrays: Sequence[Array], contiguous: bool, itemsize: int) -> Sequence[tuple[Array, ...]]:
    """``arrays`` as flat views cut into pieces of :data:`UPDATE_BYTES`, where they are ``contiguous`` (so
    that a flat view is a view, and a change to it lands in the array); else the arrays whole."""
    size, block = math.prod(arrays[0].shape), UPDATE_BYTES // itemsize
    if not contiguous or size <= block:
        return (tuple(arrays),)
    flat = [a.reshape(-1) for a in arrays]
    return [tuple(f[start:start + block] for f in flat) for start in range(0, size, block)]
