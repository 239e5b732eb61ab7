"""Training compiled whole, on a backend that traces (JAX): runs of epochs as one program on the device.

The step is the engine's own (:func:`gdxp.training.make_step`: backprop, then the optimizer's pure
update), traced by the backend's :class:`~gdxp.backend.base.Compiler` with the epoch loop around it: a
scan over an epoch's batches inside a scan over a chunk of epochs. Weights, optimizer state and the step
count stay on the device; the learning rate, the step count and the data are arguments, never constants
of the program, so a new rate or new data of the same shapes runs the same program. Each chunk's losses
(validation losses, recorded predictions) are read once, and the eager loop's
:class:`~gdxp.training.Ledger` turns them into the history, the progress bar, early stopping and
divergence. Where a run ends inside a chunk, the chunk is replayed from its start up to that epoch by
the same program, which runs only the first ``count`` epochs of a chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._typing import Array
from .backend import Backend, host_array
from .history import History
from .metrics import CLASS_OUTPUTS
from .training import FitOptions, Ledger, Snapshot, Trained, all_finite, make_step, restorable, validation_scores

if TYPE_CHECKING:
    from .network import Network

__all__ = ["CHUNK_SECONDS", "train_compiled"]

CHUNK_SECONDS = 0.25  # about how long one compiled run of epochs should take, so the progress bar moves
_PROGRAMS: dict[tuple[Any, ...], Callable[..., Any]] = {}  # compiled once per network shape and settings
_MAX_PROGRAMS = 32


@dataclass(frozen=True)
class _Chunk:
    """A run of epochs: the state before its first epoch, that epoch's number and the shuffled orders."""

    start: Trained
    first_epoch: int
    orders: Array | None
    rates: Array


def train_compiled(net: Network, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
                   options: FitOptions) -> History:
    """:func:`gdxp.training.train`, compiled: the same results, a chunk of epochs per call to the device."""
    backend = net.backend
    n_samples = inputs.shape[0]
    size = options.batch_size_for(n_samples)
    rng = net.shuffle_rng if options.shuffle and size < n_samples else None
    length = _chunk_length(net.sizes, n_samples, size, options.epochs)
    snapshot = net.snapshot()
    state = [list(slot) for slot in snapshot.optimizer_state] or net.optimizer.initial_state(backend.parameters.xp,
                                                                                                 snapshot.weights)
    trained: Trained = (list(snapshot.weights), state, backend.asarray(snapshot.steps, dtype=backend.index_dtype))
    program, seconds = _program(net, trained, inputs, targets, validation, options, size, length,
                                shuffled=rng is not None)
    data = (inputs, targets, *(validation or ()))

    def run(chunk: _Chunk, count: int) -> tuple[Trained, tuple[Array, Array, Array]]:
        return program(chunk.start, chunk.orders, chunk.rates, backend.asarray(count, dtype=backend.index_dtype),
                       *data)

    ledger = Ledger(options)
    if seconds:
        ledger.progress.note(f"compiled {length} epochs per call in {seconds:.2f} s")
    ledger.history.compile_seconds = seconds
    previous: _Chunk | None = None  # the chunk before the one running, for the state before its first epoch
    best: tuple[_Chunk, int] | None = None  # the chunk of the best epoch so far, and how far into it
    chunk, count = None, 0

    def before(chunk: _Chunk, earlier: _Chunk | None, index: int) -> Trained:
        """The state before the chunk's epoch ``index`` (from 0; -1 is the epoch before the chunk)."""
        if index >= 0:
            return run(chunk, index)[0] if index else chunk.start
        return chunk.start if earlier is None else run(earlier, chunk.first_epoch - earlier.first_epoch + index)[0]

    try:
        epoch = 1
        while epoch <= options.epochs:
            previous = chunk
            count = min(length, options.epochs - epoch + 1)
            drawn_from = None if rng is None else rng.bit_generator.state
            chunk = _Chunk(trained, epoch, _orders(backend, rng, n_samples, count, length),
                           _rates(backend, options.rates_from(epoch, count), length))
            trained, outputs = run(chunk, count)
            recorded = ledger.add_run(epoch, *_read(backend, outputs, count, validation is not None,
                                                    options.record_predictions))
            best_epoch = ledger.history.best_epoch
            if best_epoch is not None and best_epoch >= epoch:
                best = (chunk, best_epoch - epoch + 1)
            stopped = ledger.history.stopped_early
            if stopped or recorded < count:  # the run ends inside this chunk: out of patience, or diverged
                _redraw(rng, drawn_from, n_samples, recorded if stopped else recorded + 1)
                if stopped:
                    trained = run(chunk, recorded)[0]
                    break
                candidates = before(chunk, previous, recorded), before(chunk, previous, recorded - 1)
                trained = restorable(backend, net, inputs, targets, *candidates)
                ledger.diverged(epoch + recorded)
            epoch += count
        if best is not None:  # the best weights come back; the optimizer's state goes on
            trained = (run(*best)[0][0], *trained[1:])
        elif chunk is not None and not all_finite(backend, trained[0]):  # made by the last step: no loss saw them
            candidates = before(chunk, previous, count - 1), before(chunk, previous, count - 2)
            trained = restorable(backend, net, inputs, targets, *candidates)
            ledger.diverged(chunk.first_epoch + count - 1)
    finally:
        ledger.close()
        net.restore(Snapshot(trained[0], trained[1], int(backend.to_numpy(trained[2]))))
    return ledger.history


