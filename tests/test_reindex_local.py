"""scripts/reindex.py in local mode: the local stream replayed into a named local index or onto itself, a crash
between a batch and its checkpoint, and a replay run as a user runs it. The AWS paths are in test_reindex.py,
whose archive of three hours this file replays too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_reindex import FINAL, HOURS, LINES, ROOT, VALID_EVENTS, event, json_out

from rtrag.workflows.checkpoint import Checkpoint
from scripts import reindex


# local mode
@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    # Local mode quiets the handler's Powertools output for the rest of the process: keep it to this test.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    from rtrag.local.compose import LocalBackend

    pipeline = LocalBackend()
    for lines in HOURS.values():
        for line in lines:
            data = json.dumps(line).encode() if isinstance(line, dict) else line.encode()
            pipeline.stream.put_record(data, line["doc_id"] if isinstance(line, dict) else "broken")
    pipeline.drain()
    yield pipeline
    pipeline.close()


def local_texts(index) -> dict[str, str]:
    got = index.get(index.list_keys(), metadata=True)
    return {v["metadata"]["doc_id"]: v["metadata"]["source_text"] for v in got.values()}


def test_local_stream_replayed_into_a_named_local_index_then_again_without_embedding(local, capsys):
    from rtrag.local.index import LocalVectorIndex

    assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--json"]) == 0
    first = json_out(capsys)["run"]
    assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--json", "--restart"]) == 0
    second = json_out(capsys)["run"]

    with LocalVectorIndex.open(local.root / "indexes" / "rebuilt") as rebuilt:
        assert local_texts(rebuilt) == FINAL == local_texts(local.index)

    # ask.py --local --vector-index queries that index, and names how to build one that does not exist.
    from scripts import ask

    assert ask.main(["--local", "--vector-index", "rebuilt", "--json", "--no-generate", "Who owns Alpha?"]) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    assert passages and {(p["doc_id"], p["text"]) for p in passages} <= set(FINAL.items())
    assert ask.main(["--local", "--vector-index", "missing", "Who owns Alpha?"]) == 1
    assert ("no local index named 'missing'" in (err := capsys.readouterr().err)
            and "build it with `reindex.py --local --to-index --vector-index missing`" in err)
    assert first["read"] == second["read"] == LINES and first["dead_lettered"] == 1
    assert first["embedding_calls"] > 0 and second["embedding_calls"] == 0
    assert list((local.root / "reindex").glob("*.json")), "local checkpoints live with the local state"


def test_local_crash_after_a_batch_is_written_but_before_its_checkpoint_costs_nothing_twice(local, monkeypatch,
                                                                                            capsys):
    saves = {"n": 0}
    real = Checkpoint.save

    def die_on_second_save(self, path):
        saves["n"] += 1
        if saves["n"] == 2:
            raise KeyboardInterrupt  # the batch is in the index, its checkpoint never written
        real(self, path)

    monkeypatch.setattr(Checkpoint, "save", die_on_second_save)
    assert reindex.main(["--local", "--to-index", "--vector-index", "again", "--batch-size", "3"]) == 130
    monkeypatch.setattr(Checkpoint, "save", real)
    capsys.readouterr()

    assert reindex.main(["--local", "--to-index", "--vector-index", "again", "--batch-size", "3", "--json"]) == 0

    result = json_out(capsys)
    assert result["resumed"] and result["run"]["read"] == LINES - 3
    # The batch written before the crash is delivered again, and costs no embedding call the second time.
    from rtrag.local.index import LocalVectorIndex

    with LocalVectorIndex.open(local.root / "indexes" / "again") as again:
        assert local_texts(again) == FINAL


def test_local_stream_replayed_onto_itself_is_indexed_before_the_command_returns(local, capsys):
    before = local.stream.count()

    assert reindex.main(["--local", "--to-stream", "--json"]) == 0

    run = json_out(capsys)["run"]
    assert (run["read"], run["sent"], run["dead_lettered"]) == (LINES, VALID_EVENTS, 1)
    assert local.stream.count() == before + VALID_EVENTS, "the replay's own records are not replayed again"
    assert all(local.stream.get_checkpoint("indexer", s) == local.stream.latest_sequence(s)
               for s in local.stream.shard_ids()), "the local runner indexed the replayed events"
    assert local_texts(local.index) == FINAL


# as a user runs it
def test_local_replay_as_a_process_from_a_jsonl_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event("nimbus", "Project Nimbus ships v3 on 2026-08-14.", 5)) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["RAG_LOCAL_DIR"] = str(tmp_path / "state")
    run = lambda *args: subprocess.run([sys.executable, str(ROOT / "scripts" / "reindex.py"), *args],  # noqa: E731
                                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    first = run("--local", "--to-stream", "--from-jsonl", str(path))
    again = run("--local", "--to-stream", "--from-jsonl", str(path))

    assert first.returncode == 0 and first.stdout.strip() == "read 1, sent 1, dead-lettered 0, failed 0"
    assert "Traceback" not in first.stderr
    assert again.stdout.splitlines()[0] == "read 0, sent 0, dead-lettered 0, failed 0", "resumed: nothing new"
