"""A training run's state as one value: what a step maps to the next, and what a network holds.

:class:`TrainState` is everything training changes: the weights, the optimizer's state and step count,
the epochs run so far (schedules and patience count from the network's first epoch, not a ``fit`` call's)
and patience's own record. The training loop carries it, publishes it to the network at every epoch
boundary (so hooks see, save and set the network as it is), and a network is a façade over the one it
holds. Where the arrays are mutable and the optimizer keeps state, an update changes them in place:
:func:`checkpoint` is the copy to keep of a moment that must survive later steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ._typing import Array, Namespace

__all__ = ["Patience", "TrainState", "checkpoint"]


class Patience(NamedTuple):
    """Early stopping's record, carried from one ``fit`` to the next: the best validation loss so far, its
    epoch (counted from the network's first), its weights, and the epochs since it."""

    best_loss: float
    best_epoch: int
    best_weights: Sequence[Array]
    waited: int


class TrainState(NamedTuple):
    """The weights (in :meth:`gdxp.Network.get_weights` order), the optimizer's state (empty before its
    first step), the steps and the epochs taken, and patience's record (None without one)."""

    weights: Sequence[Array]
    optimizer_state: Sequence[Sequence[Array]] = ()
    steps: int = 0
    epoch: int = 0
    patience: Patience | None = None


def checkpoint(xp: Namespace, state: TrainState, into: TrainState | None = None) -> TrainState:
    """A copy of ``state``'s arrays that later in-place updates cannot change; written into ``into``'s arrays
    (an earlier checkpoint of the same shapes, no longer needed) where given, so no memory is allocated."""
    if into is None:
        return state._replace(weights=[xp.asarray(w, copy=True) for w in state.weights],
                              optimizer_state=[[xp.asarray(a, copy=True) for a in slot]
                                               for slot in state.optimizer_state])
    for source, target in zip(_arrays(state), _arrays(into)):
        target[...] = source
    return state._replace(weights=into.weights, optimizer_state=into.optimizer_state)


def _arrays(state: TrainState) -> list[Array]:
    return [*state.weights, *(a for slot in state.optimizer_state for a in slot)]
