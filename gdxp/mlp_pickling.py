"""How an estimator pickles: its network travels as gdxp's own file (plain arrays and names: weights,
optimizer state, shuffling state) with the names of its backend and device, never as objects of an array
library, so a model trained on torch or a GPU unpickles where that library is missing, on NumPy."""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

from .backend import BackendUnavailableError
from .loading import load
from .network import Network

__all__ = ["NetworkPickling"]


class NetworkPickling:
    """``__getstate__``/``__setstate__`` for an object whose network is ``net_`` and whose solver, where it
    has one, is the network's optimizer ``_optimizer``."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: Python's default state is the instance's own __dict__
        net = state.get("net_")
        if isinstance(net, Network):
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "net.npz")
                net.save(path, include_optimizer=net.optimizer is not None)
                with open(path, "rb") as file:
                    state["net_"] = (net.backend.name, net.backend.device_name, file.read())
            state.pop("_optimizer", None)  # the network's own, which its file holds with its state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        net = state.get("net_")
        if isinstance(net, tuple):
            backend, device, data = net
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "net.npz")
                with open(path, "wb") as file:
                    file.write(data)
                try:
                    state["net_"] = load(path, backend=backend, device=device)
                except BackendUnavailableError as err:
                    warnings.warn(f"{type(self).__name__} was trained on {backend} ({device}), which cannot run "
                                  f"here ({err}); it is loaded on numpy", RuntimeWarning, stacklevel=2)
                    state["net_"] = load(path, backend="numpy")
                    state["_fit_library"] = ("numpy", "cpu")
            if state["net_"].optimizer is not None:  # the same object, so that training goes on with its state
                state["_optimizer"] = state["net_"].optimizer
        super().__setstate__(state)
