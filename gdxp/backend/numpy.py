"""NumPy on the CPU, the default backend."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, quiet_numpy


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

    def _is_native(self, obj: Any) -> bool:
        return type(obj) is np.ndarray  # subclasses (np.matrix, masked arrays) are read as plain arrays

    def _is_here(self, arr: Array) -> bool:
        return True

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return np.asarray(host, dtype=dtype)
