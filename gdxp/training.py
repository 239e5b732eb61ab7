"""The training loop: epochs of (mini-)batch descent with an optimizer, validation, early stopping,
a progress bar, and a clean stop on divergence or Ctrl-C.

:meth:`Network.fit` checks the settings (:class:`FitOptions`) and moves the data to the device once,
then :func:`train` drives the steps itself: each step (:func:`make_step`) is a plain function of
arrays, backprop then the optimizer's pure update, on weights and optimizer state the loop keeps in
one local tuple. Each epoch runs without waiting on the device except for one read of the numbers
it reports (loss, validation loss, recorded predictions). The tuple is replaced whole after each step
and put back into the network at the end, however the run ends, so Ctrl-C leaves the weights of the
last completed step; snapshots for early stopping and divergence are references, not copies.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import backprop
from ._typing import Array, BatchMeans, Namespace
from .backend import Backend
from .history import History
from .losses import Loss
from .metrics import accuracy
from .optimizers import Optimizer
from .progress import Progress
from .schedules import Schedule, named_schedule
from .validation import check_positive_number, check_whole_number

if TYPE_CHECKING:
    from .network import Network

MAX_EPOCHS = 2**40  # beyond any run a machine finishes; the bound keeps a huge int from overflowing later

__all__ = ["FitOptions", "Ledger", "Snapshot", "TrainingDiverged", "all_finite", "make_step", "restorable", "train"]


class Snapshot(NamedTuple):
    """What training changes, at one moment: the weights (in :meth:`Network.get_weights` order), the
    optimizer's state and its step count. References to device arrays, not copies: no array is ever
    changed in place, so a snapshot stays valid."""

    weights: Sequence[Array]
    optimizer_state: Sequence[Sequence[Array]]
    steps: int


@dataclass(frozen=True)
class FitOptions:
    """The settings of one :meth:`Network.fit` run (see there for their meanings), checked when made."""

    epochs: int
    learning_rate: float
    batch_size: int | None = None
    shuffle: bool = True
    patience: int | None = None
    verbose: int = 1
    record_predictions: bool = False
    weight_decay: float = 0.0
    learning_rate_schedule: str | Schedule | None = None
    callbacks: Sequence[Callable[[int, History], Any]] = ()
    rates: tuple[float, ...] = field(init=False)  # each epoch's learning rate, from the schedule (if any)

    def __post_init__(self) -> None:
        epochs = check_whole_number(self.epochs, "epochs", minimum=0)
        if epochs > MAX_EPOCHS:
            raise ValueError(f"epochs must be at most {MAX_EPOCHS:,}, got {_short(epochs)}")
        checked: dict[str, Any] = {"epochs": epochs,
                                   "learning_rate": check_positive_number(self.learning_rate, "learning_rate")}
        checked["weight_decay"] = _non_negative(self.weight_decay, "weight_decay")
        if isinstance(self.callbacks, (str, bytes)) or not isinstance(self.callbacks, Sequence) or not all(
                callable(c) for c in self.callbacks):
            raise TypeError(f"callbacks must be a list of functions callback(epoch, history), got {self.callbacks!r}")
        checked["callbacks"] = tuple(self.callbacks)
        checked["rates"] = _rates(self.learning_rate_schedule, checked["learning_rate"], checked["epochs"])
        if self.batch_size is not None:
            checked["batch_size"] = check_whole_number(self.batch_size, "batch_size", minimum=1)
        if self.patience is not None:
            checked["patience"] = check_whole_number(self.patience, "patience", minimum=1)
        for name in ("shuffle", "record_predictions"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        checked["verbose"] = check_whole_number(self.verbose, "verbose", minimum=0)
        for name, value in checked.items():  # plain int and float, whatever number type came in
            object.__setattr__(self, name, value)

    def rates_from(self, epoch: int, count: int) -> list[float]:
        """The learning rates of ``count`` epochs from ``epoch`` (counted from 1)."""
        if not self.rates:
            return [self.learning_rate] * count
        return list(self.rates[epoch - 1:epoch - 1 + count])

    def batch_size_for(self, n_samples: int) -> int:
        """Samples per step for ``n_samples`` (all for ``batch_size=None``); refuses ``record_predictions``
        when that splits the data, as an epoch then has no one forward pass to record."""
        size = n_samples if self.batch_size is None else min(self.batch_size, n_samples)
        if self.record_predictions and size < n_samples:
            raise ValueError(f"record_predictions keeps each epoch's one forward pass, so it needs one batch per "
                             f"epoch; batch_size={self.batch_size} splits {n_samples} samples")
        return size


def _short(number: int) -> str:
    """A whole number for a message, its digits cut short when there are hundreds of them."""
    text = str(number)
    return text if len(text) <= 20 else f"{text[:6]}... ({len(text)} digits)"


def _non_negative(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0 (0 switches the thing off)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value) if -1e308 < value < 1e308 else math.inf  # an int past float's range is no number
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _rates(schedule: str | Schedule | None, rate: float, epochs: int) -> tuple[float, ...]:
    """Each epoch's learning rate from the schedule, all checked before any is used (none without one)."""
    if schedule is None:
        return ()  # the same rate every epoch: nothing to keep
    if isinstance(schedule, str):
        schedule = named_schedule(schedule, rate, epochs)
    elif not callable(schedule):
        raise TypeError(f"learning_rate_schedule must be a name like 'cosine' or a function of the epoch, "
                        f"got {type(schedule).__name__}")
    return tuple(check_positive_number(schedule(epoch), f"learning_rate_schedule's rate for epoch {epoch}")
                 for epoch in range(1, epochs + 1))


