"""Replaying archived document events (``scripts/reindex.py``): the sources they are read from, in order, the two
targets they go to, and the checkpoint that makes a replay resumable.

Sources, each a sorted list of *units* read line by line (or record by record):

- the archive bucket that Firehose fills from the stream: ``events/YYYY/MM/DD/HH/<name>.gz``, GZIP-compressed JSON
  Lines, one document event per line exactly as it was put; key order is time order, line order is arrival order
  (``errors/...`` holds Firehose's delivery errors, which are not events);
- a local directory of such files (a copy of the bucket, or of part of it);
- one JSON Lines file;
- the local stream, which keeps every record (local mode's archive).

Targets:

- the stream: the original bytes are put again with the doc id as partition key, through the producer's
  ``send_all`` (failed entries retried, one document's events never reordered), each event with its version
  pinned (``SourceRecord.pinned``), so the indexer orders it where it was, not as a new arrival;
- a vector index: Kinesis-shaped batches with synthetic sequence numbers in replay order go through the
  indexer's own ``BatchIndexer.process``, so validation, dead letters, ordering, staleness and the content hash
  that skips unchanged documents are exactly the Lambda's. Reported ``batchItemFailures`` are retried with
  backoff; if they keep failing the replay stops, and a rerun resumes there.

A line that is not a valid event is dead-lettered (``invalid/...`` like the indexer's own), never dropped. The
checkpoint holds the position of the last record of the last fully delivered batch; a crash can deliver one batch
twice, which costs nothing in the index (unchanged documents are skipped) and puts at most one batch twice on the
stream.
"""

from __future__ import annotations

import base64
import calendar
import gzip
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import InvalidEvent, UserError
from rtrag.core.events import decode_event, pin_version
from rtrag.core.kinesis import StreamRecord, kinesis_event_record
from rtrag.indexing.batch import BatchIndexer, BatchResult
from rtrag.indexing.ports import DeadLetterSink
from rtrag.workflows.produce import Stream, check_sendable, send_all

ARCHIVE_PREFIX = "events/"
ERRORS_DIR = "errors"
GZIP_MAGIC = b"\x1f\x8b"
# Firehose's date partition in a key or path: .../YYYY/MM/DD/HH/...
_HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/")
_WHEN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}))?$")
_JOB_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# Synthetic sequence numbers: zero-padded so they sort as text and as numbers. The synthetic shard id names a
# replay's dead letters (invalid/YYYY/MM/DD/<shard>/<sequence>.json); a job sets its own.
SEQUENCE_DIGITS = 20
DEFAULT_SHARD = "reindex"

Hour = tuple[int, int, int, int]


class ReplayStopped(UserError):
    """The replay cannot go on (records keep failing); the checkpoint is where a rerun resumes. ``counts`` is
    what the stopped batch did before it gave up."""

    def __init__(self, message: str, *, counts: ReplayCounts | None = None):
        super().__init__(message)
        self.counts = counts if counts is not None else ReplayCounts()


# where the events come from
@dataclass(frozen=True)
class Position:
    """A place in a source: a unit (object key, file path, shard id) and the line number or sequence number of
    a record in it."""

    unit: str
    offset: int | str

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "offset": self.offset}

    @classmethod
    def from_json(cls, raw: Any) -> Position | None:
        if not raw:
            return None
        return cls(unit=str(raw["unit"]), offset=raw["offset"])


@dataclass(frozen=True)
class SourceRecord:
    """One archived record: its bytes exactly as they were put, where it is, and the time that stands for its
    arrival (the version of an event that has no ``ts``)."""

    position: Position
    data: bytes
    arrival: float
    where: str
    partition_key: str | None = None
    sequence_number: str | None = None  # the record's original one, where the source knows it

    def pinned(self, ordinal: int) -> bytes:
        """The record's event with its version pinned (``events.pin_version``): its original sequence number, or
        where the source does not keep one, the replay's ordinal, which is below every Kinesis sequence number:
        a replayed event never wins a tie of ``ts`` against one the stream delivered."""
        return pin_version(self.data, default_ts=int(self.arrival), seq=self.sequence_number or str(ordinal))


class Source(Protocol):
    description: str  # identifies the source in a job's name and checkpoint
    unit_label: str  # what a unit is, for progress: "objects", "files", "records"

    def units(self, start: str | None) -> list[str]: ...
    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]: ...
    def count(self) -> int | None: ...


