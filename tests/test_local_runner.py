"""The local event source runner delivers the local stream to a handler exactly as Lambda's Kinesis ESM does:
event shape, batching, ordering, checkpoints, partial-batch retries, on-failure destination, one runner per shard."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kinesis import load_event
from rtrag.core.config import ChunkSettings
from rtrag.local.deadletters import LocalDeadLetters
from rtrag.local.embedder import LocalEmbedder
from rtrag.local.runner import LocalEventSourceMapping, LocalLambdaContext
from rtrag.local.stream import LocalStream
from rtrag.indexing.batch import BatchIndexer
from rtrag.indexing.handler import IndexerHandler

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
SEED_TEXT = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."


class Recorder:
    """A handler that records every event and context, and fails the records a test chooses."""

    def __init__(self, fail=lambda record, attempt: False, raise_on=lambda attempt: False):
        self.events: list[dict] = []
        self.contexts: list = []
        self.fail = fail
        self.raise_on = raise_on
        self.lock = threading.Lock()

    def __call__(self, event, context):
        with self.lock:
            self.events.append(event)
            self.contexts.append(context)
            attempt = len(self.events)
        if self.raise_on(attempt):
            raise RuntimeError("handler crashed")
        failures = [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"]
                    if self.fail(r, attempt)]
        return {"batchItemFailures": failures}

    def sequences(self, index: int) -> list[str]:
        return [r["kinesis"]["sequenceNumber"] for r in self.events[index]["Records"]]

    def delivered(self) -> list[str]:
        return [r["kinesis"]["sequenceNumber"] for e in self.events for r in e["Records"]]


def data(record) -> bytes:
    return base64.b64decode(record["kinesis"]["data"])


@pytest.fixture
def open_stream():
    """Opens LocalStreams (one per simulated process) and closes them all after the test."""
    opened: list[LocalStream] = []

    def open_(directory, **kwargs) -> LocalStream:
        opened.append(LocalStream(directory, **kwargs))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def stream(tmp_path, open_stream):
    return open_stream(tmp_path / "stream", shard_count=1, name="rag-documents")


def put_many(stream, n, key=lambda i: f"doc-{i}"):
    return [stream.put_record(json.dumps({"n": i}).encode(), key(i)) for i in range(n)]


def mapping(stream, handler, tmp_path, **kwargs):
    kwargs.setdefault("retry_backoff_seconds", 0)
    return LocalEventSourceMapping(stream, handler, on_failure=LocalDeadLetters(tmp_path / "dead-letters"), **kwargs)


# the event
def test_event_has_exactly_the_fields_lambda_sends_for_kinesis(stream, tmp_path):
    put = stream.put_record(b'{"doc_id": "a", "text": "hello"}', "a")
    handler = Recorder()

    mapping(stream, handler, tmp_path).run_once()

    [event] = handler.events
    [record] = event["Records"]
    reference = load_event("aws_docs_sample.json")["Records"][0]  # the AWS documentation's sample event
    assert set(event) == {"Records"}
    assert set(record) == set(reference)
    assert set(record["kinesis"]) == set(reference["kinesis"])
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert data(record) == b'{"doc_id": "a", "text": "hello"}'
    assert record["kinesis"]["partitionKey"] == "a"
    assert record["kinesis"]["sequenceNumber"] == put.sequence_number
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["eventID"] == f"shardId-000000000000:{put.sequence_number}"
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"] == "arn:aws:kinesis:local:000000000000:stream/rag-documents"
    assert record["awsRegion"] == "local"
    json.dumps(event)  # what Lambda hands over is JSON


def test_handler_gets_a_lambda_like_context(stream, tmp_path):
    stream.put_record(b"{}", "a")
    handler = Recorder()

    mapping(stream, handler, tmp_path, function_name="rag-indexer").run_once()

    [context] = handler.contexts
    assert isinstance(context, LocalLambdaContext)
    assert context.function_name == "rag-indexer"
    assert context.invoked_function_arn == "arn:aws:lambda:local:000000000000:function:rag-indexer"
    assert context.aws_request_id and context.memory_limit_in_mb > 0
    assert 0 < context.get_remaining_time_in_millis() <= 900_000


# through the real indexer
@pytest.fixture
def local_indexer(tmp_path, monkeypatch):
    """The indexer's handler on local adapters, as local mode wires it."""
    from rtrag.local.index import LocalVectorIndex
    from rtrag.local.ledger import LocalVersionLedger

    embedder = LocalEmbedder()
    index = LocalVectorIndex(tmp_path / "index", dimension=embedder.dimensions)
    dead_letters = LocalDeadLetters(tmp_path / "dead-letters")
    handler = IndexerHandler(lambda: BatchIndexer(embedder=embedder, index=index, ledger=LocalVersionLedger(index),
                                                  dead_letters=dead_letters,
                                                  chunking=ChunkSettings(size_chars=1000, overlap_chars=100)))
    yield type("Local", (), {"embedder": embedder, "index": index, "dead_letters": dead_letters, "handler": handler})
    index.close()


