"""Looking up a named piece (activation, loss, initializer, optimizer) with errors that list the choices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["lookup"]

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: Any, kind: str, expected: str,
           aliases: Mapping[str, str] | None = None, *, argument: str | None = None) -> T:
    """``registry[name]`` (through ``aliases``); a TypeError saying ``expected`` for a non-string, and a
    ValueError listing every choice for an unknown name. Both say the ``argument`` it came as where that
    is not ``kind`` itself (``init`` for an initializer)."""
    given = "" if argument in (None, kind) else f" for {argument}"
    if not isinstance(name, str):
        raise TypeError(f"{expected}, got {type(name).__name__}{given}")
    aliases = aliases or {}
    key = aliases.get(name, name)
    if key not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join([*registry, *aliases])}{given}")
    return registry[key]
