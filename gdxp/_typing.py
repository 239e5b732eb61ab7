"""Type names shared by every module: what the array API standard leaves to each library.

An array of the backend's library (``numpy.ndarray``, ``torch.Tensor``, ``jax.Array``, ...) and that
library's array API namespace have no common Python type, so both are ``Any`` under a name that says
what is meant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Array", "BatchMeans", "Namespace"]

Array = Any
Namespace = Any
# what a backend runs on a batch: (xp, weights, x, y) -> (means over its samples, prediction); the means are
# the mean loss's gradients and the loss, or validation scores
BatchMeans = Callable[[Namespace, Sequence[Array], Array, Array], tuple[list[Array], Array]]
