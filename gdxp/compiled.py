"""Training compiled whole, on a backend that traces (JAX): runs of epochs as one program on the device.

:class:`CompiledRunner` is the training loop's runner (:mod:`gdxp.training`, :mod:`gdxp.runner`) for such a
backend. The step is the engine's own (:func:`gdxp.steps.make_step`: backprop, then the optimizer's update,
pure on JAX's immutable arrays), traced by the backend's :class:`~gdxp.backend.compiler.Compiler` with the epoch
loop around it: a scan over an epoch's batches inside a scan over a run of epochs. Weights, optimizer state
and the step count stay on the device; the learning rates, the step count and the data are arguments, never
constants of the program, so new rates or new data of the same shapes run the same program. Each run's numbers
are read once. Where the loop needs the state inside a run (a hook stopped it there, or it diverged there),
the run is replayed from its start up to that epoch by the same program, which runs only the first ``count``
epochs of a run. A callback that looks at the network makes every run one epoch long, so that it sees each
epoch's weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._typing import Array
from .architecture import Architecture
from .backend import Backend, host_array
from .metrics import metric_name
from .optimizers import Optimizer
from .options import FitOptions
from .runner import Model, Numbers
from .state import TrainState
from .step_count import StepCount
from .steps import Trained, UpdateGuard, make_step, scores

__all__ = ["CHUNK_BYTES", "CHUNK_SECONDS", "CompiledRunner"]

CHUNK_SECONDS = 0.25  # about how long one compiled run of epochs should take, so the progress bar moves
CHUNK_BYTES = 32 * 2**20  # the most a run holds of shuffled orders and recorded predictions (or one epoch's)
_PROGRAMS: dict[tuple[Any, ...], tuple[Callable[..., Any], Architecture]] = {}  # per network and settings
_MAX_PROGRAMS = 32


@dataclass(frozen=True)
class _Chunk:
    """A run of epochs: the state before its first epoch, that epoch's number, the shuffled orders, the
    rates, and where the shuffling generator stood before the orders were drawn."""

    start: TrainState
    first_epoch: int
    orders: Array | None
    rates: Array
    drawn_from: dict[str, Any] | None


class CompiledRunner:
    """Runs of epochs as one compiled program each; see the module's docstring."""

    def __init__(self, model: Model, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
                 options: FitOptions, guard: UpdateGuard | None, watched: bool,
                 sample_weight: Array | None = None) -> None:
        backend = self.backend = model.backend
        self.options = options
        self.n_samples = inputs.shape[0]
        size = options.batch_size_for(self.n_samples)
        self.rng = model.shuffle_rng if options.shuffle and size < self.n_samples else None
        per_epoch = _epoch_bytes(backend, self.n_samples, model.architecture.sizes[-1], self.rng is not None,
                                 options.record_predictions)
        self.length_cap = 1 if watched else min(_chunk_length(model.architecture.sizes, self.n_samples, size,
                                                              options.epochs), _affordable(per_epoch))
        start = _trained(backend, model.state)
        self.program, seconds = _program(backend, model.architecture, model.optimizer, start, inputs, targets,
                                         validation, options, size, self.length_cap, shuffled=self.rng is not None,
                                         sample_weight=sample_weight)
        self.compile_seconds = seconds
        self.data = (inputs, targets, sample_weight, *(validation or ()))
        self.validated = validation is not None
        self._chunk: _Chunk | None = None
        self._previous: _Chunk | None = None
        self._ran: TrainState | None = None  # the state the last run made, and its training loss
        self._last_loss: float | None = None

    def length(self, remaining: int) -> int:
        return min(self.length_cap, remaining)

    def run(self, state: TrainState, epoch: int, count: int) -> tuple[TrainState, Numbers]:
        drawn_from = None if self.rng is None else self.rng.bit_generator.state
        chunk = _Chunk(state, epoch, _orders(self.backend, self.rng, self.n_samples, count, self.length_cap),
                       _rates(self.backend, self.options.rates(epoch, count), self.length_cap), drawn_from)
        self._previous, self._chunk = self._chunk, chunk
        ran, outputs = self._replay(chunk, count)
        numbers, self._last_loss = _read(self.backend, outputs, count, self.validated, self.options.record_predictions)
        self._ran = ran
        return ran, numbers

    def last_loss(self, state: TrainState) -> float | None:
        """The training loss of the last run's weights, which its program computed, where ``state`` is them."""
        return self._last_loss if state is self._ran else None

    def before(self, epoch: int) -> TrainState | None:
        for chunk in (self._chunk, self._previous):
            if chunk is not None and chunk.first_epoch <= epoch < chunk.first_epoch + self.length_cap:
                return self._replay(chunk, epoch - chunk.first_epoch)[0]
        return None

    def rewind(self, count: int) -> TrainState:
        chunk = self._chunk
        _redraw(self.rng, chunk.drawn_from, self.n_samples, count)
        return self._replay(chunk, count)[0]

    def keep(self, count: int, state: TrainState) -> tuple[_Chunk, int]:
        return self._chunk, count

    def kept(self, handle: tuple[_Chunk, int]) -> TrainState:
        return self._replay(*handle)[0]

    def latest(self, state: TrainState) -> TrainState:
        return state

    def _replay(self, chunk: _Chunk, count: int) -> tuple[TrainState, tuple[Array, Array, Array]]:
        """The state after the first ``count`` epochs of ``chunk`` (its start for 0), and their outputs."""
        if count == 0:
            return chunk.start, ()
        backend = self.backend
        trained, outputs = self.program(_trained(backend, chunk.start), chunk.orders, chunk.rates,
                                        backend.asarray(count, dtype=backend.index_dtype), *self.data)
        weights, optimizer_state, steps = trained
        return TrainState(list(weights), [list(slot) for slot in optimizer_state],
                          chunk.start.steps + int(backend.to_numpy(steps.ran)), chunk.first_epoch + count - 1,
                          chunk.start.patience), outputs


