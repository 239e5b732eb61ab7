"""Steps run one at a time, on any backend: the training loop's eager runner."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ._typing import Array
from .options import FitOptions
from .runner import Model, Numbers
from .state import TrainState, checkpoint
from .steps import UpdateGuard, batches, make_step, scores

__all__ = ["RUN_SECONDS", "EagerRunner"]

RUN_SECONDS = 0.1  # an eager run of epochs that no hook watches one by one reports about this often


class EagerRunner:
    """Steps run one at a time. Where no hook needs each epoch as it ends (no callbacks, patience,
    validation or recorded predictions), a run goes on for up to :data:`RUN_SECONDS`, reading each epoch's
    loss as it ends and stopping at the first that is not finite; otherwise a run is one epoch. Where
    updates change arrays in place, the states before the last two epochs are kept as copies, for a
    divergence to fall back on."""

    compile_seconds = 0.0

    def __init__(self, model: Model, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
                 options: FitOptions, guard: UpdateGuard | None, watched: bool,
                 sample_weight: Array | None = None) -> None:
        self.backend, self.architecture, self.options = model.backend, model.architecture, options
        self.inputs, self.validation = inputs, validation
        self.data = (inputs, targets) if sample_weight is None else (inputs, targets, sample_weight)
        self.size = options.batch_size_for(inputs.shape[0])
        self._one_batch = self.size >= inputs.shape[0]
        self.rng = model.shuffle_rng if options.shuffle and self.size < inputs.shape[0] else None
        self._copies, self._guard = guard is not None, guard
        self._make = lambda rate: make_step(model.backend, model.architecture, model.optimizer, rate,
                                            options.weight_decay, guard)
        self._fixed = None if options.schedule is not None else self._make(options.learning_rate)
        self._per_epoch = bool(watched or options.callbacks or options.patience is not None
                               or validation is not None or options.record_predictions)
        # (epoch, the carry before it) for the last two epochs
        self._previous: tuple[int, tuple[Any, ...]] | None = None
        self._current: tuple[int, tuple[Any, ...]] | None = None
        self._trained: tuple[Any, ...] | None = None  # within an epoch, after its last completed step
        self._done: tuple[tuple[Any, ...], int] | None = None  # within a run, after its last completed epoch
        self._patience, self._first = model.state.patience, 0

    def length(self, remaining: int) -> int:
        return 1 if self._per_epoch else remaining

    def run(self, state: TrainState, epoch: int, count: int) -> tuple[TrainState, Numbers]:
        xp, to_float, clock, isfinite = self.backend.parameters.xp, self.backend.to_float, time.perf_counter, \
            math.isfinite
        trained, losses = (state.weights, state.optimizer_state, state.steps), []
        fixed, copies, guard, one_epoch = self._fixed, self._copies, self._guard, self._epoch
        deadline = clock() + RUN_SECONDS
        self._patience, self._done, self._first = state.patience, None, epoch
        for current in range(epoch, epoch + count):
            if copies:  # the copy from two epochs back is no longer needed: it takes this one
                spare = None if self._previous is None else self._previous[1]
                self._previous, self._current = self._current, (current, _copied(xp, trained, spare))
            else:
                self._previous, self._current = self._current, (current, trained)
            trained, value, prediction = one_epoch(trained, fixed or self._make(self.options.rate(current)))
            self._done = trained, current
            if guard is not None:
                guard.deliver()
            if self._per_epoch:
                ran = self._state(trained, current)
                return ran, self._numbers(ran, value, prediction)
            losses.append(to_float(value))
            if not isfinite(losses[-1]) or clock() > deadline:
                break
        self._done = None
        return self._state(trained, epoch + len(losses) - 1), Numbers(np.array(losses), None, None)

    def _epoch(self, trained: tuple[Any, ...], step: Any) -> tuple[tuple[Any, ...], Array, Array]:
        """One epoch's steps; its mean loss over the samples, each batch's taken before its update (with sample
        weights, each batch's weighted mean counted by its samples, as scikit-learn's ``loss_``)."""
        if self._one_batch:  # the tutorials' case, where the epoch loop's own cost shows
            return step(trained, *self.data)
        n_samples = self.inputs.shape[0]
        total = None
        self._trained = trained
        for batch in batches(self.backend, self.rng, self.size, *self.data):
            trained, value, prediction = step(trained, *batch)
            self._trained = trained
            if self._guard is not None:
                self._guard.deliver()
            weighted = value * batch[0].shape[0]
            total = weighted if total is None else total + weighted
        self._trained = None
        return trained, total / n_samples, prediction

    def _state(self, trained: tuple[Any, ...], epoch: int) -> TrainState:
        return TrainState(*trained, epoch, self._patience)

    def _numbers(self, ran: TrainState, value: Array, prediction: Array) -> Numbers:
        backend = self.backend
        reported = [value]
        if self.validation is not None:
            reported.append(scores(backend, self.architecture, ran.weights, self.validation))
        if self.options.record_predictions:
            reported.append(prediction)
        values = [backend.to_numpy(a).reshape(-1) for a in reported]  # the first read waits, the rest copy
        return Numbers(values[0][:1].astype(np.float64),
                       values[1][None, :].astype(np.float64) if self.validation is not None else None,
                       values[-1].reshape((1, *prediction.shape)) if self.options.record_predictions else None)

    def before(self, epoch: int) -> TrainState | None:
        for kept in (self._current, self._previous):
            if kept is not None and kept[0] == epoch:
                return self._state(kept[1], epoch - 1)
        return None

    def rewind(self, count: int) -> TrainState:
        """Only the start of a run's last epoch is kept (where it diverged, or where a hook stopped a run of one)."""
        current, carried = self._current
        if current != self._first + count:
            raise ValueError(f"an eager run keeps the state before its last epoch, not after epoch {count} of it")
        return self._state(carried, current - 1)

    def keep(self, count: int, state: TrainState) -> TrainState:
        return checkpoint(self.backend.parameters.xp, state) if self._copies else state

    def kept(self, handle: TrainState) -> TrainState:
        return handle

    def last_loss(self, state: TrainState) -> None:
        return None  # on the way: scoring the last weights costs one forward pass

    def latest(self, state: TrainState) -> TrainState:
        if self._done is not None:  # inside a run: its last completed epoch
            state = self._state(*self._done)
        if self._trained is not None:  # inside an epoch: its last completed step
            weights, optimizer_state, steps = self._trained
            state = state._replace(weights=weights, optimizer_state=optimizer_state, steps=steps)
        return state


def _copied(xp: Any, trained: tuple[Any, ...], spare: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """A :func:`~gdxp.state.checkpoint` of a step's carry, written into ``spare`` (the carry of an earlier one)."""
    weights, optimizer_state, steps = trained
    copy = checkpoint(xp, TrainState(weights, optimizer_state), None if spare is None else TrainState(*spare[:2]))
    return copy.weights, copy.optimizer_state, steps
