"""gdxp.estimators: scikit-learn's own estimator checks, its tools (Pipeline, GridSearchCV, clone, pickle), and
what the parameters promise, with numbers; array-API inputs give what NumPy gives.

``python tests/test_estimators.py`` prints the wine and diabetes scores beside scikit-learn's MLP.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import gdxp  # noqa: E402
from gdxp.estimators import MLPClassifier, MLPRegressor  # noqa: E402

HAS_WEIGHT_DECAY = "weight_decay" in inspect.signature(gdxp.Network.fit).parameters
needs_weight_decay = pytest.mark.skipif(not HAS_WEIGHT_DECAY, reason="alpha needs Network.fit(weight_decay=...)")


@pytest.fixture
def array_api(monkeypatch):
    """scikit-learn refuses array-API dispatch unless SCIPY_ARRAY_API=1; these estimators call no SciPy
    function on device arrays, so setting it for the test is enough (sklearn reads it when dispatch starts)."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")


def wine(labels=("barolo", "grignolino", "barbera")):
    x, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(x), np.array(labels)[y]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=100),
                          MLPRegressor(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=100)])
def test_scikit_learns_estimator_checks(estimator, check, array_api):
    skip_where_torch_lacks_the_device(check)
    check(estimator)


def skip_where_torch_lacks_the_device(check) -> None:
    """Skip, with the reason, a check that puts torch arrays on a device torch cannot use here. scikit-learn
    runs its torch "cuda" checks wherever torch was built with CUDA, a driver or not: a CUDA build of torch on a
    machine without a (recent enough) driver would fail them."""
    arguments = getattr(check, "keywords", {})
    asked = {arguments.get("device_name")} if arguments.get("array_namespace") == "torch" else set()
    asked |= {where.device for where in arguments.values() if getattr(where, "xp", None) == "torch"}
    usable = {label.split(":")[0].split(" ")[0] for label in gdxp.backend_status("torch").devices} if asked else ()
    for device in asked - {None, "cpu"}:
        if device not in usable:
            pytest.skip(f"torch has no device {device!r} here (its devices: {', '.join(sorted(usable))})")


def test_importing_gdxp_imports_no_scikit_learn():
    code = "import sys, gdxp; print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_string_labels_in_a_pipeline_under_grid_search():
    x, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__learning_rate_init": [0.003, 0.03],
                               "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(x, labels)
    assert grid.best_params_["mlpclassifier__learning_rate_init"] == 0.03
    assert grid.best_score_ > 0.9
    assert list(grid.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(grid.predict(x)) <= set(labels)


def test_classifier_outputs_follow_the_targets():
    x, y = wine()
    three = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(x, y)
    assert three.net_.activations[-1].name == "softmax" and three.net_.loss.name == "cross_entropy"
    assert list(three.classes_) == ["barbera", "barolo", "grignolino"]
    proba = three.predict_proba(x)
    assert proba.shape == (178, 3) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(three.classes_[proba.argmax(axis=1)], three.predict(x))
    assert three.score(x, y) == 1.0 and three.n_iter_ < 200  # converged: stopped by tol

    two = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(x, y == "barolo")
    assert two.net_.sizes[-1] == 1 and two.net_.loss.name == "binary_cross_entropy"
    assert two.predict_proba(x).shape == (178, 2) and two.predict(x).dtype == bool

    indicator = np.stack([y == "barolo", y != "barbera"], axis=1).astype(int)  # multilabel: 0/1 columns
    multi = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(x, indicator)
    assert multi.net_.activations[-1].name == "sigmoid" and multi.predict(x).shape == (178, 2)
    assert multi.score(x, indicator) > 0.95


def test_regressor_on_one_and_two_targets():
    x, y = load_diabetes(return_X_y=True)
    one = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.05, max_iter=300, random_state=0).fit(x, y)
    assert one.net_.loss.name == "half_squared_error" and one.predict(x).shape == (442,)
    assert one.score(x, y) > 0.4
    two = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.05, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\)"):
        two.fit(x, np.stack([y, -y], axis=1))
    assert two.predict(x).shape == (442, 2) and len(two.loss_curve_) == two.n_iter_ == 5


