"""Type names shared by every module: what the array API standard leaves to each library.

An array of the backend's library (``numpy.ndarray``, ``torch.Tensor``, ``jax.Array``, ...) and that
library's array API namespace have no common Python type, so both are ``Any`` under a name that says
what is meant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Array", "BatchGradients", "Namespace"]

Array = Any
Namespace = Any
# backprop on one batch, as a backend runs it: (xp, weights, x, y) -> (gradients, mean loss or None, prediction)
BatchGradients = Callable[[Namespace, Sequence[Array], Array, Array], tuple[list[Array], Array | None, Array]]
