"""reindex.py: archived events replayed in order onto the stream or into an index, against moto (S3 archive objects
in Firehose's layout, Kinesis, S3 Vectors, the Titan fake); resumable after a crash, never
twice, and unchanged documents cost no embedding calls. Local mode: test_reindex_local.py."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pytest
from conftest import BUCKET, DEAD_LETTERS, INDEX
from fakes import listed_vectors
from test_put_event import STREAM, records_on

from rtrag.cli.common import explain
from rtrag.core.events import decode_event
from rtrag.workflows.checkpoint import Checkpoint
from rtrag.workflows.sources import HourWindow, InvalidWindow, Position, SourceRecord, archive_hour
from rtrag.workflows.targets import IndexTarget, ReplayStopped, sequence_number
from scripts import reindex

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = "archive-test"


def event(doc_id: str, text: str | None, ts: int, **extra) -> dict:
    out = {"doc_id": doc_id, "ts": ts, **extra}
    if text is not None:
        out["text"] = text
    return out


# Three hours of archive: updates of one document across objects, a delete, a bad line, and Firehose's errors/.
HOURS = {
    "events/2026/01/01/00/rag-archive-1-2026-01-01-00-05-00-aaaa.gz": [
        event("alpha", "Alpha ships the first release in January.", 100),
        event("beta", "Beta handles billing for the platform team.", 101),
        event("gamma", "Gamma is retired next year.", 102),
    ],
    "events/2026/01/01/00/rag-archive-1-2026-01-01-00-20-00-bbbb.gz": [
        event("alpha", "Alpha now ships the first release in February.", 200),
        "this line is not an event",
    ],
    "events/2026/01/01/01/rag-archive-1-2026-01-01-01-00-00-cccc.gz": [
        event("gamma", None, 300, op="delete"),
        event("delta", "Delta owns the search service.", 301),
        event("alpha", "Alpha finally ships the first release in March.", 302),
    ],
}
FINAL = {"alpha": "Alpha finally ships the first release in March.",
         "beta": "Beta handles billing for the platform team.", "delta": "Delta owns the search service."}
VALID_EVENTS = sum(1 for lines in HOURS.values() for line in lines if isinstance(line, dict))
LINES = sum(len(lines) for lines in HOURS.values())
# reindex.py's exit status for a run that dead-letters the archive's one bad line (0 once it is dead-lettered)
DEAD_LETTERED_ONE = 1


def gz_lines(lines) -> bytes:
    return gzip.compress("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines).encode())


@pytest.fixture
def archive(env, monkeypatch, tmp_path):
    """The archive bucket as Firehose fills it, the stream, and the scripts' environment; run from tmp_path so
    the default checkpoint directory is the test's own."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ARCHIVE)
    for key, lines in HOURS.items():
        s3.put_object(Bucket=ARCHIVE, Key=key, Body=gz_lines(lines))
    s3.put_object(Bucket=ARCHIVE, Key="errors/2026/01/01/00/processing-failed.gz", Body=gz_lines(["{}"]))
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    monkeypatch.setenv("ARCHIVE_BUCKET", ARCHIVE)
    monkeypatch.setenv("STREAM_NAME", STREAM)
    monkeypatch.chdir(tmp_path)
    env.kinesis = kinesis
    return env


def stored_texts(s3vectors, index: str = INDEX) -> dict[str, str]:
    """doc_id -> text of every document in the index (from its chunks)."""
    vectors = listed_vectors(s3vectors, BUCKET, index, returnMetadata=True)
    return {v["metadata"]["doc_id"]: v["metadata"]["source_text"] for v in vectors}


def letters(s3, prefix="invalid/") -> list[dict]:
    listed = s3.list_objects_v2(Bucket=DEAD_LETTERS, Prefix=prefix).get("Contents", [])
    return [json.loads(s3.get_object(Bucket=DEAD_LETTERS, Key=o["Key"])["Body"].read()) for o in listed]