class TrainingDiverged(ArithmeticError):
    """The loss, or the weights a step made, turned NaN or infinite; the network holds the last weights
    whose loss on the training data is finite (from before that epoch, or the one before it).

    ``epoch`` is where it happened (from 1), ``last_finite_loss`` the loss of the epoch before (None
    if the first epoch diverged), ``history`` what was recorded up to then.
    """

    def __init__(self, epoch: int, last_finite_loss: float | None, history: History) -> None:
        before = "before any finite loss" if last_finite_loss is None else f"last finite loss {last_finite_loss:.6g}"
        super().__init__(f"training diverged at epoch {epoch}: the loss or the weights are not finite ({before}); "
                         "the last weights with a finite loss are restored. Try a smaller learning_rate.")
        self.epoch, self.last_finite_loss, self.history = epoch, last_finite_loss, history


Trained = tuple[Sequence[Array], Sequence[Sequence[Array]], int]  # a Snapshot's fields, as the loop carries them
Step = Callable[[Trained, Array, Array], tuple[Trained, Array, Array]]


def make_step(backend: Backend, layers: Sequence[backprop.Layer], loss: Loss, optimizer: Optimizer,
              learning_rate: float | Array, weight_decay: float = 0.0) -> Step:
    """One training step as a plain function of arrays:
    ``step((weights, optimizer_state, steps), x, y) -> ((new_weights, new_state, steps + 1), loss, prediction)``.

    The gradients are taken at the weights from before the step, the loss is the batch's before it.
    Nothing in it reads or writes an object's changing attributes, so it can be traced as it is.
    Backprop runs through the backend's :meth:`~gdxp.backend.Backend.batch_means` (on the whole batch, or
    a task per chunk on Dask), and its :meth:`~gdxp.backend.Backend.settled` hands the gradients and the
    loss to the optimizer, which updates the weights where they live (the backend's ``parameters``: the
    same backend, or the client for Dask). ``weight_decay`` adds scikit-learn's L2 penalty,
    ``weight_decay / 2 * sum(W**2)`` over the batch's samples, to the loss and its gradient, for the
    weights W only (not the biases).
    """
    update, batch_means, settled = optimizer.update, backend.batch_means, backend.settled
    gradients = backprop.gradient_function(layers, loss, want_loss=True)
    held = backend.parameters.xp
    decayed = [layer.weight_index for layer in layers]

    def step(trained: Trained, x: Array, y: Array) -> tuple[Trained, Array, Array]:
        weights, state, steps = trained
        means, prediction = batch_means(gradients, weights, x, y)
        grads = settled(means)
        value = grads.pop()  # the loss, after the gradients
        if weight_decay:
            per_sample = weight_decay / x.shape[0]
            for index in decayed:
                flat = held.reshape(weights[index], (-1,))
                grads[index] = grads[index] + per_sample * weights[index]
                value = value + 0.5 * per_sample * held.vecdot(flat, flat)
        steps += 1
        new_weights, new_state = update(held, weights, grads, state, learning_rate, steps)
        return (new_weights, new_state, steps), value, prediction

    return step


