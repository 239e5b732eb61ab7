"""Weight initializers: how the first weights of an ``(n_in, n_out)`` layer are drawn.

Draws come from the backend, which makes them on the host from a seeded NumPy ``Generator`` and then
moves them, so one seed gives the same starting weights on every device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import Backend
from .registry import lookup

__all__ = ["INITIALIZERS", "get_initializer"]

Initializer = Callable[[Backend, np.random.Generator, int, int], Any]


def uniform(backend: Backend, rng: np.random.Generator, n_in: int, n_out: int) -> Any:
    """U[0, 1), like the tutorials' ``numpy.random.rand``."""
    return backend.uniform(rng, (n_in, n_out), 0.0, 1.0)


def normal(backend: Backend, rng: np.random.Generator, n_in: int, n_out: int) -> Any:
    """N(0, 1 / sqrt(n_in)), like the backprop walkthrough notebook."""
    return backend.normal(rng, (n_in, n_out), n_in**-0.5)


def glorot_uniform(backend: Backend, rng: np.random.Generator, n_in: int, n_out: int) -> Any:
    """U(-limit, limit) with limit = sqrt(6 / (n_in + n_out)) (Glorot and Bengio, 2010)."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    return backend.uniform(rng, (n_in, n_out), -limit, limit)


def he_normal(backend: Backend, rng: np.random.Generator, n_in: int, n_out: int) -> Any:
    """N(0, sqrt(2 / n_in)) (He et al., 2015), for ReLU layers."""
    return backend.normal(rng, (n_in, n_out), math.sqrt(2.0 / n_in))


INITIALIZERS: dict[str, Initializer] = {
    "uniform": uniform,
    "normal": normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
}


def get_initializer(name: str) -> Initializer:
    """The initializer called ``name``, or a clear error listing the choices."""
    return lookup(INITIALIZERS, name, "initializer", "an initializer is a name like 'glorot_uniform'",
                  argument="init")
