"""array_api_strict: the standard and nothing more, with simulated devices."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, import_library, quiet_numpy


class StrictBackend(Backend):
    """array_api_strict: the standard and nothing more, with simulated devices that refuse mixing."""

    name = "array_api_strict"
    module = "array_api_strict"
    library = "array-api-strict"
    install = "pip install array-api-strict"
    distributions = ("array-api-strict",)

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        xp = import_library(type(self))
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
        xp = import_library(cls)
        return tuple(_strict_device_name(d) for d in xp.__array_namespace_info__().devices())

    @property
    def device_name(self) -> str:
        return _strict_device_name(self.device)

    def to_numpy(self, arr: Array) -> np.ndarray:
        return np.asarray(arr.to_device(self._cpu))

    def activate(self, *, training: bool = False) -> contextlib.AbstractContextManager[Any]:
        return quiet_numpy(training)

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._array_type)


def _strict_device_name(device: Any) -> str:
    return str(device).split("'")[1] if "'" in str(device) else str(device)
