"""Which backends can run here: each library's version and devices, or why it cannot run.

Nothing here imports an array library itself: it asks each backend class of :mod:`gdxp.backend`
for its devices and reports what went wrong, for ``python -m gdxp info`` and for tests that skip
with the reason.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

from .backend import BACKENDS, BackendUnavailableError, get_backend

__all__ = ["BackendStatus", "available_backends", "backend_status"]


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can run here: its library version, devices and default dtype, or why it cannot."""

    name: str
    usable: bool
    reason: str | None
    version: str | None
    devices: tuple[str, ...]
    default_dtype: str | None
    install: str

    def __str__(self) -> str:
        if not self.usable:
            return f"{self.name}: unavailable ({self.reason})"
        return (f"{self.name} {self.version}: devices {', '.join(self.devices)}; "
                f"default dtype {self.default_dtype}")


def available_backends() -> dict[str, BackendStatus]:
    """For every known backend, whether it is usable here, and if not, why (never raises)."""
    return {name: backend_status(name) for name in BACKENDS}


def backend_status(name: str) -> BackendStatus:
    """Whether the backend ``name`` is usable here, and if not, why (never raises for a known name)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    kind = BACKENDS[name]
    version = _version(kind.distributions)
    try:
        devices = kind.devices()
        default_dtype = get_backend(name).dtype_name
    except BackendUnavailableError as err:
        return BackendStatus(name, False, str(err), version, (), None, kind.install)
    return BackendStatus(name, True, None, version, devices, default_dtype, kind.install)


def _version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
