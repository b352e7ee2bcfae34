"""put_event.py against moto Kinesis: what it prints, and the records that land on the stream."""

from __future__ import annotations

import json

import boto3
import pytest

from rtrag.core.events import decode_event
from scripts import put_event

STREAM = "rag-documents"


@pytest.fixture
def stream(aws):
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    return kinesis


def records_on(kinesis) -> list[dict]:
    """Every record on the stream, shard by shard, in sequence order."""
    out = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out += kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    return out


def events_on(kinesis):
    return [decode_event(r["Data"], default_ts=0) for r in records_on(kinesis)]


def test_seed_form_puts_one_upsert_keyed_by_doc_id_and_prints_where_it_landed(stream, capsys):
    code = put_event.main(["Project Nimbus ships v3 on 2026-08-14.", "nimbus-v3", "--stream-name", STREAM])

    assert code == 0
    [record] = records_on(stream)
    assert record["PartitionKey"] == "nimbus-v3"
    event = decode_event(record["Data"], default_ts=0)
    assert (event.doc_id, event.op, event.text, event.source) == (
        "nimbus-v3", "upsert", "Project Nimbus ships v3 on 2026-08-14.", "unknown")
    assert event.ts > 1_700_000_000
    out = capsys.readouterr().out
    assert "doc_id=nimbus-v3" in out and f"sequence={record['SequenceNumber']}" in out and "shard=shardId-" in out


def test_doc_id_defaults_to_a_new_uuid_and_stream_name_comes_from_the_environment(stream, monkeypatch, capsys):
    monkeypatch.setenv("STREAM_NAME", STREAM)

    assert put_event.main(["A fact with no id.", "--json"]) == 0

    printed = json.loads(capsys.readouterr().out)
    [event] = events_on(stream)
    assert event.doc_id == printed["doc_id"] and len(event.doc_id) == 36


def test_options_build_a_typed_full_event(stream):
    code = put_event.main(["Rotate keys every 90 days.", "--doc-id", "runbook-42", "--source", "wiki",
                           "--metadata", "team=platform", "--metadata", "tier=1", "--metadata", "public=false",
                           "--metadata", "score=0.5", "--ts", "1767225600", "--stream-name", STREAM])

    assert code == 0
    [event] = events_on(stream)
    assert event.metadata == {"team": "platform", "tier": 1, "public": False, "score": 0.5}
    assert (event.source, event.ts) == ("wiki", 1767225600)


def test_delete_puts_a_delete_event(stream):
    assert put_event.main(["--delete", "nimbus-v3", "--stream-name", STREAM]) == 0

    [event] = events_on(stream)
    assert (event.doc_id, event.op, event.text) == ("nimbus-v3", "delete", None)


def test_bulk_file_retries_only_the_failed_entries_and_lands_every_event_once(stream, aws, tmp_path, capsys):
    lines = [json.dumps({"doc_id": f"doc-{i}", "text": f"Document number {i}.", "ts": 1000 + i}) for i in range(1200)]
    lines += [json.dumps({"doc_id": "doc-7", "op": "delete", "ts": 5000})]  # a second event for one document
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # The first PutRecords call loses every third entry (doc-7's upsert among them), as Kinesis does when a shard
    # is over its limit.
    aws.kinesis.fail_entries = lambda call, index: call == 1 and index % 3 == 1

    code = put_event.main(["--file", str(path), "--stream-name", STREAM])

    assert code == 0
    events = events_on(stream)
    assert sorted((e.doc_id, e.op) for e in events) == sorted(
        [(f"doc-{i}", "upsert") for i in range(1200)] + [("doc-7", "delete")])
    doc7 = [e.op for e in events if e.doc_id == "doc-7"]
    assert doc7 == ["upsert", "delete"], "events of one document keep their order across retries"
    out = capsys.readouterr().out
    assert "sent 1201, failed 0 (retried 167 entries)" in out
    assert aws.kinesis.calls == 4  # 500, the retry of 167, 500, then 200 and the doc-7 delete


def test_bad_jsonl_lines_are_reported_by_number_and_nothing_is_sent(stream, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text('{"doc_id": "ok", "text": "fine"}\nnot json\n\n{"doc_id": "a#b", "text": "x"}\n')

    code = put_event.main(["--file", str(path), "--stream-name", STREAM])

    assert code == 1
    err = capsys.readouterr().err
    assert "line 2: record data is not JSON" in err and "line 4: doc_id must not contain '#'" in err
    assert "nothing was sent" in err
    assert records_on(stream) == []


def test_events_read_back_from_the_stream_are_indexed_by_the_indexer(stream, env, tmp_path):
    import base64

    from conftest import run
    from kinesis import record

    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps({"doc_id": f"d{i}", "text": f"Text {i}.", "metadata": {"n": i}})
                              for i in range(5)))
    assert put_event.main(["--file", str(path), "--stream-name", STREAM]) == 0
    on_stream = records_on(stream)

    # Each record as the mapping delivers it, with the arrival time Kinesis gave it.
    response = run({"Records": [
        record(None, seq=i, raw_data=base64.b64encode(r["Data"]).decode(), partition_key=r["PartitionKey"],
               arrival=r["ApproximateArrivalTimestamp"].timestamp())
        for i, r in enumerate(on_stream)]})

    assert response == {"batchItemFailures": []}
    listed = env.s3vectors.list_vectors(vectorBucketName="vectors-test", indexName="docs", returnMetadata=True)
    assert sorted((v["key"], v["metadata"]["n"]) for v in listed["vectors"]) == [(f"d{i}#0", i) for i in range(5)]


@pytest.mark.parametrize("argv, message", [
    (["some text", "--stream-name", "missing-stream"], "the Kinesis stream was not found in us-east-1"),
    (["text", "--doc-id", "a#b", "--stream-name", STREAM], "doc_id must not contain '#'"),
    (["text", "--metadata", "novalue", "--stream-name", STREAM], "--metadata 'novalue' is not KEY=VALUE"),
    (["some text"], "stack RealtimeRag is not deployed in us-east-1"),
])
def test_failures_print_one_line_naming_the_cause_and_exit_non_zero(stream, argv, message, capsys):
    code = put_event.main(argv)

    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_no_credentials_is_explained(stream, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    code = put_event.main(["text", "--stream-name", STREAM])

    assert code == 1
    assert "no AWS credentials found: run `aws configure`" in capsys.readouterr().err
