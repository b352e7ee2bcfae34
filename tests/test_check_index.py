"""scripts/check_index.py: the index checked against the version ledger (the guarantee's "exactly doc#0..n-1 of the
stored version, and nothing else"), orphans deleted with --fix, in local mode and against moto."""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import BUCKET, INDEX, run
from fakes import listed_vectors
from kinesis import batch

from rtrag.core.versions import VersionEntry
from rtrag.workflows.check import check_index, split_key
from scripts import check_index as script

LONG = " ".join(f"Sentence {i} of the long document about harbours." for i in range(60))


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    from rtrag.local.compose import LocalBackend

    pipeline = LocalBackend()
    for doc_id, text in (("short", "A short document."), ("long", LONG), ("gone", "Deleted soon.")):
        pipeline.stream.put_record(json.dumps({"doc_id": doc_id, "text": text}).encode(), doc_id)
    pipeline.stream.put_record(json.dumps({"doc_id": "gone", "op": "delete"}).encode(), "gone")
    pipeline.drain()
    yield pipeline
    pipeline.close()


def vector(key: str, dimension: int) -> dict:
    return {"key": key, "data": {"float32": [0.5] * dimension}, "metadata": {"doc_id": key.split("#")[0]}}


def json_report(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_clean_index_is_reported_clean(local, capsys):
    chunks = len([k for k in local.index.list_keys() if k.startswith("long#")])

    assert script.main(["--local", "--json"]) == 0

    report = json_report(capsys)
    assert (report["vectors"], report["documents"], report["findings"]) == (1 + chunks, 2, [])


def test_orphans_and_missing_chunks_are_named_and_fix_deletes_only_the_orphans(local, capsys):
    index = local.index
    chunks = len([k for k in index.list_keys() if k.startswith("long#")])
    assert chunks > 2
    index.put([vector(f"long#{chunks}", index.dimension), vector("short#1", index.dimension),
               vector("gone#0", index.dimension), vector("stranger#0", index.dimension),
               vector("no-chunk-number", index.dimension)])
    index.delete(["long#1"])

    assert script.main(["--local", "--json"]) == 1
    report = json_report(capsys)
    found = {(f["kind"], tuple(f["keys"])): f["reason"] for f in report["findings"]}
    assert found == {
        ("orphan", ("no-chunk-number",)): "not a chunk key (doc_id#n) of the pipeline",
        ("orphan", (f"long#{chunks}",)): f"beyond its stored version's {chunks} chunk(s)",
        ("missing", ("long#1",)): f"its stored version has {chunks} chunk(s)",
        ("orphan", ("short#1",)): "beyond its stored version's 1 chunk(s)",
        ("orphan", ("gone#0",)): "the document was deleted",
        ("orphan", ("stranger#0",)): "the version ledger has no entry for this document",
    }
    assert (report["orphan_vectors"], report["missing_chunks"], report["deleted"]) == (5, 1, 0)

    assert script.main(["--local", "--fix"]) == 1, "the missing chunk is still missing"
    captured = capsys.readouterr()
    assert "5 orphan vector(s) of 5 document(s), 5 deleted; 1 missing chunk(s) of 1 document(s)" in captured.out
    assert "the 1 document(s) missing chunks are marked in the ledger: put each again" in captured.err
    assert sorted(local.index.list_keys()) == sorted([f"long#{i}" for i in range(chunks) if i != 1] + ["short#0"])

    # Put again with the same text (which the ledger would skip as unchanged, were it not marked): it is whole.
    from scripts import put_event

    assert put_event.main(["--local", LONG, "long"]) == 0
    assert script.main(["--local"]) == 0
    assert "the index holds exactly the stored version of every document checked" in capsys.readouterr().out


def test_a_document_with_an_unfinished_attempt_is_not_judged():
    class Index:
        def list_keys(self):
            return iter(["d#0", "d#5", "e#3"])

        def delete(self, keys):
            raise AssertionError("nothing to delete")

    class Ledger:
        def get(self, doc_ids):
            return {"d": VersionEntry("d", dirty=True, reach=6), "e": VersionEntry("e", dirty=True, reach=4)}

    report = check_index(Index(), Ledger(), fix=True)

    assert (report.vectors, report.documents, report.unfinished, report.findings) == (3, 2, 2, [])


def test_an_entry_that_never_committed_a_version_accounts_for_no_vector():
    deleted = []

    class Index:
        def list_keys(self):
            return iter(["n#0"])

        def delete(self, keys):
            deleted.extend(keys)

    class Ledger:
        def get(self, doc_ids):
            return {"n": VersionEntry("n")}  # what undoing a refused new document's intent writes

    report = check_index(Index(), Ledger(), fix=True)

    assert [(f.kind, f.keys) for f in report.findings] == [("orphan", ["n#0"])] and deleted == ["n#0"]


@pytest.mark.parametrize(("key", "parsed"), [("d#0", ("d", 0)), ("a#b#12", ("a#b", 12)), ("d#", None), ("#3", None),
                                             ("d#03", None), ("d#-1", None), ("plain", None), ("x#\u00b2", None),
                                             ("d#\u0661", None), ("d#\U0001d7d9", None)])
def test_only_keys_the_pipeline_writes_are_chunk_keys(key, parsed):
    assert split_key(key) == parsed


# against S3 Vectors (moto): ListVectors pages, and --fix on the pipeline's own index needs the indexer paused
def test_the_deployed_index_is_listed_page_by_page_and_fixed_only_with_the_indexer_disabled(env, capsys):
    run(batch({"doc_id": "kept", "text": "A document the indexer wrote."}))
    s3vectors = boto3.client("s3vectors")
    strays = [{"key": f"stray-{i}#0", "data": {"float32": [0.1] * 256}, "metadata": {}} for i in range(1_001)]
    for start in range(0, len(strays), 500):
        s3vectors.put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=strays[start:start + 500])
    pages_before = len(env.aws.listing.requests)

    assert script.main(["--json"]) == 1
    report = json_report(capsys)
    assert (report["vectors"], report["documents"], report["orphan_vectors"]) == (1_002, 1_002, 1_001)
    assert len(env.aws.listing.requests) - pages_before == 2, "two pages of at most 1,000"

    assert script.main(["--fix"]) == 1
    assert "stop every writer first" in capsys.readouterr().err
    assert script.main(["--fix", "--indexer-disabled"]) == 0
    listed = listed_vectors(s3vectors, BUCKET, INDEX)
    assert [v["key"] for v in listed] == ["kept#0"]


