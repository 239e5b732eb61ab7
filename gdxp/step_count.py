"""The step count inside a compiled run, exact however long a network trains."""

from __future__ import annotations

from typing import NamedTuple

from ._typing import Array

__all__ = ["StepCount"]


class StepCount(NamedTuple):
    """The step count inside a compiled run: the count before the run as a float (``start``: the only form of
    it an optimizer reads, ``step * log(beta)``), and the run's own steps as a device integer (``ran``), so that
    no count overflows JAX's 32-bit integers (its default outside 64-bit mode) however long a network trains.
    The count itself stays on the host, a Python int: ``start``'s count plus ``ran``, read after the run."""

    start: Array
    ran: Array

    def __add__(self, steps: int) -> StepCount:  # type: ignore[override]
        return StepCount(self.start, self.ran + steps)

    def __mul__(self, factor: float) -> Array:  # type: ignore[override]
        return (self.start + self.ran) * factor
