"""The training loop: epochs of (mini-)batch descent with an optimizer, validation, early stopping,
a progress bar, and a clean stop on divergence or Ctrl-C.

The data is checked and moved to the device once. Each epoch then runs without waiting on the device
except for one read of the numbers it reports (loss, validation loss, recorded predictions).
Weights are replaced whole after each step, so whatever stops a run leaves the weights of the last
completed step; snapshots for early stopping and divergence are references, not copies.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ._typing import Array
from .history import History
from .optimizers import Optimizer, get_optimizer
from .progress import Progress
from .validation import check_positive_number, check_whole_number

if TYPE_CHECKING:
    from .network import Network

__all__ = ["TrainingDiverged", "fit"]


class TrainingDiverged(ArithmeticError):
    """The loss turned NaN or infinite; the network holds the last weights with a finite loss.

    ``epoch`` is where it happened (from 1), ``last_finite_loss`` the loss of the epoch before (None
    if the first epoch diverged), ``history`` what was recorded up to then.
    """

    def __init__(self, epoch: int, last_finite_loss: float | None, history: History) -> None:
        before = "before any finite loss" if last_finite_loss is None else f"last finite loss {last_finite_loss:.6g}"
        super().__init__(f"training diverged at epoch {epoch}: the loss is not finite ({before}); "
                         "the weights from before that epoch are restored. Try a smaller learning_rate.")
        self.epoch, self.last_finite_loss, self.history = epoch, last_finite_loss, history


def fit(net: Network, x: Any, y: Any, *, epochs: int, learning_rate: float, batch_size: int | None = None,
        optimizer: str | Optimizer = "sgd", shuffle: bool = True, validation_data: tuple[Any, Any] | None = None,
        patience: int | None = None, verbose: int = 1, record_predictions: bool = False) -> History:
    """Train ``net`` on ``(x, y)`` for ``epochs`` passes over the data; see :meth:`Network.fit`."""
    epochs = check_whole_number(epochs, "epochs", minimum=0)
    rate = check_positive_number(learning_rate, "learning_rate")
    if batch_size is not None:
        batch_size = check_whole_number(batch_size, "batch_size", minimum=1)
    if patience is not None:
        patience = check_whole_number(patience, "patience", minimum=1)
        if validation_data is None:
            raise ValueError("patience stops on the validation loss: give validation_data too")
    for flag, name in ((shuffle, "shuffle"), (record_predictions, "record_predictions")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    verbose = check_whole_number(verbose, "verbose", minimum=0)
    chosen = _choose_optimizer(net, optimizer)
    chosen.check_state(net.weight_shapes())  # before it is attached: a refused optimizer changes nothing
    backend = net.backend
    with backend.activate():
        inputs, targets = net._batch(x, y, check_values=True)
        validation = _validation_batch(net, validation_data)
        n_samples = inputs.shape[0]
        size = n_samples if batch_size is None else min(batch_size, n_samples)
        if record_predictions and size < n_samples:
            raise ValueError(f"record_predictions keeps each epoch's one forward pass, so it needs one batch per "
                             f"epoch; batch_size={batch_size} splits {n_samples} samples")
        net.optimizer = chosen
        return _train(net, chosen, inputs, targets, validation, epochs, rate, size, shuffle, patience, verbose,
                      record_predictions)


def _train(net: Network, optimizer: Optimizer, inputs: Array, targets: Array, validation: tuple[Array, Array] | None,
           epochs: int, rate: float, size: int, shuffle: bool, patience: int | None, verbose: int,
           record_predictions: bool) -> History:
    history = History()
    progress = Progress(epochs, verbose)
    best_loss, best_weights, waited = math.inf, None, 0
    previous = current = _snapshot(net, optimizer)
    one_batch = size >= inputs.shape[0]  # then the order of samples cannot change the step
    try:
        for epoch in range(1, epochs + 1):
            previous, current = current, _snapshot(net, optimizer)
            if one_batch:  # the tutorials' case, where the epoch loop's own cost shows
                loss, prediction = net._descend(inputs, targets, rate, optimizer, want_loss=True)
            else:
                loss, prediction = _epoch(net, optimizer, inputs, targets, size, shuffle, rate)
            if validation is None and not record_predictions:  # the common case: one number
                train_loss, val_loss = net.backend.to_float(loss), None
            else:
                reported = [loss]
                if validation is not None:
                    reported.append(net._loss_and_prediction(*validation)[0])
                if record_predictions:
                    reported.append(prediction)
                values = _read(net, reported)
                train_loss = float(values[0][0])
                val_loss = float(values[1][0]) if validation is not None else None
            if not (math.isfinite(train_loss) and (val_loss is None or math.isfinite(val_loss))):
                _restore_finite(net, optimizer, current, previous)
                raise TrainingDiverged(epoch, history.loss[-1] if history.loss else None, history)
            history.loss.append(train_loss)
            if val_loss is not None:
                history.val_loss.append(val_loss)
            if record_predictions:
                history.predictions.append(values[-1].reshape(tuple(prediction.shape)))
            progress.update(train_loss, val_loss)
            if patience is not None:
                if val_loss < best_loss:
                    best_loss, best_weights, history.best_epoch, waited = val_loss, net._weights, epoch, 0
                else:
                    waited += 1
                    if waited >= patience:
                        history.stopped_early = True
                        break
    finally:
        progress.close()
    if best_weights is not None:
        net._weights = best_weights
    return history


def _epoch(net: Network, optimizer: Optimizer, inputs: Array, targets: Array, size: int, shuffle: bool,
           rate: float) -> tuple[Array, Array]:
    """One pass over the data in batches of ``size`` (fewer than the samples): the mean loss over
    the samples (0-d, on the device) and the last batch's prediction."""
    n_samples = inputs.shape[0]
    if shuffle:
        xp = net.backend.xp
        order = net.backend.permutation(net._shuffle_rng, n_samples)
        inputs, targets = xp.take(inputs, order, axis=0), xp.take(targets, order, axis=0)
    total = None
    for start in range(0, n_samples, size):
        stop = min(start + size, n_samples)
        loss, prediction = net._descend(inputs[start:stop, ...], targets[start:stop, ...], rate, optimizer,
                                        want_loss=True)
        weighted = loss * (stop - start)
        total = weighted if total is None else total + weighted
    return total / n_samples, prediction


