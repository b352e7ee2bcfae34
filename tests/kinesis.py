"""Build Lambda Kinesis events the way the event source mapping delivers them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).parent / "events"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/rag-documents"
SHARD_ID = "shardId-000000000000"
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
ARRIVAL = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


def record(payload: Any, *, seq: int, partition_key: str | None = None, arrival: float = ARRIVAL,
           raw_data: str | None = None) -> dict[str, Any]:
    """One Kinesis event record. ``payload`` is a dict (JSON-encoded) or bytes; ``raw_data`` overrides data."""
    if raw_data is None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        raw_data = base64.b64encode(data).decode()
    if partition_key is None:
        partition_key = payload.get("doc_id", "pk") if isinstance(payload, dict) else "pk"
    sequence = str(FIRST_SEQUENCE + seq)
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key, "sequenceNumber": sequence,
                    "data": raw_data, "approximateArrivalTimestamp": arrival},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{SHARD_ID}:{sequence}",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/indexer",
        "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN,
    }


def batch(*payloads: Any, start: int = 0) -> dict[str, Any]:
    """A batch of records with consecutive sequence numbers."""
    return {"Records": [record(p, seq=start + i) for i, p in enumerate(payloads)]}


def seq(n: int) -> str:
    return str(FIRST_SEQUENCE + n)
