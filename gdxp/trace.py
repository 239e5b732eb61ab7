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
    backend = net.backend
    steps: list[TraceStep] = []
    phase = "forward"

    def record(name: str, value: Any, meaning: str) -> None:
        nonlocal phase
        steps.append(TraceStep(phase, name, meaning, backend.to_numpy(value).copy()))
        if name == "error":  # the forward pass ends with the loss; the chain rule starts from it
            phase = "backward"

    with backend.activate():
        inputs, targets = net._batch(x, y, check_values=True)
        if inputs.shape[0] != 1:
            raise ValueError(f"trace follows one sample, got {inputs.shape[0]}")
        backprop.gradients(backend.xp, net._layers, net.loss, net._weights, inputs, targets, record=record)
    return Trace(repr(net), tuple(steps))
