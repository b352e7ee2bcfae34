"""Local mode end to end, through the real CLIs as separate processes (each one a restart), sharing one
$RAG_LOCAL_DIR: the seed's flow, an update, a delete, a bad event dead-lettered, and state kept across restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACT = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
QUESTION = "When does Project Nimbus v3 ship and what does it drop?"
NOT_FOUND = "The answer is not in the indexed documents."


def ask_json(cli, question: str = QUESTION) -> dict:
    result = cli("ask.py", "--local", "--json", question)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_seed_flow_update_and_delete_change_the_answer(cli):
    put = cli("put_event.py", "--local", FACT, "nimbus-v3")
    assert put.returncode == 0 and put.stdout.startswith("put upsert doc_id=nimbus-v3 shard=shardId-")

    first = ask_json(cli)
    assert first["answer"] == f"{FACT} [nimbus-v3]"
    assert [s["key"] for s in first["sources"]] == ["nimbus-v3#0"]

    cli("put_event.py", "--local", "--doc-id", "nimbus-v3", "Project Nimbus v3 now ships on 2026-09-01.")
    assert ask_json(cli, "When does Project Nimbus v3 ship?")["answer"] == (
        "Project Nimbus v3 now ships on 2026-09-01. [nimbus-v3]")
    # The new text no longer says what v3 drops: the two-part question is not half answered.
    assert ask_json(cli)["answer"] == NOT_FOUND

    deleted = cli("put_event.py", "--local", "--delete", "nimbus-v3")
    assert deleted.returncode == 0
    after = ask_json(cli)
    assert after["answer"] == NOT_FOUND and after["sources"] == []


def test_bulk_file_is_indexed_and_filters_apply(cli, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({"doc_id": f"team-{t}", "text": f"The {t} team owns the {t} service.",
                                            "metadata": {"team": t}}) for t in ("search", "billing", "auth")))

    assert cli("put_event.py", "--local", "--file", str(events)).stdout.startswith("sent 3, failed 0")
    result = cli("ask.py", "--local", "--json", "--no-generate", "--where", "team=billing", "Who owns it?")

    assert [p["doc_id"] for p in json.loads(result.stdout)["passages"]] == ["team-billing"]


def test_a_bulk_put_whose_reader_went_away_still_indexes_every_event(cli, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({"doc_id": f"doc-{i}", "text": f"Document {i} is here."})
                                for i in range(3)))
    read, write = os.pipe()
    os.close(read)  # `put_event.py ... | head -0`: the first line printed meets a closed pipe
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"RAG_LOCAL_DIR": str(cli.state)}
        subprocess.run([sys.executable, str(ROOT / "scripts" / "put_event.py"), "--local", "--file", str(events)],
                       stdout=write, stderr=subprocess.DEVNULL, env=env, timeout=120, cwd=tmp_path, check=False)
    finally:
        os.close(write)

    found = cli("ask.py", "--local", "--json", "--no-generate", "--top-k", "5", "Which document is here?")
    assert sorted(p["doc_id"] for p in json.loads(found.stdout)["passages"]) == ["doc-0", "doc-1", "doc-2"]


def test_bad_event_on_the_stream_is_dead_lettered_locally_and_does_not_block(cli):
    sys.path.insert(0, str(ROOT / "lambda_src"))
    from rtrag.local.stream import LocalStream

    stream = LocalStream(cli.state / "stream")
    stream.put_record(b"this is not json", "pk-1")
    stream.close()
    indexed = cli("local_indexer.py", "--json")
    put = cli("put_event.py", "--local", FACT, "nimbus-v3")

    assert json.loads(indexed.stdout) == {"batches": 1, "records": 1, "dead_lettered": 1, "failures": 0,
                                          "on_failure_records": 0}
    assert indexed.returncode == 1 and "see `python scripts/redrive.py list --local`" in indexed.stderr
    assert put.returncode == 0
    [letter_path] = list((cli.state / "dead-letters" / "invalid").rglob("*.json"))
    letter = json.loads(letter_path.read_text())
    assert "not JSON" in letter["reason"] and letter["partition_key"] == "pk-1"
    assert ask_json(cli)["answer"] == f"{FACT} [nimbus-v3]"


def test_a_log_level_the_logger_would_fail_on_is_refused_before_anything_is_put(in_process, monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "LOUD")
    from scripts import put_event

    assert put_event.main(["--local", FACT, "nimbus-v3"]) == 1

    assert capsys.readouterr().err.strip() == ("error: POWERTOOLS_LOG_LEVEL='LOUD' is not a log level: set it to "
                                               "DEBUG, INFO, WARNING, ERROR or CRITICAL, or unset it")
    assert not in_process.exists()


def test_state_survives_restarts_and_nothing_is_delivered_twice(cli):
    cli("put_event.py", "--local", FACT, "nimbus-v3")

    again = cli("local_indexer.py", "--json")

    assert json.loads(again.stdout)["records"] == 0  # the checkpoint was kept
    assert ask_json(cli)["answer"] == f"{FACT} [nimbus-v3]"


def test_bad_input_is_refused_before_it_reaches_the_local_stream(cli):
    result = cli("put_event.py", "--local", "text", "bad#id")

    assert result.returncode == 1
    assert result.stderr.strip() == ("error: event for doc_id 'bad#id' is invalid: doc_id must not contain '#' "
                                     "(it separates the document id from the chunk number)")
    assert not (cli.state / "stream").exists() or json.loads(
        cli("local_indexer.py", "--json").stdout)["records"] == 0


def test_make_demo_script_runs_the_whole_story(cli):
    result = cli("demo.py")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{FACT} [nimbus-v3]" in out
    assert "it now ships on 2026-09-01" in out
    assert out.rstrip().splitlines()[-3] == NOT_FOUND
    assert out.count("-> searchable") == 2 and "-> gone from the index" in out


@pytest.mark.parametrize("interval", ["0", "-1", "nan"])
def test_a_poll_interval_that_would_spin_or_never_poll_is_refused(interval, capsys):
    from scripts import local_indexer

    with pytest.raises(SystemExit):
        local_indexer.parse_args(["--follow", "--poll-interval", interval])
    assert "--poll-interval must be 0.01..3600 seconds" in capsys.readouterr().err


def test_deleting_a_doc_id_that_was_never_indexed_says_nothing_was_removed(cli):
    cli("put_event.py", "--local", FACT, "nimbus-v3")

    typo = cli("put_event.py", "--local", "--delete", "nimbus-v33")
    real = cli("put_event.py", "--local", "--delete", "nimbus-v3")

    assert typo.returncode == 0 and typo.stderr.strip() == (
        "note: doc_id=nimbus-v33: no document nimbus-v33 was indexed, so nothing was removed (the delete is kept "
        "as a tombstone); check the doc id")
    assert real.returncode == 0 and real.stderr == ""
    # put and deleted in one send: the delete removes what that send indexed, so no note
    events = cli.state.parent / "events.jsonl"
    events.write_text(json.dumps({"doc_id": "new1", "text": "A new one."}) + "\n" +
                      json.dumps({"doc_id": "new1", "op": "delete"}) + "\n")
    both = cli("put_event.py", "--local", "--file", str(events))
    assert both.returncode == 0 and "note:" not in both.stderr and "1 deleted" in both.stdout


def test_a_put_whose_shards_another_process_holds_too_long_says_the_event_is_on_the_stream(
        in_process, monkeypatch, capsys):
    from rtrag.local.compose import LocalBackend
    from rtrag.local.runner import ShardBusy
    from scripts import put_event

    def held(self):
        raise ShardBusy("shardId-000000000001 has been held by another runner of 'indexer' for over 60 s")

    drain = LocalBackend.drain
    monkeypatch.setattr(LocalBackend, "drain", held)

    assert put_event.main(["--local", FACT, "nimbus-v3"]) == 1

    err = capsys.readouterr().err.strip()
    assert err == ("error: 1 event(s) were put on the local stream but not indexed yet: another process (a long "
                   "drain or reindex.py) has held the stream's shards for over a minute; once it is done, "
                   "`python scripts/local_indexer.py` indexes them")
    monkeypatch.setattr(LocalBackend, "drain", drain)
    from scripts import local_indexer

    assert local_indexer.main(["--json"]) == 0  # and it does


def test_a_question_is_answered_while_another_process_holds_the_write_locks(in_process, capsys):
    import sqlite3

    from scripts import ask, put_event

    assert put_event.main(["--local", FACT, "nimbus-v3"]) == 0
    capsys.readouterr()
    writers = []
    for db in (in_process / "index" / "vectors.sqlite3", in_process / "stream" / "stream.sqlite3"):
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # a writer in the middle of its transaction (or stopped with Ctrl-Z)
        writers.append(writer)
    try:
        assert ask.main(["--local", QUESTION]) == 0  # WAL: a reader waits for no writer
    finally:
        for writer in writers:
            writer.rollback()
            writer.close()

    assert capsys.readouterr().out.startswith(FACT)


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    """Local mode run in this process, under tmp_path: the handler's Powertools settings local mode would set in
    the process environment are set here, so that they are undone after the test."""
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    for name, value in (("POWERTOOLS_METRICS_DISABLED", "true"), ("POWERTOOLS_LOG_LEVEL", "ERROR"),
                        ("POWERTOOLS_SERVICE_NAME", "rag-indexer-local")):
        monkeypatch.setenv(name, value)
    return tmp_path / "state"