def test_seed_event_is_indexed_by_the_real_indexer_handler_and_a_bad_event_is_dead_lettered(
        tmp_path, local_indexer, open_stream):
    stream = open_stream(tmp_path / "stream")
    seed = load_event("seed_upsert.json")["Records"][0]
    stream.put_record(base64.b64decode(seed["kinesis"]["data"]), "nimbus-v3")
    bad = stream.put_record(b"not json", "broken")
    responses = []

    def handler(event, context):
        responses.append(local_indexer.handler(event, context))
        return responses[-1]

    summary = mapping(stream, handler, tmp_path).run_once()

    assert (summary.records, summary.failures, summary.on_failure_records) == (2, 0, 0)
    assert all(r == {"batchItemFailures": []} for r in responses)
    stored = local_indexer.index.get(["nimbus-v3#0"], metadata=True)["nimbus-v3#0"]["metadata"]
    assert (stored["doc_id"], stored["source_text"], stored["chunks"]) == ("nimbus-v3", SEED_TEXT, 1)
    question = local_indexer.embedder.embed("When does Project Nimbus v3 ship and what does it drop?")
    assert local_indexer.index.query(question, top_k=1)[0]["key"] == "nimbus-v3#0"
    [key] = local_indexer.dead_letters.list("invalid/")
    assert key.endswith(f"/{bad.shard_id}/{bad.sequence_number}.json")
    letter = local_indexer.dead_letters.read(key)
    assert base64.b64decode(letter["data"]) == b"not json"
    assert letter["event_source_arn"] == stream.arn()


def test_crash_between_index_write_and_checkpoint_loses_nothing_and_duplicates_nothing(
        tmp_path, local_indexer, monkeypatch, open_stream):
    stream = open_stream(tmp_path / "stream")
    texts = {f"doc-{i}": f"Document {i} explains topic number {i} in one sentence." for i in range(12)}
    for doc_id, text in texts.items():
        stream.put_record(json.dumps({"doc_id": doc_id, "text": text, "ts": 100}).encode(), doc_id)

    class Crash(BaseException):
        """The process dies: nothing in the runner may catch this."""

    crashing = mapping(stream, local_indexer.handler, tmp_path, batch_size=5)

    def die(shard_id, sequence_number):
        raise Crash

    monkeypatch.setattr(crashing, "_checkpoint", die)
    with pytest.raises(Crash):
        crashing.run_once()
    written = set(local_indexer.index.list_keys())
    assert written, "the handler wrote to the index before the crash"
    assert all(stream.get_checkpoint("indexer", s) is None for s in stream.shard_ids())
    calls_before = local_indexer.embedder.calls

    restarted = open_stream(tmp_path / "stream")  # a new process after the crash
    summary = mapping(restarted, local_indexer.handler, tmp_path, batch_size=5).run_once()

    assert summary.records == 12 and summary.failures == 0
    assert sorted(local_indexer.index.list_keys()) == sorted(f"{d}#0" for d in texts)
    assert local_indexer.index.count() == 12
    assert local_indexer.embedder.calls - calls_before == 12 - len(written), \
        "documents written before the crash are not embedded again"
    for doc_id, text in texts.items():
        assert local_indexer.index.get([f"{doc_id}#0"])[f"{doc_id}#0"]["metadata"]["source_text"] == text
    for shard in stream.shard_ids():
        assert stream.get_checkpoint("indexer", shard) == stream.latest_sequence(shard)


# batching and ordering
def test_batches_hold_one_shard_and_at_most_batch_size_records(tmp_path, open_stream):
    stream = open_stream(tmp_path / "s", shard_count=2)
    put = put_many(stream, 45)
    handler = Recorder()

    summary = mapping(stream, handler, tmp_path, batch_size=10).run_once()

    assert summary.records == 45 and summary.invocations == len(handler.events)
    for event in handler.events:
        assert 1 <= len(event["Records"]) <= 10
        assert len({r["eventID"].split(":")[0] for r in event["Records"]}) == 1
    assert sorted(handler.delivered()) == sorted(p.sequence_number for p in put)


def test_records_of_a_partition_key_are_delivered_in_put_order(tmp_path, open_stream):
    stream = open_stream(tmp_path / "s", shard_count=2)
    put_many(stream, 60, key=lambda i: f"doc-{i % 4}")
    handler = Recorder()

    mapping(stream, handler, tmp_path, batch_size=7).run_once()

    records = [r for e in handler.events for r in e["Records"]]
    for k in range(4):
        numbers = [json.loads(data(r))["n"] for r in records if r["kinesis"]["partitionKey"] == f"doc-{k}"]
        assert numbers == list(range(k, 60, 4))


def test_batching_window_waits_for_a_fuller_batch(stream, tmp_path):
    put_many(stream, 3)
    handler = Recorder()
    runner = mapping(stream, handler, tmp_path, batch_size=10, maximum_batching_window_seconds=30)
    worker = threading.Thread(target=runner.run_once)

    worker.start()
    put_many(stream, 7)
    worker.join(timeout=60)

    assert not worker.is_alive()
    assert len(handler.events[0]["Records"]) == 10, "a full batch ends the window early"


def test_without_a_window_a_batch_is_delivered_with_what_is_there(stream, tmp_path):
    put_many(stream, 3)
    handler = Recorder()

    mapping(stream, handler, tmp_path, batch_size=10).run_once()

    assert [len(e["Records"]) for e in handler.events] == [3]


def test_batch_is_cut_to_fit_lambdas_6_mb_invocation_payload(stream, tmp_path):
    for i in range(6):
        stream.put_record(b"x" * 1_000_000, f"big-{i}")  # 1.33 MB each in base64
    handler = Recorder()

    mapping(stream, handler, tmp_path, batch_size=100).run_once()

    sizes = [len(json.dumps(e)) for e in handler.events]
    assert [len(e["Records"]) for e in handler.events] == [4, 2]
    assert max(sizes) <= 6 * 1024 * 1024


# checkpoints and retries
def test_checkpoint_is_saved_after_success_so_nothing_is_delivered_again(stream, tmp_path, open_stream):
    put = put_many(stream, 5)
    handler = Recorder()

    first = mapping(stream, handler, tmp_path).run_once()
    again = mapping(stream, handler, tmp_path).run_once()
    restarted = mapping(open_stream(stream.directory), handler, tmp_path).run_once()

    assert (first.records, again.invocations, restarted.invocations) == (5, 0, 0)
    assert stream.get_checkpoint("indexer", "shardId-000000000000") == put[-1].sequence_number
    later = put_many(stream, 2)
    mapping(stream, handler, tmp_path).run_once()
    assert handler.sequences(-1) == [p.sequence_number for p in later]


def test_batch_item_failures_redeliver_from_the_lowest_failed_sequence_number(stream, tmp_path):
    put = put_many(stream, 10)
    seqs = [p.sequence_number for p in put]
    # first delivery: records 6 and 3 fail (reported out of order); later deliveries succeed
    handler = Recorder(fail=lambda r, attempt: attempt == 1 and r["kinesis"]["sequenceNumber"] in (seqs[6], seqs[3]))
    checkpoints = []
    runner = mapping(stream, handler, tmp_path, batch_size=100)
    real_checkpoint = runner._checkpoint
    runner._checkpoint = lambda shard, seq: (checkpoints.append(seq), real_checkpoint(shard, seq))

    summary = runner.run_once()

    assert handler.sequences(0) == seqs
    assert handler.sequences(1) == seqs[3:], "redelivery starts at the lowest failed record"
    assert checkpoints == [seqs[2], seqs[9]], "checkpoint just before the lowest failure, then at the end"
    assert (summary.invocations, summary.failures, summary.records) == (2, 1, 10)


def test_handler_exception_splits_the_batch_and_delivers_each_half_on_its_own(stream, tmp_path):
    put = put_many(stream, 4)
    seqs = [p.sequence_number for p in put]
    handler = Recorder(raise_on=lambda attempt: attempt == 1)

    summary = mapping(stream, handler, tmp_path).run_once()

    assert [handler.sequences(i) for i in range(3)] == [seqs, seqs[:2], seqs[2:]]
    assert (summary.failures, summary.records, summary.on_failure_records) == (1, 4, 0)


def test_response_naming_a_record_not_in_the_batch_fails_the_whole_batch(stream, tmp_path):
    put_many(stream, 3)
    calls = []

    def handler(event, context):
        calls.append(event)
        return {"batchItemFailures": [{"itemIdentifier": "123"}]} if len(calls) == 1 else None

    summary = mapping(stream, handler, tmp_path).run_once()

    assert [len(e["Records"]) for e in calls] == [3, 1, 2], "failed whole, then split in two"
    assert summary.records == 3


def test_a_record_that_keeps_failing_alone_goes_to_the_on_failure_destination_and_no_other_with_it(
        stream, tmp_path):
    put = put_many(stream, 6)
    seqs = [p.sequence_number for p in put]
    poison = seqs[2]
    handler = Recorder(fail=lambda r, attempt: r["kinesis"]["sequenceNumber"] == poison)
    runner = mapping(stream, handler, tmp_path, batch_size=4, max_retry_attempts=2)

    summary = runner.run_once()

    # [0..3] fails at 2: checkpoint after 1, deliver [2, 3]; it fails at its first record: split; [2] alone
    # fails three times (the first try and two retries) and goes to the destination; [3], then [4, 5] succeed.
    assert [handler.sequences(i) for i in range(len(handler.events))] == [
        seqs[:4], seqs[2:4], [poison], [poison], [poison], [seqs[3]], seqs[4:]]
    [key] = summary.on_failure_keys
    assert key.startswith(f"aws/lambda/{runner.uuid}/shardId-000000000000/")
    assert LocalDeadLetters(tmp_path / "dead-letters").list("aws/lambda/") == [key]
    record = LocalDeadLetters(tmp_path / "dead-letters").read(key)
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    info = record["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        "shardId-000000000000", poison, poison, 1)
    assert info["streamArn"] == stream.arn()
    assert [data(r) for r in record["payload"]["Records"]] == [json.dumps({"n": 2}).encode()]
    assert stream.get_checkpoint("indexer", "shardId-000000000000") == seqs[5]
    assert (summary.records, summary.on_failure_records, summary.failures) == (5, 1, 5)
    assert mapping(stream, handler, tmp_path).run_once().invocations == 0


def test_zero_retry_attempts_sends_each_crashing_record_to_the_destination_after_one_try_alone(stream, tmp_path):
    put_many(stream, 2)
    handler = Recorder(raise_on=lambda attempt: True)

    summary = mapping(stream, handler, tmp_path, max_retry_attempts=0).run_once()

    assert summary.invocations == 3 and summary.on_failure_records == 2 and len(summary.on_failure_keys) == 2
    record = LocalDeadLetters(tmp_path / "dead-letters").read(summary.on_failure_keys[0])
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert "handler crashed" in record["localDiagnostics"]["error"]


def test_latest_starting_position_skips_records_put_before_the_first_run(stream, tmp_path):
    put_many(stream, 3)
    handler = Recorder()
    runner = mapping(stream, handler, tmp_path, starting_position="LATEST")

    assert runner.run_once().invocations == 0
    new = put_many(stream, 1)
    runner.run_once()
    assert handler.delivered() == [new[0].sequence_number]


# several runners
def test_runner_threads_sharing_a_consumer_never_deliver_a_record_twice(tmp_path, open_stream):
    directory = tmp_path / "s"
    put = put_many(open_stream(directory, shard_count=2), 200)
    handler = Recorder()

    def slow(event, context):
        time.sleep(0.002)
        return handler(event, context)

    runners = [mapping(open_stream(directory), slow, tmp_path, batch_size=5) for _ in range(3)]
    threads = [threading.Thread(target=r.run_once) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    delivered = handler.delivered()
    assert sorted(delivered) == sorted(p.sequence_number for p in put)
    assert len(delivered) == len(set(delivered))


RUNNER = """
import os, sys
from rtrag.local.runner import LocalEventSourceMapping
from rtrag.local.stream import LocalStream
directory, out = sys.argv[1], sys.argv[2]

def handler(event, context):
    with open(out, "a") as f:
        for r in event["Records"]:
            f.write(r["kinesis"]["sequenceNumber"] + "\\n")
    return {"batchItemFailures": []}

with LocalStream(directory) as stream:
    LocalEventSourceMapping(stream, handler, batch_size=3, on_failure=directory + "/dl").run_once()
"""


def test_runner_processes_sharing_a_consumer_never_deliver_a_record_twice(tmp_path, open_stream):
    directory = tmp_path / "s"
    put = put_many(open_stream(directory, shard_count=2), 150)
    env = {**os.environ, "PYTHONPATH": str(LAMBDA_SRC)}
    outputs = [tmp_path / f"out-{n}.txt" for n in range(3)]

    procs = [subprocess.Popen([sys.executable, "-c", RUNNER, str(directory), str(out)], env=env,
                              stderr=subprocess.PIPE) for out in outputs]
    errors = [p.communicate(timeout=120)[1] for p in procs]

    assert [p.returncode for p in procs] == [0, 0, 0], errors
    delivered = [line for out in outputs if out.exists() for line in out.read_text().split()]
    assert sorted(delivered) == sorted(p.sequence_number for p in put)


def test_follow_delivers_records_put_while_it_runs_until_stopped(stream, tmp_path):
    handler = Recorder()
    runner = mapping(stream, handler, tmp_path)
    stop = threading.Event()
    passes = []
    result = {}
    worker = threading.Thread(target=lambda: result.update(total=runner.follow(0.02, stop, on_pass=passes.append)))

    worker.start()
    put = put_many(stream, 5)
    deadline = time.monotonic() + 30
    while len(handler.delivered()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert handler.delivered() == [p.sequence_number for p in put]
    assert result["total"].records == 5 and sum(p.records for p in passes) == 5


# the dead-letter directory
def test_dead_letters_are_files_laid_out_like_the_bucket_keys(tmp_path):
    from rtrag.core.deadletters import DeadLetter

    letters = LocalDeadLetters(tmp_path / "dl")
    letter = DeadLetter(reason="not JSON", kind="invalid-event", sequence_number="4900", partition_key="k",
                        event_source_arn="arn", shard_id="shardId-000000000001", approximate_arrival_timestamp=0.0,
                        data="eA==")

    key = letters.write(letter)

    assert key == letter.key == "invalid/1970/01/01/shardId-000000000001/4900.json"
    assert json.loads((tmp_path / "dl" / key).read_text())["reason"] == "not JSON"
    assert letters.list() == [key]
    with pytest.raises(Exception, match="would leave"):
        letters.write_object("../outside.json", {})
