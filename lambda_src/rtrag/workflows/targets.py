"""Where replayed document events go, and what a replay counts.

- ``StreamTarget``: the original bytes are put again with the doc id as partition key, through the producer's
  ``send_all`` (failed entries retried, one document's events never reordered), each event with its version
  pinned, so the indexer orders it where it was, not as a new arrival;
- ``IndexTarget``: Kinesis-shaped batches with synthetic sequence numbers in replay order go through the indexer's
  own ``BatchIndexer.process``, so validation, dead letters, ordering, staleness and the content hash that skips
  unchanged documents are exactly the Lambda's. Reported ``batchItemFailures`` are retried with backoff; if they
  keep failing the replay stops (``ReplayStopped``), and a rerun resumes there.

A line that is not a valid event is dead-lettered (``invalid/...`` like the indexer's own), never dropped. A
replay's letter is keyed by the record, not by the replay (``ReplayLetters``): a replay run again, or another
replay of the same source, finds the letter already there and adds none.
May import ``rtrag.core``, ``rtrag.indexing`` and the producer workflow.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from rtrag.core.backoff import backoff_delay
from rtrag.core.contract import DEFAULT_MAX_TS_SKEW_SECONDS
from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import InvalidEvent, UserError
from rtrag.core.events import check_not_ahead, decode_event, partition_key_of
from rtrag.core.kinesis import StreamRecord, kinesis_event_record
from rtrag.indexing.batch import BatchIndexer, BatchResult
from rtrag.indexing.ports import DeadLetterSink
from rtrag.workflows.produce import Receipt, Stream, check_sendable, send_all
from rtrag.workflows.sources import SourceRecord

# Synthetic sequence numbers: zero-padded so they sort as text and as numbers. The synthetic shard id names a
# replay's dead letters (invalid/YYYY/MM/DD/<shard>/<sequence>.json); a job sets its own.
SEQUENCE_DIGITS = 20


DEFAULT_SHARD = "reindex"


class ReplayStopped(UserError):
    """The replay cannot go on (records keep failing); the checkpoint is where a rerun resumes. ``counts`` is
    what the stopped batch did before it gave up."""

    def __init__(self, message: str, *, counts: ReplayCounts | None = None):
        super().__init__(message)
        self.counts = counts if counts is not None else ReplayCounts()


# what is counted
@dataclass
class ReplayCounts:
    """What a replay did. ``indexed`` counts documents written (upserted, retagged or deleted); ``stale`` events
    not newer than the stored version and events superseded in their batch."""

    read: int = 0
    sent: int = 0
    indexed: int = 0
    unchanged: int = 0
    stale: int = 0
    dead_lettered: int = 0
    already_dead_lettered: int = 0  # bad records whose letter (same record, same reason) was there already
    failed: int = 0
    embedding_calls: int = 0
    retried: int = 0

    def add(self, other: ReplayCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def add_batch(self, result: BatchResult) -> None:
        self.indexed += result.upserted + result.retagged + result.deleted
        self.unchanged += result.skipped_unchanged
        self.stale += result.skipped_stale + result.superseded
        self.dead_lettered += result.dead_letters
        self.embedding_calls += result.embedding_calls

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> ReplayCounts:
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in (raw or {}).items() if k in known})


# where the events go
@dataclass(frozen=True)
class RawRecord:
    """Record bytes to put again exactly as they were, in the producer's ``Stream`` interface, which keys a
    record by its ``doc_id``: here the partition key the record had."""

    doc_id: str
    data: bytes

    def to_bytes(self) -> bytes:
        return self.data


def sequence_number(ordinal: int) -> str:
    """The synthetic sequence number of the ``ordinal``-th record of a replay (1-based)."""
    return f"{ordinal:0{SEQUENCE_DIGITS}d}"


class ReplayLetters:
    """The dead-letter store as a replay writes to it. A replayed record's letter is keyed by the record itself:
    a record of a stream by its own shard and sequence number (the key the indexer gave it when the pipeline
    dead-lettered it), a line of a file or archive object by that file and its line number; not by the replay
    job, its target or its synthetic sequence numbers. Where a letter for the record with the same reason is
    stored already, none is written: ``already`` counts those. A different reason replaces the letter."""

    def __init__(self, store: DeadLetterSink):
        self.store = store
        self.already = 0
        self._records: dict[str, SourceRecord] = {}

    def expect(self, batch: Sequence[tuple[int, SourceRecord]]) -> None:
        """The batch being delivered: its synthetic sequence numbers name its records in the letters written."""
        self._records = {sequence_number(ordinal): record for ordinal, record in batch}

    def write(self, letter: DeadLetter) -> str:
        record = self._records.get(letter.sequence_number)
        if record is not None:
            letter = keyed_by_record(letter, record)
        stored = self._stored(letter.key)
        if stored is not None and stored.get("reason") == letter.reason:
            self.already += 1
            return letter.key
        return self.store.write(letter)

    def _stored(self, key: str) -> dict[str, Any] | None:
        """The letter stored under ``key``, if there is one (a store that cannot be read: never), in one lookup."""
        find = getattr(self.store, "find", None)
        return None if find is None else find(key)


def keyed_by_record(letter: DeadLetter, record: SourceRecord) -> DeadLetter:
    """``letter`` keyed by where ``record`` is (``ReplayLetters``)."""
    if record.sequence_number is not None:
        shard, sequence = record.position.unit, record.sequence_number
    else:
        origin = record.where.rsplit("#L", 1)[0]  # the file or object, without the line
        shard = f"{DEFAULT_SHARD}-{hashlib.sha256(origin.encode('utf-8')).hexdigest()[:12]}"
        offset = record.position.offset
        sequence = (f"{offset:0{SEQUENCE_DIGITS}d}" if isinstance(offset, int)
                    else str(int(hashlib.sha256(str(offset).encode("utf-8")).hexdigest()[:16], 16)))
    return letter._replace(shard_id=shard, sequence_number=sequence, event_id=f"{shard}:{sequence}",
                           approximate_arrival_timestamp=record.arrival)


def _partition_key(data: bytes, fallback: str) -> str:
    """The partition key a producer gives an event (``events.partition_key_of`` its doc id), or ``fallback`` when
    it has none."""
    try:
        return partition_key_of(decode_event(data, default_ts=0).doc_id)
    except InvalidEvent as exc:
        return exc.doc_id or fallback


class StreamTarget:
    """Puts replayed events back on the stream (a Kinesis stream or the local one)."""

    def __init__(self, stream: Stream, *, dead_letters: DeadLetterSink, description: str,
                 shard_id: str = DEFAULT_SHARD, max_attempts: int = 12,
                 sleep: Callable[[float], None] | None = None, identity: str | None = None,
                 max_ts_skew_seconds: int = DEFAULT_MAX_TS_SKEW_SECONDS, keep_receipts: bool = False):
        # More attempts than put_event's: a bulk replay can keep a shard at its write limit for a while (the
        # backoff ceiling doubles from 0.1 s to 10 s: up to about 50 s in all, half that on average).
        self.stream = stream
        self.dead_letters = ReplayLetters(dead_letters)
        self.shard_id = shard_id
        self.description = description
        self.identity = identity  # of the index the pipeline behind the stream writes, when known
        self.max_attempts = max_attempts
        self.sleep = sleep if sleep is not None else time.sleep
        # With ``keep_receipts``, where this run put each record, so that what became of them can be looked up (a
        # local replay does; an archive of millions replayed to AWS keeps no such list).
        self.keep_receipts = keep_receipts
        self.receipts: list[Receipt] = []
        self.max_ts_skew_seconds = max_ts_skew_seconds  # the indexer's, which a re-put record meets

    def deliver(self, batch: Sequence[tuple[int, SourceRecord]]) -> ReplayCounts:
        counts = ReplayCounts()
        sendable: list[RawRecord] = []
        self.dead_letters.expect(batch)
        for ordinal, record in batch:
            try:
                event = decode_event(record.data, default_ts=record.version_ts)
                # It arrives now: a ts too far ahead of that, the indexer would dead-letter.
                check_not_ahead(event, arrival=time.time(), max_skew_seconds=self.max_ts_skew_seconds)
                sendable.append(check_sendable(RawRecord(event.doc_id, record.pinned(ordinal))))  # type: ignore
            except InvalidEvent as exc:
                already = self.dead_letters.already
                write_rejected(self.dead_letters, record, sequence_number(ordinal), shard_id=self.shard_id,
                               reason=exc.reason, doc_id=exc.doc_id)
                if self.dead_letters.already > already:
                    counts.already_dead_lettered += 1
                else:
                    counts.dead_lettered += 1
        if not sendable:
            return counts
        report = send_all(self.stream, sendable, max_attempts=self.max_attempts,  # type: ignore[arg-type]
                          sleep=self.sleep)
        counts.sent, counts.retried = len(report.sent), report.retries
        if self.keep_receipts:
            self.receipts += report.sent
        if report.failed:
            counts.failed = len(report.failed)
            codes = sorted({code for _, code in report.failed})
            raise ReplayStopped(
                f"{len(report.failed)} record(s) were not accepted by the stream after {self.max_attempts} "
                f"attempts ({', '.join(codes)}); wait or raise the stream's capacity, then run the same command "
                "again: it resumes after the last complete batch", counts=counts)
        return counts


def write_rejected(dead_letters: DeadLetterSink, record: SourceRecord, sequence: str, *, shard_id: str,
                   reason: str, doc_id: str | None) -> str:
    """Dead-letter a replayed line that is not a sendable event, keyed like the indexer's letters (through
    ``ReplayLetters``: by the record, so a rerun finds it instead of adding another)."""
    return dead_letters.write(DeadLetter(
        reason=reason, kind="invalid-event", sequence_number=sequence, partition_key=doc_id or shard_id,
        event_source_arn=record.where, shard_id=shard_id, approximate_arrival_timestamp=record.arrival,
        data=base64.b64encode(record.data).decode("ascii"), doc_id=doc_id, event_id=f"{shard_id}:{sequence}"))


class IndexTarget:
    """Indexes replayed events straight into a vector index with the indexer's own batch code."""

    def __init__(self, indexer: BatchIndexer, *, description: str, shard_id: str = DEFAULT_SHARD,
                 max_attempts: int = 6, base_delay: float = 1.0, max_delay: float = 30.0,
                 sleep: Callable[[float], None] | None = None, identity: str | None = None):
        self.indexer = indexer
        # The indexer's letters go through ReplayLetters, keyed by the replayed record.
        self.letters = ReplayLetters(indexer.dead_letters)
        indexer.dead_letters = self.letters
        self.shard_id = shard_id
        self.description = description
        self.identity = identity  # of the index written, when known
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep if sleep is not None else time.sleep

    def records(self, batch: Sequence[tuple[int, SourceRecord]]) -> list[dict[str, Any]]:
        """The batch as the event source mapping would deliver it, with synthetic sequence numbers."""

        return [kinesis_event_record(
            StreamRecord(self.shard_id, sequence_number(ordinal),
                         record.partition_key or _partition_key(record.data, self.shard_id), record.pinned(ordinal),
                         record.arrival),
            stream_arn=record.where, region="reindex", invoke_identity_arn="") for ordinal, record in batch]

    def deliver(self, batch: Sequence[tuple[int, SourceRecord]]) -> ReplayCounts:
        counts = ReplayCounts()
        pending = self.records(batch)
        self.letters.expect(batch)
        for attempt in range(1, self.max_attempts + 1):
            already = self.letters.already
            result = self.indexer.process(pending)
            counts.add_batch(result)
            found = self.letters.already - already
            counts.dead_lettered -= found
            counts.already_dead_lettered += found
            if not result.failures:
                return counts
            # Only the documents that could not be written are retried: each was its document's last event in
            # the batch, and nothing later has been replayed yet, so order is kept.
            pending = [r for r in pending if r["kinesis"]["sequenceNumber"] in result.failures]
            if attempt == self.max_attempts:
                counts.failed = len(pending)
                shown = ", ".join(sorted({r["kinesis"]["partitionKey"] for r in pending})[:5])
                raise ReplayStopped(
                    f"{len(pending)} document(s) could not be written after {self.max_attempts} attempts "
                    f"({shown}); the warnings above name the cause (throttling, access, a missing index). Fix it "
                    "and run the same command again: it resumes after the last complete batch", counts=counts)
            counts.retried += len(pending)
            self.sleep(backoff_delay(attempt, base=self.base_delay, cap=self.max_delay))
        return counts


class Target(Protocol):
    description: str
    shard_id: str
    identity: str | None  # the index the replay fills, told apart from one created later under its name

    def deliver(self, batch: Sequence[tuple[int, SourceRecord]]) -> ReplayCounts: ...
