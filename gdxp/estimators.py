"""scikit-learn estimators on gdxp: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn's parameters (those of :class:`sklearn.neural_network.MLPClassifier` where the idea
is the same, plus gdxp's ``backend``, ``device`` and ``dtype``) and train a :class:`gdxp.Network` by
:meth:`~gdxp.Network.fit`, so they work in a ``Pipeline``, under ``GridSearchCV`` and with
``check_estimator``. The output layer and loss are scikit-learn's: sigmoid and binary cross-entropy for two
classes or multilabel targets, softmax and cross-entropy for more classes, identity and half the squared
error for regression. With ``sklearn.set_config(array_api_dispatch=True)``, arrays of another library (torch,
JAX, CuPy, array_api_strict) train a network of that library on their device, and predictions come back in
that library, as scikit-learn's array-API estimators do.

This is the one module of gdxp that imports scikit-learn (``pip install 'gdxp[sklearn]'``); ``import gdxp``
does not import it.
"""

from __future__ import annotations

from typing import Any

try:
    import sklearn  # noqa: F401
except ModuleNotFoundError:
    raise ModuleNotFoundError("gdxp.estimators needs scikit-learn: pip install 'gdxp[sklearn]' "
                              "(or pip install scikit-learn)") from None

import array_api_compat
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels

from .backend.libraries import to_host
from .mlp_base import BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """scikit-learn's ``MLPClassifier`` on a :class:`gdxp.Network`: labels of any kind (``classes_``), two
    classes or multilabel 0/1 indicator targets through sigmoid outputs and binary cross-entropy, more classes
    through softmax and cross-entropy. See the module's docstring and scikit-learn's for the parameters;
    ``solver`` is ``"adam"``, ``"sgd"`` (scikit-learn's, with ``momentum`` and ``nesterovs_momentum``) or
    ``"momentum"`` (classical momentum), ``activation="logistic"`` is gdxp's sigmoid."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch on ``(X, y)``, continuing the weights and the solver; the first call needs every
        label in ``classes``."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            y_host = to_host(y)
            self._label_binarizer.fit(y_host if type_of_target(y_host).startswith("multilabel") else classes)
        return self._fit(X, y, incremental=True, classes=classes)

    def predict(self, X: Any) -> Any:
        """The label of each sample (a 0/1 row per sample for multilabel targets)."""
        X, out = self._forward(X, "predict")
        scores = self.net_.backend.to_numpy(out)
        labels = self._label_binarizer.inverse_transform(scores.ravel() if self.n_outputs_ == 1 else scores)
        return self._to_caller(np.asarray(labels), X)

    def predict_proba(self, X: Any) -> Any:
        """Each class's probability, ``(n_samples, n_classes)`` (for multilabel, each label's)."""
        return self._proba(X, "predict_proba")

    def predict_log_proba(self, X: Any) -> Any:
        """The logarithm of :meth:`predict_proba`."""
        proba = self._proba(X, "predict_log_proba")
        return array_api_compat.array_namespace(proba).log(proba)

    def _proba(self, X: Any, method: str) -> Any:
        X, out = self._forward(X, method)
        if self.n_outputs_ == 1:
            xp = self.net_.backend.xp
            out = xp.concat([1 - out, out], axis=1)
        return self._to_caller(out, X)

    @property
    def _multilabel(self) -> bool:
        return self._label_binarizer.y_type_.startswith("multilabel")

    def _output_layer(self) -> tuple[str, str]:
        binary = self._label_binarizer.y_type_ != "multiclass"  # one sigmoid output, or one per label
        return ("sigmoid", "binary_cross_entropy") if binary else ("softmax", "cross_entropy")

    def _targets(self, y: np.ndarray, *, incremental: bool, fresh: bool, classes: Any) -> np.ndarray:
        """``y`` as the network's 0/1 targets, ``classes_`` learned from it or checked against it."""
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            labels = unique_labels(y)
            if self.warm_start and not incremental:
                if set(labels) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {labels}")
            elif len(np.setdiff1d(labels, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {labels}.")
        return self._label_binarizer.transform(y).astype(np.int8)

    def _validation_score(self, x_val: Any, y_val: np.ndarray) -> float:
        scores = self.net_.backend.to_numpy(self.net_.predict(x_val))
        if not np.all(np.isfinite(scores)):
            return -np.inf  # the next epoch's loss says that the run diverged
        predicted = self._label_binarizer.inverse_transform(scores.ravel() if self.n_outputs_ == 1 else scores)
        return float(accuracy_score(y_val, predicted))


class MLPRegressor(RegressorMixin, BaseMLP):
    """scikit-learn's ``MLPRegressor`` on a :class:`gdxp.Network`: identity outputs (one per target) and
    half the squared error, scikit-learn's squared loss. Parameters as :class:`MLPClassifier`'s."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch on ``(X, y)``, continuing the weights and the solver."""
        return self._fit(X, y, incremental=True)

    def predict(self, X: Any) -> Any:
        """The prediction for each sample: ``(n_samples,)`` if fitted on one target, else ``(n_samples, n_targets)``."""
        X, out = self._forward(X, "predict")
        if self.n_outputs_ == 1:
            out = self.net_.backend.xp.reshape(out, (-1,))
        return self._to_caller(out, X)

    def _output_layer(self) -> tuple[str, str]:
        return "identity", "half_squared_error"

    def _targets(self, y: np.ndarray, **_: Any) -> np.ndarray:
        return y.reshape(y.shape[0], -1)

    def _validation_score(self, x_val: Any, y_val: np.ndarray) -> float:
        predicted = self.net_.backend.to_numpy(self.net_.predict(x_val))
        if not np.all(np.isfinite(predicted)):
            return -np.inf  # the next epoch's loss says that the run diverged
        with np.errstate(over="ignore", invalid="ignore"):  # predictions far out square to inf: no score
            score = float(r2_score(y_val, predicted.reshape(y_val.shape)))
        return score if np.isfinite(score) else -np.inf  # the next epoch's loss says that the run diverged
