"""Every public call refuses bad input (issue 12, done-when): the right exception, a message naming the
argument, and nothing changed: not the weights, not the optimizer's state or step count, not the shuffling.

One table, built from small lists of bad values per kind of argument (numbers, whole numbers, flags, names,
arrays); each row is ``(call, arguments that replace the good ones, exception, word the message must hold)``.
Each case starts from a fresh network fitted two epochs with Adam, so there is optimizer state to disturb.
"""

from __future__ import annotations

import copy
import math
import os
import re

import numpy as np
import pytest

import gdxp
from gdxp.optimizers import SGD, Adam, Momentum

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 2))
Y = 1.0 / (1.0 + np.exp(-X[:, :1] - X[:, 1:]))  # targets in (0, 1), for a sigmoid output
WEIGHTS = np.linspace(0.5, 2.0, X.shape[0])  # sample weights


class Make:
    """An argument made per case, from the fitted network and the case's folder (``files``)."""

    def __init__(self, label: str, make):
        self.label, self.make = label, make

    def __repr__(self) -> str:
        return self.label


def _fitted() -> gdxp.Network:
    net = gdxp.Network([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=0)
    net.fit(X, Y, epochs=2, learning_rate=0.05, batch_size=4, optimizer="adam", verbose=0)
    return net


def _good_arguments(call: str, net: gdxp.Network, files) -> dict:
    """Arguments each call accepts (``test_the_good_arguments_are_accepted``); a row replaces some."""
    data = {"x": X, "y": Y}
    weighted = {**data, "sample_weight": WEIGHTS}
    return {
        "Network": {"sizes": [2, 3, 1], "activation": "tanh", "output_activation": "sigmoid",
                    "loss": "squared_error", "bias": True, "init": "glorot_uniform", "seed": 0,
                    "backend": "numpy", "device": None, "dtype": None},
        "predict": {"x": X},
        "evaluate": weighted, "loss_value": weighted, "gradients": weighted,
        "step": {**weighted, "learning_rate": 0.1, "return_loss": False, "check_finite": False},
        "fit": {**weighted, "epochs": 1, "learning_rate": 0.1, "batch_size": 4, "optimizer": "adam", "shuffle": True,
                "validation_data": None, "patience": None, "verbose": 0, "record_predictions": False,
                "weight_decay": 0.0, "learning_rate_schedule": None, "callbacks": (), "client": None},
        "set_weights": {"weights": net.get_weights()},
        "copy": {"backend": None, "device": None, "dtype": None},
        "save": {"path": files / "out.npz", "include_optimizer": True},
        "load": {"path": files / "saved.npz", "backend": None, "device": None, "dtype": None},
        "trace": {"x": X[0], "y": Y[0]},
        "check_gradients": {"net": net, **weighted, "epsilon": 1e-5},
        "get_backend": {"name": "numpy", "device": None, "dtype": None},
        "SGD": {}, "Momentum": {"momentum": 0.9, "nesterov": False},
        "Adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    }[call]


def _function(call: str, net: gdxp.Network):
    methods = ("predict", "evaluate", "loss_value", "gradients", "step", "fit", "set_weights", "copy", "save",
               "trace")
    if call in methods:
        return getattr(net, call)
    return {"Network": gdxp.Network, "load": gdxp.load, "check_gradients": gdxp.check_gradients,
            "get_backend": gdxp.get_backend, "SGD": SGD, "Momentum": Momentum, "Adam": Adam}[call]


def _state(net: gdxp.Network) -> dict:
    optimizer = net.optimizer
    return {"weights": net.get_weights(),
            "optimizer": (id(optimizer), type(optimizer).__name__),
            "optimizer state": [[net.backend.to_numpy(a).copy() for a in slot] for slot in net.state.optimizer_state],
            "optimizer steps": net.state.steps,
            "epoch": net.state.epoch,
            "shuffle": copy.deepcopy(net.shuffle_rng.bit_generator.state)}


def _assert_same(before: dict, after: dict) -> None:
    assert after["optimizer"] == before["optimizer"]
    assert after["optimizer steps"] == before["optimizer steps"]
    assert after["epoch"] == before["epoch"]
    assert after["shuffle"] == before["shuffle"]
    for key in ("weights", "optimizer state"):
        assert len(after[key]) == len(before[key]), key
    for mine, old in zip(after["weights"], before["weights"]):
        np.testing.assert_array_equal(mine, old, err_msg="weights")
    for slot, old_slot in zip(after["optimizer state"], before["optimizer state"]):
        for mine, old in zip(slot, old_slot):
            np.testing.assert_array_equal(mine, old, err_msg="optimizer state")


# -- bad values by kind -------------------------------------------------------------------------------------

NOT_NUMBERS = {"None": None, "str": "0.1", "bytes": b"0.1", "list": [0.1], "dict": {"value": 0.1}, "bool": True,
               "complex": 1j, "object": object(), "array": np.array([0.1, 0.2])}
NOT_POSITIVE = {"zero": 0, "zero-float": 0.0, "negative": -0.1, "negative-int": -1, "nan": math.nan,
                "inf": math.inf, "-inf": -math.inf, "huge-int": 10**400, "-huge-int": -10**400,
                "np-nan": np.float64("nan")}
NOT_WHOLE = {"str": "1", "bytes": b"1", "list": [1], "dict": {}, "bool": True, "float": 1.0, "fraction": 1.5,
             "complex": 1j, "object": object(), "nan": math.nan, "np-float": np.float64(2.0)}
NOT_FLAGS = {"None": None, "str-yes": "yes", "str-no": "no", "bytes": b"", "zero": 0, "one": 1, "float": 1.0,
             "list": [True], "object": object()}
NOT_FRACTIONS = {"one": 1.0, "negative": -0.1, "above-one": 1.5, "nan": math.nan, "inf": math.inf,
                 "-inf": -math.inf, "huge-int": 10**400}
NOT_NAMES = {"None": None, "int": 1, "float": 1.5, "bytes": b"sigmoid", "object": object()}
UNKNOWN_NAMES = {"unknown": "nope", "empty": "", "capitalised": "Sigmoid"}


def _ragged(shape):
    return [[1.0] * shape[1], [1.0] * (shape[1] + 1)]


def _masked(arr):
    return np.ma.masked_array(arr, mask=np.zeros(arr.shape, bool))


NOT_REAL_ARRAYS = {  # TypeError wherever an array of real numbers is due
    "None": lambda good: None, "str": lambda good: "abc", "bytes": lambda good: b"ab",
    "dict": lambda good: {"x": good}, "object": lambda good: object(),
    "complex": lambda good: good.astype(complex), "strings": lambda good: good.astype(str),
    "objects": lambda good: good.astype(object), "datetimes": lambda good: np.zeros(good.shape, "datetime64[s]"),
    "masked": lambda good: _masked(good),
    "huge-int-list": lambda good: np.full(good.shape, 10**400, dtype=object).tolist(),
}


def _bad_shapes(good):
    """ValueError: arrays of real numbers, of the wrong shape or size or holding NaN/inf."""
    wide = np.zeros((good.shape[0], good.shape[1] + 1)) if good.ndim == 2 else np.zeros(good.shape[0] + 1)
    nan, inf, ninf = (np.where(np.arange(good.size).reshape(good.shape) == good.size - 1, v, good)
                      for v in (np.nan, np.inf, -np.inf))
    cases = {"ragged": _ragged(good.shape if good.ndim == 2 else (1, good.shape[0])),
             "empty": np.empty((0, *good.shape[1:])), "empty-list": [], "wide": wide,
             "extra-dims": np.zeros((2, 2, good.shape[-1])), "nan": nan, "inf": inf, "-inf": ninf,
             "inf-list": [[1e309] * good.shape[-1]] * (good.shape[0] if good.ndim == 2 else 1)}
    if good.ndim == 2:
        cases["fewer-rows"] = good[: good.shape[0] // 2]
        cases["scalar"] = np.float64(1.0)
    return cases


# -- the table ----------------------------------------------------------------------------------------------

ROWS = []


def rows(call, argument, values, error, name=None, extra=None, xfail=None, wrap=None):
    """One row per value in ``values`` (a dict label -> value); ``name`` is the word the message must hold
    (default: the argument's own name); ``wrap`` puts the value into the argument (validation_data's pair)."""
    for label, value in values.items():
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        ROWS.append(pytest.param(call, {argument: wrap(value) if wrap else value, **(extra or {})}, error,
                                 name or argument, id=f"{call}-{name or argument}-{label}", marks=marks))


def array_rows(call, argument, good, name=None, wrap=None, single=False):
    """The bad arrays for an argument whose good value is ``good``: wrong types, then wrong shapes/values."""
    wrong_types = {label: Make(label, lambda net, files, f=f: f(good)) for label, f in NOT_REAL_ARRAYS.items()}
    rows(call, argument, wrong_types, TypeError, name, wrap=wrap)
    shapes = _bad_shapes(good)
    if single:  # one sample: an empty (0,) array is the same as the empty list
        shapes.pop("empty")
    if call == "predict":  # predict takes any number of samples
        shapes.pop("fewer-rows")
    if call == "step":  # step takes arrays already of its backend as they are, unless asked to scan them
        not_finite = {label: shapes.pop(label) for label in ("nan", "inf", "-inf")}
        rows(call, argument, not_finite, ValueError, name, wrap=wrap, extra={"check_finite": True})
    rows(call, argument, shapes, ValueError, name, wrap=wrap)


# Network(...)
rows("Network", "sizes", {"None": None, "str": "231", "bytes": b"\x02\x01", "int": 5, "float": 2.0,
                          "dict": {2: 1}, "object": object()}, TypeError)
rows("Network", "sizes", {"empty": [], "one": [2], "zero": [2, 0], "negative": [2, -1], "fraction": [2, 1.5],
                          "bool": [2, True], "str": [2, "3"], "None": [2, None], "zero-inputs": [0, 1],
                          "too-big": [2, 10**9, 10**9], "huge-int": [2, 10**400]}, ValueError)
rows("Network", "activation", {**NOT_NAMES, "list-of-int": [1]}, TypeError)
rows("Network", "activation", {**UNKNOWN_NAMES, "output-only": "softmax", "wrong-count": ["tanh", "tanh"]},
     ValueError)
rows("Network", "output_activation", {**{k: v for k, v in NOT_NAMES.items() if v is not None}, "list": ["sigmoid"]},
     TypeError)
rows("Network", "output_activation", UNKNOWN_NAMES, ValueError)
rows("Network", "output_activation", {"relu-for-cross-entropy": "relu"}, ValueError,
     extra={"loss": "cross_entropy", "sizes": [2, 3, 2]})
rows("Network", "output_activation", {"softmax-over-one": "softmax"}, ValueError)
rows("Network", "loss", {**NOT_NAMES, "list": ["squared_error"]}, TypeError)
rows("Network", "loss", UNKNOWN_NAMES, ValueError)
rows("Network", "bias", NOT_FLAGS, TypeError)
rows("Network", "init", NOT_NAMES, TypeError)
rows("Network", "init", UNKNOWN_NAMES, ValueError)
rows("Network", "seed", {k: v for k, v in NOT_WHOLE.items() if k != "np-float"}, TypeError)
rows("Network", "seed", {"negative": -1}, ValueError)
rows("Network", "backend", {"int": 1, "list": ["numpy"], "bytes": b"numpy", "object": object()}, TypeError)
rows("Network", "backend", {"unknown": "nope", "empty": "", "capitalised": "NumPy"}, ValueError)
rows("Network", "device", {"gpu": "gpu7", "cuda": "cuda", "int": 3, "object": object()}, ValueError)
BAD_DTYPES = {"int32": "int32", "complex": "complex128", "structured": "f8,,", "unknown": "nope", "float16": "float16",
              "int": 1, "object": object(), "np-int64": np.int64, "np-complex": np.complex64, "bool": "bool"}
rows("Network", "dtype", BAD_DTYPES, ValueError)

# predict, evaluate, loss_value, gradients, step, fit, trace, check_gradients: the data
for call in ("predict", "evaluate", "loss_value", "gradients", "step", "fit", "check_gradients"):
    array_rows(call, "x", X)
for call in ("evaluate", "loss_value", "gradients", "step", "fit", "check_gradients"):
    array_rows(call, "y", Y)
array_rows("trace", "x", X[0], single=True)
array_rows("trace", "y", Y[0], single=True)
rows("trace", "x", {"two-samples": X[:2]}, ValueError, extra={"y": Y[:2]})
array_rows("fit", "validation_data", X, name="x_val", wrap=lambda x_val: (x_val, Y))
array_rows("fit", "validation_data", Y, name="y_val", wrap=lambda y_val: (X, y_val))

# sample_weight: not real numbers (booleans neither), not one finite weight >= 0 per sample, or all 0
BAD_SAMPLE_WEIGHT_TYPES = {label: f(WEIGHTS) for label, f in NOT_REAL_ARRAYS.items() if label != "None"}
BAD_SAMPLE_WEIGHTS = {"2-d": WEIGHTS[:, None], "short": WEIGHTS[:4], "long": np.ones(9), "scalar": np.float64(1.0),
                      "empty": np.empty(0), "ragged": [[1.0], [1.0, 2.0]], "nan": np.where(WEIGHTS > 1.9, np.nan, 1.0),
                      "inf": np.where(WEIGHTS > 1.9, np.inf, 1.0), "overflow": [1e309] * 8,
                      "negative": np.where(WEIGHTS > 1.9, -1.0, 1.0), "all-zero": np.zeros(8), "all-zero-ints": [0] * 8}
for call in ("evaluate", "loss_value", "gradients", "step", "fit", "check_gradients"):
    rows(call, "sample_weight", {**BAD_SAMPLE_WEIGHT_TYPES, "bools": np.ones(8, dtype=bool)}, TypeError)
    scanned = {"check_finite": True} if call == "step" else None
    rows(call, "sample_weight", BAD_SAMPLE_WEIGHTS, ValueError, extra=scanned)
# step takes its backend's own arrays as they are unless asked to scan them: the shapes are refused all the same
rows("step", "sample_weight", {f"unscanned-{k}": v for k, v in BAD_SAMPLE_WEIGHTS.items()
                               if k not in ("nan", "inf", "negative", "all-zero")}, ValueError)


# step
rows("step", "learning_rate", NOT_NUMBERS, TypeError)
rows("step", "learning_rate", NOT_POSITIVE, ValueError)
rows("step", "return_loss", NOT_FLAGS, TypeError)
rows("step", "check_finite", NOT_FLAGS, TypeError)

# fit
rows("fit", "epochs", {"None": None, **NOT_WHOLE}, TypeError)
rows("fit", "epochs", {"negative": -1}, ValueError)
rows("fit", "epochs", {"huge-int": 10**400}, ValueError)
rows("fit", "learning_rate", NOT_NUMBERS, TypeError)
rows("fit", "learning_rate", NOT_POSITIVE, ValueError)
rows("fit", "batch_size", NOT_WHOLE, TypeError)
rows("fit", "batch_size", {"zero": 0, "negative": -1}, ValueError)
rows("fit", "optimizer", {**NOT_NAMES, "list": ["adam"], "class": Adam}, TypeError)
rows("fit", "optimizer", UNKNOWN_NAMES, ValueError)
rows("fit", "shuffle", NOT_FLAGS, TypeError)
rows("fit", "validation_data", {"list": Make("[x, y]", lambda net, files: [X, Y]), "one": (X,), "three": (X, Y, Y),
                                "str": "abc", "array": X, "dict": {"x": X, "y": Y}}, TypeError)
rows("fit", "patience", NOT_WHOLE, TypeError, extra={"validation_data": (X, Y)})
rows("fit", "patience", {"zero": 0, "negative": -1}, ValueError, extra={"validation_data": (X, Y)})
rows("fit", "patience", {"without-validation-data": 3}, ValueError)
rows("fit", "verbose", {"None": None, **{k: v for k, v in NOT_WHOLE.items() if k != "bool"}}, TypeError)
rows("fit", "verbose", {"negative": -1}, ValueError)
rows("fit", "record_predictions", NOT_FLAGS, TypeError)
rows("fit", "record_predictions", {"with-mini-batches": True}, ValueError)
rows("fit", "weight_decay", NOT_NUMBERS, TypeError)
rows("fit", "weight_decay", {k: v for k, v in NOT_POSITIVE.items() if not k.startswith("zero")}, ValueError)
rows("fit", "learning_rate_schedule", {"int": 1, "float": 0.5, "bytes": b"cosine", "list": ["cosine"],
                                       "object": object()}, TypeError)
rows("fit", "learning_rate_schedule", {"unknown": "nope", "empty": ""}, ValueError)
rows("fit", "learning_rate_schedule", {"negative-rate": lambda epoch: -1.0, "nan-rate": lambda epoch: math.nan},
     ValueError)
rows("fit", "learning_rate_schedule", {"str-rate": lambda epoch: "0.1"}, TypeError)
rows("fit", "callbacks", {"None": None, "str": "abc", "int": 1, "function": print, "list-of-int": [1],
                          "list-of-None": [None], "set": {print}}, TypeError)
rows("fit", "client", {"address": "tcp://127.0.0.1:8786", "object": object()}, ValueError)  # numpy has no cluster

# set_weights


def _weights_with(index, change):
    return lambda net, files: [change(w) if i == index else w for i, w in enumerate(net.get_weights())]


rows("set_weights", "weights", {"None": None, "str": "abc", "bytes": b"ab", "int": 5, "object": object(),
                                "dict": Make("dict", lambda net, files: dict(enumerate(net.get_weights())))},
     TypeError)
rows("set_weights", "weights", {
    "too-few": Make("too few", lambda net, files: net.get_weights()[:3]),
    "too-many": Make("too many", lambda net, files: net.get_weights() * 2),
    "empty": [], "transposed": Make("transposed", _weights_with(0, np.transpose)),
    "scalar": Make("scalar", _weights_with(1, lambda w: np.float64(0.0))),
    "nan": Make("nan", _weights_with(2, lambda w: np.full_like(w, np.nan))),
    "inf": Make("inf", _weights_with(3, lambda w: np.full_like(w, np.inf))),
    "ragged": Make("ragged", _weights_with(0, lambda w: [[1.0, 2.0, 3.0], [1.0]]))}, ValueError, name="weight")
rows("set_weights", "weights", {
    "complex": Make("complex", _weights_with(0, lambda w: w.astype(complex))),
    "strings": Make("strings", _weights_with(1, lambda w: w.astype(str))),
    "None-entry": Make("None entry", _weights_with(2, lambda w: None)),
    "masked": Make("masked", _weights_with(3, _masked))}, TypeError, name="weight")

# copy, save, load
rows("copy", "backend", {"int": 1, "list": ["numpy"]}, TypeError)
rows("copy", "backend", {"unknown": "nope"}, ValueError)
rows("copy", "dtype", {k: BAD_DTYPES[k] for k in ("int32", "structured", "object")}, ValueError)
rows("copy", "device", {"gpu": "gpu7"}, ValueError)
rows("save", "path", {"None": None, "int": 1, "object": object(), "list": ["out.npz"]}, TypeError)
rows("save", "path", {"folder": Make("folder", lambda net, files: files)}, ValueError)
rows("save", "path", {"missing-folder": Make("missing folder", lambda net, files: files / "no" / "out.npz")},
     FileNotFoundError)
rows("save", "include_optimizer", NOT_FLAGS, TypeError)
rows("load", "path", {"None": None, "int": 1, "object": object(), "list": ["saved.npz"]}, TypeError)
rows("load", "path", {"missing": Make("missing", lambda net, files: files / "missing.npz"),
                      "folder": Make("folder", lambda net, files: files)}, ValueError)


def _written(name, content):
    def make(net, files):
        (files / name).write_bytes(content)
        return files / name
    return Make(name, make)


def _plain_npz(net, files):
    np.savez(files / "plain.npz", a=np.zeros(3))
    return files / "plain.npz"


rows("load", "path", {"text": _written("notes.txt", b"hello"), "empty": _written("empty.npz", b""),
                      "truncated": Make("truncated", lambda net, files: _written(
                          "cut.npz", (files / "saved.npz").read_bytes()[:200]).make(net, files)),
                      "not-a-model": Make("plain npz", _plain_npz)}, ValueError)
rows("load", "backend", {"int": 1, "list": ["numpy"]}, TypeError)
rows("load", "backend", {"unknown": "nope"}, ValueError)
rows("load", "dtype", {k: BAD_DTYPES[k] for k in ("int32", "structured", "object")}, ValueError)
rows("load", "device", {"gpu": "gpu7"}, ValueError)

# check_gradients, get_backend, the optimizers
rows("check_gradients", "net", {"None": None, "str": "net", "object": object(), "optimizer": Adam()}, TypeError,
     name="Network")
rows("check_gradients", "epsilon", NOT_NUMBERS, TypeError)
rows("check_gradients", "epsilon", NOT_POSITIVE, ValueError)
rows("get_backend", "name", {"int": 1, "float": 1.5, "list": ["numpy"], "bytes": b"numpy", "object": object()},
     TypeError, name="backend")
rows("get_backend", "name", {"unknown": "nope", "empty": ""}, ValueError, name="backend")
rows("get_backend", "dtype", BAD_DTYPES, ValueError)
rows("get_backend", "device", {"gpu": "gpu7", "int": 3}, ValueError)
rows("get_backend", "dtype", {"with-a-backend": "float32"}, ValueError,
     extra={"name": Make("a Backend", lambda net, files: gdxp.get_backend("numpy"))})
rows("SGD", "learning_rate", {"given": 0.1}, TypeError)
rows("Momentum", "momentum", NOT_NUMBERS, TypeError)
rows("Momentum", "momentum", NOT_FRACTIONS, ValueError)
rows("Momentum", "nesterov", NOT_FLAGS, TypeError)
for argument in ("beta1", "beta2"):
    rows("Adam", argument, NOT_NUMBERS, TypeError)
    rows("Adam", argument, NOT_FRACTIONS, ValueError)
rows("Adam", "epsilon", NOT_NUMBERS, TypeError)
rows("Adam", "epsilon", NOT_POSITIVE, ValueError)


# -- the tests ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with a saved network; what the cases write there is refused or the same every time."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    _fitted().save(folder / "saved.npz", include_optimizer=True)
    return folder


def _resolved(value, net, files):
    if isinstance(value, Make):
        return value.make(net, files)
    if isinstance(value, tuple):
        return tuple(_resolved(v, net, files) for v in value)
    return value


def test_the_table_is_large_and_covers_every_public_call():
    calls = {p.values[0] for p in ROWS}
    assert len(ROWS) >= 300
    assert calls == {"Network", "predict", "evaluate", "loss_value", "gradients", "step", "fit", "set_weights",
                     "copy", "save", "load", "trace", "check_gradients", "get_backend", "SGD", "Momentum", "Adam"}
    fit_arguments = {a for p in ROWS if p.values[0] == "fit" for a in p.values[1]}
    assert fit_arguments >= {"x", "y", "epochs", "learning_rate", "batch_size", "optimizer", "shuffle",
                             "validation_data", "patience", "verbose", "record_predictions", "weight_decay",
                             "learning_rate_schedule", "callbacks"}


@pytest.mark.parametrize("call", sorted({p.values[0] for p in ROWS}))
def test_the_good_arguments_are_accepted(call, files):
    """Each row changes only what it names: the arguments it starts from are good."""
    net = _fitted()
    _function(call, net)(**_good_arguments(call, net, files))


@pytest.mark.parametrize("call, override, error, name", ROWS)
def test_bad_input_is_refused_by_name_and_changes_nothing(call, override, error, name, files):
    net = _fitted()
    arguments = {**_good_arguments(call, net, files),
                 **{key: _resolved(value, net, files) for key, value in override.items()}}
    before = _state(net)
    with pytest.raises(error) as info:
        _function(call, net)(**arguments)
    message = str(info.value)
    path = arguments.get("path")
    named = re.search(rf"\b{re.escape(name)}s?\b", message) is not None or (
        name == "path" and isinstance(path, os.PathLike) and os.fspath(path) in message)
    assert named, f"the message does not name {name!r}: {message}"
    _assert_same(before, _state(net))
