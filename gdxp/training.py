"""The training loop: one driver for every way of running steps, with one ending.

:func:`train` takes a model's state (:class:`gdxp.state.TrainState`) and runs epochs through a step runner
(:mod:`gdxp.runner`): :class:`gdxp.eager.EagerRunner`, steps one at a time, or the backend's compiled runs of
many epochs (:class:`gdxp.compiled.CompiledRunner`). After every run it reads the run's numbers once, checks
them for divergence, publishes the new state to the model and only then runs the hooks
(:class:`gdxp.hooks.Hooks`: history, progress, patience, callbacks), so a callback sees, saves and sets the
model as it is; what a callback set is what the next run starts from. A run ends the same way whichever runner
ran it: the best weights back where patience stopped it, the last weights' loss checked, and whatever is
restored after a divergence checked to give a finite loss.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from . import memory
from ._typing import Array
from .architecture import Architecture, training_bytes
from .backend import Backend
from .eager import EagerRunner
from .history import History
from .hooks import Hooks, TrainingDiverged
from .optimizers import Optimizer
from .options import FitOptions
from .runner import Model, Runner
from .state import Patience, TrainState, checkpoint
from .steps import UpdateGuard, all_finite, surely_finite_loss, training_loss

__all__ = ["check_room", "train"]


def check_room(backend: Backend, architecture: Architecture, optimizer: Optimizer, new_state: bool,
               batch_rows: int) -> None:
    """Refuse, with a ValueError, a run whose arrays would not fit in the memory available now, before any is
    made: the gradients, the optimizer's state where it is ``new_state``, the copies of the weights and
    state a divergence falls back on (where updates change them in place), a batch's intermediates."""
    kept = 1 + optimizer.state_size
    arrays = 1 + (optimizer.state_size if new_state else 0) + (3 * kept if backend.parameters.mutable else kept)
    itemsize = 4 if backend.dtype_name == "float32" else 8
    memory.check(training_bytes(architecture.sizes, architecture.bias, itemsize, arrays, batch_rows),
                 f"training sizes {list(architecture.sizes)} with {optimizer.name} in batches of {batch_rows} samples "
                 f"(batch_size)")


def train(model: Model, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
          options: FitOptions, runner_type: type[Runner] | None = None, sample_weight: Array | None = None) -> History:
    """Train ``model`` on data already checked and on its device (see :meth:`gdxp.Network.fit`), each sample's
    loss weighted by ``sample_weight`` where given, with a runner of ``runner_type`` (default
    :class:`~gdxp.eager.EagerRunner`); the state is published to the model after every run, and however the
    run ends."""
    backend, architecture = model.backend, model.architecture
    hooks = Hooks(options, model.state.patience if options.patience else None)
    state = _started(model)
    if options.patience is None:
        state = state._replace(patience=None)  # a run without patience ends the count of an earlier one
    model.state = state  # what the runner starts from
    in_place = backend.parameters.mutable and model.optimizer.state_size > 0  # SGD leaves its inputs as they were
    guard = UpdateGuard() if in_place else None
    runner: Runner = (runner_type or EagerRunner)(model, inputs, targets, validation, options, guard,
                                                  hooks.watches_network, sample_weight)
    hooks.history.compile_seconds = runner.compile_seconds
    if runner.compile_seconds:
        hooks.progress.note(f"compiled {runner.length(options.epochs)} epochs per call in "
                            f"{runner.compile_seconds:.2f} s")
    start = checkpoint(backend.parameters.xp, state) if in_place else state  # the last resort after a divergence
    data, epoch, last, best = (inputs, targets), state.epoch, state.epoch + options.epochs, None
    with guard or contextlib.nullcontext(), backend.activate(training=True):
        try:
            while epoch < last and not hooks.history.stopped_early:
                count = runner.length(last - epoch)
                ran, numbers = runner.run(state, epoch + 1, count)
                count = len(numbers.losses)  # a runner may end a run early (at a loss that is not finite)
                bad = numbers.first_not_finite()
                if bad is None and hooks.watches_network and not all_finite(backend, ran.weights):
                    bad = count - 1  # a callback would see weights that are not numbers
                if bad is None and not _finite_state(backend, ran):
                    bad = count - 1  # an overflowed moment (Adam's v = inf) would freeze the weights for good
                good = count if bad is None else bad
                state = ran if good == count else runner.rewind(good)
                model.state = state  # published before any hook runs
                best_before = hooks.history.best_epoch
                recorded = hooks.run_done(epoch + 1, *numbers.cut(good)) if good else 0
                if hooks.history.best_epoch != best_before:  # a new best inside this run
                    best = runner.keep(hooks.history.best_epoch - epoch, ran)
                if recorded < good:  # a hook stopped the run inside it
                    state, epoch = runner.rewind(recorded), epoch + recorded
                    break
                if bad is not None:
                    diverged = epoch + good + 1
                    state = _restorable(backend, architecture, data, start, runner.before(diverged),
                                        runner.before(diverged - 1))
                    raise hooks.diverged(diverged)
                state, epoch = model.state, epoch + count  # what a callback set, if it set anything
            state, diverged = _ended(backend, architecture, data, hooks, runner, state, start, best, epoch)
            if diverged is not None:
                raise diverged
        except BaseException as err:
            if not isinstance(err, TrainingDiverged):
                state = runner.latest(state)
            raise
        finally:
            hooks.close()
            model.state = state
    return hooks.history


