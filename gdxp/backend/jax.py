"""JAX on one device, float64 only in JAX's own 64-bit mode, float32 products in full float32 precision."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._typing import Array
from .base import Backend, import_library


class JaxBackend(Backend):
    """JAX on one device: a ``jax.Device`` or ``"platform:index"`` (``"cpu:1"``, ``"gpu:0"``, the
    index-th device of that platform). float64 needs JAX's 64-bit mode, which gdxp never switches on."""

    name = "jax"
    module = "jax"
    library = "JAX"
    install = "pip install 'gdxp[jax]'"
    distributions = ("jax",)
    mutable = False  # JAX arrays never change: optimizers update them purely

    def __init__(self, device: Any = None, dtype: Any = None) -> None:
        jax = import_library(type(self))
        self._jax = jax
        super().__init__(importlib.import_module("jax.numpy"), self._find_device(device), dtype)
        self.compiler = JaxCompiler(jax, self.device)

    def _find_device(self, device: Any) -> Any:
        jax = self._jax
        if device is None:
            return jax.config.jax_default_device or jax.devices()[0]
        if isinstance(device, jax.Device):
            return device
        platform, _, index = str(device).partition(":")
        try:
            if not isinstance(device, str) or not platform:  # a number, another library's device: not JAX's
                raise ValueError
            return jax.devices(platform)[int(index or 0)]
        except (RuntimeError, ValueError, IndexError):
            raise ValueError(f"a jax device is a jax.Device or 'platform:index' like 'cpu:0' or 'gpu:0'; "
                             f"got {device!r}, and the devices here are {', '.join(self.devices())}") from None

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        jax = import_library(cls)
        return tuple(_jax_device_name(jax, d) for platform in ("gpu", "tpu", "cpu")
                     for d in _jax_platform_devices(jax, platform))

    @property
    def device_name(self) -> str:
        return _jax_device_name(self._jax, self.device)

    def to_numpy(self, arr: Array) -> np.ndarray:
        return np.asarray(self._jax.device_get(arr))

    def synchronize(self, *arrays: Array) -> None:
        """Wait until ``arrays`` are computed (JAX queues work with no device-wide wait); with none given,
        every array alive on this device."""
        jax = self._jax
        waited = arrays or [a for a in jax.live_arrays() if not a.is_deleted() and a.devices() == {self.device}]
        jax.block_until_ready(waited)

    def activate(self, *, training: bool = False) -> contextlib.AbstractContextManager[Any]:
        """This device for the arrays made inside (creation functions would otherwise use device 0), and
        :func:`full_precision` products."""
        return _on(self._jax, self.device)

    def _dtype_hint(self) -> str:
        if self.dtype_name == "float64" and not self._jax.config.jax_enable_x64:
            return (": JAX computes in float64 only in its 64-bit mode; switch it on yourself with "
                    "jax.config.update('jax_enable_x64', True) before making any array (gdxp never flips "
                    "that global switch), or use dtype='float32'")
        return ""

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._jax.Array)

    def _is_here(self, arr: Array) -> bool:
        return arr.devices() == {self.device}

    def _move(self, arr: Array) -> Array:
        return self._jax.device_put(arr, self.device)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Array:
        # a copy of our own first: on a CPU, device_put may share the memory of the array it is given (even
        # with may_alias=False), which its owner may change (a torch tensor read through DLPack, say)
        return self._jax.device_put(np.array(host, dtype=np.dtype(dtype), copy=True), self.device)


def full_precision(jax: Any) -> contextlib.AbstractContextManager[Any]:
    """Matrix products in full float32 precision where the caller chose none: on recent GPUs JAX would
    otherwise multiply float32 in TF32 (a relative error near 1e-3). A precision the caller set, globally
    or in a ``jax.default_matmul_precision`` context, stays theirs; nothing global changes."""
    if jax.config.jax_default_matmul_precision is not None:
        return contextlib.nullcontext()
    return jax.default_matmul_precision("highest")


@contextlib.contextmanager
def _on(jax: Any, device: Any) -> Iterator[None]:
    with jax.default_device(device), full_precision(jax):
        yield


def _jax_platform_devices(jax: Any, platform: str) -> list[Any]:
    try:
        return jax.devices(platform)
    except RuntimeError:  # no such platform here
        return []


def _jax_device_name(jax: Any, device: Any) -> str:
    return f"{device.platform}:{jax.devices(device.platform).index(device)}"


class JaxCompiler:
    """The :class:`~gdxp.backend.compiler.Compiler` of JAX: ``jax.jit`` compiled ahead of time on the backend's
    device with :func:`full_precision` products, ``lax.scan`` and ``lax.cond``."""

    def __init__(self, jax: Any, device: Any) -> None:
        self._jax, self._device = jax, device

    def compile(self, function: Callable[..., Any], *args: Any) -> tuple[Callable[..., Any], float]:
        start = time.perf_counter()
        with self._jax.default_device(self._device), full_precision(self._jax):
            compiled = self._jax.jit(function).lower(*args).compile()
        return compiled, time.perf_counter() - start

    def scan(self, body: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any) -> tuple[Any, Any]:
        return self._jax.lax.scan(body, carry, xs)

    def when(self, flag: Array, then: Callable[..., Any], otherwise: Callable[..., Any], *operands: Any) -> Any:
        return self._jax.lax.cond(flag, then, otherwise, *operands)
