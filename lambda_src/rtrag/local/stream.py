"""A durable, Kinesis-like stream on one machine: shards, sequence numbers, checkpoints, in one SQLite file.

What it keeps from Kinesis Data Streams, because the indexer and the runner depend on it:

- a fixed number of shards, each owning an equal range of the 128-bit hash-key space; a record goes to the shard
  whose range holds the MD5 of its partition key (so one partition key always lands on one shard, in order);
- per-shard sequence numbers: 56-digit decimal strings that increase with every record of the shard (with gaps,
  as in Kinesis) and sort numerically;
- the PutRecord / PutRecords limits (``rtrag.limits``), checked before anything is written;
- an approximate arrival timestamp per record.

What it does differently: PutRecords is all-or-nothing (there is no throttling to fail single entries), records
are kept until the directory is deleted (no 24-hour retention), and consumers keep their checkpoints in the same
file (what the Lambda event source mapping keeps for itself in AWS).

Any number of producer and consumer processes may open the same directory: SQLite in WAL mode serialises the
writers (each PutRecords is one transaction) and a busy timeout makes them wait instead of failing.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from rtrag.core.errors import ConfigError, LimitExceeded, RagError, TransientError
from rtrag.core.kinesis import StreamRecord
from rtrag.core.limits import (
    MAX_PARTITION_KEY_CHARS,
    MAX_PUT_RECORDS_BYTES,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_PUT_RECORDS,
)
from rtrag.local.schema import schema_made

DB_FILE = "stream.sqlite3"
DEFAULT_STREAM_NAME = "rag-documents"
DEFAULT_SHARD_COUNT = 2
MAX_SHARD_COUNT = 1000
# Kinesis stream names: 1..128 characters of [a-zA-Z0-9_.-] (CreateStream API reference).
_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
HASH_KEY_SPACE = 2 ** 128
LOCAL_REGION = "local"
LOCAL_ACCOUNT = "000000000000"

# Sequence number layout: "49" + 6-digit shard index + 48-digit record id = 56 digits, like Kinesis' length.
# Record ids come from one AUTOINCREMENT counter, so within a shard they only grow.
_SEQ_PREFIX = "49"
_SEQ_SHARD_DIGITS = 6
_SEQ_ID_DIGITS = 48
SEQUENCE_NUMBER_DIGITS = len(_SEQ_PREFIX) + _SEQ_SHARD_DIGITS + _SEQ_ID_DIGITS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shard INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    arrival REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_shard ON records (shard, id);
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (consumer, shard_id)
);
"""


class StreamError(RagError):
    """The local stream cannot do what was asked (wrong shard, unknown sequence number, mismatched settings)."""


class StreamLimitExceeded(StreamError, LimitExceeded):
    """A record or a PutRecords request breaks a Kinesis Data Streams limit; nothing of it was written."""


class StreamBusy(StreamError, TransientError):
    """The stream's database stayed locked by another process past the busy timeout; retry later."""


class PutRecordResult(NamedTuple):
    """Where a record landed; unpacks as ``shard_id, sequence_number``."""

    shard_id: str
    sequence_number: str


def shard_id_for_index(index: int) -> str:
    return f"shardId-{index:012d}"


def _shard_index(shard_id: str) -> int:
    match = re.fullmatch(r"shardId-(\d{12})", shard_id or "")
    if not match:
        raise StreamError(f"{shard_id!r} is not a shard id; expected the form shardId-000000000000")
    return int(match.group(1))


