"""Saving and loading networks: one ``.npz`` of plain arrays, written atomically, read without pickle.

The file holds the architecture (sizes, activation names, loss, bias, dtype) as plain numbers and
strings, every weight as a host array, optionally the optimizer's settings and state, and from
format 2 the state of the generator that shuffles mini-batches (so that training resumed from a file
goes on exactly as an unbroken run) and a manifest naming every other entry (so that an entry lost to
damage is an error rather than a quietly smaller model). Nothing is ever pickled, so loading a file
cannot run code; a file that is not what it should be gets a ``ValueError`` that names it and says
what is wrong. Saving writes a temporary file beside the target and renames it over the target, so a
crash mid-save never leaves a broken file in place of a good one.

This module knows the file, not the network: it turns plain values (sizes, names, host arrays, an
optimizer) into the file's arrays and checks them on the way back; :func:`gdxp.network.load` and
:meth:`Network.save` build a network from them and take one apart.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._typing import Array
from .optimizers import OPTIMIZERS, Optimizer

try:
    import fcntl  # a save locks its temporary file, so that a later one can tell a stale file from one in use
except ImportError:  # Windows: no locks, so stale temporary files are left alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["FORMAT_VERSION", "MANIFEST", "SHUFFLE_STATE", "architecture", "model_arrays", "optimizer",
           "optimizer_arrays", "read", "shuffle_arrays", "shuffle_state", "weights", "write"]

FORMAT_VERSION = 2  # 2 added the manifest and the shuffling state; files of format 1 are still read
MANIFEST = "manifest"
SHUFFLE_STATE = "shuffle_rng_pcg64"
_ARCHITECTURE_KEYS = ("format_version", "sizes", "activations", "loss", "bias", "dtype")
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_KINDS = "biufU"  # bools, integers, floats and text: all a gdxp file ever holds
_MAX_EXPANSION = 1100  # deflate expands at most about 1032 to 1: a member claiming more is a zip bomb


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
    """Write ``arrays`` and a manifest listing their names to ``path`` (exactly that name; ``.npz`` is not
    appended), atomically.

    A symbolic link is followed: the file it points to is replaced and the link kept. A folder, a device
    or anything else that is not a regular file is refused. Temporary files that earlier saves of the
    same file left behind when they were killed are removed first. Errors name ``path`` as given.
    """
    _check_path(path)
    target = _target(path)
    _remove_stale_temporaries(target)
    try:
        _write_atomically(target, {**arrays, MANIFEST: np.array(sorted(arrays))})
    except OSError as err:
        _say_path(err, path)  # not the hidden temporary file, nor the link's target
        raise


def read(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of the file at ``path``, refusing pickled objects and anything that is not a plain array."""
    _check_path(path)
    return _read_plain_arrays(Path(path))


def _check_path(path: Any) -> None:
    """Refuse a ``path`` that names no file (None, a number, bytes) by its name, before the os module does without."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (a str or os.PathLike), got {type(path).__name__}")


def architecture(data: dict[str, np.ndarray], path: Any) -> dict[str, Any]:
    """The keyword arguments of ``Network`` that the file's architecture entries give, checked, after
    checking that the file holds exactly the entries its manifest lists."""
    if MANIFEST in data:
        _check_manifest(data, path)
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


def weights(data: dict[str, np.ndarray], path: Any, sizes: Sequence[int], bias: bool) -> list[np.ndarray]:
    """The file's weight arrays, in order, checked against the shapes that ``sizes`` and ``bias`` give
    before any network is built: a file claiming huge layers without their weights allocates nothing."""
    shapes = _weight_shapes(sizes, bias)
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
              to_device: Callable[[np.ndarray], Array]) -> Optimizer | None:
    """The optimizer the file holds (None without one), its state checked against the weights' ``shapes``
    on the host, then moved by ``to_device``."""
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
    restored.steps = int(_scalar(data, "optimizer_steps", "iu", path))
    if restored.steps < 0:
        raise ValueError(f"{path}: optimizer_steps must be at least 0, got {restored.steps}")
    if restored.steps > 0 and kind.state_size:
        keys = [[f"optimizer_state_{slot}_{i}" for i in range(len(shapes))] for slot in range(kind.state_size)]
        absent = [key for slot in keys for key in slot if key not in data]
        if absent:
            raise ValueError(f"{path} lacks optimizer state arrays {', '.join(absent)}")
        restored.state = [[data[key] for key in slot] for slot in keys]
        try:
            restored.check_state(shapes)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        for key in (key for slot in keys for key in slot):
            if data[key].dtype.kind != "f" or not np.all(np.isfinite(data[key])):
                raise ValueError(f"{path}: {key} must hold finite floating-point numbers, got {data[key]!r}")
        restored.state = [[to_device(data[key]) for key in slot] for slot in keys]
    return restored


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


def _weight_shapes(sizes: Sequence[int], bias: bool) -> list[tuple[int, ...]]:
    """What :meth:`Network.weight_shapes` will be for these sizes, known before the network exists."""
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        shapes += [(n_in, n_out), (n_out,)] if bias else [(n_in, n_out)]
    return shapes


def _read_plain_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, refusing pickled objects and saying what is wrong with a bad file.

    The archive is parsed here rather than by ``np.load``, so that every member is read to its end (its
    CRC-32 checked), every ``.npy`` header's shape is checked against the bytes the member holds before
    anything is allocated, and whatever zipfile, zlib or numpy's header parser raise on damaged bytes
    (NotImplementedError, RuntimeError, SyntaxError, MemoryError...) becomes a ValueError naming the file.
    """
    with path.open("rb") as file:  # opened here, so that a bad archive cannot leak the handle
        if file.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise ValueError(f"{path} is not a readable .npz archive: it holds a single array, not a gdxp model")
        file.seek(0)
        try:
            archive = zipfile.ZipFile(file)
        except Exception as err:  # any failure to parse the archive means a bad file
            raise ValueError(f"{path} is not a readable .npz archive ({_why(err)})") from None
        with archive:
            data: dict[str, np.ndarray] = {}
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key in data:
                    raise ValueError(f"{path} is not a readable .npz archive: it holds entry {key!r} twice")
                data[key] = _entry(archive, info, key, path)
            return data


