"""The six ways the index used to end at the wrong version, each as a user met it in local mode, now right: through
the scripts (put_event.py, ask.py, redrive.py) and the local runner, sharing one $RAG_LOCAL_DIR."""

from __future__ import annotations

import json
import random

import pytest

from rtrag.core.errors import TransientError
from scripts import ask, put_event, redrive

WORDS = "harbor lantern quartz meadow orbit cedar velvet summit ember glacier canyon violet falcon marble".split()


@pytest.fixture
def local(tmp_path, monkeypatch):
    """A fresh local pipeline directory; the runner's retries do not wait (the backoff is not under test)."""
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr("rtrag.local.runner.backoff_delay", lambda attempt, **kwargs: 0.0)
    from rtrag.local.compose import LocalBackend

    def open_pipeline() -> LocalBackend:
        return LocalBackend(tmp_path / "state")

    return open_pipeline


def long_text(tag: str, chunks: int) -> str:
    """About ``chunks`` chunks of the default 2,000 characters, every sentence naming ``tag``."""
    rng = random.Random(tag)
    sentences = [f"The {tag} report, part {i}, covers " + " ".join(rng.choice(WORDS) for _ in range(20)) + "."
                 for i in range(chunks * 14)]
    return " ".join(sentences)


def keys_of(open_pipeline, doc_id: str) -> list[str]:
    pipeline = open_pipeline()
    try:
        return sorted((k for k in pipeline.index.list_keys() if k.split("#")[0] == doc_id),
                      key=lambda k: int(k.split("#")[1]))
    finally:
        pipeline.close()


def texts_of(open_pipeline, doc_id: str) -> set[str]:
    pipeline = open_pipeline()
    try:
        keys = [k for k in pipeline.index.list_keys() if k.split("#")[0] == doc_id]
        return {v["metadata"]["source_text"] for v in pipeline.index.get(keys).values()}
    finally:
        pipeline.close()


def jsonl(tmp_path, name: str, events: list[dict]) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