def test_tol_stops_after_n_iter_no_change_epochs_without_improvement():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, tol=0.5, n_iter_no_change=3,
                        random_state=0).fit(x, y)
    curve = est.loss_curve_
    assert est.n_iter_ == len(curve) < 200
    # scikit-learn's rule: stop once the loss has failed to beat the best by tol more than n_iter_no_change times
    best, count = np.inf, 0
    for epoch, loss in enumerate(curve, 1):
        count = count + 1 if loss > best - 0.5 else 0
        best = min(best, loss)
        assert (count > 3) == (epoch == len(curve))


def test_early_stopping_keeps_the_best_validation_score():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=5,
                        learning_rate_init=0.01, random_state=0).fit(x, y)
    assert len(est.validation_scores_) == est.n_iter_ and est.best_loss_ is None
    assert est.best_validation_score_ == max(est.validation_scores_)
    held_out = train_test_split(np.arange(178), random_state=np.random.RandomState(0), stratify=y, test_size=0.2)[1]
    assert est.score(x[held_out], y[held_out]) == est.best_validation_score_


def test_partial_fit_needs_the_classes_first_then_runs_one_epoch_each():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(x, y)
    est.partial_fit(x[:20], y[:20], classes=["barbera", "barolo", "grignolino"])
    est.partial_fit(x, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2 and list(est.classes_) == ["barbera", "barolo", "grignolino"]
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(x, np.where(y == "barolo", "nebbiolo", y))


def test_warm_start_continues_the_weights_and_the_records():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, tol=0, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = est.fit(x, y).coefs_[0]
        est.fit(x, y)
        cold = clone(est).set_params(warm_start=False, max_iter=8).fit(x, y)
    assert est.n_iter_ == 8 and not np.array_equal(est.coefs_[0], first)
    # the solver restarts on a warm fit (as scikit-learn's does): the first step after it differs from one fit's
    # (an epoch's loss is taken before its step, so the fifth is still the same)
    assert est.loss_curve_[:5] == cold.loss_curve_[:5] and est.loss_curve_[5] != cold.loss_curve_[5]


def test_random_state_fixes_the_weights_and_none_draws_new_ones():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fixed = [clone(est).set_params(random_state=7).fit(x, y).coefs_[0] for _ in range(2)]
        fresh = [clone(est).fit(x, y).coefs_[0] for _ in range(2)]
    assert np.array_equal(*fixed) and not np.array_equal(*fresh)


@needs_weight_decay
def test_alpha_is_scikit_learns_l2_penalty_on_the_weights():
    x, y = wine()
    settings = {"hidden_layer_sizes": (8,), "batch_size": 178, "max_iter": 1, "random_state": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(alpha=0.0, **settings).fit(x, y).loss_curve_[0]
        penalized = MLPClassifier(alpha=0.5, **settings).fit(x, y).loss_curve_[0]
    start = gdxp.Network([13, 8, 3], init="glorot_uniform", seed=3).get_weights()  # the weights fit began from
    assert penalized - plain == pytest.approx(0.5 * 0.5 * sum((w**2).sum() for w in start[0::2]) / 178, rel=1e-12)


def test_solvers_and_activations_map_to_gdxp():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(4, 4), activation="logistic", solver="sgd", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)
    assert [a.name for a in est.net_.activations] == ["sigmoid", "sigmoid", "softmax"]
    assert type(est.net_.optimizer).__name__ == "Momentum" and est.net_.optimizer.nesterov
    for bad in ({"activation": "softmax"}, {"solver": "lbfgs"}, {"hidden_layer_sizes": (4, 0)},
                {"learning_rate_init": 0}, {"max_iter": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            clone(est).set_params(**bad).fit(x, y)


def test_a_pickled_estimator_predicts_and_trains_on_as_before():
    x, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0).partial_fit(x, y, classes=np.unique(y))
    copy = pickle.loads(pickle.dumps(est))
    assert np.array_equal(copy.predict_proba(x), est.predict_proba(x))
    assert copy.partial_fit(x, y).loss_curve_ == est.partial_fit(x, y).loss_curve_  # solver state travelled too


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_arrays_of_another_library_give_numpys_predictions_in_that_library(library, array_api):
    pytest.importorskip(library)
    if library == "jax":
        import jax

        with jax.enable_x64(True):  # float64 like NumPy's, for this test only
            fit_both(jax.numpy, library)
    else:
        import torch

        fit_both(torch, library)


def fit_both(xlib, library):
    """The same estimator fitted on NumPy arrays and, with array-API dispatch, on ``xlib``'s: the same numbers."""
    x, y = wine(labels=(0, 1, 2))
    est = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_numpy = clone(est).fit(x, y)
        with sklearn.config_context(array_api_dispatch=True):
            there = clone(est).fit(xlib.asarray(x), xlib.asarray(y))
            proba, labels = there.predict_proba(xlib.asarray(x)), there.predict(xlib.asarray(x))
            with pytest.raises(ValueError, match="same namespace"):
                there.predict(x)
    assert there.net_.backend.name == library and type(proba) is type(xlib.asarray(x))
    np.testing.assert_allclose(np.asarray(proba), on_numpy.predict_proba(x), rtol=0, atol=1e-12)
    assert np.array_equal(np.asarray(labels), on_numpy.predict(x))
    assert there.loss_curve_ == pytest.approx(on_numpy.loss_curve_, rel=1e-12)


def compare_with_sklearn(seeds=range(5), **settings) -> dict[str, tuple[float, float, float, float]]:
    """Held-out scores (mean over ``seeds``) and fit seconds of gdxp's estimators and scikit-learn's MLP, both
    with scikit-learn's defaults (and ``settings``): wine (accuracy, 3 classes) and diabetes (R²), split 75/25
    per seed, inputs standardized on the training part (and diabetes's targets, which leaves R² as it is)."""
    from sklearn import neural_network

    problems = {"wine": (load_wine, MLPClassifier, neural_network.MLPClassifier),
                "diabetes": (load_diabetes, MLPRegressor, neural_network.MLPRegressor)}
    results = {}
    for name, (load, ours, theirs) in problems.items():
        x, y = load(return_X_y=True)
        scores, seconds = {ours: [], theirs: []}, {ours: 0.0, theirs: 0.0}
        for seed in seeds:
            x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=seed)
            scaler = StandardScaler().fit(x_train)
            x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
            if name == "diabetes":
                y_train, y_test = (y_train - y_train.mean()) / y_train.std(), (y_test - y_train.mean()) / y_train.std()
            for kind in (ours, theirs):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    est = kind(random_state=seed, **settings).fit(x_train, y_train)
                seconds[kind] += time.perf_counter() - start
                scores[kind].append(est.score(x_test, y_test))
        results[name] = (float(np.mean(scores[ours])), float(np.mean(scores[theirs])), seconds[ours] / len(seeds),
                         seconds[theirs] / len(seeds))
    return results


@pytest.mark.slow
def test_scores_match_scikit_learns_mlp_on_wine_and_diabetes():
    results = compare_with_sklearn(seeds=range(2))
    assert results["wine"][0] >= results["wine"][1] - 0.03
    assert results["diabetes"][0] >= results["diabetes"][1] - 0.05


def test_the_estimators_without_scikit_learn_say_how_to_install_it():
    # issue 22, item 6: a hint with the install line, as the backends give, not a bare ModuleNotFoundError
    import subprocess
    import sys
    script = ("import sys\n"
              "class NoSklearn:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.partition('.')[0] == 'sklearn':\n"
              "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
              "sys.meta_path.insert(0, NoSklearn())\n"
              "import gdxp.estimators\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "gdxp.estimators needs scikit-learn: pip install 'gdxp[sklearn]'" in result.stderr


if __name__ == "__main__":
    print("data set   gdxp    sklearn   gdxp s  sklearn s")
    for data, (ours, theirs, our_seconds, their_seconds) in compare_with_sklearn().items():
        print(f"{data:<9} {ours:.4f}   {theirs:.4f}   {our_seconds:.3f}   {their_seconds:.3f}")


def test_checks_on_a_torch_device_that_cannot_run_skip_with_the_reason(monkeypatch):
    # a CUDA build of torch where the driver is missing or too old: CUDA claims to be there, every query fails
    torch = pytest.importorskip("torch")

    def driver_too_old(*args, **kwargs):
        raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", driver_too_old)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    assert gdxp.backend_status("torch").devices == ("cpu",)  # the CPU still usable, no error
    from sklearn.utils.estimator_checks import check_array_api_input

    on_cuda = functools.partial(check_array_api_input, array_namespace="torch", device_name="cuda",
                                dtype_name="float32")
    with pytest.raises(pytest.skip.Exception, match=r"torch has no device 'cuda' here \(its devices: cpu\)"):
        skip_where_torch_lacks_the_device(on_cuda)
    skip_where_torch_lacks_the_device(functools.partial(check_array_api_input, array_namespace="torch",
                                                        device_name="cpu", dtype_name="float32"))  # runs
