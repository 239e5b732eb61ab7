"""The Network: a stack of dense layers trained by exact backpropagation on any backend."""

from __future__ import annotations

import copy
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import backprop, compiled, serialization, training, validation
from . import trace as tracing
from ._typing import Array
from .activations import Activation, get_activation
from .backend import Backend, get_backend
from .history import History
from .initializers import get_initializer
from .losses import Loss, get_loss
from .metrics import score
from .optimizers import SGD, Optimizer, get_optimizer
from .training import Snapshot

__all__ = ["Network", "load"]


class Network:
    """A fully connected network of any depth, trained by gradient descent.

    ``sizes`` is ``[inputs, hidden..., outputs]``. ``activation`` names the hidden layers' activation
    (or lists one per hidden layer); ``output_activation=None`` uses the hidden one, as the tutorials
    do. Weights ``W`` have shape ``(n_in, n_out)``, so a layer computes ``activ_prev @ W + b``.
    ``backend=None`` reads ``GDXP_BACKEND``, else uses NumPy; ``seed`` fixes both the initial
    weights (identical on every backend) and the shuffling of mini-batches. ``weights`` (in
    :meth:`get_weights` order) start the network from those instead of drawing any.

    The engine's modules (:mod:`gdxp.training`, :mod:`gdxp.trace`) see a network only through
    :attr:`layers`, :attr:`shuffle_rng`, :meth:`as_batch`, :meth:`snapshot` and :meth:`restore`.
    """

    def __init__(self, sizes: Sequence[int], *, activation: str | Sequence[str] = "sigmoid",
                 output_activation: str | Activation | None = None, loss: str | Loss = "squared_error",
                 bias: bool = True, init: str = "glorot_uniform", seed: int | None = None,
                 backend: str | Backend | None = None, device: Any = None, dtype: Any = None,
                 weights: Sequence[Any] | None = None) -> None:
        self.sizes = _check_sizes(sizes)
        self.activations = _layer_activations(activation, output_activation, len(self.sizes) - 2)
        self.loss = get_loss(loss)
        _check_output(self.activations[-1].name, self.sizes[-1], self.loss)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.bias = bias
        _check_memory(self.sizes, bias)  # before anything is allocated
        self.init = init
        initializer = get_initializer(init)
        if seed is not None:
            validation.check_whole_number(seed, "seed", minimum=0)
        self.seed = seed
        self.backend = get_backend(backend, device=device, dtype=dtype)
        init_rng, self._shuffle_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.optimizer: Optimizer | None = None  # the one the last fit used; fit continues it
        self._plain_descent = SGD()
        self._layers = backprop.layers_for(self.activations, bias)
        if weights is not None:  # given (a loaded file's, say): nothing is drawn
            self.set_weights(weights)
            return
        with self.backend.activate():
            self._weights: list[Array] = []
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
                self._weights.append(initializer(self.backend.parameters, init_rng, n_in, n_out))
                if bias:
                    self._weights.append(self.backend.parameters.zeros((n_out,)))

    def __repr__(self) -> str:
        names = [a.name for a in self.activations]
        hidden, output = names[:-1], names[-1]
        if len(set(hidden)) > 1:
            activation = f"activation={hidden!r}, output_activation={output!r}"
        elif hidden and hidden[0] != output:
            activation = f"activation={hidden[0]!r}, output_activation={output!r}"
        else:
            activation = f"activation={output!r}"
        return (f"Network({list(self.sizes)}, {activation}, loss={self.loss.name!r}, bias={self.bias}, "
                f"backend={self.backend.name!r}, device={self.backend.device_name!r}, "
                f"dtype={self.backend.dtype_name!r})")

    # -- weights -----------------------------------------------------------------------------------

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the arrays of :meth:`get_weights`, in its order."""
        shapes: list[tuple[int, ...]] = []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            shapes += [(n_in, n_out), (n_out,)] if self.bias else [(n_in, n_out)]
        return shapes

    def get_weights(self) -> list[np.ndarray]:
        """Host NumPy copies of the weights, Keras order: ``[W1, b1, W2, b2, ...]`` (no ``b`` without bias)."""
        return [self.backend.parameters.to_numpy(w).copy() for w in self._weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Replace every weight (host or device arrays, in :meth:`get_weights` order), checking all first."""
        shapes = self.weight_shapes()
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a list of {len(shapes)} arrays, got {type(weights).__name__}")
        if len(weights) != len(shapes):
            raise ValueError(f"expected {len(shapes)} weight arrays with shapes {shapes}, got {len(weights)}")
        with self.backend.activate():
            arrays = [_weight_array(self.backend.parameters, w, index) for index, w in enumerate(weights)]
            for index, (arr, shape) in enumerate(zip(arrays, shapes)):
                if tuple(arr.shape) != shape:
                    raise ValueError(f"weight array {index} must have shape {shape}, got {tuple(arr.shape)}")
                validation.check_finite(self.backend.parameters, arr, f"weight array {index}")
        self._weights = arrays

    def copy(self, *, backend: str | None = None, device: Any = None, dtype: Any = None) -> Network:
        """A copy with the same architecture, weights, shuffling state and optimizer (its settings, step
        count and a copy of its state), optionally elsewhere: ``backend``/``dtype`` None keep this
        network's; ``device`` None keeps it on the same backend. Training the copy goes on exactly as
        training this network would, and changes nothing here."""
        same_backend = backend is None or backend == self.backend.name
        twin = Network(self.sizes, activation=self.activations[:-1], output_activation=self.activations[-1],
                       loss=self.loss, bias=self.bias,
                       init=self.init, seed=self.seed, backend=self.backend.name if same_backend else backend,
                       device=self.backend.device if same_backend and device is None else device,
                       dtype=self.backend.dtype_name if dtype is None else dtype)
        twin.set_weights(self.get_weights())
        twin._shuffle_rng = copy.deepcopy(self._shuffle_rng)
        if self.optimizer is not None:
            twin.optimizer = copy.copy(self.optimizer)  # its settings; its state is copied onto the twin's device
            with twin.backend.activate():
                twin.optimizer.state = [[twin.backend.parameters.asarray(a, copy=True) for a in slot]
                                        for slot in self.optimizer.state]
        return twin

    def summary(self) -> str:
        """The layers, their shapes and activations, and the parameter count, one line a layer."""
        lines = [f"{repr(self)}", f"{'layer':<7}{'shape':<14}{'activation':<13}{'parameters':>10}"]
        total = 0
        for number, (layer, n_in, n_out) in enumerate(zip(self._layers, self.sizes[:-1], self.sizes[1:]), 1):
            count = n_in * n_out + (n_out if self.bias else 0)
            total += count
            lines.append(f"{number:<7}{f'{n_in} -> {n_out}':<14}{layer.activation.name:<13}{count:>10,}")
        lines.append(f"{'total':<34}{total:>10,}")
        return "\n".join(lines)

    # -- the seam the engine's modules use ---------------------------------------------------------

    @property
    def layers(self) -> tuple[backprop.Layer, ...]:
        """Each layer's activation and the places of its W and b in the weight list, for :mod:`gdxp.backprop`."""
        return self._layers

    @property
    def shuffle_rng(self) -> np.random.Generator:
        """The generator that orders :meth:`fit`'s mini-batches, seeded from ``seed``; each shuffle advances it."""
        return self._shuffle_rng

    def as_batch(self, x: Any, y: Any, *, check_values: bool = True,
                 names: tuple[str, str] = ("x", "y")) -> tuple[Array, Array]:
        """``x`` and ``y`` checked against the layer sizes, as ``(n_samples, n_in)`` and ``(n_samples, n_out)``
        arrays on the network's device. Data from the host is checked for NaN/inf there, before it moves;
        arrays already on a device are scanned only with ``check_values``, which waits for the device.
        ``names`` are what the errors call the two (``("x_val", "y_val")`` for validation data)."""
        inputs, single = validation.as_inputs(self.backend, x, self.sizes[0], check_values=check_values,
                                              name=names[0])
        targets = validation.as_targets(self.backend, y, inputs.shape[0], self.sizes[-1], single=single,
                                        check_values=check_values, target_range=self.loss.target_range,
                                        names=names, labels=self.activations[-1].name == "softmax")
        return self.backend.paired(inputs, targets)

    def snapshot(self) -> Snapshot:
        """The weights, and the optimizer's state and step count, as they are now: references, not copies."""
        optimizer = self.optimizer
        if optimizer is None:
            return Snapshot(tuple(self._weights), (), 0)
        return Snapshot(tuple(self._weights), tuple(optimizer.state), optimizer.steps)

    def restore(self, snapshot: Snapshot) -> None:
        """Put back a :meth:`snapshot`'s weights, and its optimizer state and step count into the current
        optimizer (if any), all at once."""
        shapes, expected = [tuple(w.shape) for w in snapshot.weights], self.weight_shapes()
        if shapes != expected:
            raise ValueError(f"a snapshot of weights of shapes {shapes} does not fit this network's {expected}")
        self._weights = list(snapshot.weights)
        if self.optimizer is not None:
            self.optimizer.state = [list(slot) for slot in snapshot.optimizer_state]
            self.optimizer.steps = snapshot.steps

    # -- using and training ------------------------------------------------------------------------

    def predict(self, x: Any) -> Array:
        """The network's output for ``x`` of shape ``(n_samples, n_in)`` (or ``(n_in,)`` for one
        sample, giving ``(n_out,)``), on the network's device. Nothing here waits for the device:
        host data is checked for NaN/inf before it moves, device arrays are taken as they are."""
        with self.backend.activate():
            inputs, single = validation.as_inputs(self.backend, x, self.sizes[0], check_values=False)
            activs, _ = backprop.forward(self.backend.xp, self._layers, self._weights, inputs)
            return activs[-1][0, :] if single else activs[-1]

    def loss_value(self, x: Any, y: Any) -> float:
        """The loss on ``(x, y)``, averaged over the samples."""
        return self.evaluate(x, y)["loss"]

    def evaluate(self, x: Any, y: Any) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` on ``(x, y)`` for softmax (arg-max class) and sigmoid (0.5
        threshold) outputs, ``{"loss": ..., "r2": ...}`` (scikit-learn's R², averaged over the outputs)
        for the others. Both are read from the device together."""
        with self.backend.activate():
            inputs, targets = self.as_batch(x, y)
            xp = self.backend.xp
            loss, prediction = backprop.loss_and_prediction(xp, self._layers, self.loss, self._weights, inputs, targets)
            name, value = score(xp, self.activations[-1].name, prediction, targets)
            both = self.backend.to_numpy(xp.stack([xp.asarray(loss), xp.astype(value, loss.dtype)]))
            return {"loss": float(both[0]), name: float(both[1])}

    def gradients(self, x: Any, y: Any) -> list[Array]:
        """Gradients of the loss on ``(x, y)``, in :meth:`get_weights` order and shapes, on the device
        (without waiting for it, as :meth:`predict`)."""
        with self.backend.activate():
            inputs, targets = self.as_batch(x, y, check_values=False)
            return backprop.gradients(self.backend.xp, self._layers, self.loss, self._weights, inputs, targets)[0]

    def step(self, x: Any, y: Any, *, learning_rate: float, return_loss: bool = False,
             check_finite: bool = False) -> Array | None:
        """One gradient-descent step on this batch: ``W -= learning_rate * grad`` for every weight,
        all gradients taken at the weights from before the step.

        Returns None, or with ``return_loss`` the batch's loss before the step as a 0-d device
        array: nothing here waits for the device (on Dask, the gradients are computed, to update the
        weights on the client). ``x`` and ``y`` from the host are checked for
        NaN/inf before they move; ``check_finite=True`` also scans arrays already on the device,
        which waits for it once.
        """
        rate = validation.check_positive_number(learning_rate, "learning_rate")
        validation.check_flag(return_loss, "return_loss")
        validation.check_flag(check_finite, "check_finite")
        with self.backend.activate():
            inputs, targets = self.as_batch(x, y, check_values=check_finite)
            gradients = backprop.gradient_function(self._layers, self.loss, want_loss=return_loss)
            means = self.backend.settled(self.backend.batch_means(gradients, self._weights, inputs, targets)[0])
            grads, loss = (means[:-1], means[-1]) if return_loss else (means, None)
            # a new list swapped in at once: an interrupted step never leaves half the weights updated
            self._weights = self._plain_descent.apply(self.backend.parameters.xp, self._weights, grads, rate)
            return loss

    def fit(self, x: Any, y: Any, *, epochs: int, learning_rate: float, batch_size: int | None = None,
            optimizer: str | Optimizer = "sgd", shuffle: bool = True, validation_data: tuple[Any, Any] | None = None,
            patience: int | None = None, verbose: int = 1, record_predictions: bool = False,
            weight_decay: float = 0.0, learning_rate_schedule: str | Callable[[int], float] | None = None,
            callbacks: Sequence[Callable[[int, History], Any]] = (), client: Any = None) -> History:
        """Train by gradient descent for ``epochs`` passes over ``(x, y)``; returns a :class:`History`.

        ``batch_size=None`` takes all samples per step (full batch), ``1`` is the tutorials'
        per-sample descent; batches are reshuffled each epoch from the network's seed (``shuffle``).
        ``optimizer``: ``"sgd"``, ``"momentum"``, ``"adam"`` or an object from :mod:`gdxp.optimizers`;
        a name continues the optimizer of the last fit when it is the same kind. ``validation_data``
        ``(x_val, y_val)`` is scored after each epoch; ``patience`` stops when that score has not
        improved for so many epochs and restores the best weights. ``verbose=1`` shows a progress
        bar, ``0`` nothing. ``record_predictions`` keeps each epoch's prediction (one batch per epoch).
        ``weight_decay`` is scikit-learn's ``alpha``: an L2 penalty ``weight_decay / 2 * sum(W**2)``
        per sample of a batch on the weights W (not the biases). ``learning_rate_schedule``: a function
        ``epoch -> rate`` (from 1) or ``"step"``, ``"exponential"``, ``"cosine"`` (:mod:`gdxp.schedules`).
        ``callbacks`` are called as ``callback(epoch, history)`` after each epoch; one returning True
        stops the run (``history.stopped_early``). A non-finite loss stops the run with
        :class:`gdxp.TrainingDiverged`, the last weights with a finite loss restored; Ctrl-C leaves the
        weights of the last completed step. ``epochs=0`` checks everything and changes nothing.
        ``client`` (the dask backend): the ``dask.distributed`` Client whose cluster trains; None uses the
        active client, if any, else Dask's local threads.
        """
        options = training.FitOptions(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                                      shuffle=shuffle, patience=patience, verbose=verbose,
                                      record_predictions=record_predictions, weight_decay=weight_decay,
                                      learning_rate_schedule=learning_rate_schedule, callbacks=callbacks)
        if patience is not None and validation_data is None:
            raise ValueError("patience stops on the validation loss: give validation_data too")
        chosen = self._optimizer_for(optimizer)
        self._check_optimizer(chosen)  # before it is attached: a refused optimizer changes nothing
        # the data is checked and moved to the device (or the client's cluster) once, here
        with self.backend.using(client), self.backend.activate():
            inputs, targets = self.as_batch(x, y)
            validation_batch = (None if validation_data is None
                                else self.as_batch(*_pair(validation_data), names=("x_val", "y_val")))
            options.batch_size_for(inputs.shape[0])  # refused before anything changes
            if options.epochs == 0:
                return History()
            self.optimizer = chosen
            compiles = self.backend.compiler is not None and options.epochs > 0
            run = compiled.train_compiled if compiles else training.train
            return run(self, inputs, targets, validation_batch, options)

    def save(self, path: str | os.PathLike[str], *, include_optimizer: bool = False) -> None:
        """Write this network to one ``.npz`` file (atomically, no pickle); read it with :func:`gdxp.load`,
        on any backend. The file keeps the shuffling state too; ``include_optimizer`` also keeps the
        optimizer's settings and state, so that training resumed from the file equals an unbroken run."""
        validation.check_flag(include_optimizer, "include_optimizer")
        arrays = serialization.model_arrays(self.sizes, [a.name for a in self.activations], self.loss.name, self.bias,
                                            self.backend.dtype_name, self.get_weights())
        if include_optimizer:
            if self.optimizer is None:
                raise ValueError("this network has no optimizer yet (fit it first), so there is none to include")
            arrays.update(serialization.optimizer_arrays(self.optimizer, self.backend.parameters.to_numpy))
        arrays.update(serialization.shuffle_arrays(self.shuffle_rng))
        serialization.write(path, arrays)

    def trace(self, x: Any, y: Any) -> tracing.Trace:
        """Every intermediate of one forward and backward pass for one sample; see :mod:`gdxp.trace`."""
        return tracing.trace(self, x, y)

    def _check_optimizer(self, optimizer: Optimizer) -> None:
        """Refuse an optimizer whose state is not this network's: other shapes, dtype or device."""
        optimizer.check_state(self.weight_shapes())
        for slot in optimizer.state:
            for arr in slot:
                if not self.backend.parameters.holds(arr):
                    raise ValueError(f"{type(optimizer).__name__} holds state of dtype {arr.dtype} on another "
                                     f"library or device than this network's {self.backend!r}; use a new optimizer "
                                     "or load it with the network")

    def _optimizer_for(self, optimizer: str | Optimizer) -> Optimizer:
        """A name continues this network's optimizer of that name (its state too), else starts a new one."""
        if isinstance(optimizer, str) and self.optimizer is not None and self.optimizer.name == optimizer:
            return self.optimizer
        return get_optimizer(optimizer)


def load(path: str | os.PathLike[str], *, backend: str | Backend | None = None, device: Any = None,
         dtype: Any = None) -> Network:
    """Read a network saved by :meth:`Network.save`, onto ``backend``/``device`` (any, whatever it was
    saved from) with ``dtype`` (default: the saved one). A file that is not a whole gdxp model, whatever
    is wrong with it, gets a ``ValueError`` naming it; nothing in a file is ever run (no pickle)."""
    data = serialization.read(path)
    settings = serialization.architecture(data, path)
    weights = serialization.weights(data, path, settings["sizes"], settings["bias"])  # before anything is allocated
    if dtype is not None:
        settings["dtype"] = dtype
    try:  # what the constructor refuses in the file's values (a size, an activation's name, the dtype)
        net = Network(**settings, backend=backend, device=device, weights=weights)
    except (ValueError, OverflowError, MemoryError) as err:
        raise ValueError(f"{path}: {err}") from None
    with net.backend.activate():
        net.optimizer = serialization.optimizer(data, path, net.weight_shapes(), net.backend.parameters.asarray)
    shuffling = serialization.shuffle_state(data, path)
    if shuffling is not None:  # format 1 files have none: then the shuffling starts afresh
        net.shuffle_rng.bit_generator.state = shuffling
    return net


def _weight_array(backend: Backend, weight: Any, index: int) -> Array:
    """A copy of one array given to :meth:`Network.set_weights` on the device; errors say which one."""
    try:
        return backend.asarray(weight, copy=True)
    except (TypeError, ValueError) as err:
        raise type(err)(f"weight array {index}: {err}") from None


def _pair(validation_data: Any) -> tuple[Any, Any]:
    if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
        raise TypeError(f"validation_data must be a tuple (x_val, y_val), got {type(validation_data).__name__}")
    return validation_data


def _check_sizes(sizes: Any) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a list like [3, 5, 1] (inputs, hidden..., outputs), got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the inputs and the outputs, like [3, 1], got {list(sizes)}")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"sizes: every layer size must be a whole number >= 1, got {list(sizes)}")
    return tuple(int(s) for s in sizes)


def _check_memory(sizes: tuple[int, ...], bias: bool) -> None:
    """Refuse sizes whose weights could not fit in this machine's memory, before anything is allocated:
    8 bytes a weight (float64) against all of the memory there is, a generous limit."""
    count = sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    needed, available = 8 * count, _total_memory()
    if needed > available:
        gigabytes = f"{needed / 1e9:,.1f}" if needed < 10**300 else _amount(needed // 10**9)
        raise ValueError(f"sizes {_short_list(sizes)} make {_amount(count)} weights, which need {gigabytes} GB "
                         f"in float64, more than this machine's {available / 1e9:,.1f} GB of memory")


def _amount(number: int) -> str:
    """A whole number for a message: with thousands separators, or as ``1.2e400`` near and past float's
    range (whose 400 digits would say nothing, and which ``/ 1e9`` cannot divide)."""
    if number < 10**300:
        return f"{number:,}"
    digits = str(number)
    return f"{digits[0]}.{digits[1]}e{len(digits) - 1}"


def _short_list(sizes: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) if s < 10**300 else _amount(s) for s in sizes) + "]"


def _total_memory() -> int:
    """The machine's memory in bytes, or 1 TB where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 10**12


def _check_output(activation: str, n_out: int, loss: Loss) -> None:
    """Refuse an output layer and loss without an exact gradient, saying what to use instead."""
    if activation == "softmax" and n_out == 1:
        raise ValueError("a softmax over one output is always 1 and learns nothing: give 2 or more outputs, "
                         "or use output_activation='sigmoid' for one")
    loss.check_output(activation)


def _layer_activations(activation: str | Activation | Sequence[str | Activation],
                       output_activation: str | Activation | None,
                       n_hidden: int) -> tuple[Activation, ...]:
    if isinstance(activation, (bytes, bytearray)):
        raise TypeError(f"an activation is a name like 'sigmoid' (a str), got {type(activation).__name__}")
    if isinstance(activation, (str, Activation)):
        hidden = [activation] * n_hidden
        output = activation if output_activation is None else output_activation
    elif isinstance(activation, Sequence):
        hidden = list(activation)
        if len(hidden) != n_hidden:
            raise ValueError(f"activation lists one name per hidden layer ({n_hidden}), got {len(hidden)}")
        if output_activation is None:
            raise ValueError("with one activation per hidden layer, also give output_activation")
        output = output_activation
    else:
        raise TypeError(f"an activation is a name like 'sigmoid', got {type(activation).__name__}")
    output_argument = "activation" if output_activation is None else "output_activation"
    return (*(get_activation(a, hidden=True) for a in hidden),
            get_activation(output, hidden=False, argument=output_argument))