def _redraw(rng: np.random.Generator | None, drawn_from: dict[str, Any] | None, n_samples: int, epochs: int) -> None:
    """Put the shuffling generator where the eager loop leaves it: after the orders of ``epochs`` epochs."""
    if rng is None:
        return
    rng.bit_generator.state = drawn_from
    for _ in range(epochs):
        rng.permutation(n_samples)


def _orders(backend: Backend, rng: np.random.Generator | None, n_samples: int, count: int,
            length: int) -> Array | None:
    """The chunk's shuffled orders, drawn on the host as the eager loop draws them and moved once; epochs
    past ``count`` (not run) get the identity."""
    if rng is None:
        return None
    orders = np.empty((length, n_samples), dtype=np.int64)
    for row in range(length):
        orders[row] = rng.permutation(n_samples) if row < count else np.arange(n_samples)
    return backend.asarray(orders, dtype=backend.index_dtype)


def _rates(backend: Backend, rates: Sequence[float], length: int) -> Array:
    """A chunk's learning rates as data (so a new schedule runs the same program); the epochs past the
    run's end, which are skipped, repeat the last."""
    padded = np.full(length, rates[-1])
    padded[:len(rates)] = rates
    return backend.asarray(host_array(padded, backend.dtype_name))  # past float32's range: inf, as eager


