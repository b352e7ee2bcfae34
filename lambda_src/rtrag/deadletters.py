"""Dead letters: records the indexer can never index, kept whole with the reason, for inspection and redrive."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .aws import AWS_ERRORS, classify

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


class S3DeadLetters:
    """Writes dead letters as JSON objects into the dead-letter bucket."""

    def __init__(self, client: Any, *, bucket: str):
        self.client = client
        self.bucket = bucket

    def write(self, letter: DeadLetter) -> str:
        return self.write_object(letter.key, letter.to_json())

    def write_object(self, key: str, body: dict[str, Any]) -> str:
        """Store ``body`` as JSON under ``key`` (as ``LocalDeadLetters.write_object`` does); returns the key."""
        payload = json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=payload, ContentType="application/json")
        except AWS_ERRORS as exc:
            raise classify(exc, action=f"S3 PutObject into dead-letter bucket {self.bucket}") from exc
        return key
