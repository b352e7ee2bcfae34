"""put_event.py against moto Kinesis: what it prints, and the records that land on the stream."""

from __future__ import annotations

import json

import boto3
import pytest
from fakes import listed_vectors

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
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: 2 invalid line(s); nothing was sent; fix these lines and run it again:"
    assert err[1].startswith("  line 2: record data is not JSON") and err[2].startswith("  line 4: doc_id must not")
    assert len(err) == 3
    assert records_on(stream) == []


def test_a_bad_line_cannot_forge_lines_of_the_error(stream, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"doc_id": "x", "text": "t", "error: all good\nfake": 1}) + "\n")

    assert put_event.main(["--file", str(path), "--stream-name", STREAM]) == 1

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1].startswith("  line 1: ") and "\\n" in err[1]


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
    listed = {"vectors": listed_vectors(env.s3vectors, "vectors-test", "docs", returnMetadata=True)}
    assert sorted((v["key"], v["metadata"]["n"]) for v in listed["vectors"]) == [(f"d{i}#0", i) for i in range(5)]


@pytest.mark.parametrize("argv, message", [
    (["some text", "--stream-name", "missing-stream"], "Kinesis stream missing-stream was not found in us-east-1"),
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


# An interrupted bulk send says what was sent and where to resume, and resuming loses no line.
class InterruptedStream:
    """The real stream, with Ctrl-C arriving during PutRecords call number ``at``: before the call when
    ``landed`` is False, or after Kinesis took the records but before its answer arrived when it is True."""

    def __init__(self, stream, *, at: int, landed: bool):
        self.stream, self.at, self.landed, self.calls = stream, at, landed, 0

    def put(self, event):
        return self.stream.put(event)

    def put_batch(self, events):
        self.calls += 1
        if self.calls == self.at:
            if self.landed:
                self.stream.put_batch(events)
            raise KeyboardInterrupt
        return self.stream.put_batch(events)


def bulk_file(tmp_path, count: int) -> tuple[str, dict[int, str]]:
    """``count`` events with a blank line after every 100th, so line numbers and event positions differ; returns
    the path and the doc id on each line."""
    lines, doc_on_line = [], {}
    for i in range(count):
        lines.append(json.dumps({"doc_id": f"doc-{i}", "text": f"Document number {i}.", "ts": 1000 + i}))
        doc_on_line[len(lines)] = f"doc-{i}"
        if i % 100 == 99:
            lines.append("")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path), doc_on_line


def resume_command(err: str) -> list[str]:
    [line] = [x for x in err.splitlines() if x.startswith("to send the rest: ")]
    prefix = "to send the rest: python scripts/put_event.py "
    assert line.startswith(prefix)
    import shlex

    return shlex.split(line[len(prefix):])


@pytest.mark.parametrize("landed", [False, True], ids=["before-the-call", "answer-lost"])
def test_interrupted_bulk_send_prints_what_was_sent_and_the_line_to_resume_from(stream, tmp_path, monkeypatch,
                                                                                 capsys, landed):
    path, doc_on_line = bulk_file(tmp_path, 1200)
    real_open = put_event.open_stream
    monkeypatch.setattr(put_event, "open_stream", lambda args: InterruptedStream(real_open(args), at=3, landed=landed))

    code = put_event.main(["--file", path, "--stream-name", STREAM])

    err = capsys.readouterr().err
    assert code == 130
    # Two calls of 500 were acknowledged; the third (events 1000..1199) was in flight: not known to be sent.
    first_unsent = next(line for line, doc in doc_on_line.items() if doc == "doc-1000")
    assert f"interrupted: 1000 of 1200 event(s) were sent (acknowledged by the stream); line {first_unsent} of " \
           f"{path} is the first not sent" in err
    argv = resume_command(err)
    assert argv[-2:] == ["--from-line", str(first_unsent)] and argv[:-2] == ["--file", path, "--stream-name", STREAM]

    monkeypatch.setattr(put_event, "open_stream", real_open)
    assert put_event.main(argv) == 0
    assert "sent 200, failed 0" in capsys.readouterr().out
    sent = [e.doc_id for e in events_on(stream)]
    assert set(sent) == set(doc_on_line.values()), "no line is lost"
    # Only the in-flight call's events can be on the stream twice (harmless: the greater version wins).
    assert len(sent) == 1200 + (200 if landed else 0)


def test_interrupted_retry_resumes_at_the_first_unacknowledged_entry_not_after_the_last_acknowledged(
        stream, aws, tmp_path, monkeypatch, capsys):
    path, doc_on_line = bulk_file(tmp_path, 600)
    # The first call loses every third entry; Ctrl-C arrives while the script waits to retry them.
    aws.kinesis.fail_entries = lambda call, index: call == 1 and index % 3 == 1

    def interrupted_wait(attempt, **kwargs):
        raise KeyboardInterrupt

    from rtrag.workflows import produce

    real_delay = produce.backoff_delay
    monkeypatch.setattr(produce, "backoff_delay", interrupted_wait)

    code = put_event.main(["--file", path, "--stream-name", STREAM, "--json"])

    captured = capsys.readouterr()
    assert code == 130
    # Entries 0, 2, 3, 5, ... of the first call were taken (333 of 500); entry 1 (doc-1, line 2) was not.
    assert "interrupted: 333 of 600 event(s) were sent" in captured.err and f"line 2 of {path}" in captured.err
    assert "332 event(s) after it were sent too" in captured.err
    assert json.loads(captured.out) == {"interrupted": True, "sent": 333, "total": 600, "resume_from_line": 2}

    monkeypatch.setattr(produce, "backoff_delay", real_delay)
    assert put_event.main(resume_command(captured.err)) == 0
    assert {e.doc_id for e in events_on(stream)} == set(doc_on_line.values()), "no line is lost"


def test_from_line_starts_at_that_line_and_needs_a_file(stream, tmp_path, capsys):
    path, doc_on_line = bulk_file(tmp_path, 150)  # line 101 is blank

    assert put_event.main(["--file", path, "--stream-name", STREAM, "--from-line", "101"]) == 0
    assert sorted(e.doc_id for e in events_on(stream)) == sorted(
        doc for line, doc in doc_on_line.items() if line >= 101)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        put_event.main(["text", "--from-line", "3", "--stream-name", STREAM])
    assert "--from-line N goes with --file" in capsys.readouterr().err
    assert put_event.main(["--file", path, "--stream-name", STREAM, "--from-line", "500"]) == 1
    assert f"{path} has no event from line 500 on: nothing to send" in capsys.readouterr().err


# In local mode the put's outcome is known when the command returns: an ignored put says so, and why.
@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


def test_a_local_put_older_than_the_stored_version_is_reported_ignored_with_both_versions(local, tmp_path, capsys):
    assert put_event.main(["--local", "Text A.", "doc", "--ts", "300"]) == 0
    stored = capsys.readouterr().out.split("sequence=")[1].strip()

    code = put_event.main(["--local", "Text B.", "doc", "--ts", "200"])

    out, err = capsys.readouterr()
    ignored = out.split("sequence=")[1].split(":")[0]
    assert code == 1
    assert out.startswith("put upsert doc_id=doc ") and out.rstrip().endswith(": ignored, not indexed")
    assert (f"ignored: doc already holds a version newer than this event (stored ts 300, seq {stored}; this "
            f"event's ts 200, seq {ignored}: the greater ts wins, then the greater seq)") in err

    # Same ts: the sequence number decides, and the message shows it.
    path = tmp_path / "same-ts.jsonl"
    path.write_text(json.dumps({"doc_id": "doc", "text": "Text C.", "ts": 300, "seq": "5"}) + "\n")
    assert put_event.main(["--local", "--file", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "documents: 0 indexed, 1 ignored" in out
    assert f"(stored ts 300, seq {stored}; this event's ts 300, seq 5:" in err

    assert put_event.main(["--local", "--delete", "doc", "--ts", "100", "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "ignored" and "stored ts 300" in printed["reason"]


def test_a_local_bulk_put_interrupted_while_indexing_says_everything_was_put_and_how_to_index_it(
        local, tmp_path, monkeypatch, capsys):
    from rtrag.local.compose import LocalBackend
    from scripts import local_indexer

    path, doc_on_line = bulk_file(tmp_path, 5)
    real_drain = LocalBackend.drain

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalBackend, "drain", interrupted)

    assert put_event.main(["--local", "--file", path]) == 130

    err = capsys.readouterr().err
    assert "interrupted while indexing: 5 event(s) were put on the local stream" in err
    assert "`python scripts/local_indexer.py` indexes the rest of them" in err
    monkeypatch.setattr(LocalBackend, "drain", real_drain)
    assert local_indexer.main([]) == 0
    backend = LocalBackend()
    try:
        assert {k.split("#")[0] for k in backend.index.list_keys()} == set(doc_on_line.values())
    finally:
        backend.close()


@pytest.mark.parametrize(("argv", "message"), [
    (["--file", "x.jsonl", "--source", "wiki", "--ts", "5"], "--source, --ts: with --file, each line is a whole event"),
    (["--file", "x.jsonl", "--doc-id", "a"], "--doc-id: with --file, each line is a whole event"),
    (["--file", "x.jsonl", "--ts", "0"], "--ts: with --file, each line is a whole event"),
    (["--file", "x.jsonl", "--source", ""], "--source: with --file, each line is a whole event"),
    (["--delete", "a", "--metadata", "team=x"], "--metadata: --delete names the document, and a delete has no"),
    (["--delete", "a", "--doc-id", "b"], "--doc-id: --delete names the document"),
    (["--local", "--stream-name", "s", "text", "a"], "--stream-name names an AWS resource; local mode has one stream"),
    (["--local", "--stream-name", "", "text", "a"], "--stream-name names an AWS resource; local mode has one stream"),
])
def test_an_option_that_would_change_nothing_is_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        put_event.parse_args(argv)

    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_a_doc_id_longer_than_a_partition_key_is_put_under_its_digest_and_indexed(stream, env, capsys):
    import base64
    import hashlib

    from conftest import run
    from kinesis import record

    doc_id = "d" * 300  # the contract allows 512 characters; Kinesis a 256-character partition key

    assert put_event.main(["A long-named document.", doc_id, "--stream-name", STREAM]) == 0

    [put] = records_on(stream)
    assert put["PartitionKey"] == "sha256:" + hashlib.sha256(doc_id.encode()).hexdigest()
    response = run({"Records": [record(None, seq=1, raw_data=base64.b64encode(put["Data"]).decode(),
                                       partition_key=put["PartitionKey"],
                                       arrival=put["ApproximateArrivalTimestamp"].timestamp())]})
    assert response == {"batchItemFailures": []}
    listed = listed_vectors(env.s3vectors, "vectors-test", "docs")
    assert [v["key"] for v in listed] == [f"{doc_id}#0"]
    assert "partition key other than their doc id" not in capsys.readouterr().out


def test_an_empty_file_says_there_is_nothing_to_send(stream, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text("\n\n")

    assert put_event.main(["--file", str(path), "--stream-name", STREAM]) == 1

    assert capsys.readouterr().err.strip() == (f"error: {path} holds no event (only blank lines, or nothing): "
                                               "nothing to send")
    assert records_on(stream) == []


def test_command_line_text_that_is_not_utf8_is_named_as_such(stream, capsys):
    text = b"caf\xe9 opens at 9".decode("utf-8", "surrogateescape")  # Latin-1 bytes from a terminal

    assert put_event.main([text, "menu", "--stream-name", STREAM]) == 1

    assert capsys.readouterr().err.strip() == ("error: TEXT is not valid UTF-8 text: type it in a UTF-8 terminal or "
                                               "locale, or put the event in a UTF-8 file and send it with --file")
    assert records_on(stream) == []
