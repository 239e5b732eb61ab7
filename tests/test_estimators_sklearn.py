"""gdxp.estimators against scikit-learn's MLP itself: the same parameters and attributes, the same refusals
(derived from scikit-learn's own constraints) before anything changes, and the same weights after training
from the same start, for every solver and learning-rate schedule (float64, to 1e-10)."""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._param_validation import generate_invalid_param_val, make_constraint  # noqa: E402

from gdxp.estimators import MLPClassifier, MLPRegressor  # noqa: E402

PAIRS = [(MLPClassifier, neural_network.MLPClassifier), (MLPRegressor, neural_network.MLPRegressor)]
GDXP_ONLY = {MLPClassifier: ["class_weight", "backend", "device", "dtype"],
             MLPRegressor: ["backend", "device", "dtype"]}


def wine_data():
    x, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(x), y


def diabetes_data():
    x, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(x), (y - y.mean()) / y.std()


def quietly(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_the_parameters_are_scikit_learns_names_defaults_and_order_then_gdxps(ours, theirs):
    mine, its = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(mine)[:len(its)] == list(its) and list(mine)[len(its):] == GDXP_ONLY[ours]
    for name, parameter in its.items():
        assert (mine[name].default, mine[name].kind) == (parameter.default, parameter.kind), name
    for method in ("fit", "partial_fit"):
        assert list(inspect.signature(getattr(ours, method)).parameters) == \
            list(inspect.signature(getattr(theirs, method)).parameters)


def documented_attributes(estimator) -> list[str]:
    """The fitted attributes scikit-learn's docstring lists under "Attributes"."""
    section = estimator.__doc__.split("Attributes\n    ----------")[1].split("See Also")[0]
    return re.findall(r"^    (\w+_) :", section, flags=re.MULTILINE)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
@pytest.mark.parametrize("settings", [{"solver": "adam"}, {"solver": "sgd", "early_stopping": True},
                                      {"solver": "lbfgs"}], ids=["adam", "sgd-early", "lbfgs"])
def test_the_fitted_attributes_are_those_scikit_learn_documents_and_sets(ours, theirs, settings):
    x, y = wine_data() if ours is MLPClassifier else diabetes_data()
    names = documented_attributes(theirs)
    assert {"loss_", "t_", "n_iter_", "coefs_", "best_loss_", "loss_curve_"} <= set(names)
    fitted = [quietly(kind(hidden_layer_sizes=(4,), max_iter=3, random_state=0, **settings), x, y)
              for kind in (ours, theirs)]
    for name in names:
        assert hasattr(fitted[0], name) == hasattr(fitted[1], name), name
        if name not in ("coefs_", "intercepts_", "classes_") and hasattr(fitted[1], name):
            mine, its = getattr(fitted[0], name), getattr(fitted[1], name)
            assert type(mine) is type(its) or np.isscalar(its), name
            if name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
                assert mine == its, name


BAD = [("early_stopping", "no"), ("warm_start", "no"), ("verbose", "yes"), ("batch_size", 0), ("shuffle", "no"),
       ("nesterovs_momentum", "no"), ("alpha", 10**400), ("learning_rate_init", 10**400), ("learning_rate", "fast"),
       ("power_t", -1), ("max_fun", 0), ("solver", "momentum"), ("momentum", 1.5), ("n_iter_no_change", 0.5),
       ("max_iter", 2**41)]


def fitted_state(est) -> tuple:
    return (est.n_iter_, est.t_, list(est.loss_curve_), [w.tobytes() for w in est.coefs_ + est.intercepts_],
            sorted(vars(est)))


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_parameter_is_refused_by_name_before_anything_changes(name, value):
    x, y = wine_data()
    for method in ("fit", "partial_fit"):
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, solver="sgd").partial_fit(
            x, y, classes=np.unique(y))
        quietly(est, x, y) if method == "fit" else est.partial_fit(x, y)
        before = fitted_state(est)
        est.set_params(**{name: value})
        with pytest.raises(ValueError, match=f"'{name}' parameter of MLPClassifier must be"):  # and no later
            getattr(est, method)(x, y) if method == "fit" else est.partial_fit(x, y, classes=np.unique(y))
        assert fitted_state(est) == before