# Just before deleting, the ledger is read again: a document committed meanwhile (a writer that was not stopped after
# all) keeps its vectors.
def test_fix_deletes_only_what_the_ledger_read_again_still_does_not_account_for():
    from rtrag.core.versions import LIVE, Version

    deleted, reads = [], []

    class Index:
        def list_keys(self):
            return iter(["new#0", "stray#0"])

        def delete(self, keys):
            deleted.extend(keys)

    class Ledger:
        def get(self, doc_ids):
            reads.append(list(doc_ids))
            if len(reads) == 1:
                return {}  # the first read: neither is known
            return {"new": VersionEntry("new", Version(5, 1), LIVE, chunks=1, content_hash="h", reach=1)}

        def put(self, entries):
            raise AssertionError("nothing is missing")

    report = check_index(Index(), Ledger(), fix=True)

    assert deleted == ["stray#0"] and report.deleted == 1


# --fix on a named local index is its one writer: refused while a replay into it holds the index's writer lock.
def test_fix_on_a_named_local_index_a_replay_is_writing_is_refused(local, capsys):
    from rtrag.core.contract import LOCAL_INDEX_WRITER_LOCK
    from rtrag.core.files import file_lock
    from scripts import reindex

    assert reindex.main(["--local", "--to-index", "--vector-index", "copy"]) == 0
    capsys.readouterr()
    with file_lock(local.root / "indexes" / "copy" / LOCAL_INDEX_WRITER_LOCK) as held:
        assert held
        assert script.main(["--local", "--vector-index", "copy", "--fix"]) == 1
        assert script.main(["--local", "--vector-index", "copy"]) == 0, "checking alone needs no lock"

    assert "is writing local index 'copy'" in capsys.readouterr().err
    assert script.main(["--local", "--vector-index", "copy", "--fix"]) == 0