def _trained(backend: Backend, state: TrainState) -> Trained:
    """A state as the program's carry: the step count a :class:`StepCount` from 0 steps run. Its float is as
    wide as the index dtype (float64 exactly to 2**53 steps where that is int64, float32 otherwise)."""
    wide = backend.index_dtype == backend.xp.int64
    start = backend.asarray(float(state.steps), dtype=backend.xp.float64 if wide else backend.xp.float32)
    return (list(state.weights), [list(slot) for slot in state.optimizer_state],
            StepCount(start, backend.asarray(0, dtype=backend.index_dtype)))


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


def _read(backend: Backend, outputs: tuple[Array, Array, Array, Array], count: int, validated: bool,
          recorded: bool) -> tuple[Numbers, float]:
    """A chunk's reported numbers on the host (one wait), cut to the epochs that ran, and the training loss of
    the weights it ended with."""
    losses, val_scores, predictions, last = (backend.to_numpy(a) for a in outputs)
    return Numbers(losses[:count].astype(np.float64), val_scores[:count].astype(np.float64) if validated else None,
                   predictions[:count] if recorded else None), float(last)


def _epoch_bytes(backend: Backend, n_samples: int, n_out: int, shuffled: bool, recorded: bool) -> int:
    """What a run holds per epoch, on the host and again on the device: its shuffled order (int64 as drawn) and
    its recorded prediction."""
    itemsize = 4 if backend.dtype_name == "float32" else 8
    return (8 * n_samples if shuffled else 0) + (itemsize * n_samples * n_out if recorded else 0)