def json_out(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


# into an index
def test_archive_replayed_into_the_index_leaves_the_last_event_of_each_document(archive, capsys):
    code = reindex.main(["--to-index", "--indexer-disabled", "--json"])

    assert code == DEAD_LETTERED_ONE
    assert stored_texts(archive.s3vectors) == FINAL, "order kept: alpha's March text, gamma deleted, errors/ skipped"
    run = json_out(capsys)["run"]
    assert run["read"] == LINES and run["dead_lettered"] == 1 and run["failed"] == 0
    [letter] = letters(archive.s3)
    assert letter["data"] and "not JSON" in letter["reason"]
    assert letter["event_source_arn"] == f"s3://{ARCHIVE}/{list(HOURS)[1]}#L2", "the letter says where the line is"


def test_second_replay_of_unchanged_documents_makes_no_embedding_calls(archive, capsys):
    assert reindex.main(["--to-index", "--indexer-disabled", "--json"]) == DEAD_LETTERED_ONE
    first = json_out(capsys)["run"]
    calls_after_first = archive.aws.titan.calls

    assert reindex.main(["--to-index", "--indexer-disabled", "--json", "--restart"]) == 0

    second = json_out(capsys)["run"]
    assert archive.aws.titan.calls == calls_after_first, "no Bedrock call for documents whose content is stored"
    assert first["embedding_calls"] == calls_after_first > 0 and second["embedding_calls"] == 0
    # Each replayed event carries the version it had the first time: not newer than what is stored.
    assert (second["indexed"], second["unchanged"], second["stale"]) == (0, 0, VALID_EVENTS)
    assert stored_texts(archive.s3vectors) == FINAL


def test_replay_in_small_batches_never_brings_back_a_deleted_document(archive, capsys):
    assert reindex.main(["--to-index", "--indexer-disabled"]) == DEAD_LETTERED_ONE
    calls_after_first = archive.aws.titan.calls

    assert reindex.main(["--to-index", "--indexer-disabled", "--batch-size", "3", "--restart"]) == 0

    # gamma was deleted: its tombstone holds its archived upsert (older, and in an earlier batch than the delete)
    # back, so it is neither embedded nor written.
    assert archive.aws.titan.texts[calls_after_first:] == []
    assert stored_texts(archive.s3vectors) == FINAL


def test_crash_after_two_batches_then_rerun_resumes_without_replaying_anything_twice(archive, monkeypatch, capsys):
    from rtrag.indexing.batch import BatchIndexer

    real = BatchIndexer.process
    seen: list[str] = []

    def crash_on_third_batch(self, records):
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C, or the machine going away, before the third batch
        seen.append("batch")
        return real(self, records)

    monkeypatch.setattr(BatchIndexer, "process", crash_on_third_batch)
    assert reindex.main(["--to-index", "--indexer-disabled", "--batch-size", "2", "--json"]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    [checkpoint_file] = Path(".rag-reindex").glob("*.json")
    assert Checkpoint.load(checkpoint_file).ordinal == 4
    calls_before = archive.aws.titan.calls

    monkeypatch.setattr(BatchIndexer, "process", real)
    assert reindex.main(["--to-index", "--indexer-disabled", "--batch-size", "2", "--json"]) == DEAD_LETTERED_ONE

    result = json_out(capsys)
    assert result["resumed"] and result["run"]["read"] == LINES - 4 and result["total"]["read"] == LINES
    assert stored_texts(archive.s3vectors) == FINAL
    # Each document version is embedded once over both runs: alpha x3, beta, gamma, delta.
    assert archive.aws.titan.calls == 6 and calls_before < 6


def test_a_finished_job_run_again_reads_only_what_was_archived_since(archive, capsys):
    assert reindex.main(["--to-index", "--indexer-disabled", "--json"]) == DEAD_LETTERED_ONE
    capsys.readouterr()
    boto3.client("s3").put_object(Bucket=ARCHIVE, Key="events/2026/01/01/02/rag-archive-1-2026-01-01-02-00-00-dddd.gz",
                                  Body=gz_lines([event("beta", "Beta moved to the payments team.", 400)]))

    assert reindex.main(["--to-index", "--indexer-disabled", "--json"]) == 0

    result = json_out(capsys)
    assert result["run"]["read"] == 1 and result["run"]["indexed"] == 1
    assert stored_texts(archive.s3vectors)["beta"] == "Beta moved to the payments team."


def test_replay_into_a_new_index_of_another_dimension(archive, capsys):
    # A new index for a new embedding dimension; the pipeline's index (256) stays as it is.
    archive.s3vectors.create_index(vectorBucketName=BUCKET, indexName="docs-512", dataType="float32", dimension=512,
                                   distanceMetric="cosine",
                                   metadataConfiguration={"nonFilterableMetadataKeys": ["source_text"]})

    code = reindex.main(["--to-index", "--vector-index", "docs-512", "--json"])

    assert code == DEAD_LETTERED_ONE
    assert stored_texts(archive.s3vectors, "docs-512") == FINAL
    vectors = archive.s3vectors.get_vectors(vectorBucketName=BUCKET, indexName="docs-512",
                                            keys=["alpha#0"], returnData=True)["vectors"]
    assert len(vectors[0]["data"]["float32"]) == 512
    assert stored_texts(archive.s3vectors) == {}, "the pipeline's own index is untouched"
    assert json_out(capsys)["target"] == f"index:{BUCKET}/docs-512"


def test_since_and_until_select_archive_hours(archive, capsys):
    code = reindex.main(["--to-index", "--indexer-disabled", "--since", "2026-01-01T01", "--until", "2026-01-01", "--json"])

    assert code == 0
    assert json_out(capsys)["run"]["read"] == 3
    assert stored_texts(archive.s3vectors) == {"alpha": FINAL["alpha"], "delta": FINAL["delta"]}


def test_missing_index_names_the_command_that_creates_it(archive, capsys):
    assert reindex.main(["--to-index", "--vector-index", "no-such-index"]) == 1

    err = capsys.readouterr().err
    assert "vector index no-such-index not found" in err and "aws s3vectors create-index" in err
    assert "Traceback" not in err


def test_documents_that_keep_failing_are_retried_with_backoff_then_the_replay_stops(env, monkeypatch):
    import indexer

    env.aws.titan.throttle = lambda text: "stubborn" in text
    monkeypatch.setenv("EMBED_MAX_ATTEMPTS", "1")  # no botocore retries: failures reach batchItemFailures at once
    sleeps: list[float] = []
    monkeypatch.setattr("rtrag.core.backoff.random.uniform", lambda low, high: high)  # the ceiling of the jitter
    target = IndexTarget(indexer.handler.indexer, description="index", max_attempts=3, sleep=sleeps.append)
    batch = [(i, SourceRecord(Position("u", i), json.dumps(event(d, t, 1)).encode(), 0.0, f"u#L{i}"))
             for i, (d, t) in enumerate([("ok", "Fine text."), ("bad", "A stubborn text.")], start=1)]

    with pytest.raises(ReplayStopped, match=r"1 document\(s\) could not be written after 3 attempts \(bad\)"):
        target.deliver(batch)

    assert sleeps == [1.0, 2.0]  # full-jitter backoff between the attempts, its ceiling doubling
    assert env.aws.titan.texts.count("A stubborn text.") == 3 and env.aws.titan.texts.count("Fine text.") == 1
    assert set(stored_texts(env.s3vectors)) == {"ok"}


def test_failed_documents_retried_once_the_cause_is_gone_are_indexed(env, monkeypatch):
    import indexer

    attempts = {"n": 0}

    def throttle_first_two(text):
        attempts["n"] += 1
        return attempts["n"] <= 2

    env.aws.titan.throttle = throttle_first_two
    monkeypatch.setenv("EMBED_MAX_ATTEMPTS", "1")
    target = IndexTarget(indexer.handler.indexer, description="index", sleep=lambda s: None)
    record = SourceRecord(Position("u", 1), json.dumps(event("d", "Some text.", 1)).encode(), 0.0, "u#L1")

    counts = target.deliver([(1, record)])

    assert (counts.indexed, counts.retried, counts.failed) == (1, 2, 0)
    assert stored_texts(env.s3vectors) == {"d": "Some text."}


# onto the stream
def test_archive_replayed_onto_the_stream_puts_each_event_once_keyed_by_doc_id_in_order_with_its_version(
        archive, capsys):
    code = reindex.main(["--to-stream", "--json"])

    assert code == DEAD_LETTERED_ONE
    on_stream = records_on(archive.kinesis)
    lines = [x for lines in HOURS.values() for x in lines]
    # Each archived event once, as it was, with a seq pinned: its line's place in the replay (below any Kinesis
    # sequence number, so it never wins a tie of ts against an event the stream delivered).
    expected = [{**({"op": "upsert", "source": "unknown"} if x.get("op") != "delete" else {}), **x, "seq": str(n)}
                for n, x in enumerate(lines, start=1) if isinstance(x, dict)]
    put = [json.loads(r["Data"]) for r in on_stream]
    assert sorted(put, key=lambda e: int(e["seq"])) == expected
    assert all(r["PartitionKey"] == decode_event(r["Data"], default_ts=0).doc_id for r in on_stream)
    alpha = [decode_event(r["Data"], default_ts=0).ts for r in on_stream if r["PartitionKey"] == "alpha"]
    assert alpha == [100, 200, 302], "one document's events stay in archive order on its shard"
    run = json_out(capsys)["run"]
    assert (run["read"], run["sent"], run["dead_lettered"]) == (LINES, VALID_EVENTS, 1)
    assert len(letters(archive.s3)) == 1


def test_stream_replay_interrupted_then_rerun_puts_every_event_exactly_once(archive, monkeypatch, capsys):
    from rtrag.aws.kinesis import KinesisStream

    real = KinesisStream.put_batch
    calls = {"n": 0}

    def crash_on_third_call(self, events):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, events)

    monkeypatch.setattr(KinesisStream, "put_batch", crash_on_third_call)
    assert reindex.main(["--to-stream", "--batch-size", "2"]) == 130
    assert 0 < len(records_on(archive.kinesis)) < VALID_EVENTS

    monkeypatch.setattr(KinesisStream, "put_batch", real)
    assert reindex.main(["--to-stream", "--batch-size", "2", "--json"]) == 0

    assert len(records_on(archive.kinesis)) == VALID_EVENTS, "no event lost, none put twice"
    assert json_out(capsys)["total"]["read"] == LINES


def test_entries_the_stream_keeps_refusing_stop_the_replay_before_the_checkpoint(archive, monkeypatch, capsys):
    monkeypatch.setattr("rtrag.workflows.targets.time.sleep", lambda s: None)
    archive.aws.kinesis.fail_entries = lambda call, index: index == 0  # the first entry of every call, forever

    assert reindex.main(["--to-stream", "--batch-size", "3"]) == 1

    err = capsys.readouterr().err
    assert "record(s) were not accepted by the stream after 12 attempts (ProvisionedThroughputExceededException)" in err
    assert "it resumes after the last complete batch" in err
    assert not list(Path(".rag-reindex").glob("*.json")), "nothing complete, so no checkpoint"


def test_jsonl_file_replayed_onto_the_stream(archive, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(event(f"d{i}", f"Text {i}.", i)) for i in range(7)) + "\n\n")

    assert reindex.main(["--to-stream", "--from-jsonl", str(path)]) == 0

    assert sorted(r["PartitionKey"] for r in records_on(archive.kinesis)) == [f"d{i}" for i in range(7)]
    assert capsys.readouterr().out.strip() == "read 7, sent 7, dead-lettered 0, failed 0"


