"""Document versions and the version ledger: what makes the index end at the winning version of every document.

The guarantee (README, "Guarantees"):

- An event's version is ``(ts, sequence number)``: its ``ts`` (default: the record's arrival time) and its
  ``seq`` (default: the record's Kinesis sequence number). The greatest version wins, inside a batch, across
  batches and against what is stored, whether the stored version was written, skipped as unchanged or deleted.
- A delete leaves a tombstone in the ledger, so an older upsert that arrives later never brings the document back.
- After a failure at any call, the index holds exactly the chunks of each document's winning version once the
  failed records are delivered again.

The ledger keeps one entry per document, outside the queried index (a DynamoDB table on AWS, a SQLite table in
local mode). An entry records the last version *committed*, which is the version whose chunks the index is known
to hold (or the tombstone), and two facts about attempts that may not have finished:

- ``reach``: every chunk key ``doc#i`` with ``i < reach`` may exist. A writer raises it (an *intent*) before it
  writes keys beyond it, so a later writer can always find and delete every chunk an earlier attempt may have
  left. ``doc#0`` is always assumed to exist, which lets the common case (a new one-chunk document) skip the
  intent;
- ``dirty``: an attempt may have changed the index since the commit, so the index no longer matches the
  committed content hash and attributes; the shortcuts that trust them (skip as unchanged, re-tag with the stored
  embeddings) are off until the next commit.

One writer per document at a time is assumed: Kinesis delivers a partition key (the doc id) from one shard in
order, and the event source mapping processes a shard's records one batch at a time (with a parallelization
factor, one batch at a time per partition key). Local mode's runner holds a lock per shard for the same reason.

This module is the pure part: versions, entries and ``plan``, which decides what one document's winning event
does to the index and the ledger. The indexer (``pipeline``) carries the plans out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rtrag.core.events import DocumentEvent

LIVE = "live"
DELETED = "deleted"
STATES = (LIVE, DELETED)


class Version(NamedTuple):
    """``(ts, seq)``, compared as numbers: the ts first, the sequence number for events of the same second.
    (Immutable records on the indexer's import path are NamedTuples: a dataclass costs about 0.6 ms to define,
    a NamedTuple a fifth of that, and the Lambda's cold start pays for each; ``bench/cold_start.py``.)"""

    ts: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ts}/{self.seq}"


def event_version(event: DocumentEvent, sequence_number: str) -> Version:
    """The version of ``event`` carried by the record with ``sequence_number``."""
    return Version(event.ts, int(event.seq if event.seq is not None else sequence_number))


class VersionEntry(NamedTuple):
    """One document's ledger entry. ``version``/``state`` are None until a first commit. A new entry is made
    with ``entry._replace(...)``."""

    doc_id: str
    version: Version | None = None
    state: str | None = None  # LIVE or DELETED
    chunks: int = 0  # LIVE: the committed version's chunk count
    content_hash: str | None = None  # LIVE: of the committed text
    attributes: str | None = None  # LIVE: the committed event's attributes_hash
    dirty: bool = False
    reach: int = 0
    expires_at: int | None = None  # a clean tombstone may be forgotten after this epoch second
    updated_at: int = 0

    def forgotten(self, now: float) -> bool:
        """A clean tombstone past its expiry: it no longer holds older upserts back (DynamoDB's TTL may already
        have removed it; until then it reads the same as no entry)."""
        return (self.state == DELETED and not self.dirty and self.expires_at is not None
                and self.expires_at <= now)

    @property
    def clean_live(self) -> bool:
        return self.state == LIVE and not self.dirty


def vector_key(doc_id: str, chunk: int) -> str:
    return f"{doc_id}#{chunk}"


def index_generation(created: Any) -> str | None:
    """A vector index's generation, which tells it from an earlier index of the same name: its creation time
    (S3 Vectors GetIndex's ``creationTime``, an aware datetime) in epoch milliseconds, as text. The same instant
    gives the same text in any time zone. None when the time is not known."""
    timestamp = getattr(created, "timestamp", None)
    return None if timestamp is None else str(round(timestamp() * 1000))
