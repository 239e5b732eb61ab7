"""Learning-rate schedules: the rate of each epoch, from the rate ``fit`` was given.

A schedule is any callable ``schedule(epoch) -> rate`` of the network's epoch (counted from 1 at its first
epoch ever, so a run split across ``fit`` calls takes the rates of the run in one); ``fit`` also takes one of
the names below, built from its ``learning_rate`` and the epoch its run ends at. Each rate is computed on
the host as its epoch comes and checked (the first before anything changes; a later bad one stops the run
there), so no rate is kept ahead; a compiled run takes a run's rates as data, so a new schedule does not
recompile.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .registry import lookup

__all__ = ["SCHEDULES", "Schedule", "cosine", "exponential", "named_schedule", "step"]

Schedule = Callable[[int], float]


def step(rate: float, epochs: int, *, every: int = 10, factor: float = 0.5) -> Schedule:
    """``rate`` times ``factor`` once every ``every`` epochs: halved every 10 by default."""
    return lambda epoch: rate * factor ** ((epoch - 1) // every)


def exponential(rate: float, epochs: int, *, factor: float = 0.96) -> Schedule:
    """``rate * factor ** (epoch - 1)``: a steady decay, 4% an epoch by default."""
    return lambda epoch: rate * factor ** (epoch - 1)


def cosine(rate: float, epochs: int) -> Schedule:
    """Half a cosine from ``rate`` at the first epoch down towards 0 after the last (Loshchilov and Hutter,
    2017, without restarts), never reaching 0 so that every epoch still steps."""
    return lambda epoch: rate * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))


SCHEDULES: dict[str, Callable[[float, int], Schedule]] = {"step": step, "exponential": exponential, "cosine": cosine}


def named_schedule(name: str, rate: float, epochs: int) -> Schedule:
    """The schedule called ``name``, starting at ``rate`` over ``epochs`` epochs."""
    return lookup(SCHEDULES, name, "learning-rate schedule", "a schedule is a name like 'cosine' or a callable",
                  argument="learning_rate_schedule")(rate, epochs)
