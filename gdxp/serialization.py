"""What a gdxp model's file holds: the schema between a network's architecture and training state and
plain arrays, checked on the way back.

The file holds the architecture (sizes, activation names, loss, bias, dtype) as plain numbers and
strings, every weight as a host array, the epochs trained (from format 3) and the state of the generator
that shuffles mini-batches (from format 2), optionally the optimizer's settings, state and steps and
patience's record, and a manifest naming every other entry (so that an entry lost to damage is an error
rather than a quietly smaller model). The bytes go through :mod:`gdxp.safe_file` (atomic write,
pickle-free bounded read), so loading cannot run code; a file that is not what it should be gets a
``ValueError`` that names it and says what is wrong.

This module knows the file, not the network: it turns plain values (sizes, names, host arrays, an
optimizer) into the file's arrays and checks them on the way back; :func:`gdxp.load` and
:meth:`Network.save` build a network from them and take one apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import safe_file
from ._typing import Array
from .architecture import weight_count, weight_shapes
from .optimizers import OPTIMIZERS, Optimizer

__all__ = ["FORMAT_VERSION", "MANIFEST", "SHUFFLE_STATE", "architecture", "epoch", "model_arrays", "optimizer",
           "optimizer_arrays", "patience", "patience_arrays", "read", "shuffle_arrays", "shuffle_state", "weights",
           "write"]

# 2 added the manifest and the shuffling state, 3 the epoch count and patience's record; 1 and 2 are still read
FORMAT_VERSION = 3
MANIFEST = "manifest"
SHUFFLE_STATE = "shuffle_rng_pcg64"
_ARCHITECTURE_KEYS = ("format_version", "sizes", "activations", "loss", "bias", "dtype")


def model_arrays(sizes: Sequence[int], activations: Sequence[str], loss: str, bias: bool, dtype: str,
                 weights: Sequence[np.ndarray], epochs: int) -> dict[str, np.ndarray]:
    """The file's arrays for a network's architecture, its (host) weights and the epochs it has trained."""
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "sizes": np.array(sizes, dtype=np.int64),
        "activations": np.array(list(activations)),
        "loss": np.array(loss),
        "bias": np.array(bias),
        "dtype": np.array(dtype),
        "epoch": np.array(epochs, dtype=np.int64),
    }
    arrays.update({f"weight_{i}": w for i, w in enumerate(weights)})
    _check_writable(arrays, "weight_", "weights")
    return arrays


def optimizer_arrays(optimizer: Optimizer, state: Sequence[Sequence[Array]], steps: int,
                     to_host: Callable[[Array], np.ndarray]) -> dict[str, np.ndarray]:
    """The file's arrays for an optimizer's settings, its state (device arrays copied by ``to_host``) and
    the steps it has taken."""
    arrays = {"optimizer": np.array(optimizer.name), "optimizer_steps": np.array(steps)}
    arrays.update({f"optimizer_{k}": np.array(v) for k, v in optimizer.hyperparameters().items()})
    for slot, states in enumerate(state):
        arrays.update({f"optimizer_state_{slot}_{i}": to_host(a) for i, a in enumerate(states)})
    _check_writable(arrays, "optimizer_state_", "optimizer's state")
    return arrays


def _check_writable(arrays: dict[str, np.ndarray], prefix: str, what: str) -> None:
    """Refuse to write arrays (those whose names start with ``prefix``) that :func:`gdxp.load` would refuse:
    numbers that are not finite. gdxp never writes a file it will not read."""
    bad = [key for key, value in arrays.items() if key.startswith(prefix) and not np.all(np.isfinite(value))]
    if bad:
        raise ValueError(f"cannot save: the network's {what} hold numbers that are not finite ({', '.join(bad)}), "
                         f"which gdxp.load refuses")


def patience_arrays(best_loss: float, best_epoch: int, waited: int, best_weights: Sequence[Array],
                    to_host: Callable[[Array], np.ndarray]) -> dict[str, np.ndarray]:
    """The file's arrays for early stopping's record: the best validation loss, its epoch, the epochs since,
    and its weights (copied by ``to_host``)."""
    arrays = {"patience_best_loss": np.array(best_loss, dtype=np.float64),
              "patience_best_epoch": np.array(best_epoch, dtype=np.int64),
              "patience_waited": np.array(waited, dtype=np.int64)}
    arrays.update({f"patience_weight_{i}": to_host(w) for i, w in enumerate(best_weights)})
    return arrays


def patience(data: dict[str, np.ndarray], path: Any, shapes: Sequence[tuple[int, ...]]
             ) -> tuple[float, int, int, list[np.ndarray]] | None:
    """Early stopping's record as :func:`patience_arrays` wrote it, checked (None in a file without one)."""
    if "patience_best_loss" not in data:
        return None
    best_loss = float(_scalar(data, "patience_best_loss", "f", path))
    best_epoch, waited = (int(_scalar(data, key, "iu", path)) for key in ("patience_best_epoch", "patience_waited"))
    if not math.isfinite(best_loss) or best_epoch < 1 or waited < 0:
        raise ValueError(f"{path}: patience's record must be a finite loss, an epoch >= 1 and a count >= 0, got "
                         f"{best_loss}, {best_epoch}, {waited}")
    keys = [f"patience_weight_{i}" for i in range(len(shapes))]
    absent = [key for key in keys if key not in data]
    if absent:
        raise ValueError(f"{path} lacks patience's best weights {', '.join(absent)}")
    for key, shape in zip(keys, shapes):
        if data[key].shape != shape or data[key].dtype.kind != "f" or not np.all(np.isfinite(data[key])):
            raise ValueError(f"{path}: {key} must hold finite floating-point numbers of shape {shape}")
    return best_loss, best_epoch, waited, [data[key] for key in keys]