def _ended(backend: Backend, architecture: Architecture, data: tuple[Array, Array], hooks: Hooks, runner: Runner,
           state: TrainState, start: TrainState, best: Any, epoch: int) -> tuple[TrainState, TrainingDiverged | None]:
    """The run's one ending: where patience stopped it, the best weights back (the optimizer's state goes on);
    where it did not, patience's record kept for the next ``fit``; then the loss of the weights kept, which
    no epoch has scored yet. Where that is not finite, the state to restore and the error to raise."""
    if hooks.options.patience is not None:
        carried = state.patience
        best_weights = runner.kept(best).weights if best is not None else carried and carried.best_weights
        if hooks.patience_stopped:
            state = state._replace(weights=best_weights, patience=None)
        elif hooks.history.best_epoch is not None:
            state = state._replace(patience=Patience(hooks.best_loss, hooks.history.best_epoch, best_weights,
                                                     hooks.waited))
    if epoch == start.epoch:
        return state, None
    known = runner.last_loss(state)
    if known is None and surely_finite_loss(backend, architecture, state.weights, data):
        known = 0.0  # bounded: no forward pass needed to know it is finite
    if not math.isfinite(known if known is not None else training_loss(backend, architecture, state.weights, data)):
        restored = _restorable(backend, architecture, data, start, runner.before(epoch), runner.before(epoch - 1))
        return restored, hooks.diverged(epoch)
    return state, None


def _restorable(backend: Backend, architecture: Architecture, data: tuple[Array, Array], start: TrainState,
                *candidates: TrainState | None) -> TrainState:
    """The first candidate whose weights give a finite loss on the training data and whose optimizer state is
    finite, else the state the run started from (the model as it was given)."""
    for candidate in candidates:
        if (candidate is not None and _finite_state(backend, candidate)
                and math.isfinite(training_loss(backend, architecture, candidate.weights, data))):
            return candidate
    return start


def _finite_state(backend: Backend, state: TrainState) -> bool:
    """Whether every number of the optimizer's state is finite (true of no state, SGD's, without a read)."""
    return all_finite(backend, [a for slot in state.optimizer_state for a in slot])


def _started(model: Model) -> TrainState:
    """The model's state with the optimizer's state made, if it had none yet."""
    state, optimizer = model.state, model.optimizer
    if optimizer.state_size and not state.optimizer_state:
        with model.backend.activate():
            state = state._replace(optimizer_state=optimizer.init(model.backend.parameters.xp, state.weights))
    return state


