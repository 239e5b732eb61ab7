"""What the training loop (:mod:`gdxp.training`) and the ways of running its steps agree on: the model it
trains, a run's numbers, and the runner interface (:mod:`gdxp.eager`, :mod:`gdxp.compiled`)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from .architecture import Architecture
from .backend import Backend
from .optimizers import Optimizer
from .state import TrainState

__all__ = ["Model", "Numbers", "Runner"]


class Model(Protocol):
    """What the loop needs of a model (a :class:`gdxp.Network`): its architecture, backend, optimizer, the
    generator that shuffles its batches, and its training state, which the loop reads and publishes."""

    architecture: Architecture
    backend: Backend
    optimizer: Optimizer
    shuffle_rng: np.random.Generator
    state: TrainState


class Numbers(NamedTuple):
    """A run's reported numbers on the host, one row an epoch: the training losses, the validation loss and
    score (None without validation data), the recorded predictions (None unless recorded)."""

    losses: np.ndarray
    val_scores: np.ndarray | None
    predictions: np.ndarray | None

    def cut(self, count: int) -> Numbers:
        return Numbers(*(None if a is None else a[:count] for a in self))

    def first_not_finite(self) -> int | None:
        finite = np.isfinite(self.losses)
        if self.val_scores is not None:
            finite &= np.isfinite(self.val_scores[:, 0])
        return None if finite.all() else int(np.argmin(finite))


class Runner(Protocol):
    """How a run of epochs executes. ``run`` takes the state before the network's epoch ``epoch`` and runs
    ``count`` epochs from it; the others look back into the last two runs. ``compile_seconds``: what
    making the runner spent compiling (0 where nothing was compiled)."""

    compile_seconds: float

    def length(self, remaining: int) -> int:
        """Epochs in the next run, at most ``remaining``."""

    def run(self, state: TrainState, epoch: int, count: int) -> tuple[TrainState, Numbers]:
        """The state after the run, and its numbers."""

    def before(self, epoch: int) -> TrainState | None:
        """The state before the network's epoch ``epoch`` of the last two runs (None: not known)."""

    def rewind(self, count: int) -> TrainState:
        """The state after the first ``count`` epochs of the last run, the shuffling where those leave it."""

    def keep(self, count: int, state: TrainState) -> Any:
        """A handle on the state after the first ``count`` epochs of the last run (``state`` after all)."""

    def kept(self, handle: Any) -> TrainState:
        """The state a :meth:`keep` handle stands for."""

    def last_loss(self, state: TrainState) -> float | None:
        """The training loss of ``state``'s weights where the runner computed it already (None: not known)."""

    def latest(self, state: TrainState) -> TrainState:
        """After an interruption: the state of the last completed step (``state``, the last run's start or end)."""
