"""What a backend that compiles runs of training steps offers the training loop: :class:`Compiler`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._typing import Array

__all__ = ["Compiler"]


class Compiler(Protocol):
    """What a backend that can trace gdxp's own array code into one program offers the training loop
    (JAX does; another tracing library could): the loop's structure, never a second copy of the math."""

    def compile(self, function: Callable[..., Any], *args: Any) -> tuple[Callable[..., Any], float]:
        """``function`` traced and compiled for arguments like ``args`` (arrays on the backend's device),
        and the seconds that took."""

    def scan(self, body: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any) -> tuple[Any, Any]:
        """``body(carry, x) -> (carry, y)`` over the leading axis of ``xs``; the last carry and the stacked ys."""

    def when(self, flag: Array, then: Callable[..., Any], otherwise: Callable[..., Any], *operands: Any) -> Any:
        """``then(*operands)`` where the 0-d boolean ``flag`` holds, else ``otherwise(*operands)``: only one runs."""
