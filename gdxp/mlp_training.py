"""How the estimators train: one :meth:`gdxp.Network.fit` call with scikit-learn's stopping rule as a hook,
on the training loss (a :class:`~gdxp.hooks.StoppingRule`, so compiled runs keep their runs of many epochs) or
on a held-out validation score (a callback that reads the live network)."""

from __future__ import annotations

import warnings
from typing import Any

import array_api_compat
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from .history import History
from .hooks import StoppingRule

__all__ = ["StoppingTraining"]


class StoppingTraining:
    """The training half of :class:`gdxp.mlp_base.BaseMLP`: it reads the estimator's parameters and its
    network ``net_``, and keeps scikit-learn's records (``n_iter_``, ``loss_curve_``, ``best_loss_``,
    ``validation_scores_``, ``best_validation_score_``)."""

    def _train(self, X: Any, targets: Any, batch_size: int, *, epochs: int, incremental: bool) -> None:
        """One :meth:`Network.fit` call; after each epoch scikit-learn's rule on the training loss records it
        and stops the run when it has not improved by ``tol`` for more than ``n_iter_no_change`` epochs (a
        :class:`~gdxp.hooks.StoppingRule`, so a compiled run keeps its runs of many epochs)."""
        if self.best_loss_ is None:  # the last fit stopped early on validation scores
            self.best_loss_ = np.inf
        rule = _TrainingLossRule(self, stops=not incremental)
        history = self.net_.fit(X, targets, epochs=epochs, callbacks=[rule], **self._fit_options(batch_size))
        if history.stopped_early:
            self._say_stopped("Training loss")
        elif not incremental:
            warn_not_converged(self.max_iter)

    def _record(self, loss: float) -> None:
        """scikit-learn's records of an epoch, and its count of epochs without improvement of the loss."""
        self.n_iter_ += 1
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self.best_loss_ = min(self.best_loss_, loss)

    def _train_early_stopping(self, X: Any, y: np.ndarray, targets: np.ndarray, batch_size: int,
                              rng: np.random.RandomState) -> None:
        """One :meth:`Network.fit` call on all but a held-out ``validation_fraction`` of the data, scored after
        each epoch (accuracy or R², as :meth:`score`) by a callback that reads the live network; it stops as
        :meth:`_train` does but on that score, and the best epoch's weights come back."""
        stratify = y if isinstance(self, ClassifierMixin) and not self._multilabel else None
        train, held_out = train_test_split(np.arange(X.shape[0]), random_state=rng, stratify=stratify,
                                           test_size=self.validation_fraction)
        if len(held_out) < 2:
            raise ValueError(f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                             f"{X.shape[0]} samples, {len(held_out)} of them; it needs at least 2")
        xp = array_api_compat.array_namespace(X)
        x_train, x_val = (xp.take(X, xp.asarray(rows, device=array_api_compat.device(X)), axis=0)
                          for rows in (train, held_out))
        x_val = self.net_.backend.asarray(x_val)  # moved to the network's device once, not every epoch
        targets, y_val = targets[train], y[held_out]
        self.best_loss_, self.validation_scores_ = None, self.validation_scores_ or []
        if self.best_validation_score_ is None:
            self.best_validation_score_ = -np.inf
        best: list[np.ndarray] = []

        def watch(epoch: int, history: History) -> bool:
            self.n_iter_ += 1
            self.loss_curve_.append(history.loss[-1])
            score = self._validation_score(x_val, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {history.loss[-1]:.8f}\nValidation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_ or not best:
                self.best_validation_score_, best[:] = score, self.net_.get_weights()
            return self._no_improvement_count > self.n_iter_no_change

        try:
            history = self.net_.fit(x_train, targets, epochs=self.max_iter, callbacks=[watch],
                                    **self._fit_options(batch_size))
        finally:
            if best:  # however the run ended, the best weights scored so far
                self.net_.set_weights(best)
        if history.stopped_early:
            self._say_stopped("Validation score")
        else:
            warn_not_converged(self.max_iter)

    def _say_stopped(self, what: str) -> None:
        if self.verbose:
            print(f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                  "consecutive epochs. Stopping.")


class _TrainingLossRule(StoppingRule):
    """scikit-learn's stopping rule on the training loss, recording each epoch in the estimator as the loop
    commits it (so the records never run ahead of the weights); ``stops`` False only records."""

    def __init__(self, estimator: StoppingTraining, *, stops: bool) -> None:
        self.estimator, self.stops = estimator, stops

    def __call__(self, epoch: int, history: History) -> bool:
        estimator = self.estimator
        estimator._record(history.loss[-1])
        return self.stops and estimator._no_improvement_count > estimator.n_iter_no_change



def warn_not_converged(max_iter: int) -> None:
    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and the optimization hasn't "
                  "converged yet.", ConvergenceWarning, stacklevel=5)  # at the caller of fit
