"""Saving and loading networks: one ``.npz`` of plain arrays, written atomically, read without pickle.

The file holds the architecture (sizes, activation names, loss, bias, dtype) as plain numbers and
strings, every weight as a host array, and optionally the optimizer's settings and state. Nothing is
ever pickled, so loading a file cannot run code; a file that is not what it should be gets a
``ValueError`` that says what is wrong. Saving writes a temporary file beside the target and renames
it over the target, so a crash mid-save never leaves a broken file in place of a good one.

This module knows the file, not the network: it turns plain values (sizes, names, host arrays, an
optimizer) into the file's arrays and checks them on the way back; :func:`gdxp.network.load` and
:meth:`Network.save` build a network from them and take one apart.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._typing import Array
from .optimizers import OPTIMIZERS, Optimizer

__all__ = ["FORMAT_VERSION", "architecture", "model_arrays", "optimizer", "optimizer_arrays", "read", "weights",
           "write"]

FORMAT_VERSION = 1
_ARCHITECTURE_KEYS = ("format_version", "sizes", "activations", "loss", "bias", "dtype")


def model_arrays(sizes: Sequence[int], activations: Sequence[str], loss: str, bias: bool, dtype: str,
                 weights: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The file's arrays for a network's architecture and its (host) weights."""
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "sizes": np.array(sizes, dtype=np.int64),
        "activations": np.array(list(activations)),
        "loss": np.array(loss),
        "bias": np.array(bias),
        "dtype": np.array(dtype),
    }
    arrays.update({f"weight_{i}": w for i, w in enumerate(weights)})
    return arrays


def optimizer_arrays(optimizer: Optimizer, to_host: Callable[[Array], np.ndarray]) -> dict[str, np.ndarray]:
    """The file's arrays for an optimizer's settings and state (its device arrays copied by ``to_host``)."""
    arrays = {"optimizer": np.array(optimizer.name), "optimizer_steps": np.array(optimizer.steps)}
    arrays.update({f"optimizer_{k}": np.array(v) for k, v in optimizer.hyperparameters().items()})
    for slot, states in enumerate(optimizer.state):
        arrays.update({f"optimizer_state_{slot}_{i}": to_host(a) for i, a in enumerate(states)})
    return arrays


def write(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (exactly that name; ``.npz`` is not appended), atomically."""
    _write_atomically(Path(path), arrays)


def read(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of the file at ``path``, refusing pickled objects and anything that is not a plain array."""
    return _read_plain_arrays(Path(path))


def architecture(data: dict[str, np.ndarray], path: Any) -> dict[str, Any]:
    """The keyword arguments of ``Network`` that the file's architecture entries give, checked."""
    missing = [key for key in _ARCHITECTURE_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path} is not a gdxp model: it lacks {', '.join(missing)}")
    version = _scalar(data, "format_version", "iu")
    if version < 1:
        raise ValueError(f"{path}: format_version must be at least 1, got {version}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer gdxp (format {version}); this one reads up to "
                         f"format {FORMAT_VERSION}: upgrade gdxp")
    sizes = data["sizes"]
    activations = data["activations"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise ValueError(f"{path}: 'sizes' must be a list of whole numbers, got {sizes!r}")
    if activations.shape != (len(sizes) - 1,) or activations.dtype.kind != "U":
        raise ValueError(f"{path}: 'activations' must name one activation per layer ({len(sizes) - 1}), "
                         f"got {activations!r}")
    return {"sizes": [int(s) for s in sizes], "activation": [str(a) for a in activations[:-1]],
            "output_activation": str(activations[-1]), "loss": str(_scalar(data, "loss", "U")),
            "bias": bool(_scalar(data, "bias", "b")), "dtype": str(_scalar(data, "dtype", "U"))}


def weights(data: dict[str, np.ndarray], path: Any, count: int) -> list[np.ndarray]:
    """The file's ``count`` weight arrays, in order; refuses a file with fewer or more."""
    weight_keys = [f"weight_{i}" for i in range(count)]
    absent = [key for key in weight_keys if key not in data]
    if absent:
        raise ValueError(f"{path} lacks weight arrays {', '.join(absent)} (expected {count})")
    extra = sorted(key for key in data if key.startswith("weight_") and key not in weight_keys)
    if extra:
        raise ValueError(f"{path} holds weight arrays {', '.join(extra)} beyond the {count} its architecture has")
    return [data[key] for key in weight_keys]


def optimizer(data: dict[str, np.ndarray], path: Any, shapes: Sequence[tuple[int, ...]],
              to_device: Callable[[np.ndarray], Array]) -> Optimizer | None:
    """The optimizer the file holds (None without one), its state moved by ``to_device`` and checked
    against the weights' ``shapes``."""
    if "optimizer" not in data:
        return None
    name = str(_scalar(data, "optimizer", "U"))
    if name not in OPTIMIZERS:
        raise ValueError(f"{path}: unknown optimizer {name!r}; this gdxp knows {', '.join(OPTIMIZERS)}")
    kind = OPTIMIZERS[name]
    settings = {key: _scalar(data, f"optimizer_{key}", "biuf").item() for key in kind().hyperparameters()}
    try:
        restored = kind(**settings)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: bad {name} settings {settings}: {err}") from None
    restored.steps = int(_scalar(data, "optimizer_steps", "iu"))
    if restored.steps < 0:
        raise ValueError(f"{path}: optimizer_steps must be at least 0, got {restored.steps}")
    if restored.steps > 0 and kind.state_size:
        keys = [[f"optimizer_state_{slot}_{i}" for i in range(len(shapes))] for slot in range(kind.state_size)]
        absent = [key for slot in keys for key in slot if key not in data]
        if absent:
            raise ValueError(f"{path} lacks optimizer state arrays {', '.join(absent)}")
        restored.state = [[to_device(data[key]) for key in slot] for slot in keys]
        restored.check_state(shapes)
    return restored


def _read_plain_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, refusing pickled objects and saying what is wrong with a bad file."""
    with path.open("rb") as file:  # opened here, so that a bad archive cannot leak the handle
        try:
            archive = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path} is not a readable .npz archive ({err})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} holds a single array, not a gdxp model (.npz archive)")
        with archive:
            return {key: _entry(archive, key, path) for key in archive.files}


def _entry(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        value = archive[key]
    except ValueError as err:  # object arrays: numpy refuses them without pickle
        raise ValueError(f"{path}: entry {key!r} holds Python objects, which gdxp never loads ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        raise ValueError(f"{path}: entry {key!r} cannot be read; the file is truncated or corrupt ({err})") from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{path}: entry {key!r} is not a NumPy array (got {type(value).__name__})")
    return value


def _scalar(data: dict[str, np.ndarray], key: str, kinds: str) -> Any:
    value = data.get(key)
    if value is None or value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(f"entry {key!r} must be a single value of kind {kinds!r}, got {value!r}")
    return value[()]


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, _file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _file_mode(path: Path) -> int:
    """The permissions of the file being replaced, or what a newly created file would get (0o666 less
    the umask): mkstemp's private 0o600 would otherwise stick to the saved model."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
