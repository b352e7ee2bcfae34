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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from .events import DELETE, DocumentEvent

LIVE = "live"
DELETED = "deleted"
STATES = (LIVE, DELETED)


@dataclass(frozen=True, order=True)
class Version:
    """``(ts, seq)``, compared as numbers: the ts first, the sequence number for events of the same second."""

    ts: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ts}/{self.seq}"


def event_version(event: DocumentEvent, sequence_number: str) -> Version:
    """The version of ``event`` carried by the record with ``sequence_number``."""
    return Version(event.ts, int(event.seq if event.seq is not None else sequence_number))


@dataclass(frozen=True)
class VersionEntry:
    """One document's ledger entry. ``version``/``state`` are None until a first commit."""

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


class Action(Enum):
    """What a document's winning event does."""

    STALE = "stale"  # not newer than the committed version: nothing changes
    UNCHANGED = "unchanged"  # same text and attributes: only the committed version is raised
    RETAG = "retag"  # same text, new source or metadata: the stored embeddings are written again
    EMBED = "embed"  # new text: chunk, embed, write
    DELETE = "delete"  # delete every chunk, leave a tombstone


@dataclass(frozen=True)
class Plan:
    """What to do for one document. The writer follows it in order: ``intent`` (if any) is in the ledger before
    the index is touched; ``write_chunks`` keys ``doc#0..n-1`` are written and ``stale_keys`` deleted (in any
    order: the two sets are disjoint); then ``commit`` goes to the ledger."""

    action: Action
    commit: VersionEntry | None = None
    intent: VersionEntry | None = None
    write_chunks: int = 0
    stale_keys: tuple[str, ...] = ()

    @property
    def touches_index(self) -> bool:
        return bool(self.write_chunks or self.stale_keys)


def vector_key(doc_id: str, chunk: int) -> str:
    return f"{doc_id}#{chunk}"


def plan(event: DocumentEvent, version: Version, entry: VersionEntry | None, *, chunks: int, now: float,
         tombstone_seconds: int | None) -> Plan:
    """Decide what ``event`` (``version``, cut into ``chunks`` chunks) does, given the document's ledger ``entry``.

    ``tombstone_seconds`` is how long a tombstone must hold older upserts back (None: for ever).
    """
    doc_id = event.doc_id
    if entry is not None and entry.forgotten(now):
        entry = None
    if entry is not None and entry.version is not None and version <= entry.version:
        return Plan(Action.STALE)
    reach = entry.reach if entry is not None else 0
    stamp = int(now)

    if event.op == DELETE:
        expires = None if tombstone_seconds is None else stamp + tombstone_seconds
        commit = VersionEntry(doc_id, version, DELETED, expires_at=expires, updated_at=stamp)
        keys = tuple(vector_key(doc_id, i) for i in range(max(reach, 1)))
        return Plan(Action.DELETE, commit=commit, intent=_intent(entry, doc_id, 0, stamp), stale_keys=keys)

    content, attributes = event.content_hash, event.attributes_hash
    if entry is not None and entry.clean_live and entry.content_hash == content:
        if entry.attributes == attributes:
            return Plan(Action.UNCHANGED, commit=replace(entry, version=version, updated_at=stamp))
        # The stored chunks are reused as they are (their count, their text): only their metadata changes.
        commit = replace(entry, version=version, attributes=attributes, updated_at=stamp)
        return Plan(Action.RETAG, commit=commit, intent=_intent(entry, doc_id, entry.chunks, stamp),
                    write_chunks=entry.chunks)
    commit = VersionEntry(doc_id, version, LIVE, chunks=chunks, content_hash=content, attributes=attributes,
                          reach=chunks, updated_at=stamp)
    stale = tuple(vector_key(doc_id, i) for i in range(chunks, reach))
    return Plan(Action.EMBED, commit=commit, intent=_intent(entry, doc_id, chunks, stamp), write_chunks=chunks,
                stale_keys=stale)


def _intent(entry: VersionEntry | None, doc_id: str, chunks: int, stamp: int) -> VersionEntry | None:
    """The ledger write that must precede an attempt writing ``chunks`` chunks (and deleting what ``entry``'s
    reach covers), or None when the entry already says all a later writer needs to know.

    It is needed when the attempt may write keys beyond what the entry covers (``doc#0`` is always covered), or
    when the entry is clean and live: a failed attempt would otherwise leave an index that no longer matches the
    content hash and attributes that the shortcuts trust.
    """
    reach = entry.reach if entry is not None else 0
    covered = max(reach, 1)
    clean_live = entry is not None and entry.clean_live
    if chunks <= covered and not clean_live:
        return None
    base = entry if entry is not None else VersionEntry(doc_id)
    # A dirty entry never expires: DynamoDB's TTL must not drop the reach while chunks may exist.
    return replace(base, dirty=True, reach=max(reach, chunks), expires_at=None, updated_at=stamp)


class VersionLedger(Protocol):
    """The store of version entries. ``get`` reads strongly consistently; ``put`` writes whole entries (last
    writer wins: the one-writer-per-document rule above makes that safe). Both raise TransientError on failure;
    a failed ``put`` may have written some of its entries."""

    def get(self, doc_ids: Sequence[str]) -> dict[str, VersionEntry]: ...
    def put(self, entries: Sequence[VersionEntry]) -> None: ...