def test_directory_of_archive_files_skips_errors_and_honours_the_window(archive, tmp_path, capsys):
    copy = tmp_path / "copy"
    for key, lines in HOURS.items():
        (copy / key).parent.mkdir(parents=True, exist_ok=True)
        (copy / key).write_bytes(gz_lines(lines))
    (copy / "errors" / "2026").mkdir(parents=True)
    (copy / "errors" / "2026" / "failed.gz").write_bytes(gz_lines([event("x", "Not an event source.", 1)]))

    assert reindex.main(["--to-index", "--indexer-disabled", "--from-dir", str(copy), "--until", "2026-01-01T00", "--json"]) == DEAD_LETTERED_ONE

    assert json_out(capsys)["run"]["read"] == 5
    assert stored_texts(archive.s3vectors) == {"alpha": "Alpha now ships the first release in February.",
                                               "beta": FINAL["beta"], "gamma": "Gamma is retired next year."}


def test_checkpoint_of_another_replay_is_not_resumed(archive, tmp_path, capsys):
    other = tmp_path / "cp.json"
    Checkpoint(job="x", source="s3://elsewhere/events/", target="stream:other", position=Position("k", 1)).save(other)

    assert reindex.main(["--to-stream", "--checkpoint", str(other)]) == 1
    assert ("belongs to another replay (source s3://elsewhere/events/, target stream:other): pass another "
            "--checkpoint, or --restart to overwrite it") in capsys.readouterr().err

    assert reindex.main(["--to-stream", "--checkpoint", str(other), "--restart"]) == DEAD_LETTERED_ONE
    assert len(records_on(archive.kinesis)) == VALID_EVENTS