def test_string_targets_for_the_regressor_are_refused_before_anything_changes():
    x, y = diabetes_data()
    est = quietly(MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, random_state=0), x, y)
    before = fitted_state(est)
    for method in ("fit", "partial_fit"):
        with pytest.raises((TypeError, ValueError), match="could not convert|numeric|real numbers"):
            getattr(est, method)(x, np.array(["a"] * len(y)))
        assert fitted_state(est) == before


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_every_value_scikit_learns_constraints_refuse_is_refused_here(ours, theirs):
    x, y = wine_data() if ours is MLPClassifier else diabetes_data()
    est = quietly(ours(hidden_layer_sizes=(4,), max_iter=2, random_state=0), x, y)
    before, tried = fitted_state(est), 0
    for name, constraints in theirs._parameter_constraints.items():
        if constraints == "no_validation" or name == "loss" and ours is MLPClassifier:
            continue
        for constraint in map(make_constraint, constraints):
            try:
                bad = generate_invalid_param_val(constraint)
            except NotImplementedError:  # a constraint without a value outside it ("array-like", "random_state")
                continue
            if any(make_constraint(c).is_satisfied_by(bad) for c in constraints):
                continue  # another of the parameter's constraints allows it
            with pytest.raises(ValueError, match=name):
                clone(theirs(), safe=False).set_params(**{name: bad}).fit(x, y)
            with pytest.raises(ValueError, match=f"'{name}' parameter"):
                est.set_params(**{name: bad}).fit(x, y)
            est.set_params(**{name: ours().get_params()[name]})
            tried += 1
    assert tried >= 15 and fitted_state(est) == before


def scikit_learn_pair(ours, theirs, **settings):
    """The two estimators with the same settings: the same starting weights (gdxp draws them as scikit-learn
    does from ``random_state``) and the same batch order (``shuffle=False``)."""
    common = {"hidden_layer_sizes": (6, 5), "random_state": 0, "shuffle": False, "batch_size": 40, **settings}
    return ours(**common), theirs(**common)


SOLVERS = {"sgd-constant": {"solver": "sgd", "learning_rate_init": 0.05},
           "sgd-plain": {"solver": "sgd", "momentum": 0.0, "learning_rate_init": 0.05},
           "sgd-classical": {"solver": "sgd", "nesterovs_momentum": False, "learning_rate_init": 0.05},
           "sgd-invscaling": {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.3, "max_iter": 4,
                              "learning_rate_init": 0.05},
           # a tol no epoch beats: the rate is divided by 5 after every 2 epochs, until it is below 1e-6
           "sgd-adaptive": {"solver": "sgd", "learning_rate": "adaptive", "tol": 10.0, "n_iter_no_change": 2,
                            "max_iter": 30, "learning_rate_init": 0.05},
           "adam": {"solver": "adam", "learning_rate_init": 0.01},
           "adam-early": {"solver": "adam", "learning_rate_init": 0.01, "early_stopping": True, "max_iter": 5},
           "lbfgs": {"solver": "lbfgs", "max_iter": 5}}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("kind", [0, 1], ids=["classifier", "regressor"])
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_training_gives_scikit_learns_weights(solver, kind, weighted):
    x, y = wine_data() if kind == 0 else diabetes_data()
    settings = {"max_iter": 1, "alpha": 1e-3, **SOLVERS[solver]}
    weights = np.random.default_rng(0).uniform(0, 3, len(y)) if weighted else None
    ours, theirs = (quietly(est, x, y, sample_weight=weights) for est in scikit_learn_pair(*PAIRS[kind], **settings))
    for mine, its in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, its, rtol=0, atol=1e-10)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10, abs=1e-12)
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    if solver == "sgd-adaptive":
        assert ours._rate == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12) and ours._rate < 0.05 / 5**3


def test_partial_fit_and_warm_start_count_as_scikit_learn_does():
    x, y = wine_data()
    ours, theirs = scikit_learn_pair(MLPClassifier, neural_network.MLPClassifier, solver="sgd",
                                     learning_rate="invscaling", max_iter=3, warm_start=True)
    for est in (ours, theirs):
        for _ in range(4):
            est.partial_fit(x, y, classes=np.unique(y))
        assert (est.n_iter_, est.t_) == (1, 4 * 178)
        quietly(est, x, y)
        quietly(est, x, y)
    assert (ours.n_iter_, ours.t_, len(ours.loss_curve_)) == (theirs.n_iter_, theirs.t_, 10) == (3, 10 * 178, 10)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    for mine, its in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(mine, its, rtol=0, atol=1e-10)


def test_partial_fit_is_only_for_the_stochastic_solvers():
    for kind in (MLPClassifier, MLPRegressor):
        assert not hasattr(kind(solver="lbfgs"), "partial_fit") and hasattr(kind(), "partial_fit")


def test_lbfgs_honours_max_fun_and_warns_as_scikit_learn():
    x, y = wine_data()
    ours, theirs = scikit_learn_pair(MLPClassifier, neural_network.MLPClassifier, solver="lbfgs", max_fun=7)
    for est in (ours, theirs):
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            est.fit(x, y)
    assert ours.n_iter_ == theirs.n_iter_ < 7 and ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)


