"""The version ledger in local mode (``versions.VersionLedger``): a table in the local vector index's own SQLite
file, so the ledger lives and dies with its index (delete the index directory and both start over).

Same entries and rules as the DynamoDB ledger (``rtrag.ledger``); a write of several entries is one
transaction, and a tombstone past its expiry is removed the next time an entry is written (DynamoDB's TTL does
it in the background; ``plan`` ignores an expired tombstone either way).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rtrag.core.versions import Version, VersionEntry
from rtrag.local.index import LocalVectorIndex
from rtrag.local.schema import schema_made

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS versions (doc_id TEXT PRIMARY KEY, ts INTEGER, seq TEXT, state TEXT,"
    " chunks INTEGER NOT NULL, content_hash TEXT, attributes TEXT, dirty INTEGER NOT NULL, reach INTEGER NOT NULL,"
    " expires_at INTEGER, updated_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS versions_by_expiry ON versions (expires_at) WHERE expires_at IS NOT NULL",
)
_COLUMNS = "doc_id, ts, seq, state, chunks, content_hash, attributes, dirty, reach, expires_at, updated_at"
# SQLite's default limit of host parameters in one statement is 32,766 (older builds: 999); stay under the lowest.
_KEYS_PER_SELECT = 900


class LocalVersionLedger:
    """The ledger of one local vector index."""

    def __init__(self, index: LocalVectorIndex):
        self.index = index
        self._db = index._db
        with self._db.transaction(write=False) as conn:  # made before: opening it takes no write lock
            made = schema_made(conn, _SCHEMA)
        if not made:
            with self._db.transaction(write=True) as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)

    def get(self, doc_ids: Sequence[str]) -> dict[str, VersionEntry]:
        unique = list(dict.fromkeys(doc_ids))
        found: dict[str, VersionEntry] = {}
        with self._db.transaction(write=False) as conn:
            for start in range(0, len(unique), _KEYS_PER_SELECT):
                part = unique[start:start + _KEYS_PER_SELECT]
                rows = conn.execute(f"SELECT {_COLUMNS} FROM versions WHERE doc_id IN ({','.join('?' * len(part))})",
                                    part)
                for row in rows:
                    entry = _entry(row)
                    found[entry.doc_id] = entry
        return found

    def put(self, entries: Sequence[VersionEntry]) -> None:
        latest = {e.doc_id: e for e in entries}
        with self._db.transaction(write=True) as conn:
            conn.executemany(f"INSERT OR REPLACE INTO versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [_row(e) for e in latest.values()])
            conn.execute("DELETE FROM versions WHERE expires_at IS NOT NULL AND expires_at <= ? AND dirty = 0",
                         (int(time.time()),))

    def entries(self) -> list[VersionEntry]:
        """Every entry, by doc id (for inspection and tests)."""
        with self._db.transaction(write=False) as conn:
            return [_entry(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM versions ORDER BY doc_id")]


def _row(entry: VersionEntry) -> tuple[Any, ...]:
    version = entry.version
    return (entry.doc_id, version.ts if version else None, str(version.seq) if version else None, entry.state,
            entry.chunks, entry.content_hash, entry.attributes, int(entry.dirty), entry.reach, entry.expires_at,
            entry.updated_at)


def _entry(row: tuple[Any, ...]) -> VersionEntry:
    doc_id, ts, seq, state, chunks, content_hash, attributes, dirty, reach, expires_at, updated_at = row
    version = Version(int(ts), int(seq)) if ts is not None else None
    return VersionEntry(doc_id, version, state, chunks=chunks, content_hash=content_hash, attributes=attributes,
                        dirty=bool(dirty), reach=reach, expires_at=expires_at, updated_at=updated_at)
