"""A network's architecture as one frozen value: layer sizes, activations, loss and bias, checked once.

It is the one place that knows the shapes of the weights (:meth:`Architecture.weight_shapes`, also used
on a file's values before any network exists) and how much memory they take; the engine, the file and
the trace read it, and none of them needs a :class:`gdxp.Network`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import display, memory
from .activations import Activation, get_activation
from .backprop import Layer, layers_for
from .losses import Loss, get_loss

__all__ = ["Architecture", "Summary", "training_bytes", "weight_count", "weight_shapes"]


@dataclass(frozen=True, eq=False)
class Architecture:
    """Dense layers of ``sizes = (inputs, hidden..., outputs)``, one activation per layer (the output's
    last), a loss and whether the layers have biases. Make one with :meth:`build`, which checks the
    arguments; ``layers`` (derived) places each layer's W and b in the flat weight list."""

    sizes: tuple[int, ...]
    activations: tuple[Activation, ...]
    loss: Loss
    bias: bool
    layers: tuple[Layer, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", layers_for(self.activations, self.bias))

    @classmethod
    def build(cls, sizes: Sequence[int], activation: str | Activation | Sequence[str | Activation],
              output_activation: str | Activation | None, loss: str | Loss, bias: bool) -> Architecture:
        """The architecture these arguments of :class:`gdxp.Network` describe, every one checked, including
        that its weights could fit in this machine's memory, before anything is allocated."""
        checked = _check_sizes(sizes)
        activations = _layer_activations(activation, output_activation, len(checked) - 2)
        chosen = get_loss(loss)
        _check_output(activations[-1].name, checked[-1], chosen)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        _check_memory(checked, bias)
        return cls(checked, activations, chosen, bias)

    @property
    def output(self) -> Activation:
        """The output layer's activation."""
        return self.activations[-1]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the weight arrays, Keras order: ``[W1, b1, W2, b2, ...]`` (no ``b`` without bias)."""
        return weight_shapes(self.sizes, self.bias)

    def parameter_counts(self) -> list[int]:
        """Each layer's number of weights and biases."""
        return [n_in * n_out + (n_out if self.bias else 0) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    def summary(self, title: str) -> Summary:
        """The layers, their shapes and activations, and the parameter count, one line a layer, under ``title``."""
        counts = self.parameter_counts()
        rows = [(str(number), f"{n_in} -> {n_out}", activation.name, f"{count:,}") for number, (activation, n_in, n_out,
                count) in enumerate(zip(self.activations, self.sizes[:-1], self.sizes[1:], counts), 1)]
        return Summary(title, (*rows, ("total", "", "", f"{sum(counts):,}")))

    def key(self) -> tuple[Any, ...]:
        """What the math of this architecture is, for caches of compiled programs: the sizes, the bias and
        the activation and loss objects themselves (two objects that share a name are two keys)."""
        return (self.sizes, self.bias, *(_Same(a) for a in self.activations), _Same(self.loss))

    def describe_activations(self) -> str:
        """The activations as :class:`gdxp.Network`'s arguments would give them, for a repr."""
        names = [a.name for a in self.activations]
        hidden, output = names[:-1], names[-1]
        if len(set(hidden)) > 1 or (hidden and hidden[0] != output):
            shown = repr(hidden) if len(set(hidden)) > 1 else repr(hidden[0])
            return f"activation={shown}, output_activation={output!r}"
        return f"activation={output!r}"


class Summary(str):
    """:meth:`Architecture.summary`: the text (a ``str``, printed as it is), and a table in a notebook."""

    HEADER = ("layer", "shape", "activation", "parameters")

    def __new__(cls, title: str, rows: tuple[tuple[str, str, str, str], ...]) -> Summary:
        lines = [title, f"{cls.HEADER[0]:<7}{cls.HEADER[1]:<14}{cls.HEADER[2]:<13}{cls.HEADER[3]:>10}"]
        lines += [f"{number:<7}{shape:<14}{activation:<13}{count:>10}" for number, shape, activation, count in rows]
        text = super().__new__(cls, "\n".join(lines))
        text.title, text.rows = title, rows
        return text

    def __getnewargs__(self) -> tuple[str, tuple[tuple[str, str, str, str], ...]]:  # pickle and copy remake it
        return self.title, self.rows

    def _repr_html_(self) -> str:
        return display.table(self.title, self.HEADER, self.rows)


def weight_shapes(sizes: Sequence[int], bias: bool) -> list[tuple[int, ...]]:
    """Shapes of the weight arrays of dense layers of these ``sizes``, known before any network exists."""
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        shapes += [(n_in, n_out), (n_out,)] if bias else [(n_in, n_out)]
    return shapes


class _Same:
    """An object as a dictionary key by identity: equal only to itself, and kept alive by the key."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value


def _check_sizes(sizes: Any) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a list like [3, 5, 1] (inputs, hidden..., outputs), got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the inputs and the outputs, like [3, 1], got {list(sizes)}")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"sizes: every layer size must be a whole number >= 1, got {list(sizes)}")
    return tuple(int(s) for s in sizes)


def _check_memory(sizes: tuple[int, ...], bias: bool) -> None:
    """Refuse sizes whose weights could not be made in the memory available now, before anything is
    allocated: 8 bytes a weight (drawn in float64 on the host), and the two temporaries of the largest
    layer's draw (:mod:`gdxp.initializers`)."""
    count = weight_count(sizes, bias)
    largest = max(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    needed = 8 * (count + 2 * largest)
    room = memory.short_of(needed)
    if room is not None:
        raise ValueError(f"sizes {_short_list(sizes)} make {_amount(count)} weights, which need "
                         f"{memory.gigabytes(needed)} GB to draw in float64, more than the {memory.gigabytes(room)} "
                         f"GB of memory available on this machine now")


def training_bytes(sizes: Sequence[int], bias: bool, itemsize: int, arrays_per_weight: int, batch_rows: int) -> int:
    """The memory a training run takes beside the weights and the data: ``arrays_per_weight`` more arrays
    like the weights (gradients, optimizer state, the copies kept to fall back on), and the largest batch's
    sums of products, activations and errors, of ``itemsize`` bytes a number."""
    count = weight_count(sizes, bias)
    return itemsize * (arrays_per_weight * count + 3 * batch_rows * sum(sizes))


def weight_count(sizes: Sequence[int], bias: bool) -> int:
    """How many numbers the weights of ``sizes`` hold (the biases too, with ``bias``)."""
    return sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def _amount(number: int) -> str:
    """A whole number for a message: with thousands separators, or as ``1.2e400`` near and past float's
    range (whose 400 digits would say nothing, and which ``/ 1e9`` cannot divide)."""
    if number < 10**300:
        return f"{number:,}"
    digits = str(number)
    return f"{digits[0]}.{digits[1]}e{len(digits) - 1}"


def _short_list(sizes: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) if s < 10**300 else _amount(s) for s in sizes) + "]"


def _check_output(activation: str, n_out: int, loss: Loss) -> None:
    """Refuse an output layer and loss without an exact gradient, saying what to use instead."""
    if activation == "softmax" and n_out == 1:
        raise ValueError("a softmax over one output is always 1 and learns nothing: give 2 or more outputs, "
                         "or use output_activation='sigmoid' for one")
    loss.check_output(activation)


def _layer_activations(activation: str | Activation | Sequence[str | Activation],
                       output_activation: str | Activation | None, n_hidden: int) -> tuple[Activation, ...]:
    if isinstance(activation, (bytes, bytearray)):
        raise TypeError(f"an activation is a name like 'sigmoid' (a str), got {type(activation).__name__}")
    if isinstance(activation, (str, Activation)):
        hidden = [activation] * n_hidden
        output = activation if output_activation is None else output_activation
    elif isinstance(activation, Sequence):
        hidden = list(activation)
        if len(hidden) != n_hidden:
            raise ValueError(f"activation lists one name per hidden layer ({n_hidden}), got {len(hidden)}")
        if output_activation is None:
            raise ValueError("with one activation per hidden layer, also give output_activation")
        output = output_activation
    else:
        raise TypeError(f"an activation is a name like 'sigmoid', got {type(activation).__name__}")
    output_argument = "activation" if output_activation is None else "output_activation"
    return (*(get_activation(a, hidden=True) for a in hidden),
            get_activation(output, hidden=False, argument=output_argument))