def _entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: Path) -> np.ndarray:
    if not info.filename.endswith(".npy"):
        raise ValueError(f"{path}: entry {key!r} is not a NumPy array (a member without .npy)")
    try:
        with archive.open(info) as member:
            return _npy(member, info)
    except _Refused as err:
        raise ValueError(f"{path}: entry {key!r} {err}") from None
    except Exception as err:  # damaged bytes make zipfile, zlib and numpy raise anything
        raise ValueError(f"{path}: entry {key!r} cannot be read; the file is truncated or corrupt "
                         f"({_why(err)})") from None


class _Refused(Exception):
    """What is wrong with one member, said after its name."""


def _npy(member: Any, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member as an array: header first, its size checked against the member's, then the data."""
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > _MAX_EXPANSION * max(info.compress_size, 1):
        raise _Refused(f"claims to expand {info.compress_size} compressed bytes to {info.file_size}, more than "
                       f"compression can")
    version = np.lib.format.read_magic(member)
    if version not in _NPY_HEADERS:
        raise _Refused(f"has .npy format version {version}; gdxp reads {', '.join(map(str, _NPY_HEADERS))}")
    shape, fortran_order, dtype = _NPY_HEADERS[version](member)
    if dtype.hasobject:
        raise _Refused("holds Python objects, which gdxp never loads (pickle could run code)")
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _Refused(f"holds {dtype} values; a gdxp file holds plain numbers and text")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != info.file_size - member.tell():
        raise _Refused(f"claims shape {shape} of {dtype} ({nbytes} bytes) but holds {info.file_size - member.tell()} "
                       f"bytes of data; the file is corrupt")
    raw = member.read(nbytes)
    if len(raw) != nbytes or member.read(1):  # reading to the end checks the member's CRC-32
        raise _Refused("is truncated")
    order = "F" if fortran_order else "C"
    return np.frombuffer(raw, dtype=dtype, count=math.prod(shape)).reshape(shape, order=order).copy()


def _halves(number: int) -> tuple[int, int]:
    """A 128-bit number as its high and low 64-bit words."""
    return number >> 64, number & (2**64 - 1)


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _scalar(data: dict[str, np.ndarray], key: str, kinds: str, path: Any) -> Any:
    value = data.get(key)
    if value is None or value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(f"{path}: entry {key!r} must be a single value of kind {kinds!r}, got {value!r}")
    return value[()]


def _target(path: str | os.PathLike[str]) -> Path:
    """The regular file a save of ``path`` replaces: the end of any chain of symbolic links there."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target  # a new file, or a link to one not made yet
    except OSError as err:  # a loop of links, a file where a folder should be
        _say_path(err, path)
        raise
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS_OF_FILE if test(mode)), "not a regular file")
        where = f" ({target})" if target != Path(path).absolute() else ""
        raise ValueError(f"cannot save to {path}{where}: it is {kind}; a network is saved to a regular file")
    return target


_KINDS_OF_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                  (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def _say_path(err: OSError, path: str | os.PathLike[str]) -> None:
    """Make ``err`` (same type, same errno) name ``path``, as the caller gave it, instead of another file."""
    if err.errno is not None and err.strerror:
        err.filename, err.filename2 = os.fspath(path), None
    elif os.fspath(path) not in str(err):
        err.args = (f"cannot save to {os.fspath(path)}: {err}",)


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it over ``path``."""
    handle, temporary = _locked_temporary(path)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **arrays)
            file.flush()
            os.fsync(file.fileno())
            os.chmod(temporary, _file_mode(path))
            os.replace(temporary, path)  # while the lock is held, so that no other save takes it for stale
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _locked_temporary(path: Path) -> tuple[int, str]:
    """A new temporary file ``.{name}.XXXXXXXX.tmp`` beside ``path``, locked (where the system has
    ``flock``) for as long as its handle is open: a later save tells a stale one from one in use by that."""
    while True:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        if fcntl is None:
            return handle, temporary
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: write anyway; no save will take this one for stale
            return handle, temporary
        try:
            if os.path.samestat(os.fstat(handle), os.stat(temporary)):
                return handle, temporary
        except FileNotFoundError:
            pass
        os.close(handle)  # another save removed it as stale between its creation and the lock: make another


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that saves of ``path`` killed mid-write left behind: only names of the
    form :func:`_locked_temporary` makes, and only those no running save holds locked. Best effort."""
    if fcntl is None:
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")  # mkstemp's 8 random characters
    try:
        with os.scandir(path.parent) as entries:
            stale = [entry.path for entry in entries
                     if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)]
    except OSError:
        return
    for candidate in stale:
        try:
            handle = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a save holds it
            if os.path.samestat(os.fstat(handle), os.lstat(candidate)):
                os.unlink(candidate)
        except OSError:
            pass
        finally:
            os.close(handle)


def _file_mode(path: Path) -> int:
    """The permissions of the file being replaced, or what a newly created file would get (0o666 less
    the umask): mkstemp's private 0o600 would otherwise stick to the saved model."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
