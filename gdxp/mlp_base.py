"""What :class:`gdxp.estimators.MLPClassifier` and :class:`~gdxp.estimators.MLPRegressor` share:
scikit-learn's parameters and conventions over one :class:`gdxp.Network` (see :mod:`gdxp.estimators`)."""

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
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .backend.base import dtype_name
from .backend.libraries import device_key, library_name, to_host
from .loading import load
from .mlp_training import StoppingTraining
from .network import Network
from .optimizers import SGD, Adam, Momentum, Optimizer

__all__ = ["ACTIVATIONS", "SOLVERS", "BaseMLP"]

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}
SOLVERS = ("sgd", "adam", "momentum")


class BaseMLP(StoppingTraining, BaseEstimator):
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

    def fit(self, X: Any, y: Any) -> BaseMLP:
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

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None) -> BaseMLP:
        self._check_parameters()
        fresh = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, to_host(y), multi_output=True, dtype=_float_dtypes(X), reset=fresh,
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
        library = library_name(X)
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
        self._fit_library = (library, device_key(X))
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
        if get_config()["array_api_dispatch"] and (library_name(X), device_key(X)) != self._fit_library:
            fitted = "/".join(map(str, self._fit_library))
            raise ValueError(f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and "
                             f"the same device as those passed to fit(): fitted on {fitted}, got "
                             f"{library_name(X)}/{device_key(X)}")
        return X, self.net_.predict(X)

    def _to_caller(self, arr: Any, like: Any) -> Any:
        """``arr`` (the network's array, or host labels) in the library and on the device of the caller's
        ``like``: NumPy unless array-API dispatch is on."""
        to_numpy = self.net_.backend.to_numpy if not isinstance(arr, np.ndarray) else np.asarray
        if not get_config()["array_api_dispatch"] or library_name(like) == "numpy":
            return np.array(to_numpy(arr))  # a copy the caller owns (JAX's host arrays are read-only)
        xp, device = array_api_compat.array_namespace(like), array_api_compat.device(like)
        place = (library_name(like), device_key(like))
        if not isinstance(arr, np.ndarray) and (library_name(arr), device_key(arr)) == place:
            return arr
        host = np.array(to_numpy(arr))
        return xp.asarray(host, device=device) if host.dtype.kind in "biuf" else host  # str labels stay NumPy


def _float_dtypes(X: Any) -> tuple[Any, Any]:
    """The floating dtypes ``X`` may keep (float64 first): those of its own library when array-API dispatch
    is on, so that scikit-learn's checks compare like with like, else NumPy's."""
    dispatch = get_config()["array_api_dispatch"] and array_api_compat.is_array_api_obj(X)
    xp = array_api_compat.array_namespace(X) if dispatch else np
    return xp.float64, xp.float32


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _hidden_sizes(sizes: Any) -> list[int]:
    listed = [sizes] if _is_whole(sizes) else list(sizes) if isinstance(sizes, Sequence) else None
    if listed is None or not all(_is_whole(s) and s >= 1 for s in listed):
        raise ValueError(f"hidden_layer_sizes must be a whole number >= 1 or a list of them, got {sizes!r}")
    return [int(s) for s in listed]
