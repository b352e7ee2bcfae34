"""The plan step: what one document's winning event does to the index and the ledger (README, "Guarantees").

Pure. ``plan`` compares the event's version with the document's ledger entry and returns an explicit action
(stale, unchanged, re-tag, embed, delete) with the intent to record before any index write, the chunks to write,
the keys to delete and the entry to commit after. The writer (``rtrag.indexing.writer``) carries it out.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from rtrag.core.events import DELETE, DocumentEvent
from rtrag.core.versions import DELETED, LIVE, Version, VersionEntry, vector_key


class Action(Enum):
    """What a document's winning event does."""

    STALE = "stale"  # not newer than the committed version: nothing changes
    UNCHANGED = "unchanged"  # same text and attributes: only the committed version is raised
    RETAG = "retag"  # same text, new source or metadata: the stored embeddings are written again
    EMBED = "embed"  # new text: chunk, embed, write
    DELETE = "delete"  # delete every chunk, leave a tombstone


class Plan(NamedTuple):
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
            return Plan(Action.UNCHANGED, commit=entry._replace(version=version, updated_at=stamp))
        # The stored chunks are reused as they are (their count, their text): only their metadata changes.
        commit = entry._replace(version=version, attributes=attributes, updated_at=stamp)
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
    return base._replace(dirty=True, reach=max(reach, chunks), expires_at=None, updated_at=stamp)
