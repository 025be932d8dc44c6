"""The registries that tie nnet:: function names to graph nodes and node kinds to kernels.

A layer module registers, per ``nnet::`` function it understands, a *reader* that turns
one parsed call (``emulation.project_graph.LayerCall``) into a :class:`~emulation.graph.Node`,
with the numbers of template arguments and arguments that function takes (:data:`ARITY`,
checked before the reader runs), and per node kind a *kernel*
``(node, input mantissas, counter) -> result mantissas``. A name with ``<n>`` stands for a
family of generated functions (``dense_da_<n>``: ``dense_da_2``, ``dense_da_5``, ...; see
:func:`lookup`). The config struct is the last template argument unless registered otherwise
(``config=0``: the first; ``config=None``: none, every template argument is a type).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from emulation.fixed import OverflowCounter
from emulation.graph import Node

if TYPE_CHECKING:
    from emulation.project_graph import LayerCall

__all__ = [
    "ARITY",
    "CONFIG_ARG",
    "KERNELS",
    "READERS",
    "Kernel",
    "Reader",
    "kernel",
    "lookup",
    "reader",
]

Kernel = Callable[[Node, list[np.ndarray], OverflowCounter | None], np.ndarray]
KERNELS: dict[str, Kernel] = {}
Reader = Callable[["LayerCall"], Node]
READERS: dict[str, Reader] = {}
ARITY: dict[
    str, tuple[tuple[int, ...], tuple[int, ...]]
] = {}  # function -> (template argument counts, argument counts)
CONFIG_ARG: dict[str, int | None] = {}  # function -> which template argument is its config struct
_FAMILIES: dict[str, re.Pattern[str]] = {}  # "dense_da_<n>" -> its pattern


def lookup(function: str) -> str | None:
    """The registered name that reads ``nnet::function`` (itself, or its family ``name_<n>``)."""
    if function in READERS:
        return function
    return next((name for name, p in _FAMILIES.items() if p.fullmatch(function)), None)


def kernel(*kinds: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for kind in kinds:
            KERNELS[kind] = fn
        return fn

    return register


def reader(
    *functions: str,
    template_args: int | tuple[int, ...],
    args: int | tuple[int, ...],
    config: int | None = -1,
) -> Callable[[Reader], Reader]:
    """Register ``fn`` for ``nnet::function<template_args...>(args...)`` (either count may be a tuple of choices)."""

    def counts(n: int | tuple[int, ...]) -> tuple[int, ...]:
        return n if isinstance(n, tuple) else (n,)

    def register(fn: Reader) -> Reader:
        for name in functions:
            READERS[name] = fn
            ARITY[name] = (counts(template_args), counts(args))
            if "<n>" in name:
                _FAMILIES[name] = re.compile(re.escape(name).replace("<n>", r"\d+"))
            CONFIG_ARG[name] = config
        return fn

    return register
