"""What runs at every epoch boundary of a training run, against the state the loop just published.

:class:`Hooks` turns an epoch's numbers into the run's record and decisions, the same for every way of
running steps (eager, or compiled runs of epochs): the :class:`History`, the progress bar, early stopping
on the validation loss (``patience``, whose count goes on from one ``fit`` to the next), and the callbacks.
A callback ``callback(epoch, history)`` may look at the network, which then holds that epoch's weights;
a :class:`StoppingRule` promises to read only the history's numbers, so a compiled run can call it
after a run of epochs and replay up to the epoch it stopped at. Divergence is the loop's to detect; it
raises :class:`TrainingDiverged`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .history import History
from .options import FitOptions
from .progress import Progress
from .state import Patience

__all__ = ["Hooks", "StoppingRule", "TrainingDiverged"]


class StoppingRule:
    """A callback that decides from the history alone: ``rule(epoch, history)`` returns True to stop after
    ``epoch``. It never looks at the network, so compiled runs of many epochs call it from their numbers
    (a plain function as a callback makes them run one epoch at a time, so that it sees each epoch's
    weights). Subclass it and define ``__call__``."""

    def __call__(self, epoch: int, history: History) -> bool:
        raise NotImplementedError


class TrainingDiverged(ArithmeticError):
    """The loss, the weights a step made, or the optimizer's state (Adam's second moment can overflow while
    the loss stays finite, freezing the weights) turned NaN or infinite; the network holds the last weights
    whose loss on the training data is finite, with a finite optimizer state (from before that epoch, or the
    one before it, else those the run started from).

    ``epoch`` is where it happened (the network's epoch, from 1), ``last_finite_loss`` the loss of the
    epoch before (None if this run's first epoch diverged), ``history`` what was recorded up to then.
    """

    def __init__(self, epoch: int, last_finite_loss: float | None, history: History) -> None:
        before = "before any finite loss" if last_finite_loss is None else f"last finite loss {last_finite_loss:.6g}"
        super().__init__(f"training diverged at epoch {epoch}: the loss, the weights or the optimizer's state are not "
                         f"finite ({before}); "
                         "the last weights with a finite loss are restored. Try a smaller learning_rate.")
        self.epoch, self.last_finite_loss, self.history = epoch, last_finite_loss, history


class Hooks:
    """The record and the decisions of one run; ``patience`` is the record an earlier ``fit`` left (None:
    start afresh)."""

    def __init__(self, options: FitOptions, patience: Patience | None) -> None:
        self.options = options
        self.history = History()
        self.progress = Progress(options.epochs, options.verbose)
        self.callbacks = options.callbacks
        self.watches_network = any(not isinstance(c, StoppingRule) for c in self.callbacks)
        self.patience_stopped = False  # whether patience ran out (then the best weights come back)
        self.best_loss, self.waited = (math.inf, 0) if patience is None else (patience.best_loss, patience.waited)
        self.history.best_epoch = None if patience is None else patience.best_epoch

    def epoch_done(self, epoch: int, train_loss: float, val_scores: Sequence[float] | None,
                   prediction: np.ndarray | None) -> bool:
        """Record epoch ``epoch``, whose losses are finite; False when the run must stop after it (a callback
        said so, or patience ran out). A new best validation loss moves ``history.best_epoch`` to it."""
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
        if any([callback(epoch, history) is True for callback in self.callbacks]):  # all see the epoch
            history.stopped_early = True
            return False
        if options.patience is None:
            return True
        if val_loss < self.best_loss:
            self.best_loss, history.best_epoch, self.waited = val_loss, epoch, 0
            return True
        self.waited += 1
        self.patience_stopped = history.stopped_early = self.waited >= options.patience
        return not history.stopped_early

    def run_done(self, first_epoch: int, losses: np.ndarray, val_scores: np.ndarray | None,
                 predictions: np.ndarray | None) -> int:
        """Record a run of epochs read at once, whose losses are all finite; returns how many were recorded:
        all, or fewer where the run stops inside it. Without hooks that decide, the run goes in at once."""
        if self.options.patience is None and predictions is None and not self.callbacks:
            self.history.loss.extend(losses.tolist())
            val_losses = None if val_scores is None else val_scores[:, 0]
            if val_scores is not None:
                self.history.val_loss.extend(val_losses.tolist())
                if val_scores.shape[1] > 1:
                    self.history.val_accuracy.extend(val_scores[:, 1].tolist())
            self.progress.update_many(len(losses), float(losses[-1]),
                                      None if val_losses is None else float(val_losses[-1]))
            return len(losses)
        for index in range(len(losses)):
            if not self.epoch_done(first_epoch + index, float(losses[index]),
                                   None if val_scores is None else val_scores[index],
                                   None if predictions is None else predictions[index]):
                return index + 1
        return len(losses)

    def diverged(self, epoch: int) -> TrainingDiverged:
        """The error that stops the run at ``epoch``, carrying what was recorded before it."""
        history = self.history
        return TrainingDiverged(epoch, history.loss[-1] if history.loss else None, history)

    def close(self) -> None:
        self.progress.close()
