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

import numbers
import os
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .backend.base import dtype_name
from .history import History
from .network import Network, load
from .optimizers import SGD, Adam, Momentum, Optimizer

__all__ = ["MLPClassifier", "MLPRegressor"]

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}
SOLVERS = ("sgd", "adam", "momentum")
_LIBRARIES = (("numpy", array_api_compat.is_numpy_array), ("torch", array_api_compat.is_torch_array),
              ("jax", array_api_compat.is_jax_array), ("cupy", array_api_compat.is_cupy_array),
              ("dask", array_api_compat.is_dask_array))


class _BaseMLP(BaseEstimator):
    """What both estimators share: parameters, the network, the training loop and scikit-learn's stopping rule."""

    _output: tuple[str, str]  # the regressor's output activation and loss; the classifier's depend on y

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate_init: float = 0.001, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, backend: Any = None, device: Any = None,
                 dtype: Any = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.device = device
        self.dtype = dtype

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # -- scikit-learn's public methods -----------------------------------------------------------

    def fit(self, X: Any, y: Any) -> _BaseMLP:
        """Train on ``(X, y)`` for up to ``max_iter`` epochs, from new weights unless ``warm_start``; returns self."""
        return self._fit(X, y, incremental=False)

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Host copies of the weight matrices, one ``(n_in, n_out)`` per layer, as scikit-learn's MLP has them."""
        check_is_fitted(self)
        return self.net_.get_weights()[0::2]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Host copies of the bias vectors, one per layer."""
        check_is_fitted(self)
        return self.net_.get_weights()[1::2]

    # -- pickling: a Network holds its array library's module, so it travels as gdxp's own file --------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: Python's default state is the instance's own __dict__
        net = state.get("net_")
        if isinstance(net, Network):
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "net.npz")
                net.save(path, include_optimizer=net.optimizer is not None)
                with open(path, "rb") as file:
                    state["net_"] = (net.backend.name, net.backend.device_name, file.read())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        net = state.get("net_")
        if isinstance(net, tuple):
            backend, device, data = net
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "net.npz")
                with open(path, "wb") as file:
                    file.write(data)
                state["net_"] = load(path, backend=backend, device=device)
        super().__setstate__(state)

    # -- fitting -----------------------------------------------------------------------------------

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None) -> _BaseMLP:
        self._check_parameters()
        fresh = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, _host(y), multi_output=True, dtype=_float_dtypes(X), reset=fresh,
                             y_numeric=isinstance(self, RegressorMixin))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        targets = self._targets(y, incremental=incremental, fresh=fresh, classes=classes)
        rng = check_random_state(self.random_state)
        if fresh:
            self._initialize(X, targets.shape[1], rng)
        if not incremental or not hasattr(self, "_optimizer"):  # as scikit-learn: warm_start restarts the solver
            self._optimizer = self._new_optimizer()
        batch_size = self._batch_size(X.shape[0])
        if self.early_stopping and not incremental:
            self._train_early_stopping(X, y, targets, batch_size, rng)
        else:
            self._train(X, targets, batch_size, epochs=1 if incremental else self.max_iter, incremental=incremental)
        return self

    def _initialize(self, X: Any, n_outputs: int, rng: np.random.RandomState) -> None:
        """A fresh network for ``X`` and ``n_outputs``, and scikit-learn's records of a run started afresh."""
        output_activation, loss = self._output_layer()
        library = _library(X)
        backend = self.backend if self.backend is not None else (library if library != "numpy" else None)
        device = self.device
        if device is None and self.backend is None and library != "numpy":
            device = array_api_compat.device(X)
        dtype = self.dtype
        if dtype is None and (backend or "numpy") == library:
            dtype = dtype_name(X.dtype)  # float32 data trains a float32 network, as scikit-learn keeps float32
        seed = self.random_state if _is_whole(self.random_state) else int(rng.randint(np.iinfo(np.int32).max))
        sizes = [X.shape[1], *_hidden_sizes(self.hidden_layer_sizes), n_outputs]
        self.net_ = Network(sizes, activation=ACTIVATIONS[self.activation], output_activation=output_activation,
                            loss=loss, init="glorot_uniform", seed=seed, backend=backend, device=device, dtype=dtype)
        self._fit_library = (library, _device_key(X))
        self.n_outputs_, self.n_layers_, self.out_activation_ = n_outputs, len(sizes), output_activation
        self.loss_curve_: list[float] = []
        self.n_iter_, self._no_improvement_count = 0, 0
        self.best_loss_: float | None = np.inf
        self.validation_scores_: list[float] | None = None
        self.best_validation_score_: float | None = None

    def _new_optimizer(self) -> Optimizer:
        if self.solver == "adam":
            return Adam(self.beta_1, self.beta_2, self.epsilon)
        if self.solver == "momentum":
            return Momentum(self.momentum)
        if self.momentum > 0:  # scikit-learn's "sgd": momentum 0.9 with Nesterov's look-ahead by default
            return Momentum(self.momentum, nesterov=self.nesterovs_momentum)
        return SGD()

    def _fit_options(self, batch_size: int) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate_init, "batch_size": batch_size, "optimizer": self._optimizer,
                "shuffle": self.shuffle, "verbose": 0, "weight_decay": self.alpha}

    def _train(self, X: Any, targets: Any, batch_size: int, *, epochs: int, incremental: bool) -> None:
        """One :meth:`Network.fit` call; after each epoch a callback records the loss and applies scikit-learn's
        rule on the training loss, stopping the run when it has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs."""

        def record(epoch: int, history: History) -> bool:
            loss = history.loss[-1]
            self.n_iter_ += 1
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if loss > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, loss)
            return self._no_improvement_count > self.n_iter_no_change and not incremental

        if self.best_loss_ is None:  # the last fit stopped early on validation scores
            self.best_loss_ = np.inf
        history = self.net_.fit(X, targets, epochs=epochs, callbacks=[record], **self._fit_options(batch_size))
        if history.stopped_early:
            self._say_stopped("Training loss")
        elif not incremental:
            _warn_not_converged(self.max_iter)

    def _train_early_stopping(self, X: Any, y: np.ndarray, targets: np.ndarray, batch_size: int,
                              rng: np.random.RandomState) -> None:
        """Epoch by epoch, scoring a held-out ``validation_fraction`` of the data after each (accuracy or R²,
        as :meth:`score`); stops as :meth:`_train` does but on that score, and keeps the best epoch's weights."""
        stratify = y if isinstance(self, ClassifierMixin) and not self._multilabel else None
        train, held_out = train_test_split(np.arange(X.shape[0]), random_state=rng, stratify=stratify,
                                           test_size=self.validation_fraction)
        if len(held_out) < 2:
            raise ValueError(f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                             f"{X.shape[0]} samples, {len(held_out)} of them; it needs at least 2")
        xp = array_api_compat.array_namespace(X)
        x_train, x_val = (xp.take(X, xp.asarray(rows, device=array_api_compat.device(X)), axis=0)
                          for rows in (train, held_out))
        targets, y_val = targets[train], y[held_out]
        self.best_loss_, self.validation_scores_ = None, self.validation_scores_ or []
        if self.best_validation_score_ is None:
            self.best_validation_score_ = -np.inf
        best = None
        for _ in range(self.max_iter):
            loss = self.net_.fit(x_train, targets, epochs=1, **self._fit_options(batch_size)).loss[-1]
            self.n_iter_ += 1
            self.loss_curve_.append(loss)
            score = self._validation_score(x_val, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}\nValidation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_ or best is None:
                self.best_validation_score_, best = score, self.net_.snapshot().weights
            if self._no_improvement_count > self.n_iter_no_change:
                self._say_stopped("Validation score")
                break
        else:
            _warn_not_converged(self.max_iter)
        self.net_.set_weights(best)

    def _say_stopped(self, what: str) -> None:
        if self.verbose:
            print(f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                  "consecutive epochs. Stopping.")

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if not 1 <= self.batch_size <= n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                          stacklevel=3)
        return int(np.clip(self.batch_size, 1, n_samples))

    def _check_parameters(self) -> None:
        """Refuse a bad parameter by its scikit-learn name before anything is trained."""
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {self.activation!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))}, got {self.solver!r}")
        _hidden_sizes(self.hidden_layer_sizes)
        for name, low, high in (("alpha", 0, None), ("learning_rate_init", 0, None), ("tol", 0, None),
                                ("momentum", 0, 1), ("validation_fraction", 0, 1), ("beta_1", 0, 1),
                                ("beta_2", 0, 1), ("epsilon", 0, None)):
            value = getattr(self, name)
            strict = name not in ("alpha", "tol", "momentum")
            if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value)
                    or value < low or (strict and value == low) or (high is not None and value >= high)):
                bounds = f"{'>' if strict else '>='} {low}" + (f" and < {high}" if high is not None else "")
                raise ValueError(f"{name} must be a number {bounds}, got {value!r}")
        for name in ("max_iter", "n_iter_no_change"):
            if not _is_whole(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if self.batch_size != "auto" and not _is_whole(self.batch_size):
            raise ValueError(f"batch_size must be 'auto' or a whole number, got {self.batch_size!r}")

    # -- predicting --------------------------------------------------------------------------------

    def _forward(self, X: Any, method: str) -> tuple[Any, Any]:
        """``X`` checked, and the network's output for it, on the network's device."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_float_dtypes(X), reset=False)
        if get_config()["array_api_dispatch"] and (_library(X), _device_key(X)) != self._fit_library:
            fitted = "/".join(map(str, self._fit_library))
            raise ValueError(f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and "
                             f"the same device as those passed to fit(): fitted on {fitted}, got "
                             f"{_library(X)}/{_device_key(X)}")
        return X, self.net_.predict(X)

    def _to_caller(self, arr: Any, like: Any) -> Any:
        """``arr`` (the network's array, or host labels) in the library and on the device of the caller's
        ``like``: NumPy unless array-API dispatch is on."""
        to_numpy = self.net_.backend.to_numpy if not isinstance(arr, np.ndarray) else np.asarray
        if not get_config()["array_api_dispatch"] or _library(like) == "numpy":
            return np.array(to_numpy(arr))  # a copy the caller owns (JAX's host arrays are read-only)
        xp, device = array_api_compat.array_namespace(like), array_api_compat.device(like)
        if not isinstance(arr, np.ndarray) and (_library(arr), _device_key(arr)) == (_library(like), _device_key(like)):
            return arr
        host = np.array(to_numpy(arr))
        return xp.asarray(host, device=device) if host.dtype.kind in "biuf" else host  # str labels stay NumPy


class MLPClassifier(ClassifierMixin, _BaseMLP):
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
            y_host = _host(y)
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
        predicted = self._label_binarizer.inverse_transform(scores.ravel() if self.n_outputs_ == 1 else scores)
        return float(accuracy_score(y_val, predicted))


class MLPRegressor(RegressorMixin, _BaseMLP):
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
        return float(r2_score(y_val, predicted.reshape(y_val.shape)))


# -- small helpers ---------------------------------------------------------------------------------


def _host(a: Any) -> Any:
    """An array of any library as a host NumPy array (labels are read there); anything else as it is."""
    if a is None or isinstance(a, np.ndarray) or not array_api_compat.is_array_api_obj(a):
        return a
    try:
        return np.from_dlpack(a)
    except (BufferError, RuntimeError, TypeError, ValueError):  # on a device: copied to the host
        return np.from_dlpack(a, device="cpu", copy=True)


def _float_dtypes(X: Any) -> tuple[Any, Any]:
    """The floating dtypes ``X`` may keep (float64 first): those of its own library when array-API dispatch
    is on, so that scikit-learn's checks compare like with like, else NumPy's."""
    dispatch = get_config()["array_api_dispatch"] and array_api_compat.is_array_api_obj(X)
    xp = array_api_compat.array_namespace(X) if dispatch else np
    return xp.float64, xp.float32


def _library(X: Any) -> str:
    """gdxp's backend name for the array library of ``X``."""
    for name, test in _LIBRARIES:
        if test(X):
            return name
    if array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(X)):
        return "array_api_strict"
    raise TypeError(f"gdxp has no backend for arrays of type {type(X).__name__}")


def _device_key(X: Any) -> str:
    return str(array_api_compat.device(X))


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _hidden_sizes(sizes: Any) -> list[int]:
    listed = [sizes] if _is_whole(sizes) else list(sizes) if isinstance(sizes, Sequence) else None
    if listed is None or not all(_is_whole(s) and s >= 1 for s in listed):
        raise ValueError(f"hidden_layer_sizes must be a whole number >= 1 or a list of them, got {sizes!r}")
    return [int(s) for s in listed]


def _warn_not_converged(max_iter: int) -> None:
    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and the optimization hasn't "
                  "converged yet.", ConvergenceWarning, stacklevel=5)  # at the caller of fit
