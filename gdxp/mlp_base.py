"""What :class:`gdxp.estimators.MLPClassifier` and :class:`~gdxp.estimators.MLPRegressor` share:
scikit-learn's parameters, checked by scikit-learn's own ``_parameter_constraints`` and ``_fit_context``, and
one ``fit`` that checks the data, builds or keeps the network and hands both to a solver (the stochastic
ones of :mod:`gdxp.mlp_training`, L-BFGS of :mod:`gdxp.mlp_lbfgs`). A refused fit changes nothing."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from .backend import BACKEND_NAMES, Backend
from .backend.base import dtype_name
from .backend.libraries import device_key, library_name, to_host
from .mlp_lbfgs import LbfgsTraining
from .mlp_pickling import NetworkPickling
from .mlp_training import StochasticTraining
from .network import Network
from .optimizers import SGD, AdamEpsilonHat, Momentum, Optimizer
from .options import MAX_EPOCHS

__all__ = ["ACTIVATIONS", "GDXP_PARAMETERS", "BaseMLP", "Prepared", "store_parameters"]

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}
OUTPUT_NAMES = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity", "exp": "exp"}  # scikit-learn's
GDXP_PARAMETERS: dict[str, Any] = {"backend": [None, StrOptions(set(BACKEND_NAMES)), Backend],
                                   "device": "no_validation", "dtype": "no_validation"}  # get_backend checks them


class Prepared(NamedTuple):
    """One fit's checked data: ``X`` in the caller's library, ``y`` the labels or values on the host,
    ``targets`` the network's host targets, ``sample_weight`` each sample's weight (None: all 1), ``rng``
    scikit-learn's random state of this fit."""

    X: Any
    y: np.ndarray
    targets: np.ndarray
    sample_weight: np.ndarray | None
    rng: np.random.RandomState


