"""scripts/reindex.py in local mode: the local stream replayed into a named local index or onto itself, a crash
between a batch and its checkpoint, and a replay run as a user runs it. The AWS paths are in test_reindex.py,
whose archive of three hours this file replays too."""

from __future__ import annotations

import json

import pytest
from test_reindex import FINAL, HOURS, LINES, VALID_EVENTS, event, json_out

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
    for bad in ("e1", "../../etc"):  # a name no index can have is refused as such, not "build it with ..."
        assert ask.main(["--local", "--vector-index", bad, "Who owns Alpha?"]) == 1
        assert f"error: vector index name {bad!r} m" in (err := capsys.readouterr().err) and "build it" not in err
    assert ask.main(["--local", "--vector-index", "missing", "Who owns Alpha?"]) == 1
    assert ("no local index named 'missing'" in (err := capsys.readouterr().err)
            and "build it with `reindex.py --local --to-index --vector-index missing`" in err)
    # The broken record was dead-lettered by the local runner when it was put: the replays find its letter.
    assert first["read"] == second["read"] == LINES and first["dead_lettered"] == 0
    assert first["already_dead_lettered"] == second["already_dead_lettered"] == 1
    assert len(local.dead_letters.list("invalid/")) == 1
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
    assert (run["read"], run["sent"], run["dead_lettered"], run["already_dead_lettered"]) == (
        LINES, VALID_EVENTS, 0, 1), "the local runner dead-lettered the broken record when it was put"
    assert local.stream.count() == before + VALID_EVENTS, "the replay's own records are not replayed again"
    assert all(local.stream.get_checkpoint("indexer", s) == local.stream.latest_sequence(s)
               for s in local.stream.shard_ids()), "the local runner indexed the replayed events"
    assert local_texts(local.index) == FINAL


# as a user runs it
def test_local_replay_as_a_process_from_a_jsonl_file(cli, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event("nimbus", "Project Nimbus ships v3 on 2026-08-14.", 5)) + "\n")
    run = lambda *args: cli("reindex.py", *args)  # noqa: E731

    first = run("--local", "--to-stream", "--from-jsonl", str(path))
    again = run("--local", "--to-stream", "--from-jsonl", str(path))

    assert first.returncode == 0 and first.stdout.strip() == "read 1, sent 1, dead-lettered 0, failed 0"
    assert "Traceback" not in first.stderr
    assert again.stdout.splitlines()[0] == "read 0, sent 0, dead-lettered 0, failed 0", "resumed: nothing new"


# A checkpoint of an index deleted since is not resumed: the replay rebuilds the new index from the start.
@pytest.mark.parametrize("target", ["named", "pipeline"])
def test_a_checkpoint_of_a_deleted_index_is_not_resumed_the_new_index_is_rebuilt(local, capsys, target):
    import shutil

    from rtrag.local.index import LocalVectorIndex

    argv = ["--local", "--to-index", "--json"] + (["--vector-index", "rebuilt"] if target == "named" else [])
    directory = local.root / ("indexes/rebuilt" if target == "named" else "index")
    assert reindex.main(argv) == 0
    assert json_out(capsys)["run"]["read"] == LINES

    shutil.rmtree(directory)  # the user deletes the index to rebuild it
    code = reindex.main(argv)

    captured = capsys.readouterr()
    assert code == 0
    assert "is of an index deleted since (another was created in its place): replaying from the start" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["resumed"] is False and result["run"]["read"] == LINES
    with LocalVectorIndex.open(directory) as rebuilt:
        assert local_texts(rebuilt) == FINAL, "every document, not only what came after the old checkpoint"

    assert reindex.main(argv) == 0, "the same index again: the checkpoint is resumed"
    assert json_out(capsys)["resumed"] is True


# A bad record is dead-lettered once, however many replays read it.
def test_replays_run_again_add_no_letter_for_a_record_already_dead_lettered(local, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(event("ok", "A good line.", 5)), "not json", '{"doc_id": "x", "op": "zap"}',
                               json.dumps(event("blank", "", 6))]) + "\n")
    before = set(local.dead_letters.list("invalid/"))

    runs, codes = [], []
    for argv in (["--to-index", "--from-jsonl", str(path)], ["--to-index", "--from-jsonl", str(path), "--restart"],
                 ["--to-stream", "--from-jsonl", str(path)], ["--to-index", "--vector-index", "other",
                                                             "--from-jsonl", str(path)]):
        codes.append(reindex.main(["--local", "--json", *argv]))
        runs.append(json_out(capsys)["run"])

    letters = set(local.dead_letters.list("invalid/")) - before
    assert len(letters) == 3, "one letter per bad line, whichever replay read it"
    assert [(r["dead_lettered"], r["already_dead_lettered"]) for r in runs] == [(3, 0), (0, 3), (0, 3), (0, 3)]
    assert codes == [1, 0, 0, 0], "the run that dead-lettered the bad lines exits 1; the ones that found them kept, 0"
    assert reindex.main(["--local", "--to-index", "--from-jsonl", str(path), "--restart"]) == 0
    assert "dead-lettered 0 (3 already dead-lettered)" in capsys.readouterr().out
    # A line that fails for another reason now (the file was fixed differently) replaces its letter.
    path.write_text(path.read_text().replace('"op": "zap"', '"op": "zip"'))
    assert reindex.main(["--local", "--json", "--to-index", "--from-jsonl", str(path), "--restart"]) == 1
    assert (json_out(capsys)["run"]["dead_lettered"], len(set(local.dead_letters.list("invalid/")) - before)) == (1, 3)


