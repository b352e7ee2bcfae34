"""Files written so that a reader never sees half of one, and locks that a crash never leaves held: the local
stores', the local runner's and the replay checkpoints' way."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rtrag.core.errors import ConfigError

LOCK_POLL_SECONDS = 0.02


def write_atomically(path: Path, data: bytes, *, prefix: str, suffix: str) -> None:
    """Write ``data`` to ``path`` through a scratch file of this writer's own (``prefix``...``suffix`` beside it),
    synced, then renamed over ``path``: a crash leaves the previous content or this one, and two writers never
    share a scratch file. The scratch file is removed whatever fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


class LocksUnsupported(ConfigError):
    """This system has no ``flock`` (not POSIX)."""


@contextmanager
def file_lock(path: Path, *, wait_seconds: float = 0.0) -> Iterator[bool]:
    """Hold an exclusive advisory lock (flock) on ``path`` (created if need be) for the ``with`` block: yields True
    once it is held, or False when another process or thread still holds it after ``wait_seconds``. The operating
    system releases it when its holder exits or crashes, so a dead process never keeps it. Raises
    LocksUnsupported where flock does not exist."""
    try:
        import fcntl
    except ImportError:
        raise LocksUnsupported("file locks need a POSIX system (Linux, macOS or WSL)") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(LOCK_POLL_SECONDS)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