def shuffle_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The file's entry for the generator that orders mini-batches: NumPy's PCG64 state (two 128-bit
    numbers, then a flag and a cached 32-bit number) as six unsigned 64-bit words."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"the shuffling generator must be NumPy's PCG64 (default_rng), got {state['bit_generator']}")
    words = [*_halves(state["state"]["state"]), *_halves(state["state"]["inc"]), state["has_uint32"],
             state["uinteger"]]
    return {SHUFFLE_STATE: np.array(words, dtype=np.uint64)}


def shuffle_state(data: dict[str, np.ndarray], path: Any) -> dict[str, Any] | None:
    """The ``bit_generator.state`` of the file's shuffling generator, checked; None in a file without one
    (format 1)."""
    words = data.get(SHUFFLE_STATE)
    if words is None:
        return None
    if words.shape != (6,) or words.dtype != np.uint64 or words[4] > 1 or words[5] >= 2**32:
        raise ValueError(f"{path}: {SHUFFLE_STATE} must be 6 unsigned 64-bit words (state, increment, a flag of 0 "
                         f"or 1 and a 32-bit number), got {words!r}")
    high, low, inc_high, inc_low, has_uint32, uinteger = (int(word) for word in words)
    return {"bit_generator": "PCG64", "state": {"state": high << 64 | low, "inc": inc_high << 64 | inc_low},
            "has_uint32": has_uint32, "uinteger": uinteger}


