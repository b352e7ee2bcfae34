"""Putting document events on the stream: building and validating them with the indexer's own contract, and
sending them with PutRecord / PutRecords within Kinesis' limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtrag.core.backoff import backoff_delay
from rtrag.core.contract import DEFAULT_MAX_TS_SKEW_SECONDS
from rtrag.core.errors import InvalidEvent, TransientError, UserError
from rtrag.core.events import (
    DELETE,
    UPSERT,
    DocumentEvent,
    decode_event,
    partition_key_of,
    validate_event,
)
from rtrag.core.limits import (
    MAX_PUT_RECORDS_BYTES,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_PUT_RECORDS,
)
from rtrag.core.values import parse_pairs as typed_pairs


class InvalidInput(UserError):
    """Producer input that would be dead-lettered by the indexer; nothing has been sent."""


def parse_pairs(pairs: Iterable[str], *, option: str) -> dict[str, Any]:
    """``["team=platform", "tier=1"]`` -> ``{"team": "platform", "tier": 1}``, typed as ``ask.py --where`` types
    them (``rtrag.core.values``)."""
    try:
        return dict(typed_pairs(pairs))
    except ValueError as exc:
        raise InvalidInput(f"{option} {exc}") from None


def build_event(*, doc_id: str, text: str | None = None, source: str | None = None, ts: int | None = None,
                metadata: dict[str, Any] | None = None, delete: bool = False,
                now: Callable[[], float] = time.time) -> DocumentEvent:
    """One event from command-line values, validated exactly as the indexer will validate it."""
    payload: dict[str, Any] = {"doc_id": doc_id, "op": DELETE if delete else UPSERT,
                               "ts": int(now()) if ts is None else ts}
    if not delete:
        payload["text"] = text
        if source is not None:
            payload["source"] = source
        if metadata:
            payload["metadata"] = metadata
    try:
        # The indexer refuses a ts too far ahead of the record's arrival; refuse it before it is sent.
        return check_sendable(validate_event(payload, default_ts=int(now()),
                                             max_skew_seconds=DEFAULT_MAX_TS_SKEW_SECONDS))
    except InvalidEvent as exc:
        raise InvalidInput(f"event for doc_id {doc_id!r} is invalid: {exc.reason}") from None


def check_sendable(event: DocumentEvent) -> DocumentEvent:
    """Kinesis' own limit on a record (its data and its partition key, ``partition_key_of`` the doc id)."""
    size = len(event.to_bytes()) + len(partition_key_of(event.doc_id).encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        raise InvalidEvent(f"the event is {size} bytes; a Kinesis record holds at most {MAX_RECORD_BYTES}: "
                           "split the document", doc_id=event.doc_id)
    return event


def read_jsonl(lines: Iterable[str], *, now: Callable[[], float] = time.time) -> list[DocumentEvent]:
    """Parse JSON Lines of document events. Every bad line is reported with its number; if any line is bad, none
    is returned, so nothing is sent half-formed."""
    return [event for _, event in read_jsonl_lines(lines, now=now)]


def read_jsonl_lines(lines: Iterable[str], *, first_line: int = 1,
                     now: Callable[[], float] = time.time) -> list[tuple[int, DocumentEvent]]:
    """``read_jsonl`` with each event's line number (1-based, blank lines counted), from line ``first_line`` on:
    the lines before it are not read (they were sent by an earlier, interrupted run)."""
    events: list[tuple[int, DocumentEvent]] = []
    problems: list[str] = []
    default_ts = int(now())
    for number, line in enumerate(lines, start=1):
        if number < first_line or not line.strip():
            continue
        try:
            event = decode_event(line.encode("utf-8"), default_ts=default_ts,
                                 max_skew_seconds=DEFAULT_MAX_TS_SKEW_SECONDS)
            events.append((number, check_sendable(event)))
        except InvalidEvent as exc:
            problems.append(f"line {number}: {exc.reason}")
    if problems:
        error = InvalidInput(f"{len(problems)} invalid line(s); nothing was sent; fix these lines and run it again:")
        error.details = (*problems[:20], *([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []))
        raise error
    return events


@dataclass(frozen=True)
class Receipt:
    doc_id: str
    shard_id: str
    sequence_number: str


class Stream(Protocol):
    def put(self, event: DocumentEvent) -> Receipt: ...
    def put_batch(self, events: Sequence[DocumentEvent]) -> list[Receipt | str]: ...


def _plan_indices(events: Sequence[DocumentEvent]) -> list[list[int]]:
    """Split events into PutRecords calls within Kinesis' limits, with at most one event per doc id in a call,
    so that retrying a failed entry can never reorder two events of one document: each call as positions in
    ``events``."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    keys: set[str] = set()
    for i, event in enumerate(events):
        entry = len(event.to_bytes()) + len(partition_key_of(event.doc_id).encode("utf-8"))
        if current and (len(current) == MAX_RECORDS_PER_PUT_RECORDS or size + entry > MAX_PUT_RECORDS_BYTES
                        or event.doc_id in keys):
            batches.append(current)
            current, size, keys = [], 0, set()
        current.append(i)
        size += entry
        keys.add(event.doc_id)
    if current:
        batches.append(current)
    return batches


@dataclass
class SendReport:
    sent: list[Receipt] = field(default_factory=list)
    failed: list[tuple[DocumentEvent, str]] = field(default_factory=list)
    retries: int = 0
    delivered: list[tuple[Receipt, DocumentEvent]] = field(default_factory=list)  # each sent event and its receipt
    acknowledged: set[int] = field(default_factory=set)  # positions (in the events given) of the sent events

    def first_unacknowledged(self, total: int) -> int | None:
        """The position of the first of ``total`` events the stream has not acknowledged, or None if it took all.
        Events after it may have been taken too (the rest of its call, or an answer lost to an interruption)."""
        return next((i for i in range(total) if i not in self.acknowledged), None)


class SendInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during ``send_all``. ``report`` holds what the stream acknowledged before it: an event
    of a call still in flight is not in it, whether or not it landed (sending it again is harmless: the version
    order keeps the greatest version of a document)."""

    def __init__(self, report: SendReport, total: int):
        super().__init__()
        self.report = report
        self.total = total


def send_all(stream: Stream, events: Sequence[DocumentEvent], *, max_attempts: int = 6, base_delay: float = 0.1,
             max_delay: float = 10.0,
             progress: Callable[[int, int], None] = lambda done, total: None,
             sleep: Callable[[float], None] = time.sleep) -> SendReport:
    """Send events in order with PutRecords, retrying only the entries Kinesis did not take, with jittered
    exponential backoff (``rtrag.core.backoff``). A batch's failures are retried before the next batch is sent.
    Interrupted, it raises ``SendInterrupted`` with what was acknowledged so far."""
    report = SendReport()
    total = len(events)
    try:
        for batch in _plan_indices(events):
            pending = list(batch)
            for attempt in range(1, max_attempts + 1):
                try:
                    results = stream.put_batch([events[i] for i in pending])
                except TransientError as exc:
                    results = [exc.code or "Error"] * len(pending)
                retry = []
                for i, result in zip(pending, results):
                    if isinstance(result, Receipt):
                        report.sent.append(result)
                        report.delivered.append((result, events[i]))
                        report.acknowledged.add(i)
                    else:
                        retry.append((i, result))
                progress(len(report.sent), total)
                if not retry:
                    break
                if attempt == max_attempts:
                    report.failed.extend((events[i], code) for i, code in retry)
                    break
                report.retries += len(retry)
                pending = [i for i, _ in retry]
                sleep(backoff_delay(attempt, base=base_delay, cap=max_delay))
    except KeyboardInterrupt as exc:
        if isinstance(exc, SendInterrupted):
            raise
        raise SendInterrupted(report, total) from None
    return report
