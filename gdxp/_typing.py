"""Type names shared by every module: what the array API standard leaves to each library.

An array of the backend's library (``numpy.ndarray``, ``torch.Tensor``, ``jax.Array``, ...) and that
library's array API namespace have no common Python type, so both are ``Any`` under a name that says
what is meant.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Array", "Namespace"]

Array = Any
Namespace = Any
