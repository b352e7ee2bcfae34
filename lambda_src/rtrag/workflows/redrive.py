"""Dead letters and their redrive (``scripts/redrive.py``): what the dead-letter store holds, why each item
failed, and putting its records back on the stream once, after a fix.

The store (the dead-letter bucket, or ``dead-letters/`` in local mode) holds two kinds of items:

- ``invalid/YYYY/MM/DD/<shard>/<sequence>.json``: a record the indexer could never index (``DeadLetter``: the
  reason, the record's data as received, its partition key, shard and sequence number);
- ``aws/lambda/<ESM-UUID>/<shard>/YYYY/MM/DD/<time>-<uuid>``: the event source mapping's on-failure record for a
  batch it gave up on (retries exhausted, or records too old): ``requestContext``, ``responseContext``,
  ``KinesisBatchInfo`` (shard and sequence range) and, for an S3 destination, ``payload``: the whole invocation
  event with the records. Without a payload the records are read again from the stream, which only works while
  the stream's retention keeps them.

Redriving an item puts its records on the stream again, in their original order with their original partition
keys and each event's original version pinned in it (its ``ts``, or the original arrival time when it had none,
and its original sequence number as ``seq``), so a redriven event can never overwrite a newer one; then it writes
a marker ``redriven/<key>[.json]`` with the time and the new sequence numbers; an item with a
marker is not sent again unless forced.
"""

from __future__ import annotations

import base64
import enum
import binascii
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from rtrag.core.contract import DEFAULT_MAX_TS_SKEW_SECONDS
from rtrag.core.deadletters import INVALID_PREFIX
from rtrag.core.errors import InvalidEvent, UserError
from rtrag.core.events import decode_event, pin_version
from rtrag.core.kinesis import KinesisRecord
from rtrag.core.limits import MAX_RECORD_BYTES
from rtrag.workflows.produce import Receipt, Stream, send_all
from rtrag.workflows.targets import RawRecord

BATCH_PREFIX = "aws/lambda/"
MARKER_PREFIX = "redriven/"
KINDS = {"invalid": INVALID_PREFIX, "batch": BATCH_PREFIX}
READ_CONCURRENCY = 16
# GetRecords on a sparse shard can return empty pages before it reaches the records; bound the walk.
MAX_EMPTY_POLLS = 50


class Fix(enum.Enum):
    """What a user can do about an item that was not sent; a front end words it in its own terms (a command line
    names its flags), so this module does not."""

    FORCE = "force"  # it was redriven already: send it again anyway
    CORRECT_OR_FORCE = "correct-or-force"  # still invalid: put a corrected event, or send it again anyway
    REPLAY_FROM_ARCHIVE = "replay-from-archive"  # its records left the stream: replay them from the archive


class RecordsUnavailable(UserError):
    """An on-failure record's batch cannot be read again from the stream (expired, or the stream is gone);
    ``fix`` is what recovers it, if anything does."""

    def __init__(self, message: str, *, fix: Fix | None = None):
        super().__init__(message)
        self.fix = fix


def marker_key(key: str) -> str:
    return f"{MARKER_PREFIX}{key}" if key.endswith(".json") else f"{MARKER_PREFIX}{key}.json"


