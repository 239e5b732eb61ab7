"""The Network: a façade over an architecture, a backend and a training state."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import backprop, compiled, serialization, training, validation
from . import trace as tracing
from ._typing import Array
from .activations import Activation
from .architecture import Architecture
from .backend import Backend, get_backend
from .exclusive import Exclusive
from .history import History
from .initializers import get_initializer
from .losses import Loss
from .metrics import score
from .optimizers import SGD, Optimizer, get_optimizer
from .options import FitOptions
from .state import TrainState

__all__ = ["Network"]

_DESCENT = SGD()  # Network.step's update


class Network:
    """A fully connected network of any depth, trained by gradient descent.

    ``sizes`` is ``[inputs, hidden..., outputs]``. ``activation`` names the hidden layers' activation
    (``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"identity"``), or lists one per hidden
    layer; ``output_activation=None`` uses the hidden one, as the tutorials do (``"softmax"``, ``"exp"`` too).
    ``loss``: ``"squared_error"``, ``"half_squared_error"``, ``"mse"``, ``"binary_cross_entropy"``, ``"cross_entropy"``,
    ``"poisson"``.
    ``init``: ``"uniform"``, ``"normal"``, ``"glorot_uniform"``, ``"he_normal"``. Weights ``W`` have shape
    ``(n_in, n_out)``, so a layer computes ``activ_prev @ W + b``. ``backend=None`` reads ``GDXP_BACKEND``,
    else uses NumPy; ``seed`` fixes both the initial weights (identical on every backend) and the shuffling
    of mini-batches. ``weights`` (in :meth:`get_weights` order) start the network from those instead.

    ``architecture`` is the frozen description (:class:`gdxp.architecture.Architecture`), ``state`` what
    training changes (:class:`gdxp.state.TrainState`: weights, optimizer state, step and epoch counts),
    ``optimizer`` the settings of the last fit's optimizer, which the next fit continues.

    >>> net = Network([3, 5, 1], bias=False, init="uniform", seed=0)
    >>> history = net.fit([0.1, 0.4, 4.1], [0.2], epochs=100, learning_rate=0.1, batch_size=1, verbose=0)
    """

    def __init__(self, sizes: Sequence[int], *, activation: str | Sequence[str] = "sigmoid",
                 output_activation: str | Activation | None = None, loss: str | Loss = "squared_error",
                 bias: bool = True, init: str = "glorot_uniform", seed: int | None = None,
                 backend: str | Backend | None = None, device: Any = None, dtype: Any = None,
                 weights: Sequence[Any] | None = None) -> None:
        self.architecture = Architecture.build(sizes, activation, output_activation, loss, bias)
        self.init = init
        initializer = get_initializer(init)
        if seed is not None:
            validation.check_whole_number(seed, "seed", minimum=0)
        self.seed = seed
        self.backend = get_backend(backend, device=device, dtype=dtype)
        self._alone = Exclusive(repr(self))  # one fit or step at a time
        init_rng, self.shuffle_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.optimizer: Optimizer | None = None  # the one the last fit used; fit continues it
        layers, chosen = self.architecture.layers, self.architecture.loss
        self._gradients = {want: backprop.gradient_function(layers, chosen, want_loss=want) for want in (False, True)}
        self.state = TrainState(())
        if weights is not None:  # given (a loaded file's, say): nothing is drawn
            self.set_weights(weights)
            return
        drawn: list[Array] = []
        with self.backend.activate():
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
                drawn.append(initializer(self.backend.parameters, init_rng, n_in, n_out))
                if self.bias:
                    drawn.append(self.backend.parameters.zeros((n_out,)))
        self.state = TrainState(drawn)

    sizes = property(lambda self: self.architecture.sizes, doc="Layer sizes, inputs first.")
    activations = property(lambda self: self.architecture.activations, doc="Each layer's activation.")
    loss = property(lambda self: self.architecture.loss, doc="The loss.")
    bias = property(lambda self: self.architecture.bias, doc="Whether the layers have biases.")

    def __repr__(self) -> str:
        return (f"Network({list(self.sizes)}, {self.architecture.describe_activations()}, loss={self.loss.name!r}, "
                f"bias={self.bias}, backend={self.backend.name!r}, device={self.backend.device_name!r}, "
                f"dtype={self.backend.dtype_name!r})")

    # -- weights -----------------------------------------------------------------------------------

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the arrays of :meth:`get_weights`, in its order."""
        return self.architecture.weight_shapes()

    def get_weights(self) -> list[np.ndarray]:
        """Host NumPy copies of the weights, Keras order: ``[W1, b1, W2, b2, ...]`` (no ``b`` without bias)."""
        return [self.backend.parameters.to_numpy(w).copy() for w in self.state.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Replace every weight with a copy of the given ones (host or device arrays, in :meth:`get_weights`
        order), checking all first; the optimizer's state and the counts go on."""
        shapes = self.weight_shapes()
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a list of {len(shapes)} arrays, got {type(weights).__name__}")
        if len(weights) != len(shapes):
            raise ValueError(f"expected {len(shapes)} weight arrays with shapes {shapes}, got {len(weights)}")
        with self.backend.activate():
            arrays = validation.as_weights(self.backend.parameters, weights, shapes)
        self.state = self.state._replace(weights=arrays)

    def copy(self, *, backend: str | None = None, device: Any = None, dtype: Any = None) -> Network:
        """A copy with the same architecture, weights, shuffling state, optimizer and training state, optionally
        elsewhere: ``backend``/``dtype`` None keep this network's; ``device`` None keeps it on the same
        backend. Training the copy goes on exactly as training this network would, and changes nothing here."""
        same_backend = backend is None or backend == self.backend.name
        architecture = self.architecture
        twin = Network(self.sizes, activation=architecture.activations[:-1], output_activation=architecture.output,
                       loss=self.loss, bias=self.bias, init=self.init, seed=self.seed,
                       backend=self.backend.name if same_backend else backend,
                       device=self.backend.device if same_backend and device is None else device,
                       dtype=self.backend.dtype_name if dtype is None else dtype, weights=self.get_weights())
        twin.shuffle_rng = copy.deepcopy(self.shuffle_rng)
        twin.optimizer = copy.copy(self.optimizer)  # its settings; the state below is the twin's own
        moved = twin.backend.parameters

        def on_twin(arrays: Sequence[Array]) -> list[Array]:
            return [moved.asarray(self.backend.parameters.to_numpy(a), copy=True) for a in arrays]

        patience = self.state.patience
        with twin.backend.activate():
            twin.state = self.state._replace(
                weights=twin.state.weights, optimizer_state=[on_twin(slot) for slot in self.state.optimizer_state],
                patience=None if patience is None else patience._replace(best_weights=on_twin(patience.best_weights)))
        return twin

    def summary(self) -> str:
        """The layers, their shapes and activations, and the parameter count, one line a layer."""
        return self.architecture.summary(repr(self))

    def as_batch(self, x: Any, y: Any, *, check_values: bool = True,
                 names: tuple[str, str] = ("x", "y")) -> tuple[Array, Array]:
        """``x`` and ``y`` checked and on the network's device: :func:`gdxp.validation.as_batch`."""
        return validation.as_batch(self.backend, self.architecture, x, y, check_values=check_values, names=names)

    # -- using and training ------------------------------------------------------------------------

    def predict(self, x: Any) -> Array:
        """The network's output for ``x`` of shape ``(n_samples, n_in)`` (or ``(n_in,)`` for one
        sample, giving ``(n_out,)``), on the network's device. Nothing here waits for the device:
        host data is checked for NaN/inf before it moves, device arrays are taken as they are."""
        with self.backend.activate():
            inputs, single = validation.as_inputs(self.backend, x, self.sizes[0], check_values=False)
            activs, _ = backprop.forward(self.backend.xp, self.architecture.layers, self.state.weights, inputs)
            return activs[-1][0, :] if single else activs[-1]

    def loss_value(self, x: Any, y: Any, *, sample_weight: Any = None) -> float:
        """The loss on ``(x, y)``, averaged over the samples (weighted by ``sample_weight``, as :meth:`fit`)."""
        return self.evaluate(x, y, sample_weight=sample_weight)["loss"]

    def evaluate(self, x: Any, y: Any, *, sample_weight: Any = None) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` on ``(x, y)`` where the loss is a cross-entropy, ``{"loss": ...,
        "r2": ...}`` (scikit-learn's R², averaged over the outputs) where it is a squared error; see
        :mod:`gdxp.metrics`. Both are read from the device together; both weighted by ``sample_weight``."""
        with self.backend.activate():
            inputs, targets = self.as_batch(x, y)
            xp, shares = self.backend.xp, validation.as_shares(self.backend, self.architecture, sample_weight,
                                                                    inputs, check_values=True)
            loss, prediction = backprop.loss_and_prediction(xp, self.architecture.layers, self.loss,
                                                            self.state.weights, inputs, targets, shares)
            name, value = score(xp, self.loss, prediction, targets, shares)
            both = self.backend.to_numpy(xp.stack([xp.asarray(loss), xp.astype(value, loss.dtype)]))
            return {"loss": float(both[0]), name: float(both[1])}

    def gradients(self, x: Any, y: Any, *, sample_weight: Any = None) -> list[Array]:
        """Gradients of the loss on ``(x, y)`` (weighted by ``sample_weight``, as :meth:`fit`), in
        :meth:`get_weights` order and shapes, on the device (without waiting for it, as :meth:`predict`)."""
        with self.backend.activate():
            inputs, targets = self.as_batch(x, y, check_values=False)
            shares = validation.as_shares(self.backend, self.architecture, sample_weight, inputs)
            return backprop.gradients(self.backend.xp, self.architecture.layers, self.loss, self.state.weights,
                                      inputs, targets, shares=shares)[0]

    def step(self, x: Any, y: Any, *, learning_rate: float, return_loss: bool = False, check_finite: bool = False,
             sample_weight: Any = None) -> Array | None:
        """One gradient-descent step on this batch: ``W -= learning_rate * grad`` for every weight,
        all gradients taken at the weights from before the step.

        Returns None, or with ``return_loss`` the batch's loss before the step as a 0-d device array:
        nothing here waits for the device (on Dask, the gradients are computed, to update the weights on
        the client). Arrays already of the network's library, device, dtype and shapes are taken as they
        are; other data is checked and moved first (host data checked for NaN/inf before it moves);
        ``check_finite=True`` also scans arrays already in place, which waits for the device once.
        ``sample_weight`` weighs each sample's loss, as :meth:`fit` does.
        """
        rate = validation.check_positive_number(learning_rate, "learning_rate")
        validation.check_flag(return_loss, "return_loss")
        validation.check_flag(check_finite, "check_finite")
        backend, state = self.backend, self.state
        with self._alone, backend.activate():
            batch = None if check_finite else validation.batch_in_place(backend, self.architecture, x, y)
            inputs, targets = batch or self.as_batch(x, y, check_values=check_finite)
            weights = validation.as_sample_weight(backend, self.architecture, sample_weight, inputs,
                                                  check_values=check_finite, in_place=batch is not None)
            means = backend.settled(backend.batch_means(self._gradients[return_loss], state.weights, inputs,
                                                        targets, weights)[0])
            if weights is not None:
                means.pop()  # the batch's weight sum
            loss = means.pop() if return_loss else None
            # new arrays (the gradients' buffers) swapped in at once: an interrupted step changes nothing
            self.state = state._replace(weights=_DESCENT.update(backend.parameters.xp, state.weights, means, [],
                                                                rate, 0)[0])
            return loss

    def fit(self, x: Any, y: Any, *, epochs: int, learning_rate: float, batch_size: int | None = None,
            optimizer: str | Optimizer = "sgd", shuffle: bool = True, validation_data: tuple[Any, Any] | None = None,
            patience: int | None = None, verbose: int = 1, record_predictions: bool = False,
            weight_decay: float = 0.0, learning_rate_schedule: str | Callable[[int], float] | None = None,
            callbacks: Sequence[Callable[[int, History], Any]] = (), client: Any = None,
            sample_weight: Any = None) -> History:
        """Train by gradient descent for ``epochs`` passes over ``(x, y)``; returns a :class:`History`.

        ``batch_size=None`` takes all samples per step (full batch), ``1`` is the tutorials'
        per-sample descent; batches are reshuffled each epoch from the network's seed (``shuffle``).
        ``optimizer``: ``"sgd"``, ``"momentum"``, ``"adam"``, ``"adamw"`` or an object from
        :mod:`gdxp.optimizers`; the same name, or the same object, continues the last fit's optimizer
        state, another starts afresh. ``validation_data`` ``(x_val, y_val)`` is scored after each epoch;
        ``patience`` stops when that loss has not improved for so many epochs (counting on from the last
        fit with patience) and then restores the best weights. ``verbose=1`` shows a progress bar, ``0``
        nothing. ``record_predictions`` keeps each epoch's prediction (one batch per epoch).
        ``weight_decay`` is scikit-learn's ``alpha``: an L2 penalty ``weight_decay / 2 * sum(W**2)`` per
        sample of a batch on the weights W (not the biases). ``learning_rate_schedule``: a function
        ``epoch -> rate`` of the network's epoch (from 1 at its first epoch ever, so a run split across
        fits takes the same rates) or ``"step"``, ``"exponential"``, ``"cosine"`` (:mod:`gdxp.schedules`;
        ``"cosine"`` spans the epochs up to this fit's last). ``callbacks`` are called as
        ``callback(epoch, history)`` after each epoch, with the network holding that epoch's weights (what
        one sets with :meth:`set_weights`, training goes on from); one returning True stops the run
        (``history.stopped_early``). A loss or weights that turn NaN or infinite stop the run with
        :class:`gdxp.TrainingDiverged`, the last weights with a finite loss restored; Ctrl-C leaves the
        weights of the last completed step. ``epochs=0`` checks everything and changes nothing.
        ``client`` (the dask backend): the ``dask.distributed`` Client whose cluster trains; None uses the
        active client, if any, else Dask's local threads. ``sample_weight`` (one number >= 0 per sample, not all
        0) weighs each sample's loss as scikit-learn's MLP does: a batch's loss is ``sum(w * loss) / sum(w)``
        over its samples, and ``weight_decay`` is over ``sum(w)``; a batch whose weights sum to 0 has loss 0
        and gradients 0. The weights follow their samples through every shuffle; validation is unweighted.
        """
        options = FitOptions(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, shuffle=shuffle,
                             patience=patience, verbose=verbose, record_predictions=record_predictions,
                             weight_decay=weight_decay, learning_rate_schedule=learning_rate_schedule,
                             callbacks=callbacks, first_epoch=self.state.epoch + 1)
        if patience is not None and validation_data is None:
            raise ValueError("patience stops on the validation loss: give validation_data too")
        chosen = get_optimizer(optimizer)
        if isinstance(optimizer, str) and self.optimizer is not None and self.optimizer.name == optimizer:
            chosen = self.optimizer
        # the data is checked and moved to the device (or the client's cluster) once, here
        with self._alone, self.backend.using(client), self.backend.activate():
            inputs, targets = self.as_batch(x, y)
            weights = validation.as_sample_weight(self.backend, self.architecture, sample_weight, inputs)
            validation_batch = (None if validation_data is None
                                else self.as_batch(*validation.as_pair(validation_data), names=("x_val", "y_val")))
            rows = options.batch_size_for(inputs.shape[0])  # refused before anything changes
            training.check_room(self.backend, self.architecture, chosen,
                                chosen is not self.optimizer or not self.state.optimizer_state, rows)
            if options.epochs == 0:
                return History()
            if chosen is not self.optimizer:  # a new optimizer starts from no state
                self.optimizer, self.state = chosen, self.state._replace(optimizer_state=(), steps=0)
            runner = compiled.CompiledRunner if self.backend.compiler is not None else None
            return training.train(self, inputs, targets, validation_batch, options, runner, weights)

    def save(self, path: str | os.PathLike[str], *, include_optimizer: bool = False) -> None:
        """Write this network to one ``.npz`` file (atomically, no pickle); read it with :func:`gdxp.load`,
        on any backend. The file keeps the shuffling state and the epoch count too; ``include_optimizer``
        also keeps the optimizer's settings, state and steps and patience's record, so that training resumed
        from the file equals an unbroken run."""
        validation.check_flag(include_optimizer, "include_optimizer")
        architecture = self.architecture
        arrays = serialization.model_arrays(self.sizes, [a.name for a in architecture.activations], self.loss.name,
                                            self.bias, self.backend.dtype_name, self.get_weights(), self.state.epoch)
        if include_optimizer:
            if self.optimizer is None:
                raise ValueError("this network has no optimizer yet (fit it first), so there is none to include")
            arrays.update(serialization.optimizer_arrays(self.optimizer, self.state.optimizer_state, self.state.steps,
                                                         self.backend.parameters.to_numpy))
            if self.state.patience is not None:
                record = self.state.patience
                arrays.update(serialization.patience_arrays(record.best_loss, record.best_epoch, record.waited,
                                                            record.best_weights, self.backend.parameters.to_numpy))
        arrays.update(serialization.shuffle_arrays(self.shuffle_rng))
        serialization.write(path, arrays)

    def trace(self, x: Any, y: Any) -> tracing.Trace:
        """Every intermediate of one forward and backward pass for one sample; see :mod:`gdxp.trace`."""
        with self.backend.activate():
            inputs, targets = self.as_batch(x, y)
            return tracing.trace(self.backend, self.architecture, self.state.weights, inputs, targets, repr(self))
