"""PyTorch on any device torch can use here."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, first_line, import_library
from .numpy import flat_pieces


class TorchBackend(Backend):
    """PyTorch on any device torch can use here (``"cpu"``, ``"cuda:1"``, a ``torch.device``)."""

    name = "torch"
    module = "torch"
    library = "PyTorch"
    install = "pip install 'gdxp[torch]'"
    distributions = ("torch",)

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        torch = import_library(type(self))
        try:
            chosen = torch.device("cpu" if device is None else device)
            if chosen.type != "cpu" and chosen.index is None:
                chosen = torch.device(chosen.type, torch.get_device_module(chosen.type).current_device())
            torch.zeros((), device=chosen)
        except (RuntimeError, TypeError, ValueError, AssertionError) as err:
            raise ValueError(f"torch cannot use device {device!r} here ({first_line(err)}); "
                             f"its devices here are {', '.join(self.devices())}") from None
        super().__init__(importlib.import_module("array_api_compat.torch"), chosen, dtype)
        self._torch = torch

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        """The CPU and each CUDA device torch can query: none where a CUDA build of torch finds no driver, or
        one too old (whose "CUDA initialization" warning or error is a fact about this machine, not a fault)."""
        torch = import_library(cls)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                gpus = range(torch.cuda.device_count()) if torch.cuda.is_available() else ()
                return ("cpu", *(f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in gpus))
        except (RuntimeError, AssertionError):
            return ("cpu",)

    def to_numpy(self, arr: Array) -> np.ndarray:
        return arr.cpu().numpy()

    def synchronize(self, *arrays: Array) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def pieces(self, *arrays: Array) -> Sequence[tuple[Array, ...]]:
        """Cache-sized pieces on the CPU (:func:`~gdxp.backend.numpy.flat_pieces`); whole arrays on a GPU,
        where each piece would be a kernel launch."""
        if self.device.type != "cpu":
            return (arrays,)
        return flat_pieces(arrays, all(a.is_contiguous() for a in arrays), arrays[0].element_size())

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._torch.Tensor)

    def _is_here(self, arr: Array) -> bool:
        # a tensor that records autograd history is not in place: it goes through _plain first
        return arr.device == self.device and not arr.requires_grad

    def _plain(self, arr: Array) -> Array:
        return arr.detach()

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        if not host.flags.writeable:  # torch would share it and warn that it cannot keep it read-only
            host = host.copy()
        return self.xp.asarray(host, dtype=dtype, device=self.device)