def _read(net: Network, arrays: list[Array]) -> list[np.ndarray]:
    """Device arrays to the host, flattened: the first read waits for the device once, and the
    rest are plain copies of results already computed."""
    return [net.backend.to_numpy(a).reshape(-1) for a in arrays]


def _choose_optimizer(net: Network, optimizer: str | Optimizer) -> Optimizer:
    """A name continues the network's optimizer of that name (its state too), else starts a new one."""
    if isinstance(optimizer, str) and net.optimizer is not None and net.optimizer.name == optimizer:
        return net.optimizer
    return get_optimizer(optimizer)


def _validation_batch(net: Network, validation_data: Any) -> tuple[Array, Array] | None:
    if validation_data is None:
        return None
    if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
        raise TypeError(f"validation_data must be a tuple (x_val, y_val), got {type(validation_data).__name__}")
    return net._batch(*validation_data, check_values=True)


Snapshot = tuple[Any, list[list[Array]], int]


def _snapshot(net: Network, optimizer: Optimizer) -> Snapshot:
    return net._weights, optimizer.state, optimizer.steps


def _restore_finite(net: Network, optimizer: Optimizer, *snapshots: Snapshot) -> None:
    """Put back the first snapshot whose weights are all finite (checked on the device)."""
    xp = net.backend.xp
    for weights, state, steps in snapshots:
        if all(bool(net.backend.to_numpy(xp.all(xp.isfinite(w)))) for w in weights):
            net._weights, optimizer.state, optimizer.steps = weights, state, steps
            return
