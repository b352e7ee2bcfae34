"""A durable local vector index with Amazon S3 Vectors semantics (docs/ARCHITECTURE.md, "Local mode").

Writes and reads go through the checks and call splitting that the S3 Vectors adapter uses too
(``rtrag.core.vectors.CheckedVectorIndex``), with a SQLite store making the calls, so every limit check, call
split and error type is the same as on AWS, not a copy. Queries are exact: a brute-force cosine ranking over a
float32 matrix kept in memory per process and refreshed incrementally when another connection (another process)
has written.

Storage is one SQLite database in WAL mode under the index directory: readers never block the writer, several
processes can share it (a runner writing while ``ask`` reads), and a committed write survives a crash. Each write
transaction bumps a generation counter and stamps the rows it touches; a delete leaves a tombstone row, so a reader
catches up by reading only the rows stamped after the generation it last saw.

Beside the vectors, an FTS5 full-text table holds each vector's source text, written in the same transaction, so
``text_query`` ranks chunks by BM25 on the question's words (the lexical half of local mode's hybrid retrieval)
and ``document_frequencies`` gives the answerer each word's rarity. SQLite's own full-text engine: no extra
dependency, and it is never out of step with the vectors.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rtrag.core.errors import ConfigError, LimitExceeded, TransientError
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.filters import validate_filter
from rtrag.core.limits import (
    MAX_DIMENSION,
    MAX_METADATA_KEY_NAME_CHARS,
    MAX_NON_FILTERABLE_KEYS,
    MAX_TOP_K,
)
from rtrag.core.vectors import CheckedVectorIndex, Vector, check_vector
from rtrag.local.search import MatrixCache
from rtrag.workflows.text import fts_query

DB_FILE = "vectors.sqlite3"
SCHEMA_VERSION = 2  # 2: the lexical table (an index of format 1 is upgraded when it is opened)
DATA_TYPE = "float32"
DISTANCE_METRICS = ("cosine",)
# How long a writer waits for another process's write transaction before giving up (TransientError: retry).
BUSY_TIMEOUT_S = 30.0

# The full-text index of the vectors' source text; its rowid is the vector row's rowid (which an upsert keeps).
_LEXICAL_TABLE = ("CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(text, "
                  "tokenize = 'porter unicode61 remove_diacritics 2')")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS params (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL)",
    # seq: generation of the row's last write. A deleted vector keeps its row with data NULL (a tombstone) so that
    # readers holding a cache learn of the delete.
    "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB, filterable TEXT,"
    " metadata TEXT)",
    "CREATE INDEX IF NOT EXISTS vectors_by_seq ON vectors (seq)",
    _LEXICAL_TABLE,
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Database:
    """One connection to the index's SQLite file, shared by the threads of a process under a lock."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a write that returned is on disk, even if the machine loses power right after.
            self.conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the local vector index {path}: {exc}; check the directory's "
                              "permissions and free space, or delete it to start a new index") from exc

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """A read transaction sees one snapshot; a write transaction holds the write lock from its start."""
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield self.conn
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise TransientError(f"local vector index {self.path} is busy or unavailable: {exc}; retry",
                                     code=getattr(exc, "sqlite_errorname", "SQLITE_ERROR")) from exc

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class _Store:
    """The three requests of S3 Vectors' data plane (PutVectors, GetVectors, DeleteVectors) on the SQLite store,
    each after ``CheckedVectorIndex`` has checked it, as it is checked before a request reaches AWS."""

    def __init__(self, db: _Database, *, non_filterable_keys: Sequence[str]):
        self.db = db
        self.non_filterable = frozenset(non_filterable_keys)

    def put_vectors(self, vectors: Sequence[Vector]) -> None:
        rows = []
        for vector in vectors:
            with np.errstate(over="ignore"):
                data = np.asarray(vector["data"]["float32"], dtype=np.float32)
            if not np.isfinite(data).all():
                raise LimitExceeded(f"vector {vector['key']!r} holds a value outside the float32 range")
            metadata = vector.get("metadata") or {}
            filterable = {k: v for k, v in metadata.items() if k not in self.non_filterable}
            text = metadata.get(SOURCE_TEXT_KEY)
            rows.append((vector["key"], data.tobytes(), _json(filterable), _json(metadata),
                         text if isinstance(text, str) else None))
        # One transaction: a call is written whole or not at all, and readers see it at once.
        with self.db.transaction(write=True) as conn:
            generation = _next_generation(conn)
            conn.executemany(
                "INSERT INTO vectors (key, seq, data, filterable, metadata) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, data = excluded.data, "
                "filterable = excluded.filterable, metadata = excluded.metadata",
                [(key, generation, data, filterable, metadata) for key, data, filterable, metadata, _ in rows])
            keys = [row[0] for row in rows]
            rowids = dict(conn.execute(f"SELECT key, rowid FROM vectors WHERE key IN ({','.join('?' * len(keys))})",
                                       keys))
            conn.executemany("DELETE FROM lexical WHERE rowid = ?", [(rowids[key],) for key in keys])
            conn.executemany("INSERT INTO lexical (rowid, text) VALUES (?, ?)",
                             [(rowids[key], text) for key, *_, text in rows if text])

    def delete_vectors(self, keys: Sequence[str]) -> None:
        with self.db.transaction(write=True) as conn:
            generation = _next_generation(conn)
            conn.executemany("DELETE FROM lexical WHERE rowid = (SELECT rowid FROM vectors WHERE key = ?)",
                             [(key,) for key in keys])
            conn.executemany("UPDATE vectors SET seq = ?, data = NULL, filterable = NULL, metadata = NULL "
                             "WHERE key = ? AND data IS NOT NULL", [(generation, key) for key in keys])

    def get_vectors(self, keys: Sequence[str], *, data: bool, metadata: bool) -> list[Vector]:
        marks = ",".join("?" * len(keys))
        with self.db.transaction(write=False) as conn:
            found = {key: (blob, meta) for key, blob, meta in conn.execute(
                f"SELECT key, data, metadata FROM vectors WHERE data IS NOT NULL AND key IN ({marks})", list(keys))}
        vectors = []
        for key in dict.fromkeys(keys):
            if key not in found:
                continue
            blob, meta = found[key]
            vector: dict[str, Any] = {"key": key}
            if data:
                vector["data"] = {"float32": np.frombuffer(blob, dtype=np.float32).tolist()}
            if metadata:
                vector["metadata"] = json.loads(meta)
            vectors.append(vector)
        return vectors