class Ledger:
    """What an epoch's numbers mean for the run, the same for every loop: the history, the progress bar,
    early stopping and divergence. The loops keep the weights; the ledger says what to do with them."""

    def __init__(self, options: FitOptions) -> None:
        self.options = options
        self.history = History()
        self.progress = Progress(options.epochs, options.verbose)
        self.improved = False  # whether the last epoch's validation loss was the best so far
        self._best_loss, self._waited = math.inf, 0

    def add(self, epoch: int, train_loss: float, val_scores: Sequence[float] | None,
            prediction: np.ndarray | None) -> bool:
        """Record an epoch whose losses are finite (:meth:`is_finite`); ``val_scores`` are the validation
        loss and, for class outputs, accuracy (:func:`validation_scores`). False when the run must stop
        after it, as patience ran out; ``improved`` then says whether this epoch's weights are the best."""
        history, options = self.history, self.options
        history.loss.append(train_loss)
        val_loss = None if val_scores is None else float(val_scores[0])
        if val_scores is not None:
            history.val_loss.append(val_loss)
            if len(val_scores) > 1:
                history.val_accuracy.append(float(val_scores[1]))
        if prediction is not None:
            history.predictions.append(prediction)
        self.progress.update(train_loss, val_loss)
        self.improved = False
        if any([callback(epoch, history) is True for callback in options.callbacks]):  # all see the epoch
            history.stopped_early = True
            return False
        if options.patience is None:
            return True
        if val_loss < self._best_loss:
            self._best_loss, history.best_epoch, self._waited, self.improved = val_loss, epoch, 0, True
            return True
        self._waited += 1
        history.stopped_early = self._waited >= options.patience
        return not history.stopped_early

    def add_run(self, first_epoch: int, train_losses: np.ndarray, val_scores: np.ndarray | None,
                predictions: np.ndarray | None) -> int:
        """Record a run of epochs read at once; returns how many were recorded: all of them, or fewer
        where one was not finite (not recorded: see :meth:`is_finite`) or patience stopped the run
        (recorded). Without patience or predictions the whole run goes in at once."""
        val_losses = None if val_scores is None else val_scores[:, 0]
        finite = np.isfinite(train_losses) & (True if val_losses is None else np.isfinite(val_losses))
        count = len(train_losses) if finite.all() else int(np.argmin(finite))
        if self.options.patience is None and predictions is None and not self.options.callbacks and count:
            self.history.loss.extend(train_losses[:count].tolist())
            if val_scores is not None:
                self.history.val_loss.extend(val_losses[:count].tolist())
                if val_scores.shape[1] > 1:
                    self.history.val_accuracy.extend(val_scores[:count, 1].tolist())
            self.progress.update_many(count, float(train_losses[count - 1]),
                                      None if val_losses is None else float(val_losses[count - 1]))
            return count
        for index in range(count):
            going_on = self.add(first_epoch + index, float(train_losses[index]),
                                None if val_scores is None else val_scores[index],
                                None if predictions is None else predictions[index])
            if not going_on:
                return index + 1
        return count

    @staticmethod
    def is_finite(train_loss: float, val_loss: float | None) -> bool:
        """Whether an epoch's losses are numbers; if not, the loop restores weights, then calls :meth:`diverged`."""
        return math.isfinite(train_loss) and (val_loss is None or math.isfinite(val_loss))

    def diverged(self, epoch: int) -> None:
        """Stop the run at ``epoch`` with :class:`TrainingDiverged`, carrying what was recorded before it."""
        history = self.history
        raise TrainingDiverged(epoch, history.loss[-1] if history.loss else None, history)

    def close(self) -> None:
        self.progress.close()


