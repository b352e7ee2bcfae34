"""Amazon Kinesis Data Streams: putting events on the stream (the producer's ``Stream``) and reading a failed
batch's records again (redrive's ``RangeReader``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify, error_code
from rtrag.core import contract
from rtrag.core.errors import ResourceMissing
from rtrag.core.events import DocumentEvent, partition_key_of
from rtrag.workflows.produce import Receipt
from rtrag.workflows.redrive import (
    MAX_EMPTY_POLLS,
    OriginalRecord,
    check_range,
    records_expired,
)


class KinesisStream:
    """A Kinesis Data Stream as the producer sees it. The partition key is always the doc id."""

    def __init__(self, client: Any, *, stream_name: str):
        self.client = client
        self.stream_name = stream_name

    def put(self, event: DocumentEvent) -> Receipt:
        try:
            r = self.client.put_record(StreamName=self.stream_name, Data=event.to_bytes(),
                                       PartitionKey=partition_key_of(event.doc_id))
        except AWS_ERRORS as exc:
            raise self._error(exc, "PutRecord") from exc
        return Receipt(event.doc_id, r["ShardId"], r["SequenceNumber"])

    def put_batch(self, events: Sequence[DocumentEvent]) -> list[Receipt | str]:
        """One PutRecords call; per entry a Receipt, or the error code of an entry Kinesis did not take."""
        entries = [{"Data": e.to_bytes(), "PartitionKey": partition_key_of(e.doc_id)} for e in events]
        try:
            response = self.client.put_records(StreamName=self.stream_name, Records=entries)
        except AWS_ERRORS as exc:
            raise self._error(exc, "PutRecords") from exc
        return [Receipt(e.doc_id, r["ShardId"], r["SequenceNumber"]) if "SequenceNumber" in r
                else r.get("ErrorCode", "Failed") for e, r in zip(events, response["Records"])]

    def _error(self, exc: Exception, action: str) -> Exception:
        # A stream that does not exist is a wrong name or Region, never worth a retry: say which stream.
        if error_code(exc) == "ResourceNotFoundException":
            return ResourceMissing(f"Kinesis stream {self.stream_name} was not found", resource=contract.STREAM)
        return classify(exc, action=f"Kinesis {action} on {self.stream_name}")


class KinesisRangeReader:
    """Reads a batch's records again: GetShardIterator AT_SEQUENCE_NUMBER, then GetRecords up to the end."""

    def __init__(self, client: Any, *, sleep: Callable[[float], None] | None = None):
        self.client = client
        self.sleep = sleep if sleep is not None else time.sleep

    def read_range(self, stream_arn: str, shard_id: str, start: str, end: str) -> list[OriginalRecord]:
        # By name: the ARN is "arn:aws:kinesis:<region>:<account>:stream/<name>" (and moto 5.2 loses the stream
        # of an iterator obtained by ARN).
        name = stream_arn.rsplit("/", 1)[-1]
        try:
            iterator = self.client.get_shard_iterator(
                StreamName=name, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                StartingSequenceNumber=start)["ShardIterator"]
        except AWS_ERRORS as exc:
            if error_code(exc) in ("ResourceNotFoundException", "InvalidArgumentException"):
                raise records_expired(stream_arn, shard_id, start, end, error_code(exc)) from None
            raise classify(exc, action=f"Kinesis GetShardIterator on {name}") from exc
        records: list[OriginalRecord] = []
        empty = 0
        while iterator and empty < MAX_EMPTY_POLLS:
            try:
                page = self.client.get_records(ShardIterator=iterator, Limit=10_000)
            except AWS_ERRORS as exc:
                raise classify(exc, action=f"Kinesis GetRecords on {name}") from exc
            for raw in page.get("Records", []):
                if int(raw["SequenceNumber"]) > int(end):
                    return check_range(records, stream_arn, shard_id, start, end)
                arrival = raw.get("ApproximateArrivalTimestamp")
                records.append(OriginalRecord(raw["PartitionKey"], bytes(raw["Data"]), shard_id,
                                              raw["SequenceNumber"], arrival.timestamp() if arrival else 0.0))
            if records and records[-1].sequence_number == end:
                break
            if not page.get("Records"):
                if not page.get("MillisBehindLatest"):
                    break  # at the tip of the shard: there is nothing more to read
                empty += 1
                self.sleep(0.2)  # GetRecords allows 5 calls per second per shard
            iterator = page.get("NextShardIterator")
        return check_range(records, stream_arn, shard_id, start, end)
