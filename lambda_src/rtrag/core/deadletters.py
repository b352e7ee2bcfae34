"""Dead letters: a record the indexer can never index, kept whole with the reason, and the layout of the store
that holds them (the dead-letter bucket, or ``dead-letters/`` in local mode)."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

INVALID_PREFIX = "invalid/"


class DeadLetter(NamedTuple):
    """One bad record. ``data`` is the record's data exactly as received (base64, as Kinesis delivers it).
    Build it with keywords; ``letter._replace(...)`` makes a changed copy."""

    reason: str
    kind: str  # "invalid-event" (breaks the contract) or "unindexable" (a service rejected its content)
    sequence_number: str
    partition_key: str
    event_source_arn: str
    shard_id: str
    approximate_arrival_timestamp: float
    data: str
    doc_id: str | None = None
    error_code: str | None = None
    event_id: str | None = None
    dead_lettered_at: float | None = None  # epoch seconds; None: the time it is written (``to_json``)

    @property
    def key(self) -> str:
        """Deterministic object key: a redelivered record overwrites its own letter instead of adding one."""
        day = time.strftime("%Y/%m/%d", time.gmtime(self.approximate_arrival_timestamp))
        return f"{INVALID_PREFIX}{day}/{self.shard_id}/{self.sequence_number}.json"

    def to_json(self) -> dict[str, Any]:
        out = self._asdict()
        if self.dead_lettered_at is None:
            out["dead_lettered_at"] = time.time()
        return out
