"""gdxp.estimators beside scikit-learn's MLP on scikit-learn's five bundled data sets: held-out score and fit
time, with scikit-learn's default settings on both sides (adam, 100 hidden relu units, up to 200 epochs).

Each round splits every data set 75/25 afresh (seed = round), standardizes it on the training part (diabetes's
targets too), then fits scikit-learn, gdxp on NumPy and gdxp on JAX (compiled runs, JAX's default float32) in
an order that rotates from round to round, so that a slow spell of a shared machine falls on all of them. One
BLAS thread (and one XLA thread) for all. Prints each one's median score and median fit seconds with their
range over the rounds, and gdxp's time over scikit-learn's.

    python examples/sklearn_compare.py [--rounds 7] [--datasets iris,wine]
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before NumPy starts its BLAS
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn import datasets, neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import gdxp  # noqa: E402
from gdxp.estimators import MLPClassifier, MLPRegressor  # noqa: E402

DATASETS = {"iris": datasets.load_iris, "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer,
            "digits": datasets.load_digits, "diabetes": datasets.load_diabetes}


def contenders(regression: bool) -> dict[str, type]:
    """Who fits: scikit-learn's estimator and gdxp's on NumPy and on JAX (where JAX is installed)."""
    ours = MLPRegressor if regression else MLPClassifier
    theirs = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
    found = {"sklearn": lambda seed: theirs(random_state=seed), "gdxp numpy": lambda seed: ours(random_state=seed)}
    if gdxp.available_backends()["jax"].usable:
        found["gdxp jax"] = lambda seed: ours(random_state=seed, backend="jax")
    return found


def split(name: str, seed: int) -> tuple[np.ndarray, ...]:
    x, y = DATASETS[name](return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=seed)
    scaler = StandardScaler().fit(x_train)
    if name == "diabetes":  # targets in units of their spread, as for the inputs (R² is unchanged)
        mean, spread = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / spread, (y_test - mean) / spread
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


def measure(names: list[str], rounds: int) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """``{data set: {contender: (scores, seconds)}}``, one entry a round."""
    results: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for round_ in range(rounds):
        for name in names:
            x_train, x_test, y_train, y_test = split(name, round_)
            makers = contenders(name == "diabetes")
            order = list(makers)
            order = order[round_ % len(order):] + order[:round_ % len(order)]  # interleaved, rotating
            for who in order:
                estimator = makers[who](round_)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    start = time.perf_counter()
                    estimator.fit(x_train, y_train)
                    seconds = time.perf_counter() - start
                scores, times = results.setdefault(name, {}).setdefault(who, ([], []))
                scores.append(float(estimator.score(x_test, y_test)))
                times.append(seconds)
    return results


def table(results: dict[str, dict[str, tuple[list[float], list[float]]]]) -> str:
    """A Markdown table: per data set and contender, median score and seconds [min-max], and time / sklearn's."""
    lines = ["| data set | fit by | score (median [range]) | fit seconds (median [range]) | time / sklearn's |",
             "| --- | --- | --- | --- | --- |"]
    for name, by_who in results.items():
        reference = float(np.median(by_who["sklearn"][1]))
        for who, (scores, times) in by_who.items():
            median = float(np.median(times))
            lines.append(f"| {name} | {who} | {np.median(scores):.3f} [{min(scores):.3f}-{max(scores):.3f}] | "
                         f"{median:.3f} [{min(times):.3f}-{max(times):.3f}] | {median / reference:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    names = args.datasets.split(",")
    unknown = set(names) - set(DATASETS)
    if unknown:
        parser.error(f"--datasets: unknown {', '.join(sorted(unknown))}; choose from {', '.join(DATASETS)}")
    results = measure(names, args.rounds)
    print(f"{time.strftime('%Y-%m-%d', time.gmtime())}, {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"gdxp {gdxp.__version__}; {args.rounds} rounds, one BLAS thread; scores: accuracy, R² (diabetes)")
    print(table(results))


if __name__ == "__main__":
    main()