def hash_key(partition_key: str) -> int:
    """Kinesis' hash key of a partition key: its MD5 digest read as a 128-bit unsigned integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def starting_hash_keys(shard_count: int) -> list[int]:
    """The first hash key of each shard when the hash-key space is split into equal ranges (as CreateStream
    does: shard i starts at floor(i * 2**128 / n))."""
    return [i * HASH_KEY_SPACE // shard_count for i in range(shard_count)]


def _sequence_number(shard: int, record_id: int) -> str:
    return f"{_SEQ_PREFIX}{shard:0{_SEQ_SHARD_DIGITS}d}{record_id:0{_SEQ_ID_DIGITS}d}"


def _parse_sequence_number(sequence_number: str) -> tuple[int, int]:
    """(shard index, record id) of one of this stream's sequence numbers."""
    if (not isinstance(sequence_number, str) or len(sequence_number) != SEQUENCE_NUMBER_DIGITS
            or not sequence_number.isdigit() or not sequence_number.startswith(_SEQ_PREFIX)):
        raise StreamError(f"{sequence_number!r} is not a sequence number of a local stream")
    shard_end = len(_SEQ_PREFIX) + _SEQ_SHARD_DIGITS
    return int(sequence_number[len(_SEQ_PREFIX):shard_end]), int(sequence_number[shard_end:])


