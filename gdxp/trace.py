"""A step-by-step record of one forward and backward pass, for reading backprop like the tutorials.

``net.trace(x, y)`` runs the same engine code as training, with a recorder attached, and keeps every
named intermediate: sums of products, activations, the error, each chain-rule factor (error->prediction,
prediction->sop, sop->W, ...) and each gradient, as host NumPy arrays. ``print(trace)`` walks through them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import backprop

if TYPE_CHECKING:
    from .network import Network

__all__ = ["Trace", "TraceStep", "trace"]


@dataclass(frozen=True)
class TraceStep:
    """One named intermediate: which pass it belongs to, what it means, and its value."""

    phase: str
    name: str
    meaning: str
    value: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __str__(self) -> str:
        values = np.array2string(self.value, precision=6, max_line_width=100, threshold=60)
        values = "\n".join("      " + line for line in values.splitlines())
        return f"    {self.name:<16} shape {str(self.shape):<9} {self.meaning}\n{values}"


@dataclass(frozen=True)
class Trace:
    """All steps of one pass in order; index by position or by name (``trace["grad_W1"].value``)."""

    network: str
    steps: tuple[TraceStep, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[TraceStep]:
        return iter(self.steps)

    def __getitem__(self, key: int | str) -> TraceStep:
        if isinstance(key, str):
            for step in self.steps:
                if step.name == key:
                    return step
            raise KeyError(f"no step named {key!r}; the steps are {', '.join(self.names())}")
        return self.steps[key]

    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    def __str__(self) -> str:
        lines = [f"One forward and backward pass of {self.network}"]
        phase = None
        for step in self.steps:
            if step.phase != phase:
                phase = step.phase
                lines.append(f"  {phase} pass")
            lines.append(str(step))
        return "\n".join(lines)


def trace(net: Network, x: Any, y: Any) -> Trace:
    """Record one forward and backward pass of ``net`` on one sample ``(x, y)``; changes nothing."""
    backend, xp = net.backend, net.backend.xp
    steps: list[TraceStep] = []
    phase = "forward"

    def record(name: str, value: Any, meaning: str) -> None:
        steps.append(TraceStep(phase, name, meaning, backend.to_numpy(value).copy()))

    with backend.activate():
        inputs, targets = net._batch(x, y, check_values=True)
        if inputs.shape[0] != 1:
            raise ValueError(f"trace follows one sample, got {inputs.shape[0]}")
        output, n_layers = net.activations[-1], len(net.sizes) - 1
        record("x", inputs, "the input sample")
        activs, sop = backprop.forward(xp, net._layers, net._weights, inputs, record)
        record("prediction", activs[-1], f"activ{n_layers}, the network's output")
        record("target", targets, "the wanted output")
        loss = backprop.output_loss(xp, output, net.loss, activs[-1], sop, targets)
        record("error", loss, f"{net.loss.name}(prediction, target)")
        phase = "backward"
        delta, _ = backprop.output_delta(xp, output, net.loss, activs[-1], sop, targets, record=record,
                                         number=n_layers)
        backprop.backward(xp, net._layers, net._weights, activs, delta, record)
    return Trace(repr(net), tuple(steps))