def test_unreadable_checkpoint_missing_source_and_missing_bucket_name_the_flag_that_fixes_them(archive, tmp_path,
                                                                                               monkeypatch, capsys):
    broken = tmp_path / "cp.json"
    broken.write_text("{not json")
    assert reindex.main(["--to-stream", "--checkpoint", str(broken)]) == 1
    assert f"checkpoint {broken} is unreadable" in (err := capsys.readouterr().err)
    assert "pass --restart to replay from the start (it is overwritten)" in err

    assert reindex.main(["--to-index", "--indexer-disabled", "--from-dir", str(tmp_path / "nowhere")]) == 1
    assert f"error: --from-dir {tmp_path / 'nowhere'}: no such directory" in capsys.readouterr().err
    assert reindex.main(["--to-index", "--indexer-disabled", "--from-jsonl", str(tmp_path / "none.jsonl")]) == 1
    assert f"error: --from-jsonl {tmp_path / 'none.jsonl'}: no such file" in capsys.readouterr().err
    assert reindex.main(["--to-index", "--indexer-disabled", "--from-jsonl", str(tmp_path)]) == 1
    assert f"error: --from-jsonl {tmp_path}: a directory, not a file: use --from-dir" in capsys.readouterr().err

    monkeypatch.setenv("ARCHIVE_BUCKET", "no-such-archive")
    assert reindex.main(["--to-stream"]) == 1
    err = capsys.readouterr().err
    assert "archive bucket no-such-archive does not exist (the archive is off unless archive_enabled" in err
    assert "or name the archive bucket with --archive-bucket or ARCHIVE_BUCKET" in err