def parse_when(text: str, *, option: str) -> tuple[int, int, int, int | None]:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH`` (UTC, as Firehose names its partitions)."""
    match = _WHEN.match(text or "")
    if match:
        year, month, day, hour = (int(g) if g is not None else None for g in match.groups())
        try:
            time.strptime(f"{year:04d}-{month:02d}-{day:02d}T{hour or 0:02d}", "%Y-%m-%dT%H")
            return year, month, day, hour  # type: ignore[return-value]
        except ValueError:
            pass
    raise UserError(f"{option} {text!r} is not a UTC date or hour: use YYYY-MM-DD or YYYY-MM-DDTHH "
                    "(for example 2026-01-31 or 2026-01-31T09)")


@dataclass(frozen=True)
class HourWindow:
    """The archive hours to replay: from ``since`` to ``until``, both included (a date alone covers its day)."""

    since: Hour | None = None
    until: Hour | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> HourWindow:
        low = high = None
        if since:
            y, m, d, h = parse_when(since, option="--since")
            low = (y, m, d, h or 0)
        if until:
            y, m, d, h = parse_when(until, option="--until")
            high = (y, m, d, 23 if h is None else h)
        if low and high and low > high:
            raise UserError(f"--since {since} is after --until {until}")
        return cls(low, high)

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def describe(self) -> str:
        show = lambda h: f"{h[0]:04d}-{h[1]:02d}-{h[2]:02d}T{h[3]:02d}" if h else ""  # noqa: E731
        return f"[{show(self.since)}..{show(self.until)}]" if self.bounded else ""

    def admits(self, hour: Hour | None) -> bool:
        if not self.bounded:
            return True
        if hour is None:
            return False  # a file outside Firehose's date layout cannot be placed in the window
        return (self.since is None or hour >= self.since) and (self.until is None or hour <= self.until)

    def past(self, hour: Hour | None) -> bool:
        return hour is not None and self.until is not None and hour > self.until


def archive_hour(key: str) -> Hour | None:
    """The hour of Firehose's date partition in a key or path, if it has one."""
    match = _HOUR_PATH.search(key)
    if not match:
        return None
    hour = tuple(int(g) for g in match.groups())
    return hour if 1 <= hour[1] <= 12 and 1 <= hour[2] <= 31 and hour[3] <= 23 else None  # type: ignore[return-value]


def hour_start(hour: Hour | None, fallback: float) -> float:
    """The first second of an archive hour: what stands for the arrival time of an archived event without ``ts``.
    Firehose names its partition by its own arrival time, which is a little later than the stream's, so the
    hour's start is the best lower bound there is: a replayed event may lose to another version from the same
    hour, but it never overwrites a newer one. (Give events a ``ts`` and their replay is exact.)"""
    if hour is None:
        return fallback
    y, m, d, h = hour
    return float(calendar.timegm((y, m, d, h, 0, 0, 0, 0, 0)))


def archive_lines(body: bytes, *, after: int | str | None, unit: str, where: str,
                  arrival: float) -> Iterator[SourceRecord]:
    """The records of one archive file (GZIP or plain JSON Lines), after line number ``after``; blank lines are
    not records."""
    if body[:2] == GZIP_MAGIC:
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise UserError(f"{where} is not a readable GZIP file ({exc}); move it out of the archive or "
                            "restore it, then rerun (the replay resumes here)") from None
    skip = int(after or 0)
    for number, line in enumerate(body.split(b"\n"), start=1):
        if number <= skip or not line.strip():
            continue
        yield SourceRecord(Position(unit, number), line, arrival, f"{where}#L{number}")


class DirectoryArchive:
    """A local copy of archive files: every file under ``root`` in path order, except Firehose's ``errors/``."""

    unit_label = "files"

    def __init__(self, root: str | Path, *, window: HourWindow = HourWindow()):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"--from-dir {root}: no such directory")
        self.window = window
        self.description = f"dir:{self.root.resolve()}{window.describe()}"
        self.outside_window = 0

    def units(self, start: str | None) -> list[str]:
        found = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts))
        found = [u for u in found if u.split("/", 1)[0] != ERRORS_DIR]
        admitted = [u for u in found if self.window.admits(archive_hour(u))]
        self.outside_window = len(found) - len(admitted)
        return [u for u in admitted if start is None or u >= start]

    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]:
        path = self.root / unit
        try:
            body, mtime = path.read_bytes(), path.stat().st_mtime
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        yield from archive_lines(body, after=after, unit=unit, where=path.resolve().as_uri(),
                                 arrival=hour_start(archive_hour(unit), mtime))

    def count(self) -> int | None:
        return None


