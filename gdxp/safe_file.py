"""A file of plain arrays, written atomically and read back without pickle, within bounds.

:func:`write` puts a ``.npz`` archive in place by writing a temporary file beside the target and renaming
it over the target, so a crash mid-save never leaves a broken file in place of a good one; :func:`read`
parses the archive itself, refusing pickled objects and anything that is not a plain array, checking
every member to its end, and turning whatever damaged bytes make a library raise into a ``ValueError``
that names the file. It knows files and arrays, not what a gdxp model's file holds
(:mod:`gdxp.serialization`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import memory

try:
    import fcntl  # a save locks its temporary file, so that a later one can tell a stale file from one in use
except ImportError:  # Windows: no locks, so stale temporary files are left alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["read", "write"]

_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_KINDS = "biufU"  # bools, integers, floats and text: all a gdxp file ever holds
_PIECE = 2**20  # bytes a member is read in at a time
HEAD_BYTES = 2**20  # an entry read before the others (an architecture's) holds at most this
_MAX_EXPANSION = 1100  # deflate expands at most about 1032 to 1: a member claiming more is a zip bomb


def write(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (exactly that name; ``.npz`` is not appended), atomically.

    A symbolic link is followed: the file it points to is replaced and the link kept. A folder, a device
    or anything else that is not a regular file is refused. Temporary files that earlier saves of the
    same file left behind when they were killed are removed first. Errors name ``path`` as given.
    """
    _check_path(path)
    target = _target(path)
    _remove_stale_temporaries(target)
    try:
        _write_atomically(target, arrays)
    except OSError as err:
        raise _naming(err, path) from None  # not the hidden temporary file, nor the link's target


def read(path: str | os.PathLike[str], *, first: Collection[str] = (),
         limit: Callable[[dict[str, np.ndarray]], int] | None = None) -> dict[str, np.ndarray]:
    """Every array of the regular file at ``path``, refusing pickled objects and anything that is not a plain
    array, in bounded memory: the entries named in ``first`` are read first (at most :data:`HEAD_BYTES` each),
    then ``limit(those)`` says how many bytes all the others may hold; their sizes as the archive declares
    them are checked against that, and against the memory available, before any is inflated. Whatever is
    refused (a missing file, a folder, a device, a named pipe, a bad archive) gets a ValueError naming ``path``.
    """
    _check_path(path)
    with _opened(path) as file:  # opened here, so that a bad archive cannot leak the handle
        if file.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise ValueError(f"{path} is not a readable .npz archive: it holds a single array, not a gdxp model")
        file.seek(0)
        try:
            archive = zipfile.ZipFile(file)
        except Exception as err:  # any failure to parse the archive means a bad file
            raise ValueError(f"{path} is not a readable .npz archive ({_why(err)})") from None
        with archive:
            infos = archive.infolist()
            head = [info for info in infos if info.filename.removesuffix(".npy") in first]
            oversized = next((info for info in head if info.file_size > HEAD_BYTES), None)
            if oversized is not None:
                raise ValueError(f"{path}: entry {oversized.filename!r} claims {oversized.file_size} bytes, "
                                 f"more than {HEAD_BYTES}")
            data = _entries(archive, head, {}, path)
            rest = [info for info in infos if info not in head]
            _check_declared(sum(info.file_size for info in rest), None if limit is None else limit(data), path)
            return _entries(archive, rest, data, path)


def _check_path(path: Any) -> None:
    """Refuse a ``path`` that names no file (None, a number, bytes, a NUL character) by its name, before the
    os module does without."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (a str or os.PathLike), got {type(path).__name__}")
    if "\0" in str(os.fspath(path)):
        raise ValueError(f"path must not hold a NUL character, got {os.fspath(path)!r}")


@contextlib.contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """The regular file at ``path``, open for reading; anything else refused with a ValueError naming it. It is
    opened without blocking (a named pipe with no writer would wait for ever) and checked for what it is
    before a byte is read (``/dev/zero`` never ends)."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS_OF_FILE if test(mode)), "not a regular file")
            raise ValueError(f"cannot read {path}: it is {kind}; a network is read from a regular file")
        file = os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise
    with file:
        yield file

def _check_declared(declared: int, limit: int | None, path: Any) -> None:
    """Refuse entries declaring more bytes than ``limit`` or than the memory available, before inflating any."""
    if limit is not None and declared > limit:
        raise ValueError(f"{path}: its entries claim {declared} bytes, more than the {limit} its architecture "
                         f"needs; the file is corrupt")
    room = memory.short_of(declared)
    if room is not None:
        raise ValueError(f"{path}: its entries claim {memory.gigabytes(declared)} GB, more than the "
                         f"{memory.gigabytes(room)} GB of memory available on this machine now")


def _entries(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], data: dict[str, np.ndarray],
             path: Any) -> dict[str, np.ndarray]:
    """``data`` with the arrays of the members ``infos`` added (:func:`_entry`), each name once."""
    for info in infos:
        key = info.filename.removesuffix(".npy")
        if key in data:
            raise ValueError(f"{path} is not a readable .npz archive: it holds entry {key!r} twice")
        data[key] = _entry(archive, info, key, path)
    return data


def _entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: Path) -> np.ndarray:
    """One member's array, read to its end (its CRC-32 checked), its ``.npy`` header's shape checked against
    the bytes it holds before anything is allocated, and whatever zipfile, zlib or numpy's header parser raise
    on damaged bytes (NotImplementedError, RuntimeError, SyntaxError...) a ValueError naming the file."""
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
    array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    view, filled = memoryview(array.reshape(-1, order="A").view(np.uint8)), 0
    while filled < nbytes:  # in pieces, so that no second copy of a large member is ever held
        piece = member.read(min(nbytes - filled, _PIECE))
        if not piece:
            raise _Refused("is truncated")
        view[filled:filled + len(piece)] = piece
        filled += len(piece)
    if member.read(1):  # reading to the end checks the member's CRC-32
        raise _Refused("is truncated")
    return array


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _target(path: str | os.PathLike[str]) -> Path:
    """The regular file a save of ``path`` replaces: the end of any chain of symbolic links there."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target  # a new file, or a link to one not made yet
    except OSError as err:  # a loop of links, a file where a folder should be
        raise _naming(err, path) from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS_OF_FILE if test(mode)), "not a regular file")
        where = f" ({target})" if target != Path(path).absolute() else ""
        raise ValueError(f"cannot save to {path}{where}: it is {kind}; a network is saved to a regular file")
    return target


_KINDS_OF_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                  (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def _naming(err: OSError, path: str | os.PathLike[str]) -> OSError:
    """``err`` (same type, same errno) naming ``path``, as the caller gave it, instead of another file: a new
    error, as setting ``filename2`` to None would make its message end in "-> None"."""
    if err.errno is not None and err.strerror:
        return type(err)(err.errno, err.strerror, os.fspath(path))
    return err if os.fspath(path) in str(err) else type(err)(f"cannot save to {os.fspath(path)}: {err}")


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