def test_archive_disabled_says_how_to_enable_it(archive, monkeypatch, capsys):
    monkeypatch.delenv("ARCHIVE_BUCKET")

    assert reindex.main(["--to-stream"]) == 1

    err = capsys.readouterr().err
    assert "archive_enabled" in err and "--from-dir" in err


@pytest.mark.parametrize("argv, message", [
    (["--to-stream", "--local", "--from-archive"], "--local has no archive bucket"),
    (["--to-stream", "--from-stream"], "--from-stream replays the local stream"),
    (["--to-index", "--from-jsonl", "x.jsonl", "--since", "2026-01-01"], "--since/--until select archive hours"),
    (["--from-dir", "x"], "one of the arguments --to-stream --to-index is required"),
])
def test_contradicting_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        reindex.parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_hours_and_windows():
    assert archive_hour("events/2026/01/31/23/name-2026-01-31-23-59-00.gz") == (2026, 1, 31, 23)
    assert archive_hour("notes.txt") is None
    window = HourWindow.parse("2026-01-31", "2026-02-01T05")
    assert window.admits((2026, 1, 31, 0)) and window.admits((2026, 2, 1, 5))
    assert not window.admits((2026, 2, 1, 6)) and not window.admits((2026, 1, 30, 23))
    with pytest.raises(InvalidWindow, match="not a UTC date or hour") as bad:
        HourWindow.parse(None, "2026-02-30")
    assert bad.value.bound == "until" and explain(bad.value).startswith("--until '2026-02-30' is not a UTC date")
    with pytest.raises(InvalidWindow, match="starts at 2026-02-02, after it ends at 2026-02-01") as empty:
        HourWindow.parse("2026-02-02", "2026-02-01")
    assert empty.value.bound is None and explain(empty.value).endswith("--since must not be after --until")
    assert sequence_number(12) == "00000000000000000012" and int(sequence_number(12)) == 12


