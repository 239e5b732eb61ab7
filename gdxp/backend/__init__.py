"""Array libraries and devices: the one package that knows which library runs the math.

Everything else in gdxp writes its math against ``backend.xp``, an array API standard namespace, and
asks a :class:`Backend` to move data between the host and the device. One generic class does that for
any library through array-api-compat (``array_namespace``, ``device``, ``to_device``) and DLPack; each
library's subclass, one small module each, only says what that library does its own way (CuPy's device
context, JAX's device placement and 64-bit switch, torch's device names). This package is the only place
that imports an array library (lazily: importing gdxp imports none but NumPy), picks devices, copies
arrays to or from a device, waits for queued device work, and draws seeded random numbers, on the host,
so that one seed gives bit-identical weights on every backend.
"""

from __future__ import annotations

import os
from typing import Any

from .base import ARRAY_API_VERSION, Backend, BackendUnavailableError
from .cupy import CupyBackend
from .dask import DaskBackend
from .jax import JaxBackend
from .libraries import host_array
from .numpy import NumpyBackend
from .strict import StrictBackend
from .torch import TorchBackend

__all__ = [
    "ARRAY_API_VERSION",
    "BACKENDS",
    "BACKEND_NAMES",
    "ENV_VAR",
    "Backend",
    "BackendUnavailableError",
    "get_backend",
    "host_array",
]

ENV_VAR = "GDXP_BACKEND"
BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend for backend in (NumpyBackend, CupyBackend, TorchBackend, JaxBackend, StrictBackend,
                                          DaskBackend)}
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