def write(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and a manifest listing their names to ``path``, atomically (:func:`gdxp.safe_file.write`)."""
    safe_file.write(path, {**arrays, MANIFEST: np.array(sorted(arrays))})


def read(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of the file at ``path``, refusing pickled objects and anything that is not a plain array,
    and a file whose other entries claim more bytes than its architecture's weights, optimizer state and
    patience's record take (:func:`gdxp.safe_file.read`), before any is inflated."""
    return safe_file.read(path, first=(*_ARCHITECTURE_KEYS, MANIFEST), limit=lambda head: _most_bytes(head, path))


def _most_bytes(head: dict[str, np.ndarray], path: Any) -> int:
    """The bytes a file with the architecture entries ``head`` may hold beside them: four arrays like its
    weights (the weights, two of optimizer state, patience's best), in float64, and room for small entries."""
    settings = _settings(head, path)
    sizes = [max(size, 0) for size in settings["sizes"]]  # a negative one is refused later, by its name
    return 8 * 4 * weight_count(sizes, settings["bias"]) + 1024 * (4 * len(sizes) + 64)


def architecture(data: dict[str, np.ndarray], path: Any) -> dict[str, Any]:
    """The keyword arguments of ``Network`` that the file's architecture entries give, checked, after
    checking that the file holds exactly the entries its manifest lists."""
    if MANIFEST in data:
        _check_manifest(data, path)
    return _settings(data, path)


def _settings(data: dict[str, np.ndarray], path: Any) -> dict[str, Any]:
    """The keyword arguments of ``Network`` that the file's architecture entries give, checked."""
    missing = [key for key in _ARCHITECTURE_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path} is not a gdxp model: it lacks {', '.join(missing)}")
    version = _scalar(data, "format_version", "iu", path)
    if version < 1:
        raise ValueError(f"{path}: format_version must be at least 1, got {version}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer gdxp (format {version}); this one reads up to "
                         f"format {FORMAT_VERSION}: upgrade gdxp")
    if version >= 2 and MANIFEST not in data:
        raise ValueError(f"{path} lacks its manifest (the list of its entries), which format {version} has: "
                         f"the file is damaged")
    sizes = data["sizes"]
    activations = data["activations"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise ValueError(f"{path}: 'sizes' must be a list of whole numbers, got {sizes!r}")
    if activations.shape != (len(sizes) - 1,) or activations.dtype.kind != "U":
        raise ValueError(f"{path}: 'activations' must name one activation per layer ({len(sizes) - 1}), "
                         f"got {activations!r}")
    return {"sizes": [int(s) for s in sizes], "activation": [str(a) for a in activations[:-1]],
            "output_activation": str(activations[-1]), "loss": str(_scalar(data, "loss", "U", path)),
            "bias": bool(_scalar(data, "bias", "b", path)), "dtype": str(_scalar(data, "dtype", "U", path))}


def epoch(data: dict[str, np.ndarray], path: Any) -> int:
    """The epochs the saved network had trained (0 in files before format 3)."""
    if "epoch" not in data:
        return 0
    count = int(_scalar(data, "epoch", "iu", path))
    if count < 0:
        raise ValueError(f"{path}: epoch must be at least 0, got {count}")
    return count


def weights(data: dict[str, np.ndarray], path: Any, sizes: Sequence[int], bias: bool) -> list[np.ndarray]:
    """The file's weight arrays, in order, checked against the shapes that ``sizes`` and ``bias`` give
    before any network is built: a file claiming huge layers without their weights allocates nothing."""
    shapes = weight_shapes(sizes, bias)
    weight_keys = [f"weight_{i}" for i in range(len(shapes))]
    absent = [key for key in weight_keys if key not in data]
    if absent:
        raise ValueError(f"{path} lacks weight arrays {', '.join(absent)} (expected {len(shapes)})")
    extra = sorted(key for key in data if key.startswith("weight_") and key not in weight_keys)
    if extra:
        raise ValueError(f"{path} holds weight arrays {', '.join(extra)} beyond the {len(shapes)} its architecture "
                         f"has")
    for index, (key, shape) in enumerate(zip(weight_keys, shapes)):
        if data[key].shape != shape:
            raise ValueError(f"{path}: weight array {index} must have shape {shape}, got {data[key].shape}")
        if data[key].dtype.kind != "f":
            raise ValueError(f"{path}: weight array {index} must hold floating-point numbers, got {data[key].dtype}")
    return [data[key] for key in weight_keys]


def optimizer(data: dict[str, np.ndarray], path: Any, shapes: Sequence[tuple[int, ...]],
              to_device: Callable[[np.ndarray], Array]) -> tuple[Optimizer, list[list[Array]], int] | None:
    """The optimizer the file holds, its state and its step count (None without one), the state checked
    against the weights' ``shapes`` on the host, then moved by ``to_device``."""
    if "optimizer" not in data:
        return None
    name = str(_scalar(data, "optimizer", "U", path))
    if name not in OPTIMIZERS:
        raise ValueError(f"{path}: unknown optimizer {name!r}; this gdxp knows {', '.join(OPTIMIZERS)}")
    kind = OPTIMIZERS[name]
    settings = {key: _scalar(data, f"optimizer_{key}", "biuf", path).item() for key in kind().hyperparameters()}
    try:
        restored = kind(**settings)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"{path}: bad {name} settings {settings}: {err}") from None
    steps = int(_scalar(data, "optimizer_steps", "iu", path))
    if steps < 0:
        raise ValueError(f"{path}: optimizer_steps must be at least 0, got {steps}")
    if steps == 0 or not kind.state_size:
        return restored, [], steps
    keys = [[f"optimizer_state_{slot}_{i}" for i in range(len(shapes))] for slot in range(kind.state_size)]
    absent = [key for slot in keys for key in slot if key not in data]
    if absent:
        raise ValueError(f"{path} lacks optimizer state arrays {', '.join(absent)}")
    try:
        restored.check_state([[data[key] for key in slot] for slot in keys], shapes)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    for key in (key for slot in keys for key in slot):
        if data[key].dtype.kind != "f" or not np.all(np.isfinite(data[key])):
            raise ValueError(f"{path}: {key} must hold finite floating-point numbers, got {data[key]!r}")
    return restored, [[to_device(data[key]) for key in slot] for slot in keys], steps


def _check_manifest(data: dict[str, np.ndarray], path: Any) -> None:
    """Refuse a file whose entries are not exactly those its manifest lists: damage to the archive's
    directory can make entries vanish without any other error."""
    listed = data[MANIFEST]
    if listed.ndim != 1 or listed.dtype.kind != "U":
        raise ValueError(f"{path}: the manifest must list entry names, got {listed!r}")
    names = {str(name) for name in listed}
    absent = sorted(names - data.keys())
    if absent:
        raise ValueError(f"{path} lacks {', '.join(absent)}, which its manifest lists: the file is damaged")
    extra = sorted(data.keys() - names - {MANIFEST})
    if extra:
        raise ValueError(f"{path} holds {', '.join(extra)}, which its manifest does not list")


def _halves(number: int) -> tuple[int, int]:
    """A 128-bit number as its high and low 64-bit words."""
    return number >> 64, number & (2**64 - 1)


def _scalar(data: dict[str, np.ndarray], key: str, kinds: str, path: Any) -> Any:
    value = data.get(key)
    if value is None or value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(f"{path}: entry {key!r} must be a single value of kind {kinds!r}, got {value!r}")
    return value[()]


