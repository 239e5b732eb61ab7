"""Dask: the data chunked along samples on a cluster (or local threads), the weights small on the client.

The data are Dask arrays whose chunks are NumPy arrays of whole rows: host data given to this backend is
cut into chunks of about :data:`CHUNK_BYTES` (and scattered to the cluster once where a client is
active). The weights and the optimizer's state, small, are plain NumPy arrays on the client
(:attr:`DaskBackend.parameters`). A training step is one graph: a task per chunk runs gdxp's backprop in
NumPy on that chunk's rows, a tree of tasks sums the chunks' gradients, and :meth:`DaskBackend.settled`
computes it with one ``dask.compute``; the optimizer then updates the weights on the client. So each step
is a graph of the same size (about two tasks a chunk), no graph ever holds the steps before it, and only
the weights and gradient-sized sums cross the network (dask-glm's design). ``predict``, ``evaluate`` and
the checks of the data run gdxp's math unchanged on array-api-compat's Dask namespace, lazily or as
reductions where the data lives. With a ``dask.distributed`` ``Client`` active (or given to ``fit``) the
graphs run there, else on Dask's local threaded scheduler.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import importlib
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import Array, BatchMeans
from .base import Backend, import_library, quiet_numpy
from .libraries import host_array
from .numpy import NumpyBackend

__all__ = ["CHUNK_BYTES", "DaskBackend", "chunkwise_order"]

# NumPy data given to the dask backend is cut into chunks of whole rows of about this many bytes: big
# enough that a chunk's matmul outweighs the scheduler's ~100 us per task, small enough that a worker
# holds many and a cluster of a few machines gets several chunks each.
CHUNK_BYTES = 32 * 2**20


class DaskBackend(Backend):
    """Dask arrays of NumPy chunks (device ``"cpu"``): the data chunked along samples, the weights NumPy
    arrays on the client; see the module's docstring."""

    name = "dask"
    module = "dask.array"
    library = "Dask"
    install = "pip install 'gdxp[dask]'"
    distributions = ("dask",)
    mutable = False  # Dask arrays are graphs; the weights on the client (parameters) are NumPy's, mutable

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        if device not in (None, "cpu"):
            raise ValueError(f"the dask backend keeps NumPy chunks, on device 'cpu' only, got device={device!r}")
        self._da = import_library(type(self))
        self._dask = importlib.import_module("dask")
        super().__init__(_QuietNamespace(importlib.import_module("array_api_compat.dask.array")), "cpu", dtype)
        self._parameters = NumpyBackend(dtype=self.dtype_name)

    @property
    def parameters(self) -> Backend:
        """A NumPy backend: the weights and the optimizer's state are NumPy arrays on the client."""
        return self._parameters

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        import_library(cls)
        return ("cpu",)

    # -- the data: chunked along samples ---------------------------------------------------------

    def chunk_rows(self, n_samples: int, n_columns: int) -> int:
        """Rows per chunk for host data of this shape: :data:`CHUNK_BYTES` worth, at least one row."""
        row_bytes = max(1, n_columns) * np.dtype(self.dtype_name).itemsize
        return max(1, min(n_samples, CHUNK_BYTES // row_bytes))

    def chunked(self, data: Any, *, rows: int) -> Array:
        """``data`` (host data, or a Dask array) in our dtype as a Dask array of ``rows``-row chunks, each
        with all columns: to choose another chunking than the one :meth:`asarray` gives host data."""
        if isinstance(data, self._da.Array):
            arr = data if data.dtype == self.dtype else data.astype(self.dtype)
            return arr.rechunk((rows, *arr.shape[1:]))
        host = host_array(data, self.dtype_name)
        if host is None:  # an array of another library
            host = self.to_numpy(self.asarray(data))
        return self._wrap(host, rows)

    def _wrap(self, host: np.ndarray, rows: int | None = None) -> Array:
        """A host array as a Dask array of whole-row chunks; one that spans several chunks is scattered to
        the active client's cluster once, so that each step's graph refers to it instead of carrying it."""
        if host.ndim == 0:
            return self._da.from_array(host, name=False)
        if rows is None:
            rows = self.chunk_rows(host.shape[0], math.prod(host.shape[1:]))
        arr = self._da.from_array(host, chunks=(rows, *host.shape[1:]), name=False)
        return arr.persist() if arr.numblocks[0] > 1 and _client() is not None else arr

    def paired(self, inputs: Array, targets: Array) -> tuple[Array, Array]:
        """Both in chunks of whole rows, the targets (or sample weights, 1-D) in the inputs' row chunks, so that a
        chunk's step reads its rows where they are; data already held by the cluster (scattered from the
        host) is moved there once, not each step."""
        rows = inputs.chunks[0]
        columns = {axis: -1 for axis in range(1, targets.ndim)}  # all in each chunk (none for sample weights)
        return _rechunked(inputs, {0: rows, 1: -1}), _rechunked(targets, {0: rows, **columns})

    def shuffled(self, rng: np.random.Generator, *arrays: Array) -> tuple[Array, ...]:
        """An epoch's samples in the order :func:`chunkwise_order` draws: the chunks in a random order, then
        the rows within each chunk, so that no row leaves its chunk (and its worker) to be shuffled and a
        batch reads one or two chunks. With one chunk, that is the other backends' order."""
        pieces = chunkwise_order(rng, arrays[0].chunks[0])
        return tuple(self._da.concatenate([arr.blocks[chunk][rows] for chunk, rows in pieces]) for arr in arrays)

    def using(self, client: Any) -> contextlib.AbstractContextManager[Any]:
        """``client.as_current()``: the work runs on that ``dask.distributed`` client's cluster."""
        if client is None:
            return contextlib.nullcontext()
        distributed = sys.modules.get("distributed")
        if distributed is None or not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a dask.distributed Client, got {type(client).__name__}")
        if client.status != "running":
            raise ValueError(f"client must be connected to a cluster, got one whose status is {client.status!r}")
        return client.as_current()

    # -- host <-> client -------------------------------------------------------------------------

    def to_numpy(self, arr: Array) -> np.ndarray:
        """A Dask array computed (on the active client, or local threads); NumPy arrays as they are."""
        if isinstance(arr, self._da.Array):
            return np.asarray(self.compute(arr)[0])
        return np.asarray(arr)

    def activate(self, *, training: bool = False) -> contextlib.AbstractContextManager[Any]:
        return quiet_numpy(training)

    def compute(self, *collections: Any) -> tuple[Any, ...]:
        """``dask.compute`` of ``collections`` in one graph, with the client's NumPy error state inside
        every task of the local threaded scheduler (its threads would otherwise warn of an overflow
        that gdxp's math expects); with a distributed client active, or another scheduler chosen in
        ``dask.config``, there. NumPy arrays and other plain objects pass through as they are."""
        scheduler = self._dask.base.get_scheduler()
        threaded = importlib.import_module("dask.threaded")
        if scheduler is None and not hasattr(threaded, "ContextAwareThreadPoolExecutor"):
            return self._dask.compute(*collections, scheduler="threads", pool=_context_pool())
        return self._dask.compute(*collections)

    def batch_means(self, function: BatchMeans, weights: Sequence[Array], x: Array, y: Array,
                    sample_weight: Array | None = None) -> tuple[Any, Array]:
        """One task per chunk of the batch runs ``function`` in NumPy on its rows, each mean weighted by the
        chunk's share of the samples, and a tree of tasks adds them up pair by pair: about two tasks a chunk,
        where the same math through Dask's array namespace takes some twenty. The means come back as one
        lazy list (:meth:`settled` computes it), the prediction as one lazy array of the chunks' own
        predictions (computed only if it is read). With ``sample_weight`` (see the base class), each chunk
        gives its weighted sums and its weight sum, the tree adds both, and one last task divides."""
        delayed = self._dask.delayed
        if y.chunks[0] != x.chunks[0]:
            y = y.rechunk({0: x.chunks[0]})
        weighted = sample_weight is not None
        if weighted and sample_weight.chunks[0] != x.chunks[0]:
            sample_weight = sample_weight.rechunk({0: x.chunks[0]})
        shared = delayed((function, self._parameters.xp, list(weights)), pure=False, traverse=False)  # one key
        columns = [x.to_delayed().ravel(), y.to_delayed().ravel()]
        if weighted:
            columns.append(sample_weight.to_delayed().ravel())
        chunks = [(count, pieces) for count, *pieces in zip(x.chunks[0], *columns) if count]  # none empty
        parts = [delayed(_chunk_means, pure=False)(shared, *pieces[:2], count / x.shape[0], *pieces[2:])
                 for count, pieces in chunks]
        predictions = [self._da.from_delayed(part[1], shape=(count, y.shape[1]), dtype=self.dtype)
                       for part, (count, _) in zip(parts, chunks)]
        while len(parts) > 1:
            parts = [delayed(_add_chunks, pure=False)(*parts[i:i + 2]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        means = delayed(_weighted_means, pure=False)(parts[0][0]) if weighted else parts[0][0]
        return means, self._da.concatenate(predictions)

    def largest_magnitude(self, arr: Array) -> float:
        """``max |arr|`` over its non-empty chunks (Dask's own reduction trips over an empty one)."""
        blocks = [abs(arr.blocks[i]).max() for i, rows in enumerate(arr.chunks[0]) if rows]
        return float(max(self.compute(*blocks)))

    def settled(self, means: Any) -> list[Array]:
        """The means :meth:`batch_means` gave, computed in one graph, as NumPy arrays on the client."""
        return [np.asarray(m) for m in self.compute(means)[0]]

    # -- what Dask does its own way ---------------------------------------------------------------

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._da.Array)

    def _is_here(self, arr: Array) -> bool:
        return True

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        return self._wrap(np.asarray(host, dtype=dtype))


def chunkwise_order(rng: np.random.Generator, chunk_rows: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
    """The dask backend's shuffle of data in chunks of ``chunk_rows`` rows: ``rng.permutation`` of the
    chunks (drawn only where there are two or more), then, for each chunk in that order,
    ``rng.permutation`` of its rows; as ``(chunk, rows within it)`` pairs. The samples' order is those rows,
    each offset by its chunk's first row: the NumPy backend, given that order, takes the same steps."""
    chunks = rng.permutation(len(chunk_rows)) if len(chunk_rows) > 1 else np.zeros(1, dtype=np.intp)
    return [(int(chunk), rng.permutation(chunk_rows[chunk])) for chunk in chunks]


class _QuietNamespace:
    """array-api-compat's Dask namespace with ``exp`` quiet on overflow inside each task, wherever the task
    runs: a sigmoid's ``exp(-sop)`` overflows by design, and NumPy's error state reaches neither the
    worker processes of a cluster nor a lazy result computed after gdxp's call has returned."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def exp(self, x: Array) -> Array:
        return x.map_blocks(_quiet_exp, dtype=x.dtype)


def _quiet_exp(block: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(block)


def _chunk_means(shared: tuple[BatchMeans, Any, list[np.ndarray]], x: np.ndarray, y: np.ndarray,
                 share: float, sample_weight: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """A chunk's means, weighted by its ``share`` of the batch's samples, and its prediction; with overflow
    and invalid values quiet, as in gdxp's own training (its loss check reports a NaN). With
    ``sample_weight``: the chunk's sums weighted by them (``function`` given them as the shares), then
    their sum."""
    function, xp, weights = shared
    with quiet_numpy(True):
        if sample_weight is not None:
            sums, prediction = function(xp, weights, x, y, sample_weight)
            return [*sums, np.sum(sample_weight)], prediction
        means, prediction = function(xp, weights, x, y)
        return [m * share for m in means], prediction


def _weighted_means(sums: list[np.ndarray]) -> list[np.ndarray]:
    """The batch's weighted sums over its weight sum (the last entry, which stays): all 0 where that is 0."""
    total = sums[-1]
    with quiet_numpy(True):
        return [s / (total if total > 0.0 else 1.0) for s in sums[:-1]] + [total]


def _add_chunks(first: tuple[list[np.ndarray], Any], second: tuple[list[np.ndarray], Any]) -> tuple[
        list[np.ndarray], None]:
    """The summed means of two (groups of) chunks."""
    with quiet_numpy(True):
        return [a + b for a, b in zip(first[0], second[0], strict=True)], None


def _rechunked(arr: Array, chunks: dict[int, Any]) -> Array:
    """``arr.rechunk(chunks)``, persisted on the cluster where ``arr`` was (else each step would redo it)."""
    result = arr.rechunk(chunks)
    if result.chunks == arr.chunks:
        return arr
    if _client() is not None and sys.modules["distributed"].futures_of(arr):
        result = result.persist()
    return result


def _client() -> Any:
    """The active ``dask.distributed`` client, or None (also where distributed is not installed)."""
    distributed = sys.modules.get("distributed")  # no client can exist before distributed is imported
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:
        return None


class _ContextPool(concurrent.futures.ThreadPoolExecutor):
    """A thread pool whose tasks run in the submitting thread's context (its NumPy error state), as
    Dask's own pool does from 2026 on; for older Dask."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


@functools.cache
def _context_pool() -> _ContextPool:
    return _ContextPool(os.cpu_count() or 1)