def test_a_checkpoint_written_before_checkpoints_named_their_index_is_resumed_and_then_names_it(tmp_path):
    from rtrag.workflows.checkpoint import open_checkpoint
    from rtrag.workflows.sources import Position

    path = tmp_path / "job.json"
    Checkpoint(job="j", source="s", target="t", position=Position("u", 3), ordinal=3).save(path)
    raw = json.loads(path.read_text())
    del raw["target_id"]  # as an older version wrote it
    path.write_text(json.dumps(raw))

    resumed = open_checkpoint(path, job="j", source="s", target="t", restart=False, target_id="index#1")
    assert (resumed.position, resumed.target_id, resumed.superseded) == (Position("u", 3), "index#1", None)
    resumed.save(path)
    other = open_checkpoint(path, job="j", source="s", target="t", restart=False, target_id="index#2")
    assert (other.position, other.ordinal, other.superseded) == (None, 0, "index#1")


# A JSON Lines file says nothing of when its events without ts were made: they get the oldest version, so they fill
# what the index lacks and never bring back a deleted document or overwrite a stored version.
def test_events_without_ts_in_a_jsonl_file_never_overwrite_a_stored_version_or_a_delete(local, tmp_path, capsys):
    path = tmp_path / "old.jsonl"
    lines = [{"doc_id": "gamma", "text": "Gamma is back."}, {"doc_id": "alpha", "text": "Alpha's old text."},
             {"doc_id": "epsilon", "text": "Epsilon is new here."}, event("beta", "Beta moved to payments.", 400)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    assert reindex.main(["--local", "--to-index", "--from-jsonl", str(path), "--json"]) == 0

    run = json_out(capsys)["run"]
    assert (run["indexed"], run["stale"], run["dead_lettered"]) == (2, 2, 0)
    assert local_texts(local.index) == {**FINAL, "epsilon": "Epsilon is new here.",
                                        "beta": "Beta moved to payments."}


def test_a_second_run_of_the_same_replay_is_refused_while_the_first_holds_it(local, capsys):
    import fcntl
    import os

    assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--json"]) == 0
    checkpoint = json_out(capsys)["checkpoint"]
    fd = os.open(f"{checkpoint}.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the first run holds it
    try:
        assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--restart"]) == 1
    finally:
        os.close(fd)

    assert capsys.readouterr().err.strip().endswith(
        f"error: this replay is already running in another process (its checkpoint {checkpoint} is in use): "
        "wait for it to finish")
    assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--restart"]) == 0, "released"


# Two replays of different sources (so different jobs) into one named index would be two writers of a document at
# once, and an older version could win: the second is refused while the first writes.
def test_a_replay_into_a_named_index_another_replay_is_writing_is_refused(local, tmp_path, capsys):
    from rtrag.core.contract import LOCAL_INDEX_WRITER_LOCK
    from rtrag.core.files import file_lock

    assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt"]) == 0
    capsys.readouterr()
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event("alpha", "An older alpha.", 1)) + "\n")

    with file_lock(local.root / "indexes" / "rebuilt" / LOCAL_INDEX_WRITER_LOCK) as held:  # as the first replay holds it
        assert held
        assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--from-jsonl", str(path)]) == 1

    assert "error: another process (a reindex.py or check_index.py --fix) is writing local index 'rebuilt'" in (
        capsys.readouterr().err)
    assert reindex.main(["--local", "--to-index", "--vector-index", "rebuilt", "--from-jsonl", str(path)]) == 0


def test_checkpoints_are_written_through_a_scratch_file_of_their_own(tmp_path):
    from rtrag.workflows.checkpoint import Checkpoint

    path = tmp_path / "job.json"
    first, second = (Checkpoint(job="j", source="s", target="t") for _ in range(2))
    (tmp_path / ".job.json.tmp").write_text("a scratch name another writer might hold")

    first.save(path)
    second.save(path)

    assert Checkpoint.load(path).job == "j"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".job.json.tmp", "job.json"], "no scratch left behind"