# A checkpoint of an index deleted and created again under its name is not resumed.
def create_index(name: str) -> None:
    boto3.client("s3vectors").create_index(vectorBucketName=BUCKET, indexName=name, dataType="float32",
                                           dimension=256, distanceMetric="cosine",
                                           metadataConfiguration={"nonFilterableMetadataKeys": ["source_text"]})


def test_a_stream_replay_after_the_pipelines_index_was_replaced_starts_over(creation_times, archive, monkeypatch,
                                                                           capsys):
    # The stack replaces its index under a new name (a new dimension, say): the replay onto the stream is checked
    # against the index the pipeline writes, so it refills the new one instead of resuming after the old one.
    assert reindex.main(["--to-stream", "--json"]) == DEAD_LETTERED_ONE
    first = json_out(capsys)
    assert first["run"]["sent"] == VALID_EVENTS and first["resumed"] is False
    create_index("docs-v2")
    monkeypatch.setenv("VECTOR_INDEX", "docs-v2")
    archive.kinesis.delete_stream(StreamName=STREAM)  # a clean stream, to count what the second run sends
    archive.kinesis.create_stream(StreamName=STREAM, ShardCount=2)

    code = reindex.main(["--to-stream", "--json"])

    captured = capsys.readouterr()
    assert code == 0
    assert "is of an index deleted since (another was created in its place): replaying from the start" in captured.err
    second = json.loads(captured.out.strip().splitlines()[-1])
    assert second["resumed"] is False and second["run"]["sent"] == VALID_EVENTS
    assert len(records_on(archive.kinesis)) == VALID_EVENTS
    assert reindex.main(["--to-stream", "--json"]) == 0 and json_out(capsys)["resumed"] is True, \
        "the same index: resumed"


def test_an_index_created_again_under_its_name_is_told_apart_and_filled_again(creation_times, archive, capsys):
    create_index("chunks-new")
    assert reindex.main(["--to-index", "--vector-index", "chunks-new"]) == DEAD_LETTERED_ONE
    checkpoint = json.loads(next(Path(".rag-reindex").glob("archive-to-index-*.json")).read_text())
    assert checkpoint["target_id"] == (f"arn:aws:s3vectors:us-east-1:123456789012:bucket/{BUCKET}/index/chunks-new@"
                                       f"{creation_times['chunks-new'].isoformat()}")
    filled = stored_texts(archive.s3vectors, "chunks-new")
    assert filled
    archive.s3vectors.delete_index(vectorBucketName=BUCKET, indexName="chunks-new")
    create_index("chunks-new")
    capsys.readouterr()

    # The version ledger still holds the old index's entries under this name: stamped with the old index's
    # generation (its creation time), they read as absent, so the replay fills the new index instead of skipping
    # every document as unchanged.
    assert reindex.main(["--to-index", "--vector-index", "chunks-new", "--json"]) == 0

    captured = capsys.readouterr()
    assert "is of an index deleted since (another was created in its place): replaying from the start" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["run"]["unchanged"] == 0
    assert stored_texts(archive.s3vectors, "chunks-new") == filled


# A bad line is dead-lettered once, however many replays read it.
def test_replays_of_the_archive_run_again_add_no_letter_for_a_line_already_dead_lettered(archive, capsys):
    runs = []
    codes = []
    for argv in (["--to-index", "--indexer-disabled"], ["--to-index", "--indexer-disabled", "--restart"], ["--to-stream"], ["--to-index", "--indexer-disabled", "--since", "2026-01-01"]):
        codes.append(reindex.main([*argv, "--json"]))
        runs.append(json_out(capsys)["run"])

    assert len(letters(archive.s3)) == 1
    assert [(r["dead_lettered"], r["already_dead_lettered"]) for r in runs] == [(1, 0), (0, 1), (0, 1), (0, 1)]
    assert codes == [DEAD_LETTERED_ONE, 0, 0, 0], "only the run that found the bad line fails"
    assert reindex.main(["--to-stream", "--restart"]) == 0
    assert "dead-lettered 0 (1 already dead-lettered)" in capsys.readouterr().out