def test_breast_cancer_split_is_scikit_learns_too():
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    ours, theirs = (quietly(est, x, y) for est in scikit_learn_pair(
        MLPClassifier, neural_network.MLPClassifier, early_stopping=True, max_iter=6))
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=0, atol=1e-12)
    for mine, its in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(mine, its, rtol=0, atol=1e-10)


def test_class_weight_multiplies_each_samples_weight_by_its_class_weight():
    x, y = wine_data()
    weights = np.random.default_rng(1).uniform(0.5, 2, len(y))
    by_class = {0: 1.0, 1: 3.0, 2: 0.5}
    for class_weight, per_class in ((by_class, np.array([1.0, 3.0, 0.5])[y]),
                                    ("balanced", len(y) / (3 * np.bincount(y)[y]))):
        ours = quietly(MLPClassifier(class_weight=class_weight, solver="lbfgs", max_iter=5, random_state=0), x, y,
                       sample_weight=weights)
        theirs = quietly(neural_network.MLPClassifier(solver="lbfgs", max_iter=5, random_state=0), x, y,
                         sample_weight=weights * per_class)
        for mine, its in zip(ours.coefs_, theirs.coefs_):
            np.testing.assert_allclose(mine, its, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(x, y, classes=[0, 1, 2])


def test_balanced_class_weight_raises_the_minority_recall_on_imbalanced_breast_cancer():
    from sklearn.metrics import recall_score
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)  # 212 malignant (0), 357 benign (1)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=0)
    keep = np.flatnonzero(y_train == 1).tolist() + np.flatnonzero(y_train == 0)[:12].tolist()  # 12 malignant
    scaler = StandardScaler().fit(x_train[keep])
    recalls = {}
    for class_weight in (None, "balanced"):
        est = quietly(MLPClassifier(hidden_layer_sizes=(8,), class_weight=class_weight, learning_rate_init=0.01,
                                    max_iter=100, random_state=0), scaler.transform(x_train[keep]), y_train[keep])
        recalls[class_weight] = recall_score(y_test, est.predict(scaler.transform(x_test)), pos_label=0)
    assert recalls["balanced"] > recalls[None] + 0.05, recalls


@pytest.mark.parametrize("solver", ["sgd-invscaling", "sgd-adaptive", "adam-early", "lbfgs"])
def test_every_backend_trains_as_numpy_does(backend, solver):
    """Every solver, with sample_weight and class_weight, on every float64 backend (JAX compiled): NumPy's
    weights to 1e-12."""
    if backend.dtype_name != "float64":
        pytest.skip("compared with NumPy in float64")
    x, y = wine_data()
    weights = np.random.default_rng(2).uniform(0.5, 2, len(y))
    settings = {"hidden_layer_sizes": (5,), "random_state": 0, "batch_size": 50, "class_weight": "balanced",
                **SOLVERS[solver], "max_iter": 6}
    on_numpy = quietly(MLPClassifier(**settings), x, y, sample_weight=weights)
    there = quietly(MLPClassifier(backend=backend, **settings), x, y, sample_weight=weights)
    assert there.net_.backend is backend
    for mine, its in zip(there.coefs_ + there.intercepts_, on_numpy.coefs_ + on_numpy.intercepts_):
        np.testing.assert_allclose(mine, its, rtol=0, atol=1e-12)
    assert there.n_iter_ == on_numpy.n_iter_ and there.loss_ == pytest.approx(on_numpy.loss_, rel=1e-12)


@pytest.mark.parametrize("solver", ["sgd-constant", "adam", "lbfgs"])
def test_the_poisson_loss_gives_scikit_learns_weights(solver):
    x, y = load_diabetes(return_X_y=True)
    x, y = StandardScaler().fit_transform(x), y / 100  # a positive rate
    settings = {"max_iter": 2, **SOLVERS[solver], "loss": "poisson", "learning_rate_init": 0.01}
    ours, theirs = (quietly(est, x, y) for est in scikit_learn_pair(MLPRegressor, neural_network.MLPRegressor,
                                                                     **settings))
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    for mine, its in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, its, rtol=0, atol=1e-10)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)
    with pytest.raises(ValueError, match="y >= 0"):
        ours.fit(x, y - 2)


def test_a_warm_start_may_change_the_solver_and_the_stopping_rule():
    x, y = wine_data()
    est = quietly(MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, warm_start=True,
                                random_state=0), x, y)
    assert not hasattr(est, "loss_curve_")  # as scikit-learn's: L-BFGS keeps no epoch records
    quietly(est.set_params(solver="adam", early_stopping=True), x, y)
    assert len(est.validation_scores_) == est.n_iter_ == 5 and est.best_loss_ is None
    quietly(est.set_params(early_stopping=False), x, y)
    assert len(est.loss_curve_) == 10 and est.best_loss_ == min(est.loss_curve_[5:])
