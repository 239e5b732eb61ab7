"""A step-by-step record of one forward and backward pass, for reading backprop like the tutorials.

``net.trace(x, y)`` (:func:`trace`) runs the same engine code as training, with a recorder attached, and keeps every
named intermediate: sums of products, activations, the error, each chain-rule factor (error->prediction,
prediction->sop, sop->W, ...) and each gradient, as host NumPy arrays. ``print(trace)`` walks through them.
The engine records short terms with a layer number; :data:`TERMS` says what each is called and means.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backprop, display
from ._typing import Array
from .architecture import Architecture
from .backend import Backend

__all__ = ["TERMS", "Trace", "TraceStep", "trace"]


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

    def values(self) -> str:
        """The value as printed: six digits, long arrays summarized."""
        return np.array2string(self.value, precision=6, max_line_width=100, threshold=60)

    def __str__(self) -> str:
        values = "\n".join("      " + line for line in self.values().splitlines())
        return f"    {self.name:<16} shape {str(self.shape):<9} {self.meaning}\n{values}"


@dataclass(frozen=True)
class Trace:
    """All steps of one pass in order; index by position or by name (``trace["grad_W1"].value``). Printed, the
    steps one after the other; in a notebook, a table."""

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

    def _repr_html_(self) -> str:
        return display.table(f"One forward and backward pass of {self.network}",
                             ("pass", "name", "shape", "meaning", "value"),
                             ((step.phase, step.name, step.shape, step.meaning, step.values()) for step in self.steps),
                             preformatted=(4,))


# What each term the engine records is called and means, in the tutorials' words. {n} is the number of
# the layer the term belongs to (0: the input), {above} the layer above it, {input} what layer n takes
# in (x or activ{n-1}), {plus_bias} " + b{n}" where it has a bias, {activation} its activation's name.
TERMS: dict[str, tuple[str, str]] = {
    "x": ("x", "the input sample"),
    "sop": ("sop{n}", "sum of products: {input} @ W{n}{plus_bias}"),
    "activ": ("activ{n}", "{activation}(sop{n})"),
    "prediction": ("prediction", "activ{n}, the network's output"),
    "target": ("target", "the wanted output"),
    "error": ("error", "{loss}(prediction, target)"),
    "error_prediction": ("error->prediction", "d {loss} / d prediction"),
    "prediction_sop": ("prediction->sop{n}", "{activation}' from prediction"),
    "error_sop_output": ("error->sop{n}", "error->prediction * prediction->sop (chain rule)"),
    "error_sop_fused": ("error->sop{n}", "{activation} and {loss} cancel: (prediction - target) / n_samples"),
    "sop_W": ("sop{n}->W{n}", "d sop{n} / d W{n} = {input}"),
    "grad_W": ("grad_W{n}", "{input}.T @ error->sop{n}"),
    "grad_b": ("grad_b{n}", "sum over samples of error->sop{n}"),
    "sop_activ": ("sop{above}->activ{n}", "d sop{above} / d activ{n} = W{above}"),
    "error_activ": ("error->activ{n}", "error->sop{above} @ W{above}.T"),
    "activ_sop": ("activ{n}->sop{n}", "{activation}' from activ{n}"),
    "error_sop": ("error->sop{n}", "error->activ{n} * activ{n}->sop{n}"),
}


def trace(backend: Backend, architecture: Architecture, weights: Sequence[Array], inputs: Array, targets: Array,
          title: str) -> Trace:
    """Record one forward and backward pass on one sample ``(inputs, targets)`` (checked, on the device),
    with ``weights``; changes nothing. ``title`` names the network."""
    layers = architecture.layers
    steps: list[TraceStep] = []
    phase = "forward"

    def record(number: int, **terms: Any) -> None:
        nonlocal phase
        words = _words(layers, architecture.loss.name, number)
        for term, value in terms.items():
            if value is None:  # a term this network does not have (no bias, no separate derivative)
                continue
            name, meaning = TERMS[term]
            steps.append(TraceStep(phase, name.format(**words), meaning.format(**words),
                                   backend.to_numpy(value).copy()))
            if term == "error":  # the forward pass ends with the loss; the chain rule starts from it
                phase = "backward"

    if inputs.shape[0] != 1:
        raise ValueError(f"trace follows one sample, got {inputs.shape[0]} in x")
    backprop.gradients(backend.xp, layers, architecture.loss, weights, inputs, targets, record=record)
    return Trace(title, tuple(steps))


def _words(layers: Sequence[backprop.Layer], loss: str, number: int) -> dict[str, Any]:
    """What the table's placeholders stand for at layer ``number``."""
    layer = layers[number - 1] if number else None
    return {"n": number, "above": number + 1, "input": "x" if number == 1 else f"activ{number - 1}",
            "plus_bias": f" + b{number}" if layer is not None and layer.bias_index is not None else "",
            "activation": "" if layer is None else layer.activation.name, "loss": loss}