# A run that dead-letters lines fails, and the command it names lists those letters with their reasons.
def test_a_replay_that_dead_letters_a_line_exits_1_naming_the_command_that_lists_it(local, tmp_path, capsys):
    from scripts import redrive

    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(event("fine", "A good line.", 5)), "{not json"]) + "\n")

    assert reindex.main(["--local", "--to-index", "--from-jsonl", str(path)]) == 1
    err = capsys.readouterr().err
    assert "1 record(s) were not valid events and were dead-lettered, not replayed" in err
    command = err.split("`python scripts/redrive.py ")[1].split("`")[0].split()
    assert command == ["list", "--kind", "invalid", "--local"]
    assert redrive.main([*command, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    mine = [item for item in listed if "/reindex-" in item["key"]]
    assert len(mine) == 1 and "not JSON" in mine[0]["reason"], listed


# A replay onto the local stream is indexed before the command returns: what the pipeline then dead-letters is said,
# and fails the command. An event too far ahead of now is not even sent (the indexer would refuse it).
def test_a_replay_onto_the_local_stream_says_what_the_pipeline_could_not_index(local, tmp_path, capsys, monkeypatch):
    import time

    from rtrag.core.contract import DEFAULT_MAX_TS_SKEW_SECONDS

    ahead = int(time.time()) + 3 * DEFAULT_MAX_TS_SKEW_SECONDS
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(event("fine", "A good line.", 5)),
                               json.dumps(event("early", "From the future.", ahead))]) + "\n")

    assert reindex.main(["--local", "--to-stream", "--from-jsonl", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    run = json.loads(captured.out.strip().splitlines()[-1])["run"]
    assert (run["sent"], run["dead_lettered"]) == (1, 1), "the early event is dead-lettered, not sent"
    reasons = [local.dead_letters.read(key)["reason"] for key in local.dead_letters.list("invalid/")]
    assert any("ahead of" in reason for reason in reasons), reasons

    # A record the pipeline itself refuses once it is on the stream (here: the embedder rejects every text).
    from rtrag.core.errors import UnindexableDocument
    from rtrag.local.embedder import LocalEmbedder

    def refuse(self, texts):
        return iter([(i, UnindexableDocument("the embedder refuses this text")) for i in range(len(texts))])

    monkeypatch.setattr(LocalEmbedder, "embed_iter", refuse)
    path.write_text(json.dumps(event("refused", "Refused by the model.", 7)) + "\n")
    assert reindex.main(["--local", "--to-stream", "--from-jsonl", str(path), "--restart"]) == 1
    err = capsys.readouterr().err
    assert "the local pipeline dead-lettered 1 replayed record(s)" in err and "redrive.py list --local" in err, err


# A command that did nothing says so; an option it would ignore is refused.
def test_a_replay_of_an_empty_stream_says_nothing_was_replayed_and_an_ignored_option_is_refused(tmp_path, monkeypatch,
                                                                                               capsys):
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    assert reindex.main(["--local", "--to-index", "--vector-index", "empty1"]) == 0
    assert "note: nothing was replayed from local-stream:" in (err := capsys.readouterr().err)
    assert "it holds no events (put some with `python scripts/put_event.py --local`)" in err

    with pytest.raises(SystemExit) as refused:
        reindex.main(["--local", "--to-stream", "--vector-index", "foo"])
    assert refused.value.code == 2
    assert "--to-stream puts the events back on the stream" in capsys.readouterr().err


# Replaying the local stream onto itself adds records to its source: a resumed job still covers the stream as it was
# when the job started, so it never replays its own output, and a finished job run again replays nothing.
def test_a_resumed_replay_of_the_local_stream_onto_itself_covers_the_stream_as_it_was(local, capsys, monkeypatch):
    from rtrag.workflows.targets import StreamTarget

    before = local.stream.count()
    real, seen = StreamTarget.deliver, []

    def interrupted_on_the_third_batch(self, batch):
        if len(seen) == 2:
            raise KeyboardInterrupt
        seen.append(len(batch))
        return real(self, batch)

    monkeypatch.setattr(StreamTarget, "deliver", interrupted_on_the_third_batch)
    assert reindex.main(["--local", "--to-stream", "--batch-size", "2"]) == 130
    assert "stopped after 4 record(s)" in capsys.readouterr().err
    monkeypatch.setattr(StreamTarget, "deliver", real)

    assert reindex.main(["--local", "--to-stream", "--batch-size", "2", "--json"]) == 0
    result = json_out(capsys)
    assert result["resumed"] and result["total"]["read"] == before == LINES
    assert local.stream.count() == before + VALID_EVENTS, "each valid record put back once, none of its own output"

    assert reindex.main(["--local", "--to-stream", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["run"]["read"] == 0
    assert "as it was when the job started" in captured.err
    assert local.stream.count() == before + VALID_EVENTS