def _read(backend: Backend, outputs: tuple[Array, Array, Array], count: int, validated: bool,
          recorded: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A chunk's reported numbers on the host (one wait), cut to the epochs that ran."""
    losses, val_losses, predictions = (backend.to_numpy(a) for a in outputs)
    return (losses[:count].astype(np.float64), val_losses[:count].astype(np.float64) if validated else None,
            predictions[:count] if recorded else None)


def _chunk_length(sizes: Sequence[int], n_samples: int, size: int, epochs: int) -> int:
    """Epochs per compiled call: about :data:`CHUNK_SECONDS` of work at what one CPU core reaches (a
    microsecond a step, 20 gigaflops a second; longer calls also ran faster per epoch here), a power of
    two so that other runs of the network reuse the program."""
    steps = math.ceil(n_samples / size)
    flops = 6 * n_samples * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    seconds = steps * 1e-6 + flops / 2e10
    length = 2 ** max(0, int(math.log2(max(1.0, CHUNK_SECONDS / seconds))))
    if epochs >= length:
        return length
    # a shorter run in one call: its length rounded up to an eighth of its power of two, so that runs of
    # about the same length share a program while the skipped epochs past the end stay few (they still cost)
    grain = 2 ** max(0, int(math.log2(epochs)) - 3)
    return min(length, -(-epochs // grain) * grain)


def _program(net: Network, start: Trained, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
             options: FitOptions, size: int, length: int, *, shuffled: bool) -> tuple[Callable[..., Any], float]:
    """The compiled chunk for this network, data shapes and settings (``start``, the state it begins from,
    stands for the states it will be given), and the seconds compiling took (0 when an earlier fit did)."""
    backend, optimizer = net.backend, net.optimizer
    key = (backend.name, backend.device_name, backend.dtype_name, net.sizes, tuple(a.name for a in net.activations),
           net.bias, net.loss.name, type(optimizer), tuple(optimizer.hyperparameters().items()), options.weight_decay,
           tuple(inputs.shape), tuple(targets.shape), None if validation is None else tuple(validation[0].shape),
           size, length, shuffled, options.record_predictions, bool(options.rates))
    if key in _PROGRAMS:
        return _PROGRAMS[key], 0.0
    chunk = _chunk_function(net, inputs.shape[0], size, length, validation is not None, options.record_predictions,
                            options.weight_decay, scheduled=bool(options.rates))
    example = (start,
               _orders(backend, np.random.default_rng(0), inputs.shape[0], 0, length) if shuffled else None,
               backend.zeros((length,)), backend.asarray(0, dtype=backend.index_dtype),
               inputs, targets, *(validation or ()))
    program, seconds = backend.compiler.compile(chunk, *example)
    if len(_PROGRAMS) >= _MAX_PROGRAMS:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = program
    return program, seconds


def _chunk_function(net: Network, n_samples: int, size: int, length: int, validated: bool,
                    recorded: bool, weight_decay: float, *, scheduled: bool) -> Callable[..., Any]:
    """``chunk(trained, orders, rates, count, x, y[, x_val, y_val])``: the first ``count`` of ``length``
    epochs from ``trained``, each at its rate (one for all, unless ``scheduled``); returns the state after
    them and each epoch's (loss, validation loss, prediction), as the eager loop computes them."""
    backend, layers, loss, optimizer = net.backend, net.layers, net.loss, net.optimizer
    xp, compiler = backend.xp, backend.compiler
    full = n_samples // size * size  # samples in whole batches; the rest make one short batch
    scores = 2 if net.activations[-1].name in CLASS_OUTPUTS else 1  # validation loss (and accuracy)
    skip = _skipped(backend, n_samples, net.sizes[-1], recorded, scores if validated else 0)

    def chunk(trained: Trained, orders: Array | None, rates: Array, count: Array, x: Array, y: Array,
              *validation: Array) -> tuple[Trained, tuple[Array, Array, Array]]:
        fixed = None if scheduled else make_step(backend, layers, loss, optimizer, rates[0], weight_decay)

        def epoch(carried: Trained, order: Array | None, rate: Array) -> tuple[Trained, tuple[Array, Array, Array]]:
            step = fixed or make_step(backend, layers, loss, optimizer, rate, weight_decay)

            def batch(carried: Trained, pair: tuple[Array, Array]) -> tuple[Trained, Array]:
                carried, value, _ = step(carried, *pair)
                return carried, value

            xs, ys = (x, y) if order is None else (xp.take(x, order, axis=0), xp.take(y, order, axis=0))
            if full == n_samples and size == n_samples:  # one batch: the tutorials' case
                carried, value, prediction = step(carried, xs, ys)
            else:
                stacked = (xp.reshape(xs[:full, ...], (full // size, size, xs.shape[1])),
                           xp.reshape(ys[:full, ...], (full // size, size, ys.shape[1])))
                carried, values = compiler.scan(batch, carried, stacked)
                total = xp.sum(values) * size
                if full < n_samples:
                    carried, value, _ = step(carried, xs[full:, ...], ys[full:, ...])
                    total = total + value * (n_samples - full)
                value, prediction = total / n_samples, None
            val_value = validation_scores(backend, net, carried[0], validation) if validated else value
            return carried, (value, val_value, prediction if recorded else value)

        def maybe(carried: Trained, item: tuple[Array, Array | None, Array]) -> tuple[Trained, tuple[Array, ...]]:
            index, order, rate = item
            return compiler.when(index < count, epoch, skip, carried, order, rate)

        indices = xp.arange(length, dtype=count.dtype)
        return compiler.scan(maybe, trained, (indices, orders, rates))

    return chunk


def _skipped(backend: Backend, n_samples: int, n_out: int, recorded: bool, scores: int) -> Callable[..., Any]:
    """The branch for an epoch past ``count``: the state unchanged, and NaN for what it would report
    (``scores`` validation numbers, none without validation data)."""
    xp, dtype = backend.xp, backend.dtype

    def skip(carried: Trained, order: Array | None, rate: Array) -> tuple[Trained, tuple[Array, Array, Array]]:
        nothing = xp.full((), math.nan, dtype=dtype)
        validated = xp.full((scores,), math.nan, dtype=dtype) if scores else nothing
        return carried, (nothing, validated,
                         xp.full((n_samples, n_out), math.nan, dtype=dtype) if recorded else nothing)

    return skip