def train(net: Network, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
          options: FitOptions) -> History:
    """Train ``net`` with its optimizer on data already checked and on its device, one step at a time;
    see :meth:`Network.fit` (and :mod:`gdxp.compiled` for backends that compile runs of epochs)."""
    backend, layers, loss = net.backend, net.layers, net.loss
    scheduled = options.learning_rate_schedule is not None

    def step_at(rate: float) -> Step:
        return make_step(backend, layers, loss, net.optimizer, rate, options.weight_decay)

    step = step_at(options.learning_rate)
    n_samples = inputs.shape[0]
    size = options.batch_size_for(n_samples)
    one_batch = size >= n_samples  # then the order of samples cannot change the step
    ledger = Ledger(options)
    best_weights = None
    rng = net.shuffle_rng if options.shuffle else None
    trained = previous = current = net.snapshot()
    epoch = 0
    with backend.activate(training=True):  # a NaN on the way to divergence is caught, not warned
        try:
            for epoch in range(1, options.epochs + 1):
                previous, current = current, trained
                if scheduled:
                    step = step_at(options.rates[epoch - 1])
                if one_batch:  # the tutorials' case, where the epoch loop's own cost shows
                    trained, value, prediction = step(trained, inputs, targets)
                else:  # the mean loss over the samples, each batch's taken before its update
                    total = None
                    for batch_x, batch_y in _batches(backend, rng, inputs, targets, size):
                        trained, value, prediction = step(trained, batch_x, batch_y)
                        weighted = value * batch_x.shape[0]
                        total = weighted if total is None else total + weighted
                    value = total / n_samples
                if validation is None and not options.record_predictions:  # the common case: one number
                    train_loss, val_scores, recorded = backend.to_float(value), None, None
                else:
                    reported = [value]
                    if validation is not None:
                        reported.append(validation_scores(backend, net, trained[0], validation))
                    if options.record_predictions:
                        reported.append(prediction)
                    values = _read(backend, reported)
                    train_loss = float(values[0][0])
                    val_scores = values[1] if validation is not None else None
                    recorded = values[-1].reshape(tuple(prediction.shape)) if options.record_predictions else None
                if not Ledger.is_finite(train_loss, None if val_scores is None else float(val_scores[0])):
                    trained = restorable(backend, net, inputs, targets, current, previous)
                    ledger.diverged(epoch)
                going_on = ledger.add(epoch, train_loss, val_scores, recorded)
                if ledger.improved:
                    best_weights = trained[0]
                if not going_on:
                    break
            if best_weights is not None:  # the best weights come back; the optimizer's state goes on
                trained = (best_weights, *trained[1:])
            elif epoch and not all_finite(backend, trained[0]):  # the last step made them: no loss has seen them
                trained = restorable(backend, net, inputs, targets, current, previous)
                ledger.diverged(epoch)
        finally:
            ledger.close()
            net.restore(Snapshot(*trained))
    return ledger.history


def validation_scores(backend: Backend, net: Network, weights: Sequence[Array],
                      validation: tuple[Array, Array]) -> Array:
    """The validation loss and, for class outputs, accuracy, as one 1-D array: one read from the device
    (on Dask, the means of a task per chunk of the validation data, computed here)."""
    means, _ = backend.batch_means(_score_function(net), weights, *validation)
    return backend.parameters.xp.stack(backend.settled(means))


def _score_function(net: Network) -> BatchMeans:
    """What :func:`validation_scores` has a backend run: ``(xp, weights, x, y) -> ([loss, accuracy], prediction)``,
    the accuracy only for class outputs."""
    layers, loss, output = net.layers, net.loss, net.activations[-1].name

    def scores(xp: Namespace, weights: Sequence[Array], x: Array, y: Array) -> tuple[list[Array], Array]:
        value, prediction = backprop.loss_and_prediction(xp, layers, loss, weights, x, y)
        correct = accuracy(xp, output, prediction, y)
        return ([value] if correct is None else [value, xp.astype(correct, value.dtype)]), prediction

    return scores


def _batches(backend: Backend, rng: np.random.Generator | None, inputs: Array, targets: Array,
             size: int) -> Iterator[tuple[Array, Array]]:
    """The data in batches of ``size`` samples, reshuffled first with ``rng`` unless it is None."""
    n_samples = inputs.shape[0]
    if rng is not None:
        inputs, targets = backend.shuffled(rng, inputs, targets)
    for start in range(0, n_samples, size):
        stop = min(start + size, n_samples)
        yield inputs[start:stop, ...], targets[start:stop, ...]


def _read(backend: Backend, arrays: list[Array]) -> list[np.ndarray]:
    """Device arrays to the host, flattened: the first read waits for the device once, and the
    rest are plain copies of results already computed."""
    return [backend.to_numpy(a).reshape(-1) for a in arrays]


def all_finite(backend: Backend, weights: Sequence[Array]) -> bool:
    """Whether every weight is a number (one read from the device per array)."""
    held = backend.parameters
    return all(bool(held.to_numpy(held.xp.all(held.xp.isfinite(w)))) for w in weights)


def restorable(backend: Backend, net: Network, inputs: Array, targets: Array, *candidates: Trained) -> Trained:
    """The first of ``candidates`` whose weights are finite and give a finite loss on the training data
    (weights can be finite and still overflow the loss), else the last of them."""
    for candidate in candidates:
        if all_finite(backend, candidate[0]):
            value = backend.settled(backend.batch_means(_score_function(net), candidate[0], inputs, targets)[0])[0]
            if math.isfinite(backend.parameters.to_float(value)):
                return candidate
    return candidates[-1]
