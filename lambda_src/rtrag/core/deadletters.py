"""Dead letters: a record the indexer can never index, kept whole with the reason, and the layout of the store
that holds them (the dead-letter bucket, or ``dead-letters/`` in local mode)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

INVALID_PREFIX = "invalid/"


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """One bad record. ``data`` is the record's data exactly as received (base64, as Kinesis delivers it)."""

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
    dead_lettered_at: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        """Deterministic object key: a redelivered record overwrites its own letter instead of adding one."""
        day = time.strftime("%Y/%m/%d", time.gmtime(self.approximate_arrival_timestamp))
        return f"{INVALID_PREFIX}{day}/{self.shard_id}/{self.sequence_number}.json"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
