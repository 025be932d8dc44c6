"""Atomic artifact writing: write beside the target, then rename over it.

A crash or an error never leaves a half-written file or directory behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class FileFormatError(ValueError):
    """An input file is missing, malformed or holds bad values; the message names file and problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(
        0o666 & ~_umask()
    )  # mkstemp makes it private; the result should look like open()'s
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM wait; on leaving it, the first one that arrived goes to the
    handler that was in place. For writes that only make sense together (a checkpoint's weights
    and its state): a batch system's SIGTERM between them would leave one epoch's weights with
    the previous epoch's state. Outside the main thread signals cannot be handled: nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


MARKER_FILE = (
    ".l1ad-artifact.json"  # in every directory atomic_directory writes: what kind of output it is
)


def plain_name(name: object, what: str) -> str:
    """``name`` if it is one plain path component (a run, project or signal name), else a ``ValueError``.

    A name becomes a directory under ``runs/`` or ``hls_projects/``: ``..`` or a ``/`` would write
    elsewhere, and ``''``/``.`` would make the parent itself the output and replace its siblings.
    A leading dot is l1ad's own (temporary and lock files).
    """
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a plain name (a string), got {name!r}")
    bad = [c for c in ("/", "\\", "\0") if c in name]
    if bad:
        raise ValueError(
            f"{what} must be a plain name without {' or '.join(map(repr, bad))}, got {name!r}"
        )
    if not name or name.startswith("."):
        raise ValueError(
            f"{what} must be a plain name (not empty, not starting with '.'), got {name!r}"
        )
    return name


def check_replaceable(target: str | os.PathLike[str], kind: str) -> None:
    """Raise ``ValueError`` unless ``target`` is absent, an empty directory, or an l1ad ``kind`` output.

    Never delete what l1ad did not write: an existing directory is replaced only when its
    marker file says that it is the same kind of l1ad output.
    """
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise ValueError(
            f"{target}: exists and is not a directory; refusing to replace it (choose another path)"
        )
    if not any(target.iterdir()):
        return
    marker = target / MARKER_FILE
    try:
        found = json.loads(marker.read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != kind:
        what = f"an l1ad {found!r} output" if isinstance(found, str) else "not an l1ad output"
        raise ValueError(
            f"{target}: exists and is {what}, not an l1ad {kind!r} output; refusing to replace it "
            "(choose another path, or remove it yourself)"
        )


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``target``: a second writer of the same output fails at once.

    The lock file is removed on release; a writer that locked a file already removed retries,
    so two writers never hold two different lock files of one target.
    """
    lock = target.with_name(f".{target.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(
                f"{target}: another l1ad process is writing it now (lock {lock}); wait for it or choose another name"
            ) from None
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], kind: str = "output") -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``target`` only on success.

    ``target`` must be absent, empty or an earlier l1ad ``kind`` output (:func:`check_replaceable`;
    checked on entry and again before the swap); the result carries a marker saying it is one.
    One process at a time writes a given target (a lock file beside it).
    """
    target = Path(target)
    if target.name in ("", ".", ".."):
        raise ValueError(
            f"{target}: not a directory l1ad can write (name a new or l1ad-written directory)"
        )
    check_replaceable(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target):
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        )
        tmp.chmod(
            0o777 & ~_umask()
        )  # mkdtemp makes it private; the result should look like mkdir's
        try:
            yield tmp
            write_json(tmp / MARKER_FILE, {"kind": kind})
            check_replaceable(target, kind)
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths show up in metrics; make them plain JSON
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file is a :class:`FileFormatError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, f"{what} does not exist")
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise FileFormatError(path, f"{what} is not text (binary or corrupt?)") from None
    except json.JSONDecodeError as err:
        raise FileFormatError(path, f"{what} is not valid JSON: {err}") from None


def read_json_object(path: str | os.PathLike[str], what: str = "JSON file") -> dict[str, Any]:
    """:func:`read_json` for files that must hold one JSON object (not null, a list or a number)."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise FileFormatError(path, f"{what} must hold a JSON object, got {_json_kind(data)}")
    return data


def _json_kind(value: Any) -> str:
    return {type(None): "null", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def load_tensors(
    path: str | os.PathLike[str], what: str = "weights", framework: str = "pt"
) -> dict[str, Any]:
    """Read a safetensors file (never pickle) with every tensor finite.

    A missing, truncated, empty or foreign file (a pickle in its place), or a tensor holding
    NaN or inf, is a :class:`FileFormatError` naming the file and, for bad values, the tensor.
    ``framework`` is ``"pt"`` (torch tensors) or ``"numpy"``.
    """
    import numpy as np
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, f"{what} file does not exist")
    load_file: Callable[[str], dict[str, Any]]
    if framework == "pt":
        from safetensors.torch import load_file
    else:
        from safetensors.numpy import load_file
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise FileFormatError(
            path, f"{what} file is not a readable safetensors file (truncated or corrupt?): {err}"
        ) from None
    for key, tensor in tensors.items():
        values = (
            tensor.float().numpy()
            if framework == "pt" and tensor.is_floating_point()
            else np.asarray(tensor)
        )
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            raise FileFormatError(path, f"{what} tensor {key!r} holds NaN or inf")
    return tensors
