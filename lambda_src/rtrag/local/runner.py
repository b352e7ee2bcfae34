"""A local event source mapping: reads the local stream and invokes a handler the way Lambda's Kinesis ESM does.

Behaviour kept from the Lambda event source mapping for Kinesis (with ``ReportBatchItemFailures``):

- each batch holds records of one shard, in sequence order: at most ``batch_size`` records and at most 6 MB of
  event payload; with a batching window, a batch that is not full waits up to the window for more records;
- the event is ``{"Records": [...]}`` with the same fields Lambda sends (base64 ``kinesis.data``,
  ``sequenceNumber``, ``partitionKey``, ``approximateArrivalTimestamp``, ``eventID`` = ``<shardId>:<seq>``,
  ``eventSourceARN``, ``awsRegion``, ...), and the handler gets a Lambda-like context object;
- the checkpoint moves past a batch only after the handler returned success; with ``batchItemFailures`` it moves
  to just before the LOWEST failed sequence number and the batch is redelivered from there; a handler exception
  (or a malformed response) fails the whole batch;
- a failing batch is split in two, as the stack's mapping does with ``BisectBatchOnFunctionError``, until the
  record that fails is alone; splitting uses no retry attempt;
- after ``max_retry_attempts`` retries of that record alone it goes to the on-failure destination (a JSON record
  under ``aws/lambda/`` in the local dead-letter directory, as the ESM writes to an S3 destination, with the
  event) and the checkpoint moves past it: nothing is dropped without a record of it, and no other record goes
  with it.

Not modelled: maximum record age, parallelization factor, enhanced fan-out.

Delivery is at least once: a crash between the handler's writes and the checkpoint redelivers the batch, which
the indexer makes idempotent (deterministic vector keys, content hashes). Runners in several processes can share
a stream: each shard is drained under an exclusive file lock per (consumer, shard), so no batch is delivered
twice at the same time and checkpoints never go back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrag.core.backoff import backoff_delay
from rtrag.core.errors import ConfigError, RagError
from rtrag.core.files import LocksUnsupported, file_lock
from rtrag.core.kinesis import kinesis_event_record
from rtrag.core.shown import clipped
from rtrag.local.deadletters import LocalDeadLetters
from rtrag.local.stream import LOCAL_ACCOUNT, LOCAL_REGION, LocalStream, StreamRecord

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

DEFAULT_CONSUMER = "indexer"
DEFAULT_FUNCTION_NAME = "rag-indexer"
# Lambda's event source mapping parameters for Kinesis (Lambda developer guide, "Lambda parameters for Amazon
# Kinesis Data Streams event source mappings"); the defaults follow the stack's settings (stacks/settings.py).
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10_000
MAX_BATCHING_WINDOW_SECONDS = 300
DEFAULT_MAX_RETRY_ATTEMPTS = 10
MAX_RETRY_ATTEMPTS = 10_000
# A synchronous invocation's request payload is at most 6 MB (Lambda quotas); the ESM cuts batches to fit.
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")
ON_FAILURE_PREFIX = "aws/lambda/"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ShardBusy(RagError):
    """Another runner kept a shard longer than the lease timeout."""


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_seconds: float = 900.0
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass
class RunSummary:
    """What a run did. ``records`` counts records processed and checkpointed; ``failures`` counts invocations
    that did not fully succeed (each is retried or, at the end, sent to the on-failure destination)."""

    invocations: int = 0
    batches: int = 0
    records: int = 0
    failures: int = 0
    on_failure_records: int = 0
    on_failure_keys: list[str] = field(default_factory=list)
    skipped_shards: list[str] = field(default_factory=list)

    def add(self, other: RunSummary) -> None:
        self.invocations += other.invocations
        self.batches += other.batches
        self.records += other.records
        self.failures += other.failures
        self.on_failure_records += other.on_failure_records
        self.on_failure_keys.extend(other.on_failure_keys)
        self.skipped_shards.extend(other.skipped_shards)


@dataclass
class _Outcome:
    lowest_failed: int | None  # index in the batch of the first record to redeliver; None = success
    error: str | None = None
    function_error: bool = False
    reported: list[str] = field(default_factory=list)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def _raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised (``file:line in function``), for a log line that leaves its message out."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}"


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is out of range; use {low}..{high}")
    return value


class LocalEventSourceMapping:
    """Delivers the local stream's records to ``handler`` (local mode's: ``LocalBackend.runner``, the Lambda's
    handler type on local adapters) in Kinesis ESM batches.

    ``on_failure`` is the dead-letter directory that receives batches whose retries ran out (default:
    ``<stream directory>/dead-letters``). ``consumer`` names the checkpoints: runners with the same consumer
    share progress and take turns per shard; another consumer reads the stream independently.
    """

    def __init__(self, stream: LocalStream, handler: Handler, *,
                 consumer: str = DEFAULT_CONSUMER,
                 function_name: str = DEFAULT_FUNCTION_NAME,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 maximum_batching_window_seconds: float = 0.0,
                 max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS,
                 on_failure: LocalDeadLetters | str | Path | None = None,
                 starting_position: str = "TRIM_HORIZON",
                 region: str = LOCAL_REGION,
                 account: str = LOCAL_ACCOUNT,
                 retry_backoff_seconds: float = 0.1,
                 max_retry_backoff_seconds: float = 2.0,
                 lease_timeout_seconds: float = 60.0,
                 function_timeout_seconds: float = 900.0,
                 memory_limit_in_mb: int = 1024):
        if not _NAME.match(consumer):
            raise ConfigError(f"consumer name {consumer!r} is invalid; use 1..64 letters, digits, '_', '.' or '-'")
        if not _NAME.match(function_name):
            raise ConfigError(f"function name {function_name!r} is invalid; use 1..64 letters, digits, '_', '.', '-'")
        if starting_position not in STARTING_POSITIONS:
            raise ConfigError(f"starting position {starting_position!r} is not one of {', '.join(STARTING_POSITIONS)}")
        if not 0 <= maximum_batching_window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
            raise ConfigError(f"maximum_batching_window_seconds={maximum_batching_window_seconds} is out of range; "
                              f"use 0..{MAX_BATCHING_WINDOW_SECONDS}")
        self.stream = stream
        self.handler = handler
        self.consumer = consumer
        self.function_name = function_name
        self.batch_size = _check_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        self.maximum_batching_window_seconds = float(maximum_batching_window_seconds)
        # -1 (retry until the record expires) is not offered: local records never expire, so a poison batch
        # would stall its shard for ever (the stack refuses it for the same reason).
        self.max_retry_attempts = _check_int("max_retry_attempts", max_retry_attempts, 0, MAX_RETRY_ATTEMPTS)
        if on_failure is None:
            on_failure = stream.directory / "dead-letters"
        self.on_failure = on_failure if isinstance(on_failure, LocalDeadLetters) else LocalDeadLetters(on_failure)
        self.starting_position = starting_position
        self.region = region
        self.stream_arn = stream.arn(region=region, account=account)
        self.function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.invoke_identity_arn = f"arn:aws:iam::{account}:role/{function_name}-local"
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stream_arn}|{self.function_arn}|{consumer}"))
        self.retry_backoff_seconds = retry_backoff_seconds
        self.max_retry_backoff_seconds = max_retry_backoff_seconds
        self.lease_timeout_seconds = lease_timeout_seconds
        self.function_timeout_seconds = function_timeout_seconds
        self.memory_limit_in_mb = memory_limit_in_mb
        self._lease_dir = stream.directory / "leases"

    # public
    def run_once(self, *, block: bool = True) -> RunSummary:
        """Deliver every record that is in the stream now, shard by shard, and return what happened.

        With ``block`` a shard that another runner is draining is waited for (up to the lease timeout, then
        ShardBusy), so when this returns every record put before the call has been handled. Without it such a
        shard is skipped and listed in ``skipped_shards``.
        """
        summary = RunSummary()
        for shard_id in self.stream.shard_ids():
            with self._lease(shard_id, block=block) as held:
                if not held:
                    summary.skipped_shards.append(shard_id)
                    continue
                self._drain(shard_id, summary)
        return summary

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold every shard of this consumer (waiting for runners that hold one): nothing is delivered meanwhile.
        For writers of the same index that are not this runner, such as a replay into it."""
        with ExitStack() as stack:
            for shard_id in self.stream.shard_ids():
                stack.enter_context(self._lease(shard_id, block=True))
            yield

    def follow(self, poll_interval: float = 1.0, stop_event: threading.Event | None = None,
               on_pass: Callable[[RunSummary], None] | None = None) -> RunSummary:
        """Keep delivering records as producers add them until ``stop_event`` is set; returns the totals.

        Polls every ``poll_interval`` seconds when idle (the ESM polls each shard once a second). ``on_pass`` is
        called with each pass's summary when the pass delivered anything. Shards that another runner is
        draining are left to it.
        """
        stop = stop_event or threading.Event()
        total = RunSummary()
        while not stop.is_set():
            summary = self.run_once(block=False)
            summary.skipped_shards.clear()
            total.add(summary)
            if summary.invocations and on_pass is not None:
                on_pass(summary)
            if not summary.invocations:
                stop.wait(poll_interval)
        return total

    # one shard
    def _drain(self, shard_id: str, summary: RunSummary) -> None:
        position = self._start_position(shard_id)
        end = self.stream.latest_sequence(shard_id)
        while end is not None and (position is None or int(position) < int(end)):
            records = self._collect(shard_id, position)
            if not records:
                break
            position = self._deliver(shard_id, records, summary)

    def _deliver(self, shard_id: str, records: list[StreamRecord], summary: RunSummary) -> str:
        """Deliver one batch as the ESM does with ``BisectBatchOnFunctionError`` and ``ReportBatchItemFailures``;
        returns the checkpoint after it.

        - success: checkpoint at the batch's last record;
        - partial failure at a later record: checkpoint before it, deliver the rest again;
        - failure at the first record (or a function error): split the batch in two and deliver each half on its
          own, first half first; splitting uses no retry attempt;
        - a single record that still fails is retried with backoff, up to ``max_retry_attempts`` times; then it
          alone goes to the on-failure destination and the checkpoint moves past it.
        """
        pending = [records]  # sub-batches still to deliver, the next one last
        position = records[0].sequence_number
        attempts = 0  # failed deliveries of the single record at the head
        while pending:
            batch = pending.pop()
            event = {"Records": [kinesis_event_record(r, stream_arn=self.stream_arn, region=self.region,
                                                      invoke_identity_arn=self.invoke_identity_arn)
                                 for r in batch]}
            context = self._context()
            outcome = self._invoke(event, context)
            summary.invocations += 1
            if outcome.lowest_failed is None:
                position = self._advance(shard_id, batch, summary)
                summary.batches += 1
                attempts = 0
                continue
            summary.failures += 1
            failed_at = outcome.lowest_failed
            first_failed = batch[failed_at].sequence_number
            log.warning("batch failed", extra={"shard_id": shard_id, "sequence_number": first_failed,
                                               "records": len(batch), "error": clipped(outcome.error)})
            if failed_at > 0:
                position = self._advance(shard_id, batch[:failed_at], summary)
                pending.append(batch[failed_at:])
                attempts = 0
                continue
            if len(batch) > 1:
                middle = len(batch) // 2
                pending += [batch[middle:], batch[:middle]]
                continue
            attempts += 1
            if attempts > self.max_retry_attempts:
                key = self._send_to_on_failure(shard_id, batch, context, attempts, outcome)
                position = self._advance(shard_id, batch, summary, count=False)
                summary.batches += 1
                summary.on_failure_records += len(batch)
                summary.on_failure_keys.append(key)
                attempts = 0
                continue
            delay = backoff_delay(attempts, base=self.retry_backoff_seconds, cap=self.max_retry_backoff_seconds)
            if delay > 0:
                time.sleep(delay)
            pending.append(batch)
        return position

    def _advance(self, shard_id: str, done: list[StreamRecord], summary: RunSummary, *, count: bool = True) -> str:
        self._checkpoint(shard_id, done[-1].sequence_number)
        if count:
            summary.records += len(done)
        return done[-1].sequence_number

    def _start_position(self, shard_id: str) -> str | None:
        position = self.stream.get_checkpoint(self.consumer, shard_id)
        if position is None and self.starting_position == "LATEST":
            latest = self.stream.latest_sequence(shard_id)
            if latest is not None:
                self._checkpoint(shard_id, latest)
            position = latest
        return position

    def _collect(self, shard_id: str, position: str | None) -> list[StreamRecord]:
        """The next batch after ``position``: up to ``batch_size`` records and 6 MB of payload, waiting up to the
        batching window for a batch that is not full."""
        records: list[StreamRecord] = []
        payload = len('{"Records": []}')
        deadline: float | None = None
        while True:
            after = records[-1].sequence_number if records else position
            for record in self.stream.read(shard_id, after_sequence=after, limit=self.batch_size - len(records)):
                size = len(json.dumps(kinesis_event_record(
                    record, stream_arn=self.stream_arn, region=self.region,
                    invoke_identity_arn=self.invoke_identity_arn))) + 2
                if records and payload + size > MAX_INVOKE_PAYLOAD_BYTES:
                    return records
                records.append(record)
                payload += size
            if not records or len(records) >= self.batch_size or self.maximum_batching_window_seconds <= 0:
                return records
            if deadline is None:
                deadline = time.monotonic() + self.maximum_batching_window_seconds
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return records
            time.sleep(min(0.05, remaining))

    def _context(self) -> LocalLambdaContext:
        return LocalLambdaContext(function_name=self.function_name, invoked_function_arn=self.function_arn,
                                  aws_request_id=str(uuid.uuid4()), memory_limit_in_mb=self.memory_limit_in_mb,
                                  log_group_name=f"/aws/lambda/{self.function_name}",
                                  timeout_seconds=self.function_timeout_seconds)

    def _invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> _Outcome:
        try:
            response = self.handler(event, context)
        except Exception as exc:  # a function error: the ESM splits the batch and retries the halves
            error = f"{type(exc).__name__}: {exc}"
            # The message may quote a record's content: bounded, and the traceback reduced to where it was raised.
            log.error("handler raised; the whole batch will be retried",
                      extra={"error": clipped(error), "raised_at": _raised_at(exc)})
            return _Outcome(lowest_failed=0, error=error, function_error=True)
        return _parse_response(response, [r["kinesis"]["sequenceNumber"] for r in event["Records"]])

    def _checkpoint(self, shard_id: str, sequence_number: str) -> None:
        self.stream.set_checkpoint(self.consumer, shard_id, sequence_number)

    def _send_to_on_failure(self, shard_id: str, records: list[StreamRecord], context: LocalLambdaContext,
                            attempts: int, outcome: _Outcome) -> str:
        """Write the discarded batch as the ESM does to an S3 on-failure destination; returns the key."""
        now = time.time()
        event = {"Records": [kinesis_event_record(r, stream_arn=self.stream_arn, region=self.region,
                                                  invoke_identity_arn=self.invoke_identity_arn) for r in records]}
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if outcome.function_error:
            response_context["functionError"] = "Unhandled"
        body = {
            "requestContext": {"requestId": context.aws_request_id, "functionArn": self.function_arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso(now),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0].sequence_number,
                "endSequenceNumber": records[-1].sequence_number,
                "approximateArrivalOfFirstRecord": _iso(records[0].arrival),
                "approximateArrivalOfLastRecord": _iso(records[-1].arrival),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
            "payload": event,
            # Not in AWS's record: why the last attempt failed, to save a trip to the logs.
            "localDiagnostics": {"error": outcome.error, "batchItemFailures": outcome.reported},
        }
        stamp = time.strftime("%Y/%m/%d", time.gmtime(now))
        name = time.strftime("%Y-%m-%dT%H.%M.%S", time.gmtime(now)) + f"-{uuid.uuid4()}"
        key = self.on_failure.write_object(f"{ON_FAILURE_PREFIX}{self.uuid}/{shard_id}/{stamp}/{name}", body)
        log.error("retries exhausted; batch written to the on-failure destination",
                  extra={"shard_id": shard_id, "first": records[0].sequence_number,
                         "last": records[-1].sequence_number, "records": len(records), "key": key})
        return key

    @contextmanager
    def _lease(self, shard_id: str, *, block: bool) -> Iterator[bool]:
        """Exclusive right to deliver ``shard_id`` for this consumer, across threads and processes: an advisory
        file lock (``files.file_lock``), which the operating system releases when its holder exits or crashes, so a
        dead runner never keeps a shard."""
        path = self._lease_dir / f"{self.consumer}.{shard_id}.lock"
        with ExitStack() as stack:
            try:
                held = stack.enter_context(file_lock(path, wait_seconds=self.lease_timeout_seconds if block else 0.0))
            except LocksUnsupported:
                raise ConfigError("the local event source runner needs a POSIX system (Linux, macOS or WSL)") from None
            if not held and block:
                raise ShardBusy(f"{shard_id} has been held by another runner of {self.consumer!r} for over "
                                f"{self.lease_timeout_seconds:.0f} s; is a runner stuck?")
            yield held


def _parse_response(response: Any, sequence_numbers: list[str]) -> _Outcome:
    """Read a handler's response as the ESM reads a partial batch response.

    Success: ``None``, ``{}``, or ``batchItemFailures`` empty or null. Partial failure: redeliver from the lowest
    reported sequence number. Whole-batch failure: a response that is not an object, or an item whose
    ``itemIdentifier`` is missing, empty or not in the batch.
    """
    if response is None:
        return _Outcome(lowest_failed=None)
    if not isinstance(response, dict):
        return _Outcome(lowest_failed=0, error=f"handler returned {type(response).__name__}, not a batch response")
    items = response.get("batchItemFailures")
    if not items:
        return _Outcome(lowest_failed=None)
    if not isinstance(items, list):
        return _Outcome(lowest_failed=0, error="batchItemFailures is not a list")
    index = {seq: i for i, seq in enumerate(sequence_numbers)}
    reported: list[str] = []
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in index:
            return _Outcome(lowest_failed=0, reported=[str(i) for i in items],
                            error=f"batchItemFailures names {ident!r}, which is not in the batch")
        reported.append(ident)
    return _Outcome(lowest_failed=min(index[s] for s in reported), reported=reported,
                    error=f"{len(reported)} batch item failure(s) reported")
