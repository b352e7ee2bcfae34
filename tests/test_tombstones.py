"""Tombstones that expire (README G2: ``tombstone_retention_days``, 400 by default): a delete's tombstone holds older
upserts back until it expires, then reads as no entry; an entry an attempt has made dirty never expires, since
DynamoDB's TTL would otherwise drop the reach of chunks that may exist. The other tests keep tombstones for ever."""

from __future__ import annotations

import time

import boto3
from conftest import BUCKET, INDEX, VERSIONS, run
from kinesis import record

from rtrag.core.events import validate_event
from rtrag.core.versions import DELETED, LIVE, Version, VersionEntry
from rtrag.indexing.plan import Action, plan

NOW = 2_000_000_000
DAY = 86_400


def event(op: str = "upsert", text: str = "Some text.", ts: int = 100):
    return validate_event({"doc_id": "d", "op": op, "text": text, "ts": ts}, default_ts=ts)


def tombstone(ts: int, *, expires_at: int | None) -> VersionEntry:
    return VersionEntry("d", Version(ts, 1), DELETED, expires_at=expires_at, reach=3, updated_at=NOW - DAY)


def test_a_delete_commits_a_tombstone_that_expires_after_the_retention_and_its_intent_never_expires():
    live = VersionEntry("d", Version(50, 1), LIVE, chunks=3, content_hash="h", reach=3, updated_at=NOW - DAY)

    planned = plan(event("delete", ts=100), Version(100, 2), live, chunks=0, now=NOW, tombstone_seconds=DAY)

    assert planned.action == Action.DELETE
    assert planned.commit.expires_at == NOW + DAY and planned.commit.state == DELETED
    assert planned.intent is not None and planned.intent.dirty and planned.intent.expires_at is None
    kept = plan(event("delete", ts=100), Version(100, 2), live, chunks=0, now=NOW, tombstone_seconds=None)
    assert kept.commit.expires_at is None, "0 (for ever): no expiry"


def test_an_upsert_over_a_tombstone_that_will_expire_writes_an_intent_that_never_expires():
    planned = plan(event(ts=200), Version(200, 2), tombstone(100, expires_at=NOW + DAY), chunks=5, now=NOW,
                   tombstone_seconds=DAY)

    assert planned.action == Action.EMBED
    assert planned.intent is not None and planned.intent.dirty and planned.intent.reach == 5
    assert planned.intent.expires_at is None, "a dirty entry must outlive DynamoDB's TTL"


def test_a_tombstone_holds_an_older_upsert_back_until_it_expires_then_reads_as_no_entry():
    older = event(ts=50)

    held = plan(older, Version(50, 9), tombstone(100, expires_at=NOW + 1), chunks=1, now=NOW, tombstone_seconds=DAY)
    expired = plan(older, Version(50, 9), tombstone(100, expires_at=NOW), chunks=1, now=NOW, tombstone_seconds=DAY)

    assert held.action == Action.STALE
    assert expired.action == Action.EMBED
    assert expired.stale_keys == (), "an expired tombstone is no entry: no reach left to delete"


def test_the_indexer_stores_a_tombstone_that_expires_after_tombstone_retention_days(env, monkeypatch):
    import indexer

    monkeypatch.setenv("TOMBSTONE_RETENTION_DAYS", "1")
    indexer.handler.reset()
    run({"Records": [record({"doc_id": "d", "text": "Some text."}, seq=1)]})
    before = int(time.time())

    assert run({"Records": [record({"doc_id": "d", "op": "delete"}, seq=2)]}) == {"batchItemFailures": []}

    item = boto3.client("dynamodb").get_item(TableName=VERSIONS, Key={"pk": {"S": f"{BUCKET}/{INDEX}#d"}})["Item"]
    assert item["state"] == {"S": DELETED}
    assert before + DAY <= int(item["expires_at"]["N"]) <= int(time.time()) + DAY
