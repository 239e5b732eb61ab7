"""How the estimators train with scikit-learn's stochastic solvers (``"sgd"``, ``"adam"``): one
:meth:`gdxp.Network.fit` call with scikit-learn's epoch-end bookkeeping as a hook, on the training loss (a
:class:`~gdxp.hooks.StoppingRule`, so compiled runs keep their runs of many epochs) or on a held-out validation
score (a callback that reads the live network), and ``learning_rate`` as scikit-learn's SGD defines it:
``"constant"``, ``"invscaling"`` (``learning_rate_init / (t_ + 1) ** power_t`` from each epoch's end, ``t_``
the samples seen) or ``"adaptive"`` (divided by 5 each time the loss or score stalls for ``n_iter_no_change``
epochs, until it is 1e-6 or less)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from .history import History
from .hooks import StoppingRule

__all__ = ["StochasticTraining"]


class StochasticTraining:
    """The stochastic half of :class:`gdxp.mlp_base.BaseMLP`: it reads the estimator's parameters, its network
    ``net_`` and solver ``_optimizer`` (whose current rate is ``_rate``), and keeps scikit-learn's records
    (``n_iter_``, counted from 0 by each fit and partial_fit call, ``t_``, ``loss_``, ``loss_curve_``,
    ``best_loss_``, ``validation_scores_``, ``best_validation_score_``)."""

    def _start_records(self) -> None:
        """scikit-learn's records of a run from new weights, for the stopping rule ``early_stopping`` chooses."""
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self.best_loss_: float | None = None if self.early_stopping else np.inf
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_: float | None = -np.inf if self.early_stopping else None

    def _fit_stochastic(self, prepared: Any, *, incremental: bool) -> None:
        X, targets, weights = prepared.X, prepared.targets, prepared.sample_weight
        if not hasattr(self, "loss_curve_"):  # a warm start from weights L-BFGS trained
            self._start_records()
        if self.early_stopping and self.validation_scores_ is None:  # switched on for a warm start
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
        if not self.early_stopping and self.best_loss_ is None:  # switched off for a warm start
            self.best_loss_ = np.inf
        self.n_iter_ = 0
        held_out = self._held_out(prepared) if self.early_stopping else None
        if held_out is not None:
            train, x_val, y_val, weights_val = held_out
            X, targets = _rows(X, train), targets[train]
            weights = None if weights is None else weights[train]
        n_samples, best = X.shape[0], []
        watch = (_TrainingLossRule(self, n_samples) if held_out is None
                 else self._validation_watch(n_samples, x_val, y_val, weights_val, best))
        if isinstance(watch, StoppingRule) and self.solver == "sgd" and self.learning_rate == "adaptive":
            rule = watch  # as a plain callback, so that runs go one epoch at a time: the next rate depends on it
            watch = lambda epoch, history: rule(epoch, history)  # noqa: E731
        try:
            history = self.net_.fit(X, targets, epochs=1 if incremental else self.max_iter, callbacks=[watch],
                                    learning_rate=self.learning_rate_init, batch_size=self._batch_size(n_samples),
                                    optimizer=self._optimizer, shuffle=self.shuffle, verbose=0,
                                    weight_decay=self.alpha, learning_rate_schedule=self._schedule(n_samples),
                                    sample_weight=weights)
        finally:
            if held_out is not None and best:  # however the run ended, the best weights scored so far
                self.net_.set_weights(best)
        if not history.stopped_early and not incremental:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                          "hasn't converged yet.", ConvergenceWarning, stacklevel=4)  # at the caller of fit

    def _schedule(self, n_samples: int) -> Callable[[int], float] | None:
        """The rate of each of the network's epochs in this fit, as scikit-learn's SGD sets it (None: constant)."""
        if self.solver != "sgd" or self.learning_rate == "constant":
            return None
        if self.learning_rate == "adaptive":
            return lambda epoch: self._rate  # what the last epoch's end left (run one epoch at a time)
        first, rate, seen, init, power = self.net_.state.epoch + 1, self._rate, self.t_, self.learning_rate_init, \
            self.power_t
        return lambda epoch: rate if epoch == first else init / (seen + (epoch - first) * n_samples + 1) ** power

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                          stacklevel=4)
        return int(np.clip(self.batch_size, 1, n_samples))

    def _epoch_ended(self, loss: float, n_samples: int, score: float | None = None) -> bool:
        """scikit-learn's records of an epoch and its rate for the next; True to stop here."""
        self.n_iter_ += 1
        self.t_ += n_samples
        self.loss_ = loss
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if score is None:
            stalled = loss > self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, loss)
        else:
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            stalled = score < self.best_validation_score_ + self.tol
        self._no_improvement_count = self._no_improvement_count + 1 if stalled else 0
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._rate = self.learning_rate_init / (self.t_ + 1) ** self.power_t
        return self._no_improvement_count > self.n_iter_no_change and self._stalled()

    def _stalled(self) -> bool:
        """After ``n_iter_no_change`` epochs without improvement: True to stop, or the adaptive rate divided by 5."""
        what = "Validation score" if self.early_stopping else "Training loss"
        message = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        if self.solver != "sgd" or self.learning_rate != "adaptive" or self._rate <= 1e-6:
            small = " Learning rate too small." if self.solver == "sgd" and self.learning_rate == "adaptive" else ""
            if self.verbose:
                print(f"{message}{small} Stopping.")
            return True
        self._rate /= 5.0
        self._no_improvement_count = 0
        if self.verbose:
            print(f"{message} Setting learning rate to {self._rate:f}")
        return False

    def _held_out(self, prepared: Any) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray | None]:
        """scikit-learn's split for early stopping (stratified for one output of a classifier): the training
        rows, and the held-out inputs (on the network's device), labels and weights."""
        X, targets, weights = prepared.X, prepared.targets, prepared.sample_weight
        stratify = targets.astype(bool) if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
        train, held_out = train_test_split(np.arange(X.shape[0]), random_state=prepared.rng, stratify=stratify,
                                           test_size=self.validation_fraction)
        if len(held_out) < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your "
                             "dataset.")
        x_val = self.net_.backend.asarray(_rows(X, held_out))  # moved to the network's device once
        return train, x_val, prepared.y[held_out], None if weights is None else weights[held_out]

    def _validation_watch(self, n_samples: int, x_val: Any, y_val: np.ndarray,
                          weights_val: np.ndarray | None, best: list[np.ndarray]) -> Callable[[int, History], bool]:
        """A callback scoring the live network on the held-out data after each epoch, keeping the best weights
        in ``best``."""

        def watch(epoch: int, history: History) -> bool:
            score = self._validation_score(x_val, y_val, weights_val)
            better = score > self.best_validation_score_
            stop = self._epoch_ended(history.loss[-1], n_samples, score)
            if better or not best:
                self.best_validation_score_, best[:] = max(score, self.best_validation_score_), \
                    self.net_.get_weights()
            return stop

        return watch


class _TrainingLossRule(StoppingRule):
    """scikit-learn's epoch end on the training loss, recorded in the estimator as the loop commits each epoch
    (so the records never run ahead of the weights)."""

    def __init__(self, estimator: StochasticTraining, n_samples: int) -> None:
        self.estimator, self.n_samples = estimator, n_samples

    def __call__(self, epoch: int, history: History) -> bool:
        return self.estimator._epoch_ended(history.loss[-1], self.n_samples)


def _rows(X: Any, rows: np.ndarray) -> Any:
    """The given rows of ``X``, in its own library and on its device."""
    xp = array_api_compat.array_namespace(X)
    return xp.take(X, xp.asarray(rows, device=array_api_compat.device(X)), axis=0)
