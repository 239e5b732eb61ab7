"""The settings of one ``fit`` call, checked before anything changes: :class:`FitOptions`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .history import History
from .schedules import Schedule, named_schedule
from .validation import check_positive_number, check_whole_number

__all__ = ["MAX_EPOCHS", "FitOptions"]

MAX_EPOCHS = 2**40  # beyond any run a machine finishes; the bound keeps a huge int from overflowing later


@dataclass(frozen=True)
class FitOptions:
    """The settings of one :meth:`gdxp.Network.fit` run (see there for their meanings), checked when made.

    ``first_epoch`` is the network's epoch number (counted from 1 at its first epoch ever) that this run
    starts at: learning-rate schedules are functions of that global epoch, so a run split across ``fit``
    calls takes the rates the run in one call would. A named schedule spans the epochs up to this run's
    last. Rates are computed as their epochs come (none kept for epochs not yet run), each checked; the
    first before anything changes.
    """

    epochs: int
    learning_rate: float
    batch_size: int | None = None
    shuffle: bool = True
    patience: int | None = None
    verbose: int = 1
    record_predictions: bool = False
    weight_decay: float = 0.0
    learning_rate_schedule: str | Schedule | None = None
    callbacks: Sequence[Callable[[int, History], Any]] = ()
    first_epoch: int = 1
    schedule: Schedule | None = field(init=False)  # the rate of each (global) epoch, None for a constant rate

    def __post_init__(self) -> None:
        epochs = check_whole_number(self.epochs, "epochs", minimum=0)
        if epochs > MAX_EPOCHS:
            raise ValueError(f"epochs must be at most {MAX_EPOCHS:,}, got {_short(epochs)}")
        checked: dict[str, Any] = {"epochs": epochs,
                                   "learning_rate": check_positive_number(self.learning_rate, "learning_rate")}
        checked["weight_decay"] = _non_negative(self.weight_decay, "weight_decay")
        if isinstance(self.callbacks, (str, bytes)) or not isinstance(self.callbacks, Sequence) or not all(
                callable(c) for c in self.callbacks):
            raise TypeError(f"callbacks must be a list of functions callback(epoch, history), got {self.callbacks!r}")
        checked["callbacks"] = tuple(self.callbacks)
        if self.batch_size is not None:
            checked["batch_size"] = check_whole_number(self.batch_size, "batch_size", minimum=1)
        if self.patience is not None:
            checked["patience"] = check_whole_number(self.patience, "patience", minimum=1)
        for name in ("shuffle", "record_predictions"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        checked["verbose"] = int(self.verbose) if isinstance(self.verbose, bool) else check_whole_number(
            self.verbose, "verbose", minimum=0)
        checked["first_epoch"] = check_whole_number(self.first_epoch, "first_epoch", minimum=1)
        checked["schedule"] = _schedule(self.learning_rate_schedule, checked["learning_rate"],
                                        checked["first_epoch"] - 1 + epochs)
        for name, value in checked.items():  # plain int and float, whatever number type came in
            object.__setattr__(self, name, value)
        if epochs:
            self.rate(self.first_epoch)  # a schedule that fails at once changes nothing

    def rate(self, epoch: int) -> float:
        """The learning rate of the network's epoch ``epoch`` (counted from 1), checked."""
        if self.schedule is None:
            return self.learning_rate
        return check_positive_number(self.schedule(epoch), f"learning_rate_schedule's rate for epoch {epoch}")

    def rates(self, epoch: int, count: int) -> list[float]:
        """The learning rates of ``count`` epochs from ``epoch``."""
        return [self.rate(e) for e in range(epoch, epoch + count)]

    def batch_size_for(self, n_samples: int) -> int:
        """Samples per step for ``n_samples`` (all for ``batch_size=None``); refuses ``record_predictions``
        when that splits the data, as an epoch then has no one forward pass to record."""
        size = n_samples if self.batch_size is None else min(self.batch_size, n_samples)
        if self.record_predictions and size < n_samples:
            raise ValueError(f"record_predictions keeps each epoch's one forward pass, so it needs one batch per "
                             f"epoch; batch_size={self.batch_size} splits {n_samples} samples")
        return size


def _schedule(schedule: str | Schedule | None, rate: float, last_epoch: int) -> Schedule | None:
    if schedule is None or isinstance(schedule, str):
        return None if schedule is None else named_schedule(schedule, rate, max(1, last_epoch))
    if not callable(schedule):
        raise TypeError(f"learning_rate_schedule must be a name like 'cosine' or a function of the epoch, "
                        f"got {type(schedule).__name__}")
    return schedule


def _short(number: int) -> str:
    """A whole number for a message, its digits cut short when there are hundreds of them."""
    text = str(number)
    return text if len(text) <= 20 else f"{text[:6]}... ({len(text)} digits)"


def _non_negative(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0 (0 switches the thing off)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value) if -1e308 < value < 1e308 else math.inf  # an int past float's range is no number
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number