class LetterStore(Protocol):
    """The dead-letter store: ``LocalDeadLetters`` in local mode, ``S3DeadLetters`` for the bucket."""

    def list(self, prefix: str = "") -> list[str]: ...
    def read(self, key: str) -> dict[str, Any]: ...
    def write_object(self, key: str, body: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class OriginalRecord:
    """A record as it was on the stream: what redrive puts back."""

    partition_key: str
    data: bytes
    shard_id: str
    sequence_number: str
    arrival: float = 0.0  # the original approximate arrival time (epoch seconds)

    def pinned(self) -> bytes:
        """The data to put again: the event with its original version pinned (``events.pin_version``)."""
        return pin_version(self.data, default_ts=int(self.arrival), seq=self.sequence_number)

    def text(self) -> dict[str, Any]:
        """The data for a person to read: the JSON event, else UTF-8 text, else base64."""
        out: dict[str, Any] = {"partition_key": self.partition_key, "shard_id": self.shard_id,
                               "sequence_number": self.sequence_number}
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError:
            return out | {"data_base64": base64.b64encode(self.data).decode("ascii")}
        try:
            return out | {"event": json.loads(text)}
        except ValueError:
            return out | {"data": text}


def _iso_epoch(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch else "-"


@dataclass
class Letter:
    """One dead-letter item of either kind, read and summarised."""

    key: str
    kind: str  # "invalid" or "batch"
    body: dict[str, Any]
    reason: str
    detail: str  # invalid-event / unindexable, or the ESM's condition (RetryAttemptsExhausted, ...)
    shard_id: str
    sequence: str  # a sequence number, or "start..end" for a batch
    arrival: float  # approximate arrival of its (first) record: the order items are redriven in
    dead_lettered_at: float
    records: list[OriginalRecord] | None  # None: a batch whose records are not in the letter
    problem: str | None = None  # why the letter's own data cannot be put back
    marker: dict[str, Any] | None = None

    @property
    def doc_ids(self) -> list[str]:
        if self.kind == "invalid":
            return [self.body["doc_id"]] if self.body.get("doc_id") else []
        return list(dict.fromkeys(r.partition_key for r in self.records or []))

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "detail": self.detail, "reason": self.reason,
                "doc_ids": self.doc_ids, "shard_id": self.shard_id, "sequence": self.sequence,
                "records": len(self.records) if self.records is not None else self.body.get(
                    "KinesisBatchInfo", {}).get("batchSize"),
                "records_in_letter": self.records is not None,
                "arrival": iso(self.arrival), "dead_lettered_at": iso(self.dead_lettered_at),
                "redriven_at": self.marker.get("redriven_at") if self.marker else None}


def parse_letter(key: str, body: dict[str, Any]) -> Letter:
    """Read a dead-letter object of either kind. A letter whose fields have the wrong types (written by hand, or
    damaged) is listed with that problem, and cannot be sent; the others are read as usual."""
    if key.startswith(INVALID_PREFIX):
        kind, parse = "invalid", _invalid
    elif key.startswith(BATCH_PREFIX):
        kind, parse = "batch", _batch
    else:
        raise UserError(f"{key} is not a dead letter: keys start with {INVALID_PREFIX} or {BATCH_PREFIX}")
    try:
        return parse(key, body)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        return Letter(key=key, kind=kind, body=body, reason=f"malformed letter ({type(exc).__name__}: {exc})",
                      detail="malformed", shard_id="", sequence="", arrival=0.0, dead_lettered_at=0.0, records=None,
                      problem="the letter is malformed, so its records are unknown; `show` prints what it holds")


def _invalid(key: str, body: dict[str, Any]) -> Letter:
    shard, sequence = str(body.get("shard_id", "")), str(body.get("sequence_number", ""))
    arrival = float(body.get("approximate_arrival_timestamp") or 0)
    records, problem = None, None
    try:
        data = base64.b64decode(body.get("data", ""), validate=True)
        # Kinesis requires a partition key; a letter without one takes the doc id, else its sequence number.
        partition_key = str(body.get("partition_key") or body.get("doc_id") or sequence)
        records = [OriginalRecord(partition_key, data, shard, sequence, arrival)]
    except (binascii.Error, ValueError, TypeError):
        problem = "its data is not base64, so the original bytes are unknown"
    return Letter(key=key, kind="invalid", body=body, reason=str(body.get("reason", "")),
                  detail=str(body.get("kind", "")), shard_id=shard, sequence=sequence, arrival=arrival,
                  dead_lettered_at=float(body.get("dead_lettered_at") or 0), records=records, problem=problem)


def _batch(key: str, body: dict[str, Any]) -> Letter:
    info = body.get("KinesisBatchInfo") or {}
    context, response = body.get("requestContext") or {}, body.get("responseContext") or {}
    condition = str(context.get("condition", "unknown"))
    reason = condition
    if response.get("functionError"):
        reason += f"; function error: {response['functionError']}"
    diagnostics = body.get("localDiagnostics") or {}
    if diagnostics.get("error"):
        reason += f"; {diagnostics['error']}"
    return Letter(key=key, kind="batch", body=body, reason=reason, detail=condition,
                  shard_id=str(info.get("shardId", "")),
                  sequence=f"{info.get('startSequenceNumber', '?')}..{info.get('endSequenceNumber', '?')}",
                  arrival=_iso_epoch(info.get("approximateArrivalOfFirstRecord")),
                  dead_lettered_at=_iso_epoch(body.get("timestamp")), records=_payload_records(body))


def _payload_records(body: dict[str, Any]) -> list[OriginalRecord] | None:
    """The batch's records from the invocation event an S3 destination keeps, if it is there."""
    payload = body.get("payload")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, dict) or not isinstance(payload.get("Records"), list):
        return None
    records = []
    for raw in payload["Records"]:
        try:
            kinesis = KinesisRecord.from_event(raw)
            data = base64.b64decode(kinesis.data, validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            return None
        records.append(OriginalRecord(kinesis.partition_key, data, kinesis.shard_id, kinesis.sequence_number,
                                      kinesis.arrival))
    return records


class RangeReader(Protocol):
    def read_range(self, stream_arn: str, shard_id: str, start: str, end: str) -> list[OriginalRecord]: ...


def records_expired(stream_arn: str, shard_id: str, start: str, end: str, why: str) -> RecordsUnavailable:
    """The error for a batch whose records cannot be read from the stream any more."""
    return RecordsUnavailable(
        f"the batch {shard_id} {start}..{end} can no longer be read from {stream_arn} ({why}): Kinesis keeps "
        "records only for the stream's retention period (24 hours by default), so these cannot be redriven from "
        "the stream", fix=Fix.REPLAY_FROM_ARCHIVE)


def check_range(records: list[OriginalRecord], stream_arn: str, shard_id: str, start: str,
                 end: str) -> list[OriginalRecord]:
    if not records or records[0].sequence_number != start:
        first = records[0].sequence_number if records else "none"
        raise records_expired(stream_arn, shard_id, start, end, f"its first record has expired; the oldest left "
                           f"from there is {first}")
    if records[-1].sequence_number != end:
        raise records_expired(stream_arn, shard_id, start, end, f"only {len(records)} of its records were found")
    return records


@dataclass
class Outcome:
    """What ``send`` did with one item: sent, would-send (dry run), skipped (already redriven), refused (still
    invalid, or its records cannot be recovered) or failed (the stream did not take every record)."""

    key: str
    status: str
    message: str
    records: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    fix: Fix | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "message": self.message, "records": self.records,
                "sequence_numbers": [r.sequence_number for r in self.receipts],
                "fix": self.fix.value if self.fix else None}


