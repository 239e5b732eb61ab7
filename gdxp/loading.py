"""Reading a network back from its file: :func:`load`, the one module that builds a
:class:`~gdxp.Network` from :mod:`gdxp.serialization`'s checked values."""

from __future__ import annotations

import os
from typing import Any

from . import serialization
from .backend import Backend
from .network import Network
from .state import Patience

__all__ = ["load"]


def load(path: str | os.PathLike[str], *, backend: str | Backend | None = None, device: Any = None,
         dtype: Any = None) -> Network:
    """Read a network saved by :meth:`Network.save`, onto ``backend``/``device`` (any, whatever it was
    saved from) with ``dtype`` (default: the saved one). A file that is not a whole gdxp model, whatever
    is wrong with it, gets a ``ValueError`` naming it; nothing in a file is ever run (no pickle)."""
    data = serialization.read(path)
    settings = serialization.architecture(data, path)
    weights = serialization.weights(data, path, settings["sizes"], settings["bias"])  # before anything is allocated
    epoch = serialization.epoch(data, path)
    if dtype is not None:
        settings["dtype"] = dtype
    try:  # what the constructor refuses in the file's values (a size, an activation's name, the dtype)
        net = Network(**settings, backend=backend, device=device, weights=weights)
    except (ValueError, OverflowError, MemoryError) as err:
        raise ValueError(f"{path}: {err}") from None
    held = net.backend.parameters
    record = serialization.patience(data, path, net.weight_shapes())
    with net.backend.activate():
        restored = serialization.optimizer(data, path, net.weight_shapes(),
                                           lambda a: held.asarray(a, copy=True))
        net.state = net.state._replace(epoch=epoch, patience=None if record is None else Patience(
            record[0], record[1], [held.asarray(w, copy=True) for w in record[3]], record[2]))
    if restored is not None:
        net.optimizer, optimizer_state, steps_taken = restored
        net.state = net.state._replace(optimizer_state=optimizer_state, steps=steps_taken)
    shuffling = serialization.shuffle_state(data, path)
    if shuffling is not None:  # format 1 files have none: then the shuffling starts afresh
        net.shuffle_rng.bit_generator.state = shuffling
    return net
