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

__all__ = ["READ_EVERY", "RUN_SECONDS", "EagerRunner"]

RUN_SECONDS = 0.1  # an eager run of epochs that no hook watches one by one reports about this often
READ_EVERY = 32  # epochs of one step each whose losses a run reads from the device at once


class EagerRunner:
    """Steps run one at a time. Where no hook needs each epoch as it ends (no callbacks, patience,
    validation or recorded predictions), a run goes on for up to :data:`RUN_SECONDS` and stops at the first
    epoch whose loss is not finite; otherwise a run is one epoch. The losses are read from the device once an
    epoch, except where an epoch is a single step (one batch): then, as the compiled runner does, once every
    :data:`READ_EVERY` epochs, and a read that finds a loss that is not finite replays the steps up to it.
    The state before each read's first epoch is kept for the last two reads (a copy where updates change arrays
    in place), and a state inside them is replayed from there."""

    compile_seconds = 0.0

    def __init__(self, model: Model, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
                 options: FitOptions, guard: UpdateGuard | None, watched: bool) -> None:
        self.backend, self.architecture, self.options = model.backend, model.architecture, options
        self.inputs, self.targets, self.validation = inputs, targets, validation
        self.size = options.batch_size_for(inputs.shape[0])
        self._one_batch = self.size >= inputs.shape[0]
        self.rng = model.shuffle_rng if options.shuffle and not self._one_batch else None
        self._copies, self._guard = guard is not None, guard
        self._make = lambda rate: make_step(model.backend, model.architecture, model.optimizer, rate,
                                            options.weight_decay, guard)
        self._fixed = None if options.schedule is not None else self._make(options.learning_rate)
        self._per_epoch = bool(watched or options.callbacks or options.patience is not None
                               or validation is not None or options.record_predictions)
        # replaying a step needs no shuffled order: only epochs of one batch are read several at once
        self._group = READ_EVERY if self._one_batch and not self._per_epoch else 1
        # (epoch, the carry before it) where each of the last two reads began, and the last epoch run
        self._previous: tuple[int, tuple[Any, ...]] | None = None
        self._current: tuple[int, tuple[Any, ...]] | None = None
        self._ran_to = 0
        self._trained: tuple[Any, ...] | None = None  # within an epoch, after its last completed step
        self._done: tuple[tuple[Any, ...], int] | None = None  # within a run, after its last completed epoch
        self._patience, self._first = model.state.patience, 0

    def length(self, remaining: int) -> int:
        return 1 if self._per_epoch else remaining

    def run(self, state: TrainState, epoch: int, count: int) -> tuple[TrainState, Numbers]:
        clock, one_epoch, fixed, group = time.perf_counter, self._epoch, self._fixed, self._group
        trained, losses, pending = (state.weights, state.optimizer_state, state.steps), [], []
        guard, last = self._guard, epoch + count - 1
        deadline = clock() + RUN_SECONDS
        self._patience, self._done, self._first = state.patience, None, epoch
        for current in range(epoch, last + 1):
            if not pending:  # a read begins here
                self._mark(current, trained)
            trained, value, prediction = one_epoch(trained, fixed or self._step_for(current))
            self._done, self._ran_to = (trained, current), current
            if guard is not None:
                guard.deliver()
            if self._per_epoch:
                ran = self._state(trained, current)
                return ran, self._numbers(ran, value, prediction)
            pending.append(value)
            late = clock() > deadline
            if len(pending) < group and current < last and not late:
                continue
            read = self._read(pending)
            bad = next((i for i, loss in enumerate(read) if not math.isfinite(loss)), None)
            losses += read if bad is None else read[:bad + 1]
            if bad is not None and bad < len(read) - 1:  # past it: the run ends where that loss came
                self._ran_to = current - len(read) + bad + 1
                trained = self._replayed(self._current, self._ran_to + 1)
            if bad is not None or late:
                break
            pending = []
        self._done = None
        return self._state(trained, epoch + len(losses) - 1), Numbers(np.array(losses), None, None)

    def _step_for(self, epoch: int) -> Any:
        return self._fixed or self._make(self.options.rate(epoch))

    def _mark(self, epoch: int, trained: tuple[Any, ...]) -> None:
        """Keep the carry before ``epoch``, where a read begins (written into the one kept two reads back)."""
        if self._copies:
            spare = None if self._previous is None else self._previous[1]
            trained = _copied(self.backend.parameters.xp, trained, spare)
        self._previous, self._current = self._current, (epoch, trained)

    def _read(self, pending: list[Array]) -> list[float]:
        """The losses of the epochs since the last read: one read from the device."""
        held = self.backend.parameters
        return held.to_numpy(held.xp.stack(pending)).astype(np.float64).tolist()

    def _replayed(self, mark: tuple[int, tuple[Any, ...]], epoch: int) -> tuple[Any, ...]:
        """The carry before ``epoch``: the steps from ``mark`` run again (the same steps on the same batch, so
        the same numbers), on a copy where updates change arrays in place, so that the mark stays as it was."""
        first, trained = mark
        if epoch > first and self._copies:
            trained = _copied(self.backend.parameters.xp, trained, None)
        for replayed in range(first, epoch):
            trained = self._epoch(trained, self._step_for(replayed))[0]
            if self._guard is not None:
                self._guard.deliver()
        return trained

    def _epoch(self, trained: tuple[Any, ...], step: Any) -> tuple[tuple[Any, ...], Array, Array]:
        """One epoch's steps; its mean loss over the samples, each batch's taken before its update."""
        if self._one_batch:  # the tutorials' case, where the epoch loop's own cost shows
            return step(trained, self.inputs, self.targets)
        n_samples = self.inputs.shape[0]
        total = None
        self._trained = trained
        for batch_x, batch_y in batches(self.backend, self.rng, self.inputs, self.targets, self.size):
            trained, value, prediction = step(trained, batch_x, batch_y)
            self._trained = trained
            if self._guard is not None:
                self._guard.deliver()
            weighted = value * batch_x.shape[0]
            total = weighted if total is None else total + weighted
        self._trained = None
        return trained, total / n_samples, prediction

    def _state(self, trained: tuple[Any, ...], epoch: int) -> TrainState:
        return TrainState(*trained, epoch, self._patience)

    def _numbers(self, ran: TrainState, value: Array, prediction: Array) -> Numbers:
        """An epoch's numbers: the loss and the validation scores in one read, the prediction where recorded."""
        held = self.backend.parameters
        scored = [held.xp.reshape(value, (1,))]
        if self.validation is not None:
            scored.append(scores(self.backend, self.architecture, ran.weights, self.validation))
        values = held.to_numpy(held.xp.concat(scored) if len(scored) > 1 else scored[0]).astype(np.float64)
        recorded = None
        if self.options.record_predictions:
            recorded = self.backend.to_numpy(prediction).reshape((1, *prediction.shape))
        return Numbers(values[:1], values[None, 1:] if self.validation is not None else None, recorded)

    def before(self, epoch: int) -> TrainState | None:
        for mark, last in ((self._current, self._ran_to),
                           (self._previous, None if self._current is None else self._current[0] - 1)):
            if mark is not None and mark[0] <= epoch <= last:
                return self._state(self._replayed(mark, epoch), epoch - 1)
        return None

    def rewind(self, count: int) -> TrainState:
        """The state before epoch ``count`` of the last run, where it lies in the last two reads (where the run
        diverged, or where a hook stopped a run of one)."""
        state = self.before(self._first + count)
        if state is None:
            raise ValueError(f"an eager run keeps the states of its last two reads, not after epoch {count} of it")
        return state

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