def test_a_stream_replay_whose_pipeline_index_cannot_be_read_still_runs_and_says_what_it_cannot_check(
        archive, monkeypatch, capsys):
    monkeypatch.setenv("VECTOR_INDEX", "no-such-index")

    assert reindex.main(["--to-stream", "--json"]) == DEAD_LETTERED_ONE

    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["run"]["sent"] == VALID_EVENTS
    assert "note: the pipeline's vector index could not be read (vector index no-such-index" in captured.err
    assert "a checkpoint cannot tell whether it was replaced since" in captured.err


def test_an_archive_file_outside_the_hour_folders_gives_events_without_ts_the_oldest_version():
    from rtrag.workflows.sources import archive_times

    # In Firehose's hour folder: the hour's start, a lower bound of the arrival, is the version of an event
    # without ts. Elsewhere the file's time bounds it only from above (a copy is new): the oldest version instead.
    assert archive_times("events/2026/01/01/05/rag-archive-1-x.gz", 1_900_000_000.0) == (1767243600.0, None)
    assert archive_times("copied/by-hand.jsonl", 1_900_000_000.0) == (1_900_000_000.0, 0.0)


def deployed_stack(outputs: dict[str, str]) -> None:
    """The stack as CloudFormation describes it (moto): only its outputs matter to the scripts."""
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName="RealtimeRag", TemplateBody=json.dumps(template))


# The pipeline's index made again outside the stack: its indexer still has the earlier generation.
def test_a_replay_into_the_pipelines_index_made_again_outside_the_stack_is_refused(creation_times, archive, capsys):
    archive.s3vectors.delete_index(vectorBucketName=BUCKET, indexName=INDEX)
    create_index(INDEX)
    deployed_stack({"VectorIndexGeneration": "1767225600000"})  # what the stack gave the indexer, earlier

    assert reindex.main(["--to-index", "--indexer-disabled"]) == 1

    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: vector index {INDEX} is the pipeline's, and it was created again outside the "
                          "stack (the stack gave its indexer generation 1767225600000; the index's is ")
    assert 'make deploy CDK_FLAGS="-c vector_index_name=NEW"' in err and stored_texts(archive.s3vectors) == {}


def test_a_replay_into_the_pipelines_index_the_stack_knows_goes_ahead(creation_times, archive, capsys):
    from rtrag.core.versions import index_generation

    archive.s3vectors.delete_index(vectorBucketName=BUCKET, indexName=INDEX)
    create_index(INDEX)
    deployed_stack({"VectorIndexGeneration": index_generation(creation_times[INDEX])})

    assert reindex.main(["--to-index", "--indexer-disabled"]) == DEAD_LETTERED_ONE
    assert stored_texts(archive.s3vectors) == FINAL


# Two writers of one document (the live indexer and a replay into its index) can leave chunks of the older version:
# a replay into the pipeline's own index needs the indexer's event source mapping disabled, and says how.
def test_a_replay_into_the_pipelines_own_index_needs_the_indexer_disabled(archive, capsys):
    deployed_stack({"IndexerFunctionName": "rag-indexer"})

    assert reindex.main(["--to-index"]) == 1

    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: vector index {INDEX} is the one the pipeline's indexer writes: a document that "
                          "both the indexer and this replay write at once can keep chunks of the older version")
    assert "aws lambda list-event-source-mappings --function-name rag-indexer" in err
    assert "--no-enabled" in err and "--indexer-disabled" in err and "--to-stream" in err
    assert stored_texts(archive.s3vectors) == {}, "nothing replayed"
    assert reindex.main(["--to-index", "--indexer-disabled"]) == DEAD_LETTERED_ONE
    assert stored_texts(archive.s3vectors) == FINAL


def test_an_output_the_deployed_stack_lacks_is_named_with_the_fix(archive):
    from rtrag.aws.compose import AwsBackend
    from rtrag.cli.resources import StackOutputs
    from rtrag.core.errors import UserError

    deployed_stack({"VectorIndexGeneration": "1"})

    with pytest.raises(UserError, match="^stack RealtimeRag has no output Missing: redeploy it with `make deploy`$"):
        StackOutputs(AwsBackend(), None).get("Missing")