# 1. orphan chunks
def test_a_long_version_that_failed_half_way_leaves_no_chunk_after_a_shorter_version_and_a_delete(
        local, tmp_path, monkeypatch, capsys):
    from rtrag.local.ledger import LocalVersionLedger

    real_put = LocalVersionLedger.put
    failed = []

    def commit_fails_once(self, entries):
        if not failed and any(not e.dirty for e in entries):
            failed.append(1)
            raise TransientError("the disk was busy")
        return real_put(self, entries)

    monkeypatch.setattr(LocalVersionLedger, "put", commit_fails_once)
    long, short = long_text("orphan", 14), "The orphan report is now one short paragraph."
    # Both versions are on the stream when the runner delivers: the long one's commit fails after its 14 chunks
    # are written, and its redelivery carries the short one, which wins.
    assert put_event.main(["--local", "--file", jsonl(tmp_path, "two.jsonl", [
        {"doc_id": "report", "text": long, "ts": 100}, {"doc_id": "report", "text": short, "ts": 200}])]) == 0
    assert failed and keys_of(local, "report") == ["report#0"]

    assert put_event.main(["--local", "--delete", "report"]) == 0
    assert keys_of(local, "report") == []
    capsys.readouterr()
    assert ask.main(["--local", "--json", "What does the orphan report cover?"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == []


# 2. the version order does not depend on batching
def test_the_greatest_ts_wins_among_shuffled_versions_in_one_batch_and_across_two_producers(local, tmp_path):
    versions = list(range(1900, 2000))
    random.Random(7).shuffle(versions)
    events = [{"doc_id": "shuffled", "text": f"Version {ts} of the shuffled document.", "ts": ts} for ts in versions]

    assert put_event.main(["--local", "--file", jsonl(tmp_path, "shuffled.jsonl", events)]) == 0

    assert texts_of(local, "shuffled") == {"Version 1999 of the shuffled document."}
    # Two producers write the same doc ids, interleaved, each with its own clock.
    a = [{"doc_id": f"doc-{i}", "text": f"Producer A wrote doc {i}.", "ts": 5000 + (i % 2)} for i in range(20)]
    b = [{"doc_id": f"doc-{i}", "text": f"Producer B wrote doc {i}.", "ts": 5000 + ((i + 1) % 2)} for i in range(20)]
    assert put_event.main(["--local", "--file", jsonl(tmp_path, "a.jsonl", a)]) == 0
    assert put_event.main(["--local", "--file", jsonl(tmp_path, "b.jsonl", b)]) == 1  # the older half is ignored
    for i in range(20):
        winner = "A" if i % 2 else "B"
        assert texts_of(local, f"doc-{i}") == {f"Producer {winner} wrote doc {i}."}


# 3. an unchanged newer event raises the stored version
def test_an_unchanged_newer_put_raises_the_version_so_an_older_text_is_ignored(local, capsys):
    assert put_event.main(["--local", "Text A.", "doc", "--ts", "100"]) == 0
    assert put_event.main(["--local", "Text A.", "doc", "--ts", "300"]) == 0
    capsys.readouterr()

    code = put_event.main(["--local", "Text B.", "doc", "--ts", "200"])

    assert code == 1
    assert ("error: doc_id=doc: ignored: doc already holds a version newer than this event (stored ts 300, seq "
            in capsys.readouterr().err)
    assert texts_of(local, "doc") == {"Text A."}


# 4. redrive keeps the original version
@pytest.mark.parametrize("newer", ["update", "delete"])
def test_a_redriven_event_without_ts_never_overwrites_what_was_indexed_after_it(local, monkeypatch, capsys, newer):
    from rtrag.local.embedder import LocalEmbedder

    real = LocalEmbedder.embed_many
    monkeypatch.setattr(LocalEmbedder, "embed_many", lambda self, texts: [
        TransientError("Bedrock throttled") if "first" in t else v for t, v in zip(texts, real(self, texts))])
    # The first version has no ts; its retries run out and it goes to aws/lambda/ with its arrival time.
    assert put_event.main(["--local", "The first version.", "doc"]) == 1
    monkeypatch.setattr(LocalEmbedder, "embed_many", real)
    if newer == "update":
        assert put_event.main(["--local", "The second version.", "doc"]) == 0
    else:
        assert put_event.main(["--local", "--delete", "doc"]) == 0
    capsys.readouterr()

    assert redrive.main(["send", "--all", "--kind", "batch", "--local"]) == 0

    assert texts_of(local, "doc") == ({"The second version."} if newer == "update" else set())


# 5. no poison
def test_poison_records_are_dead_lettered_and_the_good_documents_of_their_batch_are_indexed(local):
    pipeline = local()
    try:
        good = [(json.dumps({"doc_id": f"good-{i}", "text": f"Good document {i}."}).encode(), f"good-{i}")
                for i in range(20)]
        poison = [(b'{"doc_id": "bad-1", "text": "\\ud800"}', "bad-1"),
                  (b'{"doc_id": "bad-2", "text": "x", "ts": ' + b"9" * 400 + b"}", "bad-2"),
                  (b'{"doc_id": "bad-3", "text": "x", "metadata": {"n": ' + b"9" * 400 + b"}}", "bad-3")]
        pipeline.stream.put_records(good[:10] + poison + good[10:])

        summary = pipeline.drain()

        assert summary.on_failure_records == 0 and summary.failures == 0
        assert len({k.split("#")[0] for k in pipeline.index.list_keys()}) == 20
        reasons = [pipeline.dead_letters.read(k)["reason"] for k in pipeline.dead_letters.list("invalid/")]
        assert sorted(r.split(" ")[0] for r in reasons) == ["metadata", "text", "ts=9999999999999999999999999999"
                                                            "999999999999..."]
    finally:
        pipeline.close()


def test_put_event_local_exits_non_zero_with_the_reason_when_its_event_is_not_indexed(local, monkeypatch, capsys):
    from rtrag.core.errors import UnindexableDocument
    from rtrag.local.embedder import LocalEmbedder

    monkeypatch.setattr(LocalEmbedder, "embed_many", lambda self, texts: [
        UnindexableDocument("the model refused this text") for _ in texts])

    code = put_event.main(["--local", "A text the model refuses.", "refused"])

    err = capsys.readouterr().err
    assert code == 1
    assert "error: doc_id=refused: not indexed: the model refused this text (kept as invalid/" in err
    assert "redrive.py show invalid/" in err


# 6. a valid document is indexable
@pytest.mark.parametrize("filler", [" " * 3000, "\n" * 3000, "-" * 5000])
def test_a_long_run_of_blanks_or_dashes_inside_a_text_does_not_lose_the_document(local, capsys, filler):
    text = "The spacing report starts here." + filler + "The spacing report ends with its summary."

    assert put_event.main(["--local", text, "spacing"]) == 0

    texts = texts_of(local, "spacing")
    assert any("starts here" in t for t in texts) and any("ends with its summary" in t for t in texts)
    assert all(t.strip() == t and t for t in texts)