def _affordable(per_epoch: int) -> int:
    """The most epochs a run may hold the orders and predictions of within :data:`CHUNK_BYTES` (at least one),
    a power of two, so that runs of other lengths reuse the program."""
    if per_epoch == 0:
        return 2**62
    return 2 ** max(0, int(math.log2(max(1, CHUNK_BYTES // per_epoch))))


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


def _program(backend: Backend, architecture: Architecture, optimizer: Optimizer, start: Trained, inputs: Array,
             targets: Array, validation: tuple[Array, Array] | None, options: FitOptions, size: int, length: int, *,
             shuffled: bool, sample_weight: Array | None) -> tuple[Callable[..., Any], float]:
    """The compiled run for this architecture, optimizer, data shapes and settings (``start``, the state it
    begins from, stands for the states it will be given), and the seconds compiling took (0 when an earlier
    fit did). The cache keys on what the math is: the architecture's activation and loss objects
    themselves (:meth:`~gdxp.architecture.Architecture.key`), never their names."""
    scheduled = options.schedule is not None
    key = (backend.name, backend.device_name, backend.dtype_name, architecture.key(), type(optimizer),
           tuple(optimizer.hyperparameters().items()), options.weight_decay, tuple(inputs.shape),
           tuple(targets.shape), None if validation is None else tuple(validation[0].shape), size, length, shuffled,
           options.record_predictions, scheduled, sample_weight is None)
    if key in _PROGRAMS:
        return _PROGRAMS[key][0], 0.0
    chunk = _chunk_function(backend, architecture, optimizer, inputs.shape[0], size, length, validation is not None,
                            options.record_predictions, options.weight_decay, scheduled=scheduled)
    example = (start,
               _orders(backend, np.random.default_rng(0), inputs.shape[0], 0, length) if shuffled else None,
               backend.zeros((length,)), backend.asarray(0, dtype=backend.index_dtype),
               inputs, targets, sample_weight, *(validation or ()))
    program, seconds = backend.compiler.compile(chunk, *example)
    if len(_PROGRAMS) >= _MAX_PROGRAMS:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = program, architecture
    return program, seconds


def _chunk_function(backend: Backend, architecture: Architecture, optimizer: Optimizer, n_samples: int, size: int,
                    length: int, validated: bool, recorded: bool, weight_decay: float, *,
                    scheduled: bool) -> Callable[..., Any]:
    """``chunk(trained, orders, rates, count, x, y, sample_weight[, x_val, y_val])``: the first ``count`` of
    ``length`` epochs from ``trained``, each at its rate (one for all, unless ``scheduled``), the samples
    weighted by ``sample_weight`` unless it is None (shuffled with them); returns the state after them and each
    epoch's (loss, validation loss, prediction), as the eager loop computes them."""
    xp, compiler = backend.xp, backend.compiler
    full = n_samples // size * size  # samples in whole batches; the rest make one short batch
    n_scores = 2 if metric_name(architecture.loss) == "accuracy" else 1  # the validation loss (and accuracy)
    skip = _skipped(backend, n_samples, architecture.sizes[-1], recorded, n_scores if validated else 0)

    def chunk(trained: Trained, orders: Array | None, rates: Array, count: Array, x: Array, y: Array,
              sample_weight: Array | None, *validation: Array) -> tuple[Trained, tuple[Array, Array, Array]]:
        data = (x, y) if sample_weight is None else (x, y, sample_weight)
        fixed = None if scheduled else make_step(backend, architecture, optimizer, rates[0], weight_decay)

        def epoch(carried: Trained, order: Array | None, rate: Array) -> tuple[Trained, tuple[Array, Array, Array]]:
            step = fixed or make_step(backend, architecture, optimizer, rate, weight_decay)

            def batch(carried: Trained, pair: tuple[Array, ...]) -> tuple[Trained, Array]:
                carried, value, _ = step(carried, *pair)
                return carried, value

            shuffled = data if order is None else tuple(xp.take(arr, order, axis=0) for arr in data)
            if full == n_samples and size == n_samples:  # one batch: the tutorials' case
                carried, value, prediction = step(carried, *shuffled)
            else:
                stacked = tuple(xp.reshape(arr[:full, ...], (full // size, size, *arr.shape[1:])) for arr in shuffled)
                carried, values = compiler.scan(batch, carried, stacked)
                total = xp.sum(values) * size
                if full < n_samples:
                    carried, value, _ = step(carried, *(arr[full:, ...] for arr in shuffled))
                    total = total + value * (n_samples - full)
                value, prediction = total / n_samples, None
            val_value = scores(backend, architecture, carried[0], validation) if validated else value
            return carried, (value, val_value, prediction if recorded else value)

        def maybe(carried: Trained, item: tuple[Array, Array | None, Array]) -> tuple[Trained, tuple[Array, ...]]:
            index, order, rate = item
            return compiler.when(index < count, epoch, skip, carried, order, rate)

        indices = xp.arange(length, dtype=count.dtype)
        carried, outputs = compiler.scan(maybe, trained, (indices, orders, rates))
        return carried, (*outputs, scores(backend, architecture, carried[0], (x, y))[0])

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