def store_parameters(estimator: BaseEstimator, parameters: dict[str, Any]) -> None:
    """``__init__``'s arguments stored under their names, as scikit-learn's estimators keep them."""
    for name, value in parameters.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class BaseMLP(NetworkPickling, LbfgsTraining, StochasticTraining, BaseEstimator):
    """What both estimators share: fitting, the network and predicting through it."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseMLP:
        """Train on ``(X, y)``, each sample's loss weighted by ``sample_weight`` (None: all 1), from new
        weights unless ``warm_start``; returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver == "lbfgs":
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is "
                                 "not stochastic.")
        return True

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

    # -- fitting -----------------------------------------------------------------------------------

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, incremental: bool, classes: Any = None) -> BaseMLP:
        if incremental:
            self._validate_params()  # _fit_context checks only partial_fit's first call; here every call does
        for name in _REAL_PARAMETERS:  # scikit-learn's intervals take 10**400, which no float holds
            value = getattr(self, name)
            if not np.isfinite(float(value) if -1e308 < value < 1e308 else np.inf):
                raise ValueError(f"The '{name}' parameter of {type(self).__name__} must be a finite number, got "
                                 f"{_short(value)}.")
        if self.max_iter > MAX_EPOCHS:
            raise ValueError(f"The 'max_iter' parameter of {type(self).__name__} must be at most {MAX_EPOCHS:,} "
                             f"epochs, got {_short(self.max_iter)}.")
        before = dict(vars(self))
        try:
            prepared = self._prepare(X, y, sample_weight, incremental=incremental, classes=classes)
        except BaseException:  # a refused fit leaves the estimator as it was
            vars(self).clear()
            vars(self).update(before)
            raise
        if self.solver == "lbfgs":
            self._fit_lbfgs(prepared)
        else:
            self._fit_stochastic(prepared, incremental=incremental)
        return self

    def _prepare(self, X: Any, y: Any, sample_weight: Any, *, incremental: bool, classes: Any) -> Prepared:
        """The data checked, the network built (fresh) or kept, and the solver made (fit) or kept (partial_fit)."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        fresh = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, to_host(y), multi_output=True, dtype=_float_dtypes(X), reset=fresh,
                             y_numeric=isinstance(self, RegressorMixin))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(to_host(sample_weight), np.empty((X.shape[0], 0)), dtype=np.float64)
        targets = self._targets(y, incremental=incremental, classes=classes)
        sample_weight = self._weighted(y, sample_weight, incremental=incremental)
        rng = check_random_state(self.random_state)
        if fresh:
            self._initialize(X, hidden, targets.shape[1], rng)
        if self.solver != "lbfgs" and (not incremental or not hasattr(self, "_optimizer")):
            self._optimizer, self._rate = self._new_optimizer(), float(self.learning_rate_init)
        return Prepared(X, y, targets, sample_weight, rng)

    def _weighted(self, y: np.ndarray, sample_weight: np.ndarray | None, *, incremental: bool) -> np.ndarray | None:
        """Each sample's weight in the loss (the classifier multiplies in its class weights)."""
        return sample_weight

    def _initialize(self, X: Any, hidden: list[int], n_outputs: int, rng: np.random.RandomState) -> None:
        """A fresh network for ``X`` and ``n_outputs``, its weights drawn as scikit-learn draws them (so the
        same ``random_state`` starts from scikit-learn's weights), and scikit-learn's records of a new run."""
        output_activation, loss = self._output_layer()
        sizes = [X.shape[1], *hidden, n_outputs]
        weights = _initial_weights(sizes, self.activation, rng)
        seed = self.random_state if _is_whole(self.random_state) else int(rng.randint(np.iinfo(np.int32).max))
        library = library_name(X)
        backend = self.backend if self.backend is not None else (library if library != "numpy" else None)
        device = self.device
        if device is None and self.backend is None and library != "numpy":
            device = array_api_compat.device(X)
        dtype = self.dtype
        if dtype is None and (backend or "numpy") == library:
            dtype = dtype_name(X.dtype)  # float32 data trains a float32 network, as scikit-learn keeps float32
        self.net_ = Network(sizes, activation=ACTIVATIONS[self.activation], output_activation=output_activation,
                            loss=loss, init="glorot_uniform", seed=seed, backend=backend, device=device, dtype=dtype,
                            weights=weights)
        self._fit_library = (library, device_key(X))
        self.n_outputs_, self.n_layers_, self.out_activation_ = n_outputs, len(sizes), OUTPUT_NAMES[output_activation]
        self.n_iter_, self.t_ = 0, 0
        if self.solver != "lbfgs":  # scikit-learn keeps these records for its stochastic solvers only
            self._start_records()

    def _new_optimizer(self) -> Optimizer:
        """scikit-learn's solver: its Adam (epsilon added to sqrt(v)), or descent with (Nesterov's) momentum."""
        if self.solver == "adam":
            return AdamEpsilonHat(self.beta_1, self.beta_2, self.epsilon)
        if self.momentum > 0:
            return Momentum(self.momentum, nesterov=self.nesterovs_momentum)
        return SGD()

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


_REAL_PARAMETERS = ("alpha", "learning_rate_init", "power_t", "tol", "momentum", "validation_fraction", "beta_1",
                    "beta_2", "epsilon")


def _short(value: Any) -> str:
    """A number for a message, a whole number of hundreds of digits cut short."""
    text = repr(value)
    return text if len(text) <= 20 else f"{text[:6]}... ({len(text)} digits)"


def _initial_weights(sizes: Sequence[int], activation: str, rng: np.random.RandomState) -> list[np.ndarray]:
    """scikit-learn's starting weights, in :meth:`gdxp.Network.get_weights` order: Glorot's uniform bound
    (``sqrt(6 / (fan_in + fan_out))``, 2 for the logistic), biases drawn too, each layer's matrix first."""
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt((2.0 if activation == "logistic" else 6.0) / (fan_in + fan_out))
        weights += [rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)]
    return weights


def _float_dtypes(X: Any) -> tuple[Any, Any]:
    """The floating dtypes ``X`` may keep (float64 first): those of its own library when array-API dispatch
    is on, so that scikit-learn's checks compare like with like, else NumPy's."""
    dispatch = get_config()["array_api_dispatch"] and array_api_compat.is_array_api_obj(X)
    xp = array_api_compat.array_namespace(X) if dispatch else np
    return xp.float64, xp.float32


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _hidden_sizes(sizes: Any) -> list[int]:
    listed = [sizes] if _is_whole(sizes) else list(np.ravel(sizes)) if np.ndim(sizes) == 1 else None
    if listed is None or not all(_is_whole(s) and s >= 1 for s in listed):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes!r}.")
    return [int(s) for s in listed]
