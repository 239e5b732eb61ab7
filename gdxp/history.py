"""What a training run recorded, and the tutorials' figures drawn from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import display

__all__ = ["History"]

PLOT_EXTRA = "pip install 'gdxp[plot]' (or pip install matplotlib)"


@dataclass
class History:
    """Per-epoch records of :meth:`Network.fit`.

    ``loss``: the mean training loss of each epoch, over the batches as they were met (before their
    updates). ``val_loss``: the loss on ``validation_data`` after each epoch (empty without it), and
    ``val_accuracy`` its accuracy where the loss is a cross-entropy (:mod:`gdxp.metrics`).
    ``predictions``: with ``record_predictions=True``, each epoch's prediction for the training data,
    from the forward pass of that epoch's step (the tutorials printed these). ``best_epoch``: with
    ``patience``, the epoch of the best validation loss so far (the network's epoch, counted from 1 at its
    first; a stop restores its weights). ``stopped_early``: whether patience or a callback ended the run
    before ``epochs``. ``compile_seconds``: on a backend that compiles training
    (JAX), the time this fit spent compiling (0 when an earlier fit had compiled the same program).
    Printed, a few lines of what the run came to (its ``repr``, the same on one line); in a notebook, a table.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    compile_seconds: float = 0.0

    @property
    def epochs(self) -> int:
        """How many epochs ran."""
        return len(self.loss)

    def outline(self) -> list[tuple[str, str]]:
        """What the run came to, as (what, value) pairs: epochs, the loss first and last and at its least,
        the validation scores, the best epoch, an early stop, compiling."""
        if not self.loss:
            return [("epochs", "0")]
        least = int(np.argmin(self.loss))
        rows = [("epochs", f"{self.epochs:,}" + (" (stopped early)" if self.stopped_early else "")),
                ("loss", f"{self.loss[0]:.6g} -> {self.loss[-1]:.6g}"),
                ("least loss", f"{self.loss[least]:.6g} at epoch {least + 1:,} of this run")]
        if self.val_loss:
            rows.append(("validation loss", f"{self.val_loss[0]:.6g} -> {self.val_loss[-1]:.6g}"))
        if self.val_accuracy:
            rows.append(("validation accuracy", f"{self.val_accuracy[0]:.4g} -> {self.val_accuracy[-1]:.4g}"))
        if self.best_epoch is not None:
            rows.append(("best epoch", f"{self.best_epoch:,}"))
        if self.compile_seconds:
            rows.append(("compiling", f"{self.compile_seconds:.2f} s"))
        return rows

    def __str__(self) -> str:
        return "\n".join(["History"] + [f"  {what + ':':<21}{value}" for what, value in self.outline()])

    def __repr__(self) -> str:  # the outline on one line: a REPL does not print 80,000 losses
        return f"History({', '.join(f'{what}: {value}' for what, value in self.outline())})"

    def _repr_html_(self) -> str:
        return display.table("History of a training run (.plot() draws it)", ("", ""), self.outline())

    def plot(self, path: str | Path | None = None) -> Any:
        """Draw the loss per epoch (and validation loss), plus the prediction per epoch when recorded.

        Returns the matplotlib ``Figure``; with ``path``, also saves it there (PNG for ``.png``).
        Needs matplotlib, an optional extra.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(f"History.plot needs matplotlib: {PLOT_EXTRA}") from None
        panels = 2 if self.predictions else 1
        figure = Figure(figsize=(6.4 * panels, 4.4), layout="constrained")
        axes = figure.subplots(1, panels, squeeze=False)[0]
        epochs = np.arange(1, self.epochs + 1)
        axes[0].plot(epochs, self.loss, label="training loss")
        if self.val_loss:
            axes[0].plot(epochs[: len(self.val_loss)], self.val_loss, label="validation loss")
        if self.best_epoch is not None:
            axes[0].axvline(self.best_epoch, color="grey", linestyle=":", label=f"best epoch {self.best_epoch}")
        if self.loss and min(self.loss) > 0 and max(self.loss) / min(self.loss) > 100:
            axes[0].set_yscale("log")
        axes[0].set(xlabel="epoch", ylabel="loss", title="Error per epoch")
        axes[0].legend()
        if self.predictions:
            predicted = np.stack([p.reshape(-1) for p in self.predictions])
            axes[1].plot(epochs[: len(predicted)], predicted)
            axes[1].set(xlabel="epoch", ylabel="predicted output", title="Predicted output per epoch")
        if path is not None:
            figure.savefig(path)
        return figure