def _params(conn: Any) -> dict[str, Any]:
    """The index's parameters as stored (each value JSON)."""
    return {name: json.loads(value) for name, value in conn.execute("SELECT name, value FROM params")}


def _creation() -> dict[str, Any]:
    """The parameters that identify one creation of an index: a random id and the time."""
    return {"index_id": uuid.uuid4().hex, "created_at": round(time.time(), 3)}


def _next_generation(conn: sqlite3.Connection) -> int:
    conn.execute("UPDATE state SET generation = generation + 1 WHERE id = 1")
    return conn.execute("SELECT generation FROM state WHERE id = 1").fetchone()[0]


class LocalVectorIndex(CheckedVectorIndex):
    """A vector index on local disk that behaves like one S3 Vectors index (float32, cosine): the same methods,
    limits and error types as ``S3VectorsIndex``, plus exact ``query``, ``list_keys`` and ``count``."""

    def __init__(self, path: str | Path, *, dimension: int | None = None,
                 non_filterable_keys: Sequence[str] | None = None, distance_metric: str = "cosine"):
        """Open the index in directory ``path``, creating it if it does not exist (then ``dimension`` is
        required; ``non_filterable_keys`` defaults to ``("source_text",)``). Like S3 Vectors' index parameters,
        dimension, metric and non-filterable keys are fixed at creation: opening with different ones raises
        ConfigError. Omitted parameters take the stored values."""
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the local vector index directory {self.path}: {exc}") from exc
        self._db = _Database(self.path / DB_FILE)
        try:
            params = self._open_params(dimension, non_filterable_keys, distance_metric)
        except BaseException:
            self._db.close()
            raise
        super().__init__(dimension=params["dimension"], non_filterable_keys=params["non_filterable_keys"])
        self.distance_metric: str = params["distance_metric"]
        # What tells this index from one created later at the same path (S3 Vectors: the ARN and creationTime).
        self.index_id: str = params["index_id"]
        self.created_at: float = float(params["created_at"])
        self._store = _Store(self._db, non_filterable_keys=self.non_filterable_keys)
        self._cache = MatrixCache(self.dimension)

    @classmethod
    def open(cls, path: str | Path, *, dimension: int | None = None,
             non_filterable_keys: Sequence[str] | None = None, distance_metric: str = "cosine") -> LocalVectorIndex:
        """Same as the constructor."""
        return cls(path, dimension=dimension, non_filterable_keys=non_filterable_keys,
                   distance_metric=distance_metric)

    def _open_params(self, dimension: int | None, non_filterable_keys: Sequence[str] | None,
                     distance_metric: str) -> dict[str, Any]:
        stored = self._read_params()
        if stored is None:
            stored = self._create(dimension, non_filterable_keys, distance_metric)
        if stored["schema_version"] == 1:
            stored = self._upgrade_from_1()
        if "index_id" not in stored:
            stored = self._name_creation()
        if stored["schema_version"] != SCHEMA_VERSION:
            raise ConfigError(f"local vector index {self.path} has storage format {stored['schema_version']}; this "
                              f"version reads format {SCHEMA_VERSION}: delete {self.path} and index again")
        fixed = "index parameters are fixed at creation, as in S3 Vectors"
        if dimension is not None and dimension != stored["dimension"]:
            raise ConfigError(f"local vector index {self.path} has dimension {stored['dimension']}, not {dimension} "
                              f"({fixed}): use an embedder of dimension {stored['dimension']}, or delete "
                              f"{self.path} to start a new index")
        if distance_metric != stored["distance_metric"]:
            raise ConfigError(f"local vector index {self.path} uses the {stored['distance_metric']} metric, not "
                              f"{distance_metric} ({fixed}); delete {self.path} to start a new index")
        if non_filterable_keys is not None and set(non_filterable_keys) != set(stored["non_filterable_keys"]):
            raise ConfigError(f"local vector index {self.path} has non-filterable keys "
                              f"{sorted(stored['non_filterable_keys'])}, not {sorted(non_filterable_keys)} ({fixed}); "
                              f"delete {self.path} to start a new index")
        return stored

    def _read_params(self) -> dict[str, Any] | None:
        with self._db.transaction(write=False) as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'params'").fetchone():
                return None
            return _params(conn) or None

    def _upgrade_from_1(self) -> dict[str, Any]:
        """Format 1 had no lexical table: add it, fill it from the stored source texts, and mark format 2."""
        with self._db.transaction(write=True) as conn:
            if json.loads(conn.execute("SELECT value FROM params WHERE name = 'schema_version'").fetchone()[0]) == 1:
                conn.execute(_LEXICAL_TABLE)
                conn.execute("INSERT INTO lexical (rowid, text) SELECT rowid, json_extract(metadata, ?) FROM vectors "
                             "WHERE data IS NOT NULL AND json_type(metadata, ?) = 'text'",
                             (f"$.{SOURCE_TEXT_KEY}", f"$.{SOURCE_TEXT_KEY}"))
                conn.execute("UPDATE params SET value = ? WHERE name = 'schema_version'", (json.dumps(SCHEMA_VERSION),))
            return _params(conn)

    def _name_creation(self) -> dict[str, Any]:
        """Give an index created before indexes had an identity one (``index_id``), once."""
        with self._db.transaction(write=True) as conn:
            conn.executemany("INSERT OR IGNORE INTO params (name, value) VALUES (?, ?)",
                             [(name, json.dumps(value)) for name, value in _creation().items()])
            return _params(conn)

    def _create(self, dimension: int | None, non_filterable_keys: Sequence[str] | None,
                distance_metric: str) -> dict[str, Any]:
        if dimension is None:
            raise ConfigError(f"no local vector index at {self.path}: pass its dimension to create one")
        if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= MAX_DIMENSION:
            raise ConfigError(f"index dimension must be an integer 1..{MAX_DIMENSION}, got {dimension!r}")
        if distance_metric not in DISTANCE_METRICS:
            raise ConfigError(f"the local vector index supports the {', '.join(DISTANCE_METRICS)} metric, "
                              f"got {distance_metric!r}")
        keys = list(dict.fromkeys((SOURCE_TEXT_KEY,) if non_filterable_keys is None else non_filterable_keys))
        if len(keys) > MAX_NON_FILTERABLE_KEYS:
            raise ConfigError(f"an index takes at most {MAX_NON_FILTERABLE_KEYS} non-filterable keys, got {len(keys)}")
        for key in keys:
            if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_NAME_CHARS:
                raise ConfigError(f"non-filterable key {key!r} must be 1..{MAX_METADATA_KEY_NAME_CHARS} characters")
        params = {"schema_version": SCHEMA_VERSION, "dimension": dimension, "distance_metric": distance_metric,
                  "data_type": DATA_TYPE, "non_filterable_keys": keys, **_creation()}
        with self._db.transaction(write=True) as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            # Another process may have created the index since we looked: its parameters win, and are checked.
            conn.executemany("INSERT OR IGNORE INTO params (name, value) VALUES (?, ?)",
                             [(name, json.dumps(value)) for name, value in params.items()])
            conn.execute("INSERT OR IGNORE INTO state (id, generation) VALUES (1, 0)")
            return _params(conn)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalVectorIndex:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalVectorIndex({str(self.path)!r}, dimension={self.dimension})"

    def _put_vectors(self, vectors: list[Vector]) -> None:
        self._store.put_vectors(vectors)

    def _delete_vectors(self, keys: list[str]) -> None:
        self._store.delete_vectors(keys)

    def _get_vectors(self, keys: list[str], *, data: bool, metadata: bool) -> list[Vector]:
        return self._store.get_vectors(keys, data=data, metadata=metadata)

    def query(self, vector: Sequence[float], *, top_k: int, filter: dict[str, Any] | None = None,
              return_metadata: bool = True, return_distance: bool = True) -> list[dict[str, Any]]:
        """The ``top_k`` (1..100) vectors nearest to ``vector`` by cosine distance (1 - cosine similarity) among
        those matching ``filter`` (S3 Vectors' filter language, applied before ranking), nearest first, each
        ``{"key", "distance", "metadata"}`` (distance None / metadata {} when not asked for). Exact search."""
        query, valid = self._checked_query(vector, top_k, filter)
        with self._db.transaction(write=False) as conn:
            self._cache.refresh(conn)
            hits = self._cache.nearest(query, top_k, valid)
            stored: dict[str, dict[str, Any]] = {}
            if return_metadata and hits:
                # Full metadata (with the non-filterable text) stays on disk; read it in the same snapshot.
                keys = [key for key, _ in hits]
                stored = {key: json.loads(text) for key, text in conn.execute(
                    f"SELECT key, metadata FROM vectors WHERE key IN ({','.join('?' * len(keys))})", keys)}
        return [{"key": key, "distance": distance if return_distance else None,
                 "metadata": stored.get(key, {}) if return_metadata else {}} for key, distance in hits]

    def text_query(self, text: str, *, vector: Sequence[float], top_k: int,
                   filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``top_k`` (1..100) vectors whose source text best matches the words of ``text`` (BM25, by SQLite's
        FTS5) among those matching ``filter``, best first, each ``{"key", "distance", "metadata", "bm25"}`` with
        its cosine distance to ``vector``, as ``query`` returns them. No content word in ``text``: no hits."""
        query, valid = self._checked_query(vector, top_k, filter)
        match = fts_query(text)
        if match is None:
            return []
        with self._db.transaction(write=False) as conn:
            self._cache.refresh(conn)
            accepted = None if valid is None else self._cache.matching(valid)
            found = []
            cursor = conn.execute("SELECT v.key, v.metadata, bm25(lexical) FROM lexical JOIN vectors v "
                                  "ON v.rowid = lexical.rowid WHERE lexical MATCH ? ORDER BY bm25(lexical)", (match,))
            for key, metadata, rank in cursor:
                slot = self._cache.slot_of.get(key)
                if slot is None or (accepted is not None and not accepted[slot]):
                    continue
                distance = float(np.clip(1.0 - float(self._cache.matrix[slot] @ query), 0.0, 2.0))
                found.append({"key": key, "distance": distance, "metadata": json.loads(metadata), "bm25": -rank})
                if len(found) == top_k:
                    break
        return found

    def document_frequencies(self, words: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many chunks hold some source text, and in how many of them each word occurs (as FTS5 matches it:
        stemmed): the rarity that makes a word specific to a question."""
        with self._db.transaction(write=False) as conn:
            total = conn.execute("SELECT COUNT(*) FROM lexical").fetchone()[0]
            counts = {}
            for word in dict.fromkeys(words):
                match = fts_query(word)
                counts[word] = 0 if match is None else conn.execute(
                    "SELECT COUNT(*) FROM lexical WHERE lexical MATCH ?", (match,)).fetchone()[0]
        return total, counts

    def _checked_query(self, vector: Sequence[float], top_k: int,
                       filter: dict[str, Any] | None) -> tuple[np.ndarray, dict[str, Any] | None]:
        """A query's checked parts, as both searches take them: the unit query vector and the validated filter."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise LimitExceeded(f"topK must be 1..{MAX_TOP_K}, got {top_k!r}")
        query = self._unit_query(vector)
        return query, None if filter is None else validate_filter(filter, non_filterable_keys=self.non_filterable_keys)

    def _unit_query(self, vector: Sequence[float]) -> np.ndarray:
        values = vector.tolist() if isinstance(vector, np.ndarray) else list(vector)
        check_vector({"key": "query", "data": {"float32": values}}, dimension=self.dimension, non_filterable_keys=())
        query = np.asarray(values, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        return query / norm if norm > 0 else query

    def list_keys(self) -> list[str]:
        """Every key in the index, sorted."""
        with self._db.transaction(write=False) as conn:
            return [key for (key,) in conn.execute("SELECT key FROM vectors WHERE data IS NOT NULL ORDER BY key")]

    def count(self) -> int:
        """The number of vectors in the index."""
        with self._db.transaction(write=False) as conn:
            return conn.execute("SELECT COUNT(*) FROM vectors WHERE data IS NOT NULL").fetchone()[0]

    @property
    def identity(self) -> str:
        """This index, told apart from any other index ever created at its path (delete the directory, and the
        index created there next has another identity)."""
        return f"{self.path.resolve()}#{self.index_id}"

    def describe(self) -> dict[str, Any]:
        """The index's parameters, shaped like S3 Vectors' GetIndex ``index``."""
        return {"indexName": self.path.name, "dataType": DATA_TYPE, "dimension": self.dimension,
                "distanceMetric": self.distance_metric,
                "metadataConfiguration": {"nonFilterableMetadataKeys": list(self.non_filterable_keys)}}
