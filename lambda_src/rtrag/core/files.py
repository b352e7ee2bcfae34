"""Files written so that a reader never sees half of one: the local stores' and the replay checkpoints' way."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
