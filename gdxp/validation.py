"""Checks on what users pass in: each failure says what was expected and what came.

Everything here runs before a network changes, so a rejected call leaves it exactly as it was.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._typing import Array
from .architecture import Architecture
from .backend import Backend, host_array
from .losses import TargetRange

__all__ = ["as_batch", "as_inputs", "as_pair", "as_sample_weight", "as_shares", "as_targets", "as_weights",
           "batch_in_place", "check_finite", "check_flag", "check_positive_number", "check_whole_number"]


def as_batch(backend: Backend, architecture: Architecture, x: Any, y: Any, *, check_values: bool = True,
             names: tuple[str, str] = ("x", "y")) -> tuple[Array, Array]:
    """``x`` and ``y`` checked against the architecture, as ``(n_samples, n_in)`` and ``(n_samples, n_out)``
    arrays on the backend's device, laid out alike (:meth:`~gdxp.backend.Backend.paired`). Data from the host
    is checked for NaN/inf there, before it moves; arrays already on a device are scanned only with
    ``check_values``, which waits for the device. ``names`` are what the errors call the two."""
    inputs, single = as_inputs(backend, x, architecture.sizes[0], check_values=check_values, name=names[0])
    targets = as_targets(backend, y, inputs.shape[0], architecture.sizes[-1], single=single,
                         check_values=check_values, target_range=architecture.loss.target_range, names=names,
                         labels=architecture.output.name == "softmax")
    return backend.paired(inputs, targets)


def batch_in_place(backend: Backend, architecture: Architecture, x: Any, y: Any) -> tuple[Array, Array] | None:
    """``x`` and ``y`` as they are where both are already the backend's 2-D arrays (its library, device and
    dtype) of the architecture's widths and the same rows, else None: a step's fast path, checking no values."""
    if (backend.holds(x) and backend.holds(y) and x.ndim == 2 and y.ndim == 2 and 0 < x.shape[0] == y.shape[0]
            and x.shape[1] == architecture.sizes[0] and y.shape[1] == architecture.sizes[-1]):
        return backend.paired(x, y)
    return None


def as_weights(backend: Backend, weights: Sequence[Any], shapes: Sequence[tuple[int, ...]]) -> list[Array]:
    """Copies of ``weights`` on the backend's device, each checked to have its shape in ``shapes`` and to hold
    finite numbers: host data on the host, arrays of a library with one read from the device for all of them.
    Errors say which weight array it was."""
    arrays, hosts = [], []
    for index, weight in enumerate(weights):
        try:
            host = host_array(weight, backend.dtype_name)
            arrays.append(backend.asarray(weight if host is None else host, copy=True))
        except (TypeError, ValueError) as err:
            raise type(err)(f"weight array {index}: {err}") from None
        hosts.append(host)
    xp, on_device = backend.xp, [arr for arr, host in zip(arrays, hosts) if host is None]
    finite = iter(backend.to_numpy(xp.stack([xp.all(xp.isfinite(arr)) for arr in on_device])) if on_device else ())
    for index, (arr, host, shape) in enumerate(zip(arrays, hosts, shapes)):
        if tuple(arr.shape) != shape:
            raise ValueError(f"weight array {index} must have shape {shape}, got {tuple(arr.shape)}")
        if host is None and not next(finite):
            check_finite(backend, arr, f"weight array {index}")
        if host is not None and not np.all(np.isfinite(host)):
            not_finite = ~np.isfinite(host)
            _raise_not_finite(f"weight array {index}", int(np.count_nonzero(not_finite)),
                              np.unravel_index(np.argmax(not_finite), host.shape))
    return arrays


def as_sample_weight(backend: Backend, architecture: Architecture, sample_weight: Any, inputs: Array, *,
                     check_values: bool = True, in_place: bool = False) -> Array | None:
    """``sample_weight`` (None: none) as a 1-D array of one weight per row of ``inputs`` on the backend's device,
    in its dtype, laid out as ``inputs`` (:meth:`~gdxp.backend.Backend.paired`). Weights must be real numbers
    (not booleans), finite, at least 0 and not all 0: checked on the host for host data, where they live
    only with ``check_values`` (two reads from the device). The loss must give each sample's value. With
    ``in_place``, the backend's own 1-D array of that length is taken as it is (a step's fast path)."""
    if sample_weight is None:
        return None
    name, n_samples, loss = "sample_weight", inputs.shape[0], architecture.loss
    fused = loss.fused.get(architecture.output.name)
    if (loss.rows if fused is None else fused.rows) is None:
        raise ValueError(f"{name} weighs each sample's loss, which loss {loss.name!r} does not give (its rows)")
    if in_place and backend.holds(sample_weight) and tuple(sample_weight.shape) == (n_samples,):
        return sample_weight
    arr, host = _received(backend, sample_weight, name)
    if "bool" in str(getattr(sample_weight if host is None else np.asarray(sample_weight), "dtype", "")):
        raise TypeError(f"{name} must hold real numbers, got booleans (as weights: sample_weight.astype(float))")
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), one weight per sample, got shape {tuple(arr.shape)}")
    _check_values(backend, arr, host, sample_weight, name, check_values)
    if host is not None or check_values:
        xp, values, read = (np, host, np.asarray) if host is not None else (backend.xp, arr, backend.to_numpy)
        smallest, total = (float(v) for v in read(xp.stack([xp.min(values), xp.sum(values)])))
        if smallest < 0.0:
            raise ValueError(f"{name} must hold weights >= 0, got {smallest:g}")
        if not total > 0.0:
            raise ValueError(f"{name} must not be all 0: at least one sample must count")
    return backend.paired(inputs, arr)[1]


def as_shares(backend: Backend, architecture: Architecture, sample_weight: Any, inputs: Array, *,
              check_values: bool = False) -> Array | None:
    """:func:`as_sample_weight`, as each sample's share of their sum, ``w / sum(w)`` (0 where that is 0), as
    :meth:`~gdxp.backend.Backend.batch_means` weighs a mean."""
    weights = as_sample_weight(backend, architecture, sample_weight, inputs, check_values=check_values)
    if weights is None:
        return None
    total = backend.xp.sum(weights)
    return weights / backend.xp.where(total > 0.0, total, 1.0)


def as_pair(validation_data: Any) -> tuple[Any, Any]:
    """``validation_data`` as the pair ``(x_val, y_val)`` it must be."""
    if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
        raise TypeError(f"validation_data must be a tuple (x_val, y_val), got {type(validation_data).__name__}")
    return validation_data


def as_inputs(backend: Backend, x: Any, n_in: int, *, check_values: bool = True,
              name: str = "x") -> tuple[Array, bool]:
    """``x`` as an ``(n_samples, n_in)`` array on the backend's device, and whether it was one sample.
    ``name`` is what the errors call it (``x_val`` for validation data).

    Data from the host is checked for NaN and infinity there, before it moves, which costs no wait;
    an array already on a device is scanned only with ``check_values``, which waits for the device.
    """
    arr, host = _received(backend, x, name)
    if arr.ndim == 1:
        arr, single = backend.xp.reshape(arr, (1, arr.shape[0])), True
    elif arr.ndim == 2:
        single = False
    else:
        raise ValueError(f"{name} must have shape (n_samples, {n_in}) or ({n_in},), got shape {tuple(arr.shape)}")
    if arr.shape[1] != n_in:
        raise ValueError(f"{name} must have {n_in} features per sample (the network's inputs), got {arr.shape[1]}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} holds no samples")
    _check_values(backend, arr, host, x, name, check_values)
    return arr, single


def as_targets(backend: Backend, y: Any, n_samples: int, n_out: int, *, single: bool,
               check_values: bool = True, target_range: TargetRange | None = None,
               names: tuple[str, str] = ("x", "y"), labels: bool = False) -> Array:
    """``y`` as an ``(n_samples, n_out)`` array on the backend's device.

    One sample (``single``) takes ``(n_out,)`` or, with one output, a scalar; a batch takes
    ``(n_samples, n_out)`` or, with one output, ``(n_samples,)``. Values are checked as in :func:`as_inputs`,
    and against the loss's ``target_range`` (see :class:`gdxp.losses.Loss`) in the same places.
    ``names`` are what the errors call the inputs and the targets. With ``labels`` (a softmax output),
    integer class labels of shape ``(n_samples,)`` from the host are taken as their one-hot rows.
    """
    x_name, name = names
    one_hot = _one_hot(y, n_samples, n_out, name) if labels and not single and n_out > 1 else None
    arr, host = _received(backend, y if one_hot is None else one_hot, name)
    expected = f"({n_out},)" if single else f"({n_samples}, {n_out})"
    if arr.ndim == 1 and not single and n_out > 1 and arr.shape[0] == n_samples:
        raise ValueError(f"{name} must have shape {expected}, got shape {tuple(arr.shape)}; if these are class labels, "
                         f"give them as whole numbers from the host, or one-hot rows: np.eye({n_out})[labels]")
    if arr.ndim == 0 and single and n_out == 1:
        arr = backend.xp.reshape(arr, (1, 1))
    elif arr.ndim == 1 and (single or n_out == 1):
        if single and arr.shape[0] != n_out:
            raise ValueError(f"{name} must have {n_out} values (one per output), got {arr.shape[0]}")
        arr = backend.xp.reshape(arr, (1, n_out) if single else (arr.shape[0], 1))
    elif arr.ndim != 2:
        raise ValueError(f"{name} must have shape {expected}, got shape {tuple(arr.shape)}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} must have one row per sample of {x_name} ({n_samples}), got {arr.shape[0]}")
    if arr.shape[1] != n_out:
        raise ValueError(f"{name} must have {n_out} columns (one per output), got {arr.shape[1]}")
    _check_values(backend, arr, host, y, name, check_values)
    if target_range is not None:
        _check_range(backend, arr, host, name, check_values, target_range)
    return arr


def _check_range(backend: Backend, arr: Array, host: np.ndarray | None, name: str, scan_device: bool,
                 target_range: TargetRange) -> None:
    """Targets outside the loss's range: flagged on the host copy, or where they live only with ``scan_device``
    (then one flag is read back; on a refusal, one row too)."""
    if host is None and not scan_device:
        return
    xp, values = (np, np.reshape(host, tuple(arr.shape))) if host is not None else (backend.xp, arr)
    read = np.asarray if host is not None else backend.to_numpy
    outside = target_range.rows_outside(xp, values)
    if not bool(read(xp.any(outside))):
        return
    row = int(read(xp.argmax(xp.astype(outside, xp.int8))))
    raise ValueError(f"{name} {target_range.describe(row, read(values[row, ...]))}")


def _one_hot(y: Any, n_samples: int, n_out: int, name: str) -> np.ndarray | None:
    """Whole-number class labels of shape ``(n_samples,)`` from the host as one-hot rows (checked to lie in
    ``0 .. n_out - 1``), else None: other data goes on to the usual checks."""
    try:
        if host_array(y, "float64") is None:  # a library's array, maybe on a device: not read here
            return None
    except (TypeError, ValueError) as err:
        raise _named(err, name) from None
    given = np.asarray(y)
    if given.ndim != 1 or given.shape[0] != n_samples or given.dtype.kind not in "iu":
        return None
    wrong = given[(given < 0) | (given >= n_out)]
    if wrong.size:
        raise ValueError(f"{name} holds class labels, which must be whole numbers in 0..{n_out - 1} (one per "
                         f"output), got {int(wrong[0])}")
    return np.eye(n_out)[given]


def _received(backend: Backend, data: Any, name: str) -> tuple[Array, np.ndarray | None]:
    """``data`` on the backend's device, and its host copy in the backend's dtype when it came from the host;
    errors (not numbers, ragged, masked) say which argument ``name`` it was."""
    try:
        host = host_array(data, backend.dtype_name)
        arr = backend.asarray(data if host is None else host)
    except (TypeError, ValueError) as err:
        raise _named(err, name) from None
    if arr.ndim and not isinstance(arr.shape[0], int):  # nan: a Dask array's rows in chunks of unknown sizes
        raise ValueError(f"{name} has a shape of unknown size {tuple(arr.shape)}; where it is a Dask array, "
                         f"compute its chunk sizes first ({name}.compute_chunk_sizes())")
    return arr, host


def _named(err: TypeError | ValueError, name: str) -> TypeError | ValueError:
    """``err`` saying which argument, ``name``, it is about."""
    return type(err)(f"{name}: {err}")


def _check_values(backend: Backend, arr: Array, host: np.ndarray | None, original: Any, name: str,
                  scan_device: bool) -> None:
    if host is None:
        if scan_device:
            check_finite(backend, arr, name)
        return
    if np.all(np.isfinite(host)):
        return
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(host))[0])
    given = float(np.asarray(original, dtype=np.float64)[bad])
    if math.isfinite(given):
        raise ValueError(f"{name} holds {given:g} at index {bad}, which overflows {backend.dtype_name}")
    not_finite = ~np.isfinite(host)
    _raise_not_finite(name, int(np.count_nonzero(not_finite)), np.unravel_index(np.argmax(not_finite), host.shape))


def check_finite(backend: Backend, arr: Array, name: str) -> None:
    """Raise ValueError if ``arr`` holds NaN or infinity, naming the first bad entry; reads a flag from the
    device, and on a refusal two numbers (how many, and where), never the array."""
    xp = backend.xp
    if bool(backend.to_numpy(xp.all(xp.isfinite(arr)))):
        return
    bad = xp.astype(~xp.isfinite(arr), backend.index_dtype)
    count, first = (int(v) for v in backend.to_numpy(xp.stack([xp.sum(bad), xp.argmax(bad)])))
    _raise_not_finite(name, count, np.unravel_index(first, tuple(arr.shape)))


def _raise_not_finite(name: str, count: int, first: tuple[Any, ...]) -> None:
    raise ValueError(f"{name} must hold finite numbers, got {count} NaN or infinite value(s), "
                     f"the first at index {tuple(int(i) for i in first)}")


def check_whole_number(value: Any, name: str, *, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; bools and fractional numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_positive_number(value: Any, name: str) -> float:
    """``value`` as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # a whole number past float's range, like 10**400
        number = math.inf
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number above 0, got {_short(value)}")
    return number


def check_flag(value: Any, name: str) -> bool:
    """``value`` if it is True or False; anything else (``'no'``, 0, None) is refused."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text)} characters)"
