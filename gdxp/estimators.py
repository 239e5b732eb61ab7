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
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier as ScikitClassifier
from sklearn.neural_network import MLPRegressor as ScikitRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels

from .mlp_base import GDXP_PARAMETERS, BaseMLP, store_parameters

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """scikit-learn's ``MLPClassifier`` on a :class:`gdxp.Network`: labels of any kind (``classes_``), two
    classes or multilabel 0/1 indicator targets through sigmoid outputs and binary cross-entropy, more classes
    through softmax and cross-entropy. Every parameter is scikit-learn's (see its documentation), plus
    ``class_weight`` (None, ``"balanced"`` or ``{label: weight}``, as scikit-learn's other classifiers take it:
    each sample's loss weighs ``sample_weight`` times its class's weight) and gdxp's ``backend``, ``device``,
    ``dtype``."""

    _parameter_constraints: dict = {**ScikitClassifier._parameter_constraints, **GDXP_PARAMETERS,
                                    "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 max_fun: int = 15000, class_weight: dict | str | None = None, backend: Any = None, device: Any = None,
                 dtype: Any = None) -> None:
        store_parameters(self, locals())

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @available_if(BaseMLP._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch on ``(X, y)``, continuing the weights and the solver; the first call needs every
        label in ``classes``."""
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

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

    def _targets(self, y: np.ndarray, *, incremental: bool, classes: Any) -> np.ndarray:
        """``y`` as the network's 0/1 targets, ``classes_`` learned from it or checked against it."""
        if incremental and _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            labels = unique_labels(y)
            if self.warm_start:
                if set(labels) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {labels}")
            elif len(np.setdiff1d(labels, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {labels}.")
        return self._label_binarizer.transform(y).astype(np.int8)

    def _weighted(self, y: np.ndarray, sample_weight: np.ndarray | None, *, incremental: bool) -> np.ndarray | None:
        """``sample_weight`` times each sample's class weight (``"balanced"``: ``n_samples / (n_classes *
        count)`` of this ``y``'s classes, as scikit-learn computes it)."""
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight 'balanced' is not supported for partial_fit: it weighs the classes of "
                             "all the data, which one call does not see; give a dict of class weights instead")
        by_class = compute_sample_weight(self.class_weight, y)
        return by_class if sample_weight is None else sample_weight * by_class

    def _validation_score(self, x_val: Any, y_val: np.ndarray, weights: np.ndarray | None) -> float:
        scores = self.net_.backend.to_numpy(self.net_.predict(x_val))
        if not np.all(np.isfinite(scores)):
            return np.nan  # as scikit-learn: no score (the next epoch's loss says that the run diverged)
        predicted = self._label_binarizer.inverse_transform(scores.ravel() if self.n_outputs_ == 1 else scores)
        return float(accuracy_score(y_val, predicted, sample_weight=weights))


class MLPRegressor(RegressorMixin, BaseMLP):
    """scikit-learn's ``MLPRegressor`` on a :class:`gdxp.Network`: identity outputs (one per target) and
    half the squared error for ``loss="squared_error"``, exp outputs and half the Poisson deviance for
    ``loss="poisson"`` (``y >= 0``), as scikit-learn's. Every parameter is scikit-learn's (see
    its documentation), plus gdxp's ``backend``, ``device``, ``dtype``."""

    _parameter_constraints: dict = {**ScikitRegressor._parameter_constraints, **GDXP_PARAMETERS}

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 max_fun: int = 15000,
                 backend: Any = None, device: Any = None, dtype: Any = None) -> None:
        store_parameters(self, locals())

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @available_if(BaseMLP._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch on ``(X, y)``, continuing the weights and the solver."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> Any:
        """The prediction for each sample: ``(n_samples,)`` if fitted on one target, else ``(n_samples, n_targets)``."""
        X, out = self._forward(X, "predict")
        if self.n_outputs_ == 1:
            out = self.net_.backend.xp.reshape(out, (-1,))
        return self._to_caller(out, X)

    def _output_layer(self) -> tuple[str, str]:
        return ("exp", "poisson") if self.loss == "poisson" else ("identity", "half_squared_error")

    def _targets(self, y: np.ndarray, **_: Any) -> np.ndarray:
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires y >= 0 (counts, rates), got negative values")
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must hold real numbers for MLPRegressor, got an array of dtype {y.dtype}")
        return y.reshape(y.shape[0], -1)

    def _validation_score(self, x_val: Any, y_val: np.ndarray, weights: np.ndarray | None) -> float:
        predicted = self.net_.backend.to_numpy(self.net_.predict(x_val))
        if not np.all(np.isfinite(predicted)):
            return np.nan  # as scikit-learn: no score (the next epoch's loss says that the run diverged)
        with np.errstate(over="ignore", invalid="ignore"):  # predictions far out square to inf: no score
            return float(r2_score(y_val, predicted.reshape(y_val.shape), sample_weight=weights))
