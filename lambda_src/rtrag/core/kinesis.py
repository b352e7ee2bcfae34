"""The Lambda event record of a Kinesis record: the shape the event source mapping delivers (and the local runner
and a replay into an index build), and the parts of it the indexer uses."""

from __future__ import annotations

import base64
from typing import Any, NamedTuple


class StreamRecord(NamedTuple):
    """One record as a stream hands it to a consumer (the local stream's reads, a replay's records).
    ``arrival`` is epoch seconds (Kinesis' approximate arrival time)."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float


class KinesisRecord(NamedTuple):
    """The parts of a Lambda Kinesis event record the indexer uses. (NamedTuples, not dataclasses, on the
    indexer's import path: see ``rtrag.core.versions.Version``.)"""

    sequence_number: str
    partition_key: str
    data: str
    arrival: float
    event_source_arn: str
    event_id: str

    @classmethod
    def from_event(cls, raw: dict[str, Any]) -> KinesisRecord:
        kinesis = raw["kinesis"]
        return cls(
            sequence_number=kinesis["sequenceNumber"],
            partition_key=kinesis.get("partitionKey", ""),
            data=kinesis.get("data", ""),
            arrival=float(kinesis.get("approximateArrivalTimestamp", 0)),
            event_source_arn=raw.get("eventSourceARN", ""),
            event_id=raw.get("eventID", ""),
        )

    @property
    def order(self) -> int:
        return int(self.sequence_number)

    @property
    def shard_id(self) -> str:
        # eventID is "shardId-000000000000:<sequence number>"
        return self.event_id.split(":", 1)[0] if ":" in self.event_id else "unknown-shard"


def kinesis_event_record(record: StreamRecord, *, stream_arn: str, region: str,
                         invoke_identity_arn: str) -> dict[str, Any]:
    """One entry of ``event["Records"]`` exactly as the Lambda ESM builds it from a Kinesis record."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.partition_key,
            "sequenceNumber": record.sequence_number,
            "data": base64.b64encode(record.data).decode("ascii"),
            "approximateArrivalTimestamp": round(record.arrival, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{record.shard_id}:{record.sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": invoke_identity_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }
