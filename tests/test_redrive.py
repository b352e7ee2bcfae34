"""redrive.py: dead letters of both kinds listed with their reasons, shown decoded, and put back on the stream once
after a fix (original bytes, original partition keys, original order), against moto and in local mode."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from conftest import BUCKET, DEAD_LETTERS, INDEX, run
from fakes import listed_vectors
from kinesis import ARRIVAL, SHARD_ID, batch, record
from rtrag.workflows.redrive import Redriver, parse_letter
from scripts import redrive
from test_put_event import STREAM, records_on

ROOT = Path(__file__).resolve().parents[1]
STREAM_ARN = f"arn:aws:kinesis:us-east-1:123456789012:stream/{STREAM}"
ESM_UUID = "6a1e0d1c-7b43-4b52-9a7e-1f0c2f3f4a5b"


@pytest.fixture
def dlq(env, monkeypatch):
    """The deployed dead-letter bucket and stream, with a bad event and a document Titan rejects dead-lettered by
    the real indexer handler."""
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    monkeypatch.setenv("STREAM_NAME", STREAM)
    env.aws.titan.reject = lambda text: "poison" in text
    response = run(batch({"doc_id": "ok", "text": "A fine document."}, b"not json",
                         {"doc_id": "fragile", "text": "A poison pill the model refused."}))
    assert response == {"batchItemFailures": []}
    env.aws.titan.reject = lambda text: False  # the fix: the model takes the text now
    env.kinesis = kinesis
    keys = sorted(o["Key"] for o in env.s3.list_objects_v2(Bucket=DEAD_LETTERS)["Contents"])
    env.bad_key, env.fragile_key = keys  # sequence order: the bad event came first
    return env


def put_on_failure_record(s3, *, start: str, end: str, size: int, payload: dict | None = None,
                          stream_arn: str = STREAM_ARN, name: str = "0001",
                          first_arrival: str = "2026-01-01T00:05:04.835Z") -> str:
    """An on-failure record in the shape Lambda's event source mapping writes for Kinesis (Lambda Developer Guide,
    "Retain discarded batch records for a Kinesis Data Streams event source"); an S3 destination adds the
    invocation event as ``payload``."""
    key = f"aws/lambda/{ESM_UUID}/{SHARD_ID}/2026/01/01/2026-01-01T00.10.00-{name}"
    body = {
        "requestContext": {"requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:indexer",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 4},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-01-01T00:10:00.021Z",
        "KinesisBatchInfo": {"shardId": SHARD_ID, "startSequenceNumber": start, "endSequenceNumber": end,
                             "approximateArrivalOfFirstRecord": first_arrival,
                             "approximateArrivalOfLastRecord": "2026-01-01T00:05:05.580Z", "batchSize": size,
                             "streamArn": stream_arn},
    }
    if payload is not None:
        body["payload"] = payload
    s3.put_object(Bucket=DEAD_LETTERS, Key=key, Body=json.dumps(body).encode())
    return key


def put_documents(kinesis, *doc_ids: str) -> list[str]:
    return [kinesis.put_record(StreamName=STREAM, Data=json.dumps({"doc_id": d, "text": f"About {d}."}).encode(),
                               PartitionKey=d)["SequenceNumber"] for d in doc_ids]


def stored_doc_ids(s3vectors) -> set[str]:
    listed = listed_vectors(s3vectors, BUCKET, INDEX, returnMetadata=True)
    return {v["metadata"]["doc_id"] for v in listed}


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


# list and show
def test_list_shows_both_kinds_with_reason_doc_id_shard_sequence_and_state(dlq, capsys):
    seqs = put_documents(dlq.kinesis, "d1", "d2")
    batch_key = put_on_failure_record(dlq.s3, start=seqs[0], end=seqs[1], size=2)

    assert redrive.main(["list", "--json"]) == 0

    listed = {x["key"]: x for x in last_json(capsys)}
    assert set(listed) == {dlq.bad_key, dlq.fragile_key, batch_key}
    bad, fragile, failed = listed[dlq.bad_key], listed[dlq.fragile_key], listed[batch_key]
    assert (bad["kind"], bad["detail"], bad["doc_ids"]) == ("invalid", "invalid-event", [])
    assert "not JSON" in bad["reason"] and bad["shard_id"] == SHARD_ID
    assert (fragile["detail"], fragile["doc_ids"]) == ("unindexable", ["fragile"])
    assert "ValidationException" in fragile["reason"]
    assert (failed["kind"], failed["sequence"], failed["records"]) == ("batch", f"{seqs[0]}..{seqs[1]}", 2)
    assert failed["reason"] == "RetryAttemptsExhausted; function error: Unhandled"
    assert not failed["records_in_letter"] and all(x["redriven_at"] is None for x in listed.values())


def test_list_as_text_and_filtered_by_kind(dlq, capsys):
    assert redrive.main(["list", "--kind", "invalid"]) == 0

    out = capsys.readouterr().out
    assert dlq.bad_key in out and "reason: record data is not JSON" in out and "doc_id=fragile" in out
    assert out.strip().endswith("2 item(s): 2 invalid, 0 batch; 0 already redriven")


def test_show_decodes_the_data(dlq, capsys):
    assert redrive.main(["show", dlq.fragile_key]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert shown["letter"]["kind"] == "unindexable" and shown["redriven"] is None
    [original] = shown["records"]
    assert original["event"] == {"doc_id": "fragile", "text": "A poison pill the model refused."}
    assert original["partition_key"] == "fragile"


def test_show_of_a_record_holding_control_characters_prints_json_that_parses(dlq, capsys):
    # The script's output goes through SafeStream, which escapes DEL and C1 controls in a way JSON cannot read:
    # the JSON is written with them escaped as JSON escapes instead.
    response = run(batch(b"not json \x7f \xc2\x9b31m"))
    assert response == {"batchItemFailures": []}
    keys = sorted(o["Key"] for o in dlq.s3.list_objects_v2(Bucket=DEAD_LETTERS)["Contents"])
    [key] = set(keys) - {dlq.bad_key, dlq.fragile_key}
    capsys.readouterr()

    assert redrive.main(["show", key]) == 0

    out = capsys.readouterr().out
    shown = json.loads(out)
    assert "\x7f" not in out and "\x9b" not in out
    assert shown["letter"]["kind"] == "invalid-event"
    assert redrive.main(["list", "--json"]) == 0
    assert key in {x["key"] for x in last_json(capsys)}


def test_show_of_a_batch_without_payload_reads_its_records_from_the_stream(dlq, capsys):
    seqs = put_documents(dlq.kinesis, "d1", "d2", "d3")
    key = put_on_failure_record(dlq.s3, start=seqs[0], end=seqs[1], size=2)

    assert redrive.main(["show", key]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert [r["event"]["doc_id"] for r in shown["records"]] == ["d1", "d2"]
    assert shown["letter"]["KinesisBatchInfo"]["batchSize"] == 2


def test_show_of_an_unknown_key_says_so(dlq, capsys):
    assert redrive.main(["show", "invalid/2026/01/01/shardId-000000000000/1.json"]) == 1
    assert "no dead letter invalid/2026/01/01/shardId-000000000000/1.json" in capsys.readouterr().err


# send
def test_send_puts_the_original_bytes_with_the_original_partition_key_and_the_indexer_indexes_it(dlq, capsys):
    assert redrive.main(["send", dlq.fragile_key, "--json"]) == 0

    [outcome] = last_json(capsys)
    [put] = records_on(dlq.kinesis)
    letter = json.loads(dlq.s3.get_object(Bucket=DEAD_LETTERS, Key=dlq.fragile_key)["Body"].read())
    assert put["PartitionKey"] == "fragile"
    # The event as it was, with its original version pinned: the arrival time as ts, the original sequence number.
    assert json.loads(put["Data"]) == {"doc_id": "fragile", "op": "upsert", "text": "A poison pill the model refused.",
                                       "source": "unknown", "ts": int(ARRIVAL), "seq": letter["sequence_number"]}
    assert outcome["status"] == "sent" and outcome["sequence_numbers"] == [put["SequenceNumber"]]
    marker = json.loads(dlq.s3.get_object(Bucket=DEAD_LETTERS, Key=f"redriven/{dlq.fragile_key}")["Body"].read())
    assert marker["records"][0]["sequence_number"] == put["SequenceNumber"] and marker["key"] == dlq.fragile_key
    # What the event source mapping then delivers is indexed now that the cause is fixed.
    assert run({"Records": [record(None, seq=10, partition_key=put["PartitionKey"],
                                   raw_data=base64.b64encode(put["Data"]).decode())]}) == {"batchItemFailures": []}
    assert "fragile" in stored_doc_ids(dlq.s3vectors)


def test_second_send_does_nothing_and_force_sends_again(dlq, capsys):
    assert redrive.main(["send", dlq.fragile_key]) == 0
    capsys.readouterr()

    assert redrive.main(["send", dlq.fragile_key]) == 0
    out = capsys.readouterr().out
    assert f"skipped {dlq.fragile_key}: already redriven at" in out and "(--force sends it again)" in out
    assert len(records_on(dlq.kinesis)) == 1

    assert redrive.main(["send", dlq.fragile_key, "--force"]) == 0
    assert len(records_on(dlq.kinesis)) == 2
    marker = json.loads(dlq.s3.get_object(Bucket=DEAD_LETTERS, Key=f"redriven/{dlq.fragile_key}")["Body"].read())
    assert marker["previous"]["key"] == dlq.fragile_key, "the earlier redrive is kept in the marker"


def test_event_the_contract_still_rejects_is_refused_unless_forced(dlq, capsys):
    assert redrive.main(["send", "--all", "--kind", "invalid"]) == 1

    out = capsys.readouterr().out
    assert f"refused {dlq.bad_key}: still invalid: record data is not JSON" in out
    assert "(fix the producer and put the corrected event, or pass --force)" in out
    assert f"sent {dlq.fragile_key}" in out and out.strip().endswith("1 sent, 1 refused")
    assert [r["PartitionKey"] for r in records_on(dlq.kinesis)] == ["fragile"]

    assert redrive.main(["send", dlq.bad_key, "--force"]) == 0
    assert [(r["PartitionKey"], r["Data"]) for r in records_on(dlq.kinesis)][-1] == ("pk", b"not json")


# The indexer refuses a ts more than a day ahead of the record's arrival, and a redriven record arrives now: a letter
# whose event still breaks that rule is refused, not sent to be dead-lettered again.
def letter_from_the_future(env, monkeypatch, *, days: int) -> tuple:
    """The stream, and the dead letter of an event ``days`` ahead of the clock that the indexer refused; its ts."""
    import time

    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    monkeypatch.setenv("STREAM_NAME", STREAM)
    ahead = int(time.time()) + days * 86_400
    assert run(batch({"doc_id": "early", "text": "From the future.", "ts": ahead})) == {"batchItemFailures": []}
    [key] = [o["Key"] for o in env.s3.list_objects_v2(Bucket=DEAD_LETTERS)["Contents"]]
    return kinesis, key, ahead


def test_an_event_still_ahead_of_the_clock_is_refused_not_sent_to_be_dead_lettered_again(env, monkeypatch, capsys):
    kinesis, key, ahead = letter_from_the_future(env, monkeypatch, days=3)

    assert redrive.main(["send", key]) == 1

    out = capsys.readouterr().out
    assert f"refused {key}: still invalid: ts={ahead} is 3 days ahead of the record's arrival" in out, out
    assert records_on(kinesis) == []


# Pinning a record's version adds "ts"/"seq" to its data: a record near Kinesis' 1 MiB is refused with the reason.
def test_a_record_over_kinesis_limit_once_its_version_is_pinned_is_refused_with_the_reason(dlq, capsys):
    from rtrag.core.limits import MAX_RECORD_BYTES

    event = {"doc_id": "big", "text": ""}
    event["text"] = "x" * (MAX_RECORD_BYTES - len(json.dumps(event)) - len("big"))
    data = json.dumps(event).encode()
    assert len(data) + len(b"big") == MAX_RECORD_BYTES  # sendable as it was put
    payload = {"Records": [record(data, seq=500, partition_key="big")]}
    seq = payload["Records"][0]["kinesis"]["sequenceNumber"]
    key = put_on_failure_record(dlq.s3, start=seq, end=seq, size=1, payload=payload, name="0009")

    assert redrive.main(["send", key]) == 1

    out = capsys.readouterr().out
    assert f"refused {key}: record 1 of 1 is " in out and f"at most {MAX_RECORD_BYTES}" in out, out
    assert records_on(dlq.kinesis) == []


def test_dry_run_sends_nothing_and_marks_nothing(dlq, capsys):
    assert redrive.main(["send", "--all", "--dry-run", "--force"]) == 0

    out = capsys.readouterr().out
    assert out.count("would-send invalid/") == 2 and out.strip().endswith("2 would-send")
    assert records_on(dlq.kinesis) == []
    assert not dlq.s3.list_objects_v2(Bucket=DEAD_LETTERS, Prefix="redriven/").get("Contents")


def test_batch_with_payload_puts_every_record_of_the_range_in_order(dlq, capsys):
    events = [{"doc_id": "d1", "text": "One.", "ts": 1}, {"doc_id": "d2", "text": "Two.", "ts": 2},
              {"doc_id": "d1", "text": "One, revised.", "ts": 3}]
    payload = {"Records": [record(e, seq=100 + i) for i, e in enumerate(events)]}
    first, last = (payload["Records"][i]["kinesis"]["sequenceNumber"] for i in (0, -1))
    key = put_on_failure_record(dlq.s3, start=first, end=last, size=3, payload=payload)

    assert redrive.main(["send", "--all", "--kind", "batch"]) == 0

    seqs = [r["kinesis"]["sequenceNumber"] for r in payload["Records"]]
    assert [(r["PartitionKey"], json.loads(r["Data"])) for r in records_on(dlq.kinesis)] == [
        (e["doc_id"], {"op": "upsert", "source": "unknown", **e, "seq": s}) for e, s in zip(events, seqs)]
    assert dlq.s3.get_object(Bucket=DEAD_LETTERS, Key=f"redriven/{key}.json")


def test_batch_without_payload_is_read_again_from_the_stream_and_put_back_in_order(dlq, capsys):
    seqs = put_documents(dlq.kinesis, "d1", "d2", "d3", "d4")
    key = put_on_failure_record(dlq.s3, start=seqs[1], end=seqs[2], size=2)

    assert redrive.main(["send", key]) == 0

    on_stream = records_on(dlq.kinesis)
    assert [r["PartitionKey"] for r in on_stream] == ["d1", "d2", "d3", "d4", "d2", "d3"]
    for original, redriven in zip(on_stream[1:3], on_stream[4:]):
        assert json.loads(redriven["Data"]) == {
            "op": "upsert", "source": "unknown", **json.loads(original["Data"]),
            "ts": int(original["ApproximateArrivalTimestamp"].timestamp()), "seq": original["SequenceNumber"]}


@pytest.mark.parametrize("case", ["expired", "stream gone"])
def test_batch_whose_records_the_stream_no_longer_holds_is_refused_with_the_reason(dlq, capsys, case):
    seqs = put_documents(dlq.kinesis, "d1", "d2")
    if case == "expired":  # the range starts before the oldest record the shard still has
        key = put_on_failure_record(dlq.s3, start=str(int(seqs[0]) - 1), end=seqs[1], size=3)
    else:
        key = put_on_failure_record(dlq.s3, start=seqs[0], end=seqs[1], size=2,
                                    stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/deleted-stream")

    assert redrive.main(["send", key]) == 1

    out = capsys.readouterr().out
    assert f"refused {key}: the batch {SHARD_ID}" in out and "retention period" in out
    assert "(replay them from the archive instead: reindex.py --from-archive --since <their date>)" in out
    assert len(records_on(dlq.kinesis)) == 2, "nothing put"
    assert not dlq.s3.list_objects_v2(Bucket=DEAD_LETTERS, Prefix="redriven/").get("Contents")


def test_items_are_redriven_oldest_record_first(dlq):
    from rtrag.aws.s3 import S3DeadLetters

    late = put_on_failure_record(dlq.s3, start="1", end="1", size=1, name="late",
                                 first_arrival="2026-01-01T01:13:20.000Z")
    early = put_on_failure_record(dlq.s3, start="2", end="2", size=1, name="early",
                                  first_arrival="2026-01-01T00:10:00.000Z")

    letters = Redriver(S3DeadLetters(dlq.s3, bucket=DEAD_LETTERS)).letters("batch")

    assert [x.key for x in letters] == [early, late]


def test_on_failure_record_with_its_payload_as_a_json_string_is_read_too():
    payload = {"Records": [record({"doc_id": "a", "text": "A."}, seq=1)]}
    body = {"KinesisBatchInfo": {"shardId": SHARD_ID, "startSequenceNumber": "1", "endSequenceNumber": "1",
                                 "batchSize": 1}, "requestContext": {"condition": "RecordAgeExceeded"},
            "payload": json.dumps(payload)}

    letter = parse_letter(f"aws/lambda/{ESM_UUID}/{SHARD_ID}/2026/01/01/x", body)

    assert [r.partition_key for r in letter.records] == ["a"] and letter.detail == "RecordAgeExceeded"


def test_send_needs_keys_or_all(capsys):
    with pytest.raises(SystemExit):
        redrive.parse_args(["send"])
    assert "give KEY... or --all" in capsys.readouterr().err


# local mode
@pytest.fixture
def local(tmp_path, monkeypatch):
    """The local pipeline with a bad event dead-lettered by the local runner, and a batch the runner gave up on
    (its handler crashed) written to the on-failure layout, past the runner's checkpoint."""
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    # Local mode quiets the handler's Powertools output for the rest of the process: keep it to this test.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    from rtrag.local.compose import LocalBackend
    from rtrag.local.runner import LocalEventSourceMapping

    pipeline = LocalBackend()
    for doc_id in ("d1", "d2"):
        pipeline.stream.put_record(json.dumps({"doc_id": doc_id, "text": f"{doc_id} owns the billing service."})
                                   .encode(), doc_id)

    def crash(event, context):
        raise RuntimeError("Bedrock access denied")

    summary = LocalEventSourceMapping(pipeline.stream, crash, on_failure=pipeline.dead_letters,
                                      max_retry_attempts=0, retry_backoff_seconds=0).run_once()
    assert summary.on_failure_records == 2
    pipeline.stream.put_record(b"not json", "pk-1")
    pipeline.drain()
    # The runner splits a failing batch until the failing record is alone: one on-failure record per document.
    pipeline.batch_keys = pipeline.dead_letters.list("aws/lambda/")
    pipeline.bad_key, = pipeline.dead_letters.list("invalid/")
    yield pipeline
    pipeline.close()


def test_local_list_shows_the_runners_letters_of_both_kinds(local, capsys):
    assert redrive.main(["list", "--local", "--json"]) == 0

    listed = {x["key"]: x for x in last_json(capsys)}
    assert sorted(listed[k]["doc_ids"][0] for k in local.batch_keys) == ["d1", "d2"]
    assert all(listed[k]["records_in_letter"] and listed[k]["records"] == 1 for k in local.batch_keys)
    assert all("Bedrock access denied" in listed[k]["reason"] for k in local.batch_keys)
    assert listed[local.bad_key]["kind"] == "invalid"


def test_local_send_indexes_the_redriven_batch_before_returning_and_only_once(local, capsys):
    assert local.index.count() == 0

    assert redrive.main(["send", "--all", "--kind", "batch", "--local"]) == 0

    assert sorted(k.split("#")[0] for k in local.index.list_keys()) == ["d1", "d2"]
    records = local.stream.count()
    assert local.dead_letters.list("redriven/") == sorted(f"redriven/{k}.json" for k in local.batch_keys)
    capsys.readouterr()

    first = local.batch_keys[0]
    assert redrive.main(["send", first, "--local"]) == 0
    assert "skipped" in capsys.readouterr().out and local.stream.count() == records

    assert redrive.main(["send", first, "--local", "--force"]) == 0
    assert local.stream.count() == records + 1


# A redriven record the local pipeline dead-letters again is named, and the command fails.
def test_a_local_redrive_that_is_dead_lettered_again_says_so_and_exits_1(local, capsys):
    assert redrive.main(["send", local.bad_key, "--local", "--force"]) == 1

    captured = capsys.readouterr()
    assert f"sent {local.bad_key}" in captured.out
    assert "dead-lettered again: doc_id=pk-1 (now invalid/" in captured.err
    assert "record data is not JSON" in captured.err


def test_local_batch_without_payload_is_read_from_the_local_stream(local, capsys):
    first = local.batch_keys[0]
    body = local.dead_letters.read(first)
    doc_id = body["payload"]["Records"][0]["kinesis"]["partitionKey"]
    del body["payload"]
    local.dead_letters.write_object(first, body)

    assert redrive.main(["show", first, "--local"]) == 0

    shown = json.loads(capsys.readouterr().out)["records"]
    assert [r["event"]["doc_id"] for r in shown] == [doc_id]


@pytest.mark.parametrize("command", ["show", "send"])
def test_local_show_or_send_of_a_key_that_is_no_letter_says_so_in_one_line(local, command, capsys):
    folder = local.bad_key.rsplit("/", 1)[0] + "/"  # a directory, not a letter
    for key in ("invalid/2026/01/01/none.json", "aws/lambda/none.json", folder):
        assert redrive.main([command, key, "--local"]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"error: no dead letter {key} in {local.dead_letters.directory}: see `redrive.py list --local`"


@pytest.mark.parametrize(("body", "says"), [('{"reason": "trunc', "is not a readable JSON file ("),
                                            ("[1, 2]", "holds JSON but not an object;")])
def test_a_local_letter_that_is_not_a_json_object_is_named_with_the_fix(local, capsys, body, says):
    (local.dead_letters.directory / local.bad_key).write_text(body)

    for argv in (["list", "--local"], ["show", local.bad_key, "--local"]):
        assert redrive.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {local.dead_letters.directory / local.bad_key} {says}")
        assert err.endswith(f"it is not a dead letter: move it out of {local.dead_letters.directory}")


# A letter whose fields have the wrong types is listed with its problem, the others as usual, and is not sent.
@pytest.mark.parametrize("body", [{"reason": "x", "data": 5}, {"approximate_arrival_timestamp": "yesterday"},
                                  {"reason": "x", "kind": "invalid-event", "partition_key": ["a"], "data": ""}])
def test_a_malformed_letter_is_listed_with_its_problem_and_hides_no_other(local, capsys, body):
    (local.dead_letters.directory / local.bad_key).write_text(json.dumps(body))

    assert redrive.main(["list", "--local", "--json"]) == 0
    listed = {x["key"]: x for x in last_json(capsys)}
    assert set(local.batch_keys) < set(listed), "the other letters are listed"
    assert redrive.main(["send", local.bad_key, "--local"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"refused {local.bad_key}: "), out
    assert any(why in out for why in ("malformed", "not base64", "still invalid")), out


# Two sends at once would send the same letters twice: in local mode the second is refused while the first runs.
def test_a_local_send_while_another_runs_is_refused(local, capsys):
    from rtrag.core.files import file_lock

    records = local.stream.count()
    with file_lock(local.root / "redrive.lock") as held:  # as the first send holds it
        assert held
        assert redrive.main(["send", "--all", "--kind", "batch", "--local"]) == 1
        assert redrive.main(["send", "--all", "--kind", "batch", "--local", "--dry-run"]) == 0, "a dry run sends none"

    assert "another redrive.py send is running on the local dead letters" in capsys.readouterr().err
    assert local.stream.count() == records
    assert redrive.main(["send", "--all", "--kind", "batch", "--local"]) == 0, "released"


# as a user runs it
def test_local_list_as_a_process(local):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "redrive.py"), "list", "--local"],
                            capture_output=True, text=True, env=env, timeout=60)

    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert result.stdout.strip().endswith("3 item(s): 1 invalid, 2 batch; 0 already redriven")


def test_a_dead_letter_is_looked_up_in_one_get_object_and_a_missing_one_is_none(env):
    from rtrag.aws.s3 import S3DeadLetters
    from rtrag.core.errors import RagError

    store = S3DeadLetters(env.s3, bucket=DEAD_LETTERS)
    key = store.write_object("invalid/2026/01/01/shard/1.json", {"reason": "not JSON"})
    calls: list[str] = []
    env.s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))

    assert store.find(key) == {"reason": "not JSON"} and store.find("invalid/2026/01/01/shard/2.json") is None
    assert calls == ["GetObject", "GetObject"]
    with pytest.raises(RagError, match="no-such-bucket"):
        S3DeadLetters(env.s3, bucket="no-such-bucket").find(key)


# A redriven event meets the deployed indexer's ts limit (the stack's MaxTsSkewSeconds), not the default: an event
# two days ahead is sent when the stack allows three, and refused when it allows one.
@pytest.mark.parametrize(("allowed_days", "sent"), [(3, True), (1, False)])
def test_redrive_holds_an_event_to_the_deployed_indexers_ts_limit(env, monkeypatch, capsys, allowed_days, sent):
    kinesis, key, _ = letter_from_the_future(env, monkeypatch, days=2)
    monkeypatch.setenv("MAX_TS_SKEW_SECONDS", str(allowed_days * 86_400))  # as the stack's output would say

    assert redrive.main(["send", key]) == (0 if sent else 1)
    assert (len(records_on(kinesis)) == 1) is sent, capsys.readouterr().out