class Redriver:
    """Lists, shows and redrives the items of a dead-letter store onto a stream."""

    def __init__(self, store: LetterStore, *, stream: Stream | None = None, reader: RangeReader | None = None,
                 stream_name: str = "", now: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None,
                 max_ts_skew_seconds: int = DEFAULT_MAX_TS_SKEW_SECONDS):
        self.store = store
        self.max_ts_skew_seconds = max_ts_skew_seconds  # the indexer's, which a redriven record meets
        self.stream = stream
        self.reader = reader
        self.stream_name = stream_name
        self.now = now
        self.sleep = sleep if sleep is not None else time.sleep

    def letters(self, kind: str | None = None) -> list[Letter]:
        """Every item (of ``kind``), oldest record first, each with its redrive marker if it has one."""
        keys = [k for name, prefix in KINDS.items() if kind in (None, name) for k in self.store.list(prefix)]
        return self._load(keys)

    def find(self, keys: Sequence[str]) -> list[Letter]:
        """The named items, oldest record first."""
        for key in keys:
            if not key.startswith(tuple(KINDS.values())):
                raise UserError(f"{key} is not a dead letter: keys start with {INVALID_PREFIX} or {BATCH_PREFIX} "
                                "(see `redrive.py list`)")
        return self._load(list(dict.fromkeys(keys)))

    def _load(self, keys: list[str]) -> list[Letter]:
        markers = set(self.store.list(MARKER_PREFIX))
        with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
            bodies = list(pool.map(self.store.read, keys))
        letters = [parse_letter(key, body) for key, body in zip(keys, bodies)]
        for letter in letters:
            if marker_key(letter.key) in markers:
                letter.marker = self.store.read(marker_key(letter.key))
        return sorted(letters, key=lambda letter: (letter.arrival, letter.key))

    def records_of(self, letter: Letter) -> list[OriginalRecord]:
        """The item's original records: from the letter, else (a batch without payload) from the stream."""
        if letter.records is not None:
            return letter.records
        if letter.problem:
            raise RecordsUnavailable(f"{letter.key} cannot be redriven: {letter.problem}")
        info = letter.body.get("KinesisBatchInfo") or {}
        if self.reader is None or not all(info.get(k) for k in ("streamArn", "shardId", "startSequenceNumber",
                                                                   "endSequenceNumber")):
            raise RecordsUnavailable(f"{letter.key} holds neither its records nor a complete KinesisBatchInfo")
        return self.reader.read_range(info["streamArn"], info["shardId"], info["startSequenceNumber"],
                                      info["endSequenceNumber"])

    def show(self, key: str) -> dict[str, Any]:
        """The whole item with its records decoded (re-read from the stream if need be) and its marker."""
        [letter] = self.find([key])
        out: dict[str, Any] = {"summary": letter.summary(), "letter": letter.body, "redriven": letter.marker}
        try:
            out["records"] = [r.text() for r in self.records_of(letter)]
        except RecordsUnavailable as exc:
            out["records"], out["records_error"] = None, str(exc)
            out["records_fix"] = exc.fix.value if exc.fix else None
        return out

    def send(self, letters: Sequence[Letter], *, force: bool = False, dry_run: bool = False,
             progress: Callable[[int, int], None] = lambda done, total: None) -> list[Outcome]:
        """Put each item's records on the stream in order, then mark it redriven. Items already redriven are
        skipped and letters whose event the current contract still rejects are refused, unless ``force``."""
        if self.stream is None and not dry_run:
            raise UserError("no stream to redrive onto")
        outcomes = []
        for done, letter in enumerate(letters, start=1):
            outcomes.append(self._send_one(letter, force=force, dry_run=dry_run))
            progress(done, len(letters))
        return outcomes

    def _send_one(self, letter: Letter, *, force: bool, dry_run: bool) -> Outcome:
        if letter.marker and not force:
            return Outcome(letter.key, "skipped", f"already redriven at {letter.marker.get('redriven_at')}",
                           fix=Fix.FORCE)
        try:
            records = self.records_of(letter)
        except RecordsUnavailable as exc:
            return Outcome(letter.key, "refused", str(exc), fix=exc.fix)
        if letter.kind == "invalid" and letter.detail == "invalid-event" and not force:
            try:
                # The indexer's rules as the record will meet them: arriving now (a ts too far ahead of it is
                # dead-lettered again).
                decode_event(records[0].data, default_ts=int(self.now()), max_skew_seconds=self.max_ts_skew_seconds)
            except InvalidEvent as exc:
                return Outcome(letter.key, "refused", f"still invalid: {exc.reason}; the indexer would dead-letter "
                               "it again", fix=Fix.CORRECT_OR_FORCE)
        pinned = [RawRecord(r.partition_key, r.pinned()) for r in records]
        for number, raw in enumerate(pinned, start=1):
            size = len(raw.data) + len(raw.doc_id.encode("utf-8"))
            if size > MAX_RECORD_BYTES:  # pinning its version added "ts"/"seq" to a record near the limit
                return Outcome(letter.key, "refused", f"record {number} of {len(records)} is {size} bytes with its "
                               f"version pinned; a Kinesis record holds at most {MAX_RECORD_BYTES} (data and "
                               "partition key): put the document again in smaller documents with put_event.py")
        if dry_run:
            return Outcome(letter.key, "would-send", f"would put {len(records)} record(s)", records=len(records))
        report = send_all(self.stream, pinned, sleep=self.sleep)  # type: ignore[arg-type]
        if report.failed:
            codes = ", ".join(sorted({code for _, code in report.failed}))
            return Outcome(letter.key, "failed", f"{len(report.sent)} of {len(records)} record(s) put; the stream "
                           f"refused the rest ({codes}); not marked, so a rerun sends all of them again",
                           records=len(report.sent), receipts=report.sent)
        self.store.write_object(marker_key(letter.key), {
            "key": letter.key, "kind": letter.kind, "redriven_at": iso(self.now()), "stream": self.stream_name,
            "original_sequence_numbers": [r.sequence_number for r in records],
            "records": [{"partition_key": r.doc_id, "shard_id": r.shard_id, "sequence_number": r.sequence_number}
                        for r in report.sent],
            "previous": letter.marker})
        return Outcome(letter.key, "sent", f"put {len(records)} record(s)", records=len(records),
                       receipts=report.sent)
