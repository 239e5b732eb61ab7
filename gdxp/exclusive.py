"""One training call at a time on a network: a second one while the first runs is refused, not queued."""

from __future__ import annotations

import threading

__all__ = ["Exclusive"]


class Exclusive:
    """A context that one caller holds at a time: entering it while another holds it (another thread's
    ``fit``, or a callback's inside a ``fit``) raises a RuntimeError naming ``owner`` at once, rather than
    letting two runs interleave updates to the same weights, where the last to finish would quietly win."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(f"{self._owner} is already training (a fit or step in another thread, or in a "
                               f"callback of its fit): train one network from one thread at a time")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
