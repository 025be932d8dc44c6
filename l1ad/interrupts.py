"""SIGINT and SIGTERM stop a long command for certain, even when Python swallows the exception.

A batch system stops jobs with SIGTERM; Ctrl-C sends SIGINT. The handler raises
:class:`Interrupted`, which unwinds through the atomic writers (no partial output
stays). But an exception raised while Python runs a finalizer or a weakref callback
is printed as "Exception ignored in: ..." and dropped: a signal that arrives during
TensorFlow's import was lost that way, and ``l1ad run`` went on to finish with exit 0.
So the handler also records the signal, and the pipeline calls
:func:`raise_if_interrupted` between steps and before it renames its output into place.
Every other command gets :func:`exit_on_sigterm` (SIGINT already raises KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["Interrupted", "exit_on_sigterm", "handling_interrupts", "raise_if_interrupted"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A SIGINT/SIGTERM arrived; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {self.signal_name}")


def _handler(signum: int, frame: FrameType | None) -> None:
    first = not _received
    _received.append(signum)
    if (
        first
    ):  # later signals are only recorded, so that cleanup (closing a Dask cluster) is not cut short
        raise Interrupted(signum)


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM exit through Python (status 143), unwinding every atomic writer so that it removes
    its temporary; returns the function that restores the previous handler. Outside the main
    thread: nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _exit)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal arrived since :func:`handling_interrupts` began (even
    one whose exception was swallowed)."""
    if _received:
        raise Interrupted(_received[0])


@contextlib.contextmanager
def handling_interrupts() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM raise :class:`Interrupted` and are remembered; the previous
    handlers come back afterwards."""
    _received.clear()
    previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _received.clear()