class JsonLinesFile:
    """One JSON Lines file of document events (plain or GZIP). Events without ``ts`` get the time the job
    started as their version."""

    unit_label = "records"

    def __init__(self, path: str | Path, *, started: float):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"--from-jsonl {path}: no such file")
        self.description = f"jsonl:{self.path.resolve()}"
        self.started = started
        self._body: bytes | None = None

    def _read(self) -> bytes:
        if self._body is None:
            try:
                self._body = self.path.read_bytes()
            except OSError as exc:
                raise UserError(f"cannot read {self.path}: {exc.strerror}") from None
        return self._body

    def units(self, start: str | None) -> list[str]:
        return [self.path.name]

    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]:
        yield from archive_lines(self._read(), after=after, unit=unit, where=self.path.resolve().as_uri(),
                                 arrival=self.started)

    def count(self) -> int | None:
        return sum(1 for _ in archive_lines(self._read(), after=None, unit="", where="", arrival=0))


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


def _partition_key(data: bytes, fallback: str) -> str:
    """The doc id of an event (its partition key on the stream), or ``fallback`` when it has none."""
    try:
        return decode_event(data, default_ts=0).doc_id
    except InvalidEvent as exc:
        return exc.doc_id or fallback


class StreamTarget:
    """Puts replayed events back on the stream (a Kinesis stream or the local one)."""

    def __init__(self, stream: Stream, *, dead_letters: DeadLetterSink, description: str,
                 shard_id: str = DEFAULT_SHARD, max_attempts: int = 10,
                 sleep: Callable[[float], None] | None = None):
        # More attempts than put_event's: a bulk replay can keep a shard at its write limit for a while (the
        # backoff doubles from 0.1 s, about 50 s in all).
        self.stream = stream
        self.dead_letters = dead_letters
        self.shard_id = shard_id
        self.description = description
        self.max_attempts = max_attempts
        self.sleep = sleep if sleep is not None else time.sleep

    def deliver(self, batch: Sequence[tuple[int, SourceRecord]]) -> ReplayCounts:
        counts = ReplayCounts()
        sendable: list[RawRecord] = []
        for ordinal, record in batch:
            try:
                event = decode_event(record.data, default_ts=int(record.arrival))
                sendable.append(check_sendable(RawRecord(event.doc_id, record.pinned(ordinal))))  # type: ignore
            except InvalidEvent as exc:
                write_rejected(self.dead_letters, record, sequence_number(ordinal), shard_id=self.shard_id,
                               reason=exc.reason, doc_id=exc.doc_id)
                counts.dead_lettered += 1
        if not sendable:
            return counts
        report = send_all(self.stream, sendable, max_attempts=self.max_attempts,  # type: ignore[arg-type]
                          sleep=self.sleep)
        counts.sent, counts.retried = len(report.sent), report.retries
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
    """Dead-letter a replayed line that is not a sendable event, keyed like the indexer's letters under the
    replay's synthetic shard, so a rerun overwrites it instead of adding another."""
    return dead_letters.write(DeadLetter(
        reason=reason, kind="invalid-event", sequence_number=sequence, partition_key=doc_id or shard_id,
        event_source_arn=record.where, shard_id=shard_id, approximate_arrival_timestamp=record.arrival,
        data=base64.b64encode(record.data).decode("ascii"), doc_id=doc_id, event_id=f"{shard_id}:{sequence}"))


class IndexTarget:
    """Indexes replayed events straight into a vector index with the indexer's own batch code."""

    def __init__(self, indexer: BatchIndexer, *, description: str, shard_id: str = DEFAULT_SHARD,
                 max_attempts: int = 6, base_delay: float = 1.0, sleep: Callable[[float], None] | None = None):
        self.indexer = indexer
        self.shard_id = shard_id
        self.description = description
        self.max_attempts = max_attempts
        self.base_delay = base_delay
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
        for attempt in range(1, self.max_attempts + 1):
            result = self.indexer.process(pending)
            counts.add_batch(result)
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
            self.sleep(self.base_delay * 2 ** (attempt - 1) * (0.5 + random.random()))
        return counts


