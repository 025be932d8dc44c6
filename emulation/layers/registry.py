"""The registries that tie nnet:: function names to graph nodes and node kinds to kernels.

A layer module registers, per ``nnet::`` function it understands, a *reader* that turns
one parsed call (``emulation.project_graph.LayerCall``) into a :class:`~emulation.graph.Node`,
with the numbers of template arguments and arguments that function takes (:data:`ARITY`,
checked before the reader runs), and per node kind a *kernel*
``(node, input mantissas, counter) -> result mantissas``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from emulation.fixed import OverflowCounter
from emulation.graph import Node

if TYPE_CHECKING:
    from emulation.project_graph import LayerCall

__all__ = ["ARITY", "KERNELS", "READERS", "Kernel", "Reader", "kernel", "reader"]

Kernel = Callable[[Node, list[np.ndarray], OverflowCounter | None], np.ndarray]
KERNELS: dict[str, Kernel] = {}
Reader = Callable[["LayerCall"], Node]
READERS: dict[str, Reader] = {}
ARITY: dict[
    str, tuple[tuple[int, ...], tuple[int, ...]]
] = {}  # function -> (template argument counts, argument counts)


def kernel(*kinds: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for kind in kinds:
            KERNELS[kind] = fn
        return fn

    return register


def reader(
    *functions: str, template_args: int | tuple[int, ...], args: int | tuple[int, ...]
) -> Callable[[Reader], Reader]:
    """Register ``fn`` for ``nnet::function<template_args...>(args...)`` (either count may be a tuple of choices)."""

    def counts(n: int | tuple[int, ...]) -> tuple[int, ...]:
        return n if isinstance(n, tuple) else (n,)

    def register(fn: Reader) -> Reader:
        for name in functions:
            READERS[name] = fn
            ARITY[name] = (counts(template_args), counts(args))
        return fn

    return register