def _entry(entry: Any, position: int) -> tuple[bytes, str]:
    """(data, partition key) from a ``(data, key)`` pair or a PutRecords entry ``{"Data", "PartitionKey"}``."""
    if isinstance(entry, Mapping):
        data, key = entry.get("Data"), entry.get("PartitionKey")
    else:
        try:
            data, key = entry
        except (TypeError, ValueError):
            raise StreamError(f"record {position}: expected (data, partition_key) or "
                              "{'Data': ..., 'PartitionKey': ...}") from None
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise StreamError(f"record {position}: data must be bytes, got {type(data).__name__}; encode text as UTF-8")
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_PARTITION_KEY_CHARS:
        shown = f"{len(key)} characters" if isinstance(key, str) else type(key).__name__
        raise StreamLimitExceeded(
            f"record {position}: the partition key must be 1..{MAX_PARTITION_KEY_CHARS} characters, got {shown}")
    size = len(data) + len(key.encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        raise StreamLimitExceeded(
            f"record {position}: data plus partition key is {size} bytes; a Kinesis record holds at most "
            f"{MAX_RECORD_BYTES} (1 MiB): split the document or store it elsewhere and send a reference")
    return data, key


class LocalStream:
    """A durable local stream in ``<directory>/stream.sqlite3``.

    ``shard_count`` and ``name`` are fixed when the stream is created; opening an existing stream with different
    explicit values raises StreamError (leave them ``None`` to take what is stored). Safe to share between
    threads; open one per process.
    """

    def __init__(self, directory: str | Path, *, name: str | None = None, shard_count: int | None = None,
                 busy_timeout_seconds: float = 30.0):
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        if shard_count is not None and not 1 <= shard_count <= MAX_SHARD_COUNT:
            raise ConfigError(f"shard count {shard_count} is out of range; use 1..{MAX_SHARD_COUNT}")
        if name is not None and not _STREAM_NAME.match(name):
            raise ConfigError(f"stream name {name!r} is invalid; use 1..128 letters, digits, '_', '.' or '-'")
        self._lock = threading.RLock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_seconds, isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the local stream in {self.directory}: {exc}") from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
            self._set_wal(busy_timeout_seconds)
            # FULL: a record is on disk when put_record returns, even if the machine loses power after.
            self._db.execute("PRAGMA synchronous = FULL")
            if not self._made():  # a stream made before needs no write lock to open (a reader waits for no writer)
                with self._write():
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._db.execute(statement)
                    self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('name', ?), "
                                     "('shard_count', ?), ('created', ?)",
                                     (name or DEFAULT_STREAM_NAME, str(shard_count or DEFAULT_SHARD_COUNT),
                                      repr(time.time())))
            stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StreamError(f"{self.path} is not a readable local stream ({exc}); move it away to start "
                              "a new stream") from exc
        except BaseException:
            self._db.close()
            raise
        self.name = stored["name"]
        self.shard_count = int(stored["shard_count"])
        if name is not None and name != self.name:
            self.close()
            raise StreamError(f"{self.path} holds stream {self.name!r}, not {name!r}; use another directory")
        if shard_count is not None and shard_count != self.shard_count:
            self.close()
            raise StreamError(f"{self.path} was created with {self.shard_count} shards, not {shard_count}; the "
                              "shard count is fixed at creation (delete the directory to start over)")
        self._starts = starting_hash_keys(self.shard_count)

    def _made(self) -> bool:
        """Whether every table and index of the schema, and the stream's name, are there already."""
        if not schema_made(self._db, _SCHEMA):
            return False
        return self._db.execute("SELECT 1 FROM meta WHERE key = 'shard_count'").fetchone() is not None

    def _set_wal(self, timeout: float) -> None:
        # Switching to WAL needs a moment of exclusive access; processes opening a new stream together can meet.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking SQLite's write lock up front (no deadlock on lock upgrade)."""
        with self._lock, self._busy():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock, self._busy():
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _busy(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StreamBusy(f"local stream {self.path}: {exc} (another process kept it locked past the busy "
                             "timeout); try again") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> LocalStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # description
    def arn(self, *, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT) -> str:
        return f"arn:aws:kinesis:{region}:{account}:stream/{self.name}"

    def shard_ids(self) -> list[str]:
        return [shard_id_for_index(i) for i in range(self.shard_count)]

    def shards(self) -> list[dict[str, Any]]:
        """The shards with their hash-key ranges, shaped like Kinesis ListShards."""
        ends = [start - 1 for start in self._starts[1:]] + [HASH_KEY_SPACE - 1]
        return [{"ShardId": shard_id_for_index(i),
                 "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)}}
                for i, (start, end) in enumerate(zip(self._starts, ends))]

    def shard_for(self, partition_key: str) -> str:
        """The shard a record with ``partition_key`` goes to."""
        return shard_id_for_index(self._shard_of(partition_key))

    def _shard_of(self, partition_key: str) -> int:
        return bisect.bisect_right(self._starts, hash_key(partition_key)) - 1

    def _check_shard(self, shard_id: str) -> int:
        index = _shard_index(shard_id)
        if index >= self.shard_count:
            raise StreamError(f"stream {self.name!r} has no shard {shard_id} (it has {self.shard_count} shards)")
        return index

    # producing
    def put_record(self, data: bytes, partition_key: str) -> PutRecordResult:
        """Append one record; returns its shard and sequence number once it is durably stored."""
        return self.put_records([(data, partition_key)])[0]

    def put_records(self, entries: Sequence[Any]) -> list[PutRecordResult]:
        """Append 1..500 records (at most 5 MiB together) in one transaction, in the given order.

        Each entry is ``(data, partition_key)`` or a Kinesis PutRecords entry ``{"Data", "PartitionKey"}``.
        Every limit is checked first: on any violation nothing is written and StreamLimitExceeded names the
        entry. Returns one result per entry, in order.
        """
        if not 1 <= len(entries) <= MAX_RECORDS_PER_PUT_RECORDS:
            raise StreamLimitExceeded(f"PutRecords takes 1..{MAX_RECORDS_PER_PUT_RECORDS} records per request, "
                                      f"got {len(entries)}; split the request")
        checked = [_entry(entry, i) for i, entry in enumerate(entries)]
        total = sum(len(data) + len(key.encode("utf-8")) for data, key in checked)
        if total > MAX_PUT_RECORDS_BYTES:
            raise StreamLimitExceeded(f"PutRecords request holds {total} bytes; the limit is {MAX_PUT_RECORDS_BYTES}"
                                      " (5 MiB): split the request")
        results = []
        with self._write() as db:
            arrival = time.time()
            for data, key in checked:
                shard = self._shard_of(key)
                cursor = db.execute("INSERT INTO records (shard, partition_key, data, arrival) VALUES (?, ?, ?, ?)",
                                    (shard, key, data, arrival))
                results.append(PutRecordResult(shard_id_for_index(shard), _sequence_number(shard, cursor.lastrowid)))
        return results

    # consuming
    def read(self, shard_id: str, after_sequence: str | None = None, limit: int = 100) -> list[StreamRecord]:
        """Up to ``limit`` records of ``shard_id`` after ``after_sequence`` (from the oldest when None), in order."""
        shard = self._check_shard(shard_id)
        if limit < 1:
            raise StreamError(f"limit must be at least 1, got {limit}")
        after = self._position(shard_id, after_sequence)
        rows = self._read("SELECT id, partition_key, data, arrival FROM records WHERE shard = ? AND id > ? "
                          "ORDER BY id LIMIT ?", (shard, after, limit))
        return [StreamRecord(shard_id, _sequence_number(shard, rid), key, bytes(data), arrival)
                for rid, key, data, arrival in rows]

    def latest_sequence(self, shard_id: str) -> str | None:
        """The sequence number of the newest record of ``shard_id``, or None if it has none."""
        shard = self._check_shard(shard_id)
        [(rid,)] = self._read("SELECT MAX(id) FROM records WHERE shard = ?", (shard,))
        return None if rid is None else _sequence_number(shard, rid)

    def count(self, shard_id: str | None = None, *, until_sequence: str | None = None) -> int:
        """How many records the stream (or one shard) holds (of one shard: up to ``until_sequence``, included)."""
        if shard_id is None:
            [(n,)] = self._read("SELECT COUNT(*) FROM records")
        else:
            shard = self._check_shard(shard_id)
            last = None if until_sequence is None else self._position(shard_id, until_sequence)
            [(n,)] = self._read("SELECT COUNT(*) FROM records WHERE shard = ? AND (? IS NULL OR id <= ?)",
                                (shard, last, last))
        return n

    def _position(self, shard_id: str, sequence_number: str | None) -> int:
        if sequence_number is None:
            return 0
        shard, record_id = _parse_sequence_number(sequence_number)
        if shard_id_for_index(shard) != shard_id:
            raise StreamError(f"sequence number {sequence_number} belongs to {shard_id_for_index(shard)}, "
                              f"not {shard_id}")
        return record_id

    # checkpoints
    def get_checkpoint(self, consumer: str, shard_id: str) -> str | None:
        """The last sequence number ``consumer`` has finished with on ``shard_id`` (None: nothing yet)."""
        self._check_shard(shard_id)
        rows = self._read("SELECT sequence_number FROM checkpoints WHERE consumer = ? AND shard_id = ?",
                          (consumer, shard_id))
        return rows[0][0] if rows else None

    def checkpoints(self, consumer: str) -> dict[str, str]:
        return dict(self._read("SELECT shard_id, sequence_number FROM checkpoints WHERE consumer = ?", (consumer,)))

    def set_checkpoint(self, consumer: str, shard_id: str, sequence_number: str) -> None:
        """Record that ``consumer`` is done with ``shard_id`` up to and including ``sequence_number``.

        Checkpoints only move forward: moving one back raises StreamError (use ``reset_checkpoints`` to replay).
        """
        self._check_shard(shard_id)
        position = self._position(shard_id, sequence_number)
        with self._write() as db:
            row = db.execute("SELECT sequence_number FROM checkpoints WHERE consumer = ? AND shard_id = ?",
                             (consumer, shard_id)).fetchone()
            if row is not None and self._position(shard_id, row[0]) > position:
                raise StreamError(f"checkpoint of {consumer!r} on {shard_id} is at {row[0]}; it cannot move back "
                                  f"to {sequence_number}")
            db.execute("INSERT INTO checkpoints (consumer, shard_id, sequence_number, updated) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (consumer, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number, "
                       "updated = excluded.updated", (consumer, shard_id, sequence_number, time.time()))

    def reset_checkpoints(self, consumer: str) -> None:
        """Forget ``consumer``'s checkpoints: it reads every shard from the oldest record again."""
        with self._write() as db:
            db.execute("DELETE FROM checkpoints WHERE consumer = ?", (consumer,))