class Target(Protocol):
    description: str
    shard_id: str

    def deliver(self, batch: Sequence[tuple[int, SourceRecord]]) -> ReplayCounts: ...


# resuming
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

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "source": self.source, "target": self.target,
                "position": self.position.to_json() if self.position else None, "ordinal": self.ordinal,
                "totals": self.totals.to_json(), "started_at": self.started_at, "updated_at": self.updated_at}

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous checkpoint or this one, never half of one."""
        self.updated_at = time.time()
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.tmp")  # one job runs at a time, so one scratch file is enough
        with open(scratch, "w", encoding="utf-8") as out:
            json.dump(self.to_json(), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(job=raw["job"], source=raw["source"], target=raw["target"],
                       position=Position.from_json(raw.get("position")), ordinal=int(raw.get("ordinal", 0)),
                       totals=ReplayCounts.from_json(raw.get("totals")),
                       started_at=float(raw.get("started_at", 0)), updated_at=float(raw.get("updated_at", 0)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"checkpoint {path} is unreadable ({exc}); pass --restart to replay from the start "
                            "(it is overwritten)") from None


def job_name(source: str, target: str, *, source_kind: str, target_kind: str) -> str:
    """A stable name for replaying ``source`` into ``target``: the same command finds its own checkpoint."""
    digest = hashlib.sha256(f"{source}\n{target}".encode()).hexdigest()[:8]
    return _JOB_CHARS.sub("-", f"{source_kind}-to-{target_kind}-{digest}")


def open_checkpoint(path: Path, *, job: str, source: str, target: str, restart: bool) -> Checkpoint:
    """The job's checkpoint to resume from, or a new one (``restart``, or none yet)."""
    fresh = Checkpoint(job=job, source=source, target=target)
    if restart:
        return fresh
    found = Checkpoint.load(path)
    if found is None:
        return fresh
    if (found.source, found.target) != (source, target):
        raise UserError(f"checkpoint {path} belongs to another replay (source {found.source}, target "
                        f"{found.target}); pass another --checkpoint, or --restart to overwrite it")
    return found


class Replay:
    """Reads a source in order and delivers it to a target in batches, saving the checkpoint after each."""

    def __init__(self, source: Source, target: Target, checkpoint: Checkpoint, checkpoint_path: Path, *,
                 batch_size: int, progress: Callable[[int, int], None] = lambda done, total: None):
        self.source = source
        self.target = target
        self.checkpoint = checkpoint
        self.path = checkpoint_path
        self.batch_size = batch_size
        self.progress = progress
        self.run_counts = ReplayCounts()

    def run(self) -> ReplayCounts:
        """Replay everything after the checkpoint; returns this run's counts (the checkpoint holds the totals).
        Raises ReplayStopped when a batch keeps failing; the checkpoint then stays before that batch."""
        start = self.checkpoint.position
        units = self.source.units(start.unit if start else None)
        total = self.source.count()
        batch: list[tuple[int, SourceRecord]] = []
        for done_units, unit in enumerate(units, start=1):
            after = start.offset if start is not None and unit == start.unit else None
            for record in self.source.read(unit, after):
                batch.append((self.checkpoint.ordinal + len(batch) + 1, record))
                if len(batch) >= self.batch_size:
                    self._flush(batch, total)
                    batch = []
            if total is None:
                self.progress(done_units, len(units))
        if batch:
            self._flush(batch, total)
        if total is not None:
            self.progress(total, total)
        return self.run_counts

    def _flush(self, batch: list[tuple[int, SourceRecord]], total: int | None) -> None:
        try:
            counts = self.target.deliver(batch)
        except ReplayStopped as stop:
            self.run_counts.add(stop.counts)
            raise
        counts.read = len(batch)
        self.run_counts.add(counts)
        self.checkpoint.totals.add(counts)
        self.checkpoint.ordinal += len(batch)
        self.checkpoint.position = batch[-1][1].position
        self.checkpoint.save(self.path)
        if total is not None:
            self.progress(min(self.checkpoint.ordinal, total), total)
