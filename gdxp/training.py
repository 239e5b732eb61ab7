"""The training loop: epochs of (mini-)batch gradient descent, and the History it returns.

The data is checked and moved to the device once; each epoch then runs without waiting on the
device except for one read of the epoch's loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .validation import check_positive_number, check_whole_number

if TYPE_CHECKING:
    from .network import Network

__all__ = ["History", "fit"]

Array = Any


@dataclass
class History:
    """What :func:`fit` recorded: ``loss``, the mean training loss of each epoch (before its updates)."""

    loss: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """How many epochs ran."""
        return len(self.loss)


def fit(net: Network, x: Any, y: Any, *, epochs: int, learning_rate: float, batch_size: int | None = None,
        shuffle: bool = True, verbose: int = 0) -> History:
    """Train ``net`` on ``(x, y)`` for ``epochs`` passes over the data.

    ``batch_size=None`` takes the whole data set per step (full-batch descent); ``batch_size=1`` is
    the tutorials' per-sample descent. With ``shuffle``, the batches are drawn in a new order each
    epoch from the network's seed. ``verbose=1`` prints the loss about ten times over the run.
    """
    epochs = check_whole_number(epochs, "epochs", minimum=0)
    rate = check_positive_number(learning_rate, "learning_rate")
    if batch_size is not None:
        batch_size = check_whole_number(batch_size, "batch_size", minimum=1)
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    verbose = check_whole_number(verbose, "verbose", minimum=0)
    backend = net.backend
    history = History()
    with backend.activate():
        inputs, targets = net._batch(x, y, check_values=True)
        n_samples = inputs.shape[0]
        size = n_samples if batch_size is None else min(batch_size, n_samples)
        report_every = max(1, epochs // 10)
        for epoch in range(1, epochs + 1):
            history.loss.append(backend.to_float(_epoch(net, inputs, targets, size, shuffle, rate)))
            if verbose and (epoch % report_every == 0 or epoch == epochs):
                print(f"epoch {epoch}/{epochs}  loss {history.loss[-1]:.6g}")
    return history


def _epoch(net: Network, inputs: Array, targets: Array, size: int, shuffle: bool, rate: float) -> Array:
    """One pass over the data; returns the mean loss over the samples as a 0-d device array."""
    n_samples = inputs.shape[0]
    if size >= n_samples:  # one batch: the order of samples cannot change the step
        return net._descend(inputs, targets, rate, want_loss=True)
    if shuffle:
        xp = net.backend.xp
        order = net.backend.permutation(net._shuffle_rng, n_samples)
        inputs, targets = xp.take(inputs, order, axis=0), xp.take(targets, order, axis=0)
    total = None
    for start in range(0, n_samples, size):
        stop = min(start + size, n_samples)
        loss = net._descend(inputs[start:stop, ...], targets[start:stop, ...], rate, want_loss=True)
        weighted = loss * (stop - start)
        total = weighted if total is None else total + weighted
    return total / n_samples
