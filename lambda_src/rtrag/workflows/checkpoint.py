"""What makes a replay resumable: the checkpoint of a job, saved atomically after each delivered batch.

It holds the position of the last record of the last fully delivered batch; a crash can deliver one batch twice,
which costs nothing in the index (unchanged documents are skipped) and puts at most one batch twice on the stream.

It also holds the identity of the index the replay fills (``target_id``: the index itself, or for a replay onto the
stream the index the pipeline writes): an index deleted and created again under the same name does not hold what
the checkpoint says was delivered, so a checkpoint of another index is not resumed; the replay starts over.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrag.core.errors import UserError
from rtrag.core.files import LocksUnsupported, file_lock, write_atomically
from rtrag.workflows.sources import Position
from rtrag.workflows.targets import ReplayCounts

_JOB_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class CheckpointError(UserError):
    """A checkpoint that cannot be resumed from; ``path`` is where it is. Starting again (which overwrites it) or
    choosing another path are the fixes."""

    def __init__(self, message: str, *, path: Path):
        super().__init__(message)
        self.path = path


class CheckpointUnreadable(CheckpointError):
    """The checkpoint file exists but is not a checkpoint (truncated, edited, another format)."""


class CheckpointConflict(CheckpointError):
    """The checkpoint belongs to a replay of another source or into another target."""


@dataclass
class Checkpoint:
    """A replay job's progress: the position of the last record of the last fully delivered batch, how many
    records were read up to it (the next synthetic sequence number), and the counts so far."""

    job: str
    source: str
    target: str
    position: Position | None = None
    ordinal: int = 0
    totals: ReplayCounts = field(default_factory=ReplayCounts)
    started_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    target_id: str | None = None  # the identity of the index filled (None: unknown, as in older checkpoints)
    # Where each shard of a source that keeps growing (the local stream) ended when the job started: the job covers
    # the source as it was then, not records put since (a replay onto the same stream: its own output).
    source_ends: dict[str, str] | None = None
    # Not saved: the target_id of a checkpoint found at the path and not resumed (its index is not the target).
    superseded: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "source": self.source, "target": self.target,
                "position": self.position.to_json() if self.position else None, "ordinal": self.ordinal,
                "totals": self.totals.to_json(), "started_at": self.started_at, "updated_at": self.updated_at,
                "target_id": self.target_id, "source_ends": self.source_ends}

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous checkpoint or this one, never half of one."""
        self.updated_at = time.time()
        write_atomically(path, json.dumps(self.to_json(), indent=1).encode("utf-8"), prefix=f".{path.name}.",
                         suffix=".tmp")

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(job=raw["job"], source=raw["source"], target=raw["target"],
                       position=Position.from_json(raw.get("position")), ordinal=int(raw.get("ordinal", 0)),
                       totals=ReplayCounts.from_json(raw.get("totals")),
                       started_at=float(raw.get("started_at", 0)), updated_at=float(raw.get("updated_at", 0)),
                       target_id=None if raw.get("target_id") is None else str(raw["target_id"]),
                       source_ends=_ends(raw.get("source_ends")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointUnreadable(f"checkpoint {path} is unreadable ({exc})", path=path) from None


def _ends(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("source_ends is not an object")
    return {str(shard): str(end) for shard, end in raw.items()}


def job_name(source: str, target: str, *, source_kind: str, target_kind: str) -> str:
    """A stable name for replaying ``source`` into ``target``: the same command finds its own checkpoint."""
    digest = hashlib.sha256(f"{source}\n{target}".encode()).hexdigest()[:8]
    return _JOB_CHARS.sub("-", f"{source_kind}-to-{target_kind}-{digest}")


def open_checkpoint(path: Path, *, job: str, source: str, target: str, restart: bool,
                    target_id: str | None = None) -> Checkpoint:
    """The job's checkpoint to resume from, or a new one (``restart``, none yet, or one written while another
    index than ``target_id`` was the target: then ``superseded`` is that index's identity)."""
    fresh = Checkpoint(job=job, source=source, target=target, target_id=target_id)
    if restart:
        return fresh
    found = Checkpoint.load(path)
    if found is None:
        return fresh
    if (found.source, found.target) != (source, target):
        raise CheckpointConflict(f"checkpoint {path} belongs to another replay (source {found.source}, target "
                                 f"{found.target})", path=path)
    if target_id is not None and found.target_id is not None and found.target_id != target_id:
        fresh.superseded = found.target_id
        return fresh
    if found.target_id is None:
        found.target_id = target_id  # an older checkpoint: from now on it knows its index
    return found


@contextmanager
def job_lock(path: Path) -> Iterator[None]:
    """Hold the job of checkpoint ``path`` for this process: a second run of the same job (same checkpoint) is
    refused while the first runs, instead of both writing one checkpoint and one target. The lock is a
    ``files.file_lock`` on ``<path>.lock``, so a process that died holds nothing; where file locks do not exist,
    nothing is locked."""
    with ExitStack() as stack:
        try:
            held = stack.enter_context(file_lock(path.with_name(f"{path.name}.lock")))
        except LocksUnsupported:
            held = True
        if not held:
            raise UserError(f"this replay is already running in another process (its checkpoint {path} is in use): "
                            "wait for it to finish")
        yield
