"""The progress bar of ``fit(verbose=1)``: epochs, rate, loss and validation loss, via tqdm."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

__all__ = ["Progress"]

REFRESH_SECONDS = 0.1


class Progress:
    """A tqdm bar over epochs whose loss text is rebuilt at most every 0.1 s, so that runs of many
    tiny epochs (the tutorials' 80,000 one-sample steps) do not pay for formatting each one."""

    def __init__(self, epochs: int, verbose: int) -> None:
        self._bar = tqdm(total=epochs, unit="epoch", disable=not verbose, dynamic_ncols=True)
        self._shown = 0.0

    def update(self, loss: float, val_loss: float | None) -> None:
        """Count one epoch; show its losses if the text is due for a refresh or this is the last epoch."""
        if self._bar.disable:
            return
        now = time.monotonic()
        if self._bar.n + 1 == self._bar.total or now - self._shown >= REFRESH_SECONDS:
            self._show(loss, val_loss, now)
        self._bar.update(1)

    def update_many(self, epochs: int, loss: float, val_loss: float | None) -> None:
        """Count a run of epochs computed together, showing the last one's losses."""
        if self._bar.disable:
            return
        self._show(loss, val_loss, time.monotonic())
        self._bar.update(epochs)

    def note(self, text: str) -> None:
        """A line above the bar (such as how long compiling took), shown when the bar is."""
        if not self._bar.disable:
            self._bar.write(text, file=sys.stderr)  # where the bar is drawn, not into the program's output

    def close(self) -> None:
        self._bar.close()

    def _show(self, loss: float, val_loss: float | None, now: float) -> None:
        postfix = {"loss": f"{loss:.4g}"}
        if val_loss is not None:
            postfix["val_loss"] = f"{val_loss:.4g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._shown = now
