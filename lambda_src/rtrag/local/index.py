"""A durable local vector index with Amazon S3 Vectors semantics (DESIGN.md, "Local mode").

Writes and reads go through the S3 Vectors adapter itself (``rtrag.vectors.S3VectorsIndex``) with a SQLite store
standing in for the boto3 ``s3vectors`` client, so every limit check, call split and error type is the adapter's
own, not a copy. Queries are exact: a brute-force cosine ranking over a float32 matrix kept in memory per process
and refreshed incrementally when another connection (another process) has written.

Storage is one SQLite database in WAL mode under the index directory: readers never block the writer, several
processes can share it (a runner writing while ``ask`` reads), and a committed write survives a crash. Each write
transaction bumps a generation counter and stamps the rows it touches; a delete leaves a tombstone row, so a reader
catches up by reading only the rows stamped after the generation it last saw.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rtrag.aws.s3vectors import S3VectorsIndex
from rtrag.core.errors import ConfigError, LimitExceeded, TransientError
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.filters import is_number, validate_filter
from rtrag.core.limits import (
    MAX_DIMENSION,
    MAX_METADATA_KEY_NAME_CHARS,
    MAX_NON_FILTERABLE_KEYS,
    MAX_TOP_K,
)
from rtrag.core.vectors import Vector, check_vector

DB_FILE = "vectors.sqlite3"
SCHEMA_VERSION = 1
DATA_TYPE = "float32"
DISTANCE_METRICS = ("cosine",)
# How long a writer waits for another process's write transaction before giving up (TransientError: retry).
BUSY_TIMEOUT_S = 30.0
_LOAD_CHUNK_ROWS = 8192

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS params (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL)",
    # seq: generation of the row's last write. A deleted vector keeps its row with data NULL (a tombstone) so that
    # readers holding a cache learn of the delete.
    "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB, filterable TEXT,"
    " metadata TEXT)",
    "CREATE INDEX IF NOT EXISTS vectors_by_seq ON vectors (seq)",
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


class _SqliteClient:
    """The data-plane calls of the boto3 ``s3vectors`` client (PutVectors, GetVectors, DeleteVectors) with their
    request and response shapes, on the SQLite store. ``S3VectorsIndex`` validates every request before it gets
    here, as it does before a request reaches AWS."""

    def __init__(self, db: _Database, *, non_filterable_keys: Sequence[str]):
        self.db = db
        self.non_filterable = frozenset(non_filterable_keys)

    def put_vectors(self, *, vectors: Sequence[Vector], **target: str) -> dict[str, Any]:
        rows = []
        for vector in vectors:
            with np.errstate(over="ignore"):
                data = np.asarray(vector["data"]["float32"], dtype=np.float32)
            if not np.isfinite(data).all():
                raise LimitExceeded(f"vector {vector['key']!r} holds a value outside the float32 range")
            metadata = vector.get("metadata") or {}
            filterable = {k: v for k, v in metadata.items() if k not in self.non_filterable}
            rows.append((vector["key"], data.tobytes(), _json(filterable), _json(metadata)))
        # One transaction: a call is written whole or not at all, and readers see it at once.
        with self.db.transaction(write=True) as conn:
            generation = _next_generation(conn)
            conn.executemany(
                "INSERT INTO vectors (key, seq, data, filterable, metadata) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, data = excluded.data, "
                "filterable = excluded.filterable, metadata = excluded.metadata",
                [(key, generation, data, filterable, metadata) for key, data, filterable, metadata in rows])
        return {}

    def delete_vectors(self, *, keys: Sequence[str], **target: str) -> dict[str, Any]:
        with self.db.transaction(write=True) as conn:
            generation = _next_generation(conn)
            conn.executemany("UPDATE vectors SET seq = ?, data = NULL, filterable = NULL, metadata = NULL "
                             "WHERE key = ? AND data IS NOT NULL", [(generation, key) for key in keys])
        return {}

    def get_vectors(self, *, keys: Sequence[str], returnData: bool = False, returnMetadata: bool = False,
                    **target: str) -> dict[str, Any]:
        marks = ",".join("?" * len(keys))
        with self.db.transaction(write=False) as conn:
            found = {key: (data, metadata) for key, data, metadata in conn.execute(
                f"SELECT key, data, metadata FROM vectors WHERE data IS NOT NULL AND key IN ({marks})", list(keys))}
        vectors = []
        for key in dict.fromkeys(keys):
            if key not in found:
                continue
            data, metadata = found[key]
            vector: dict[str, Any] = {"key": key}
            if returnData:
                vector["data"] = {"float32": np.frombuffer(data, dtype=np.float32).tolist()}
            if returnMetadata:
                vector["metadata"] = json.loads(metadata)
            vectors.append(vector)
        return {"vectors": vectors}


def _next_generation(conn: sqlite3.Connection) -> int:
    conn.execute("UPDATE state SET generation = generation + 1 WHERE id = 1")
    return conn.execute("SELECT generation FROM state WHERE id = 1").fetchone()[0]


class _Column:
    """One metadata key's values over the cache's rows, as arrays: which rows have the key, and each (row, element)
    pair of its values by JSON type (a scalar is a one-element list). Types never mix: "1", 1 and true differ."""

    def __init__(self, key: str, rows: Sequence[Mapping[str, Any] | None]):
        self.present = np.zeros(len(rows), dtype=bool)
        slots: dict[type, list[int]] = {str: [], float: [], bool: []}
        values: dict[type, list[Any]] = {str: [], float: [], bool: []}
        for slot, metadata in enumerate(rows):
            if metadata is None or key not in metadata:
                continue
            self.present[slot] = True
            value = metadata[key]
            for element in value if isinstance(value, list) else (value,):
                kind = _kind(element)
                if kind is not None:
                    slots[kind].append(slot)
                    values[kind].append(element)
        self.slots = {kind: np.asarray(found, dtype=np.intp) for kind, found in slots.items()}
        self.values = {str: np.asarray(values[str], dtype=object),
                       # float64 compares ints exactly up to 2**53, beyond any value metadata holds in practice.
                       float: np.asarray(values[float], dtype=np.float64),
                       bool: np.asarray(values[bool], dtype=bool)}

    def rows_where(self, kind: type, hits: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(self.present), dtype=bool)
        mask[self.slots[kind][hits]] = True
        return mask

    def equal_any(self, operands: Sequence[Any]) -> np.ndarray:
        """Rows with an element equal to one of ``operands`` (same JSON type)."""
        mask = np.zeros(len(self.present), dtype=bool)
        for kind in (str, float, bool):
            wanted = [v for v in operands if _kind(v) is kind]
            if wanted and len(self.values[kind]):
                mask |= self.rows_where(kind, np.isin(self.values[kind], wanted))
        return mask


def _kind(value: Any) -> type | None:
    """The column a metadata element goes in; None for what no filter operand can match (as in filters.matches)."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, str):
        return str
    if isinstance(value, (int, float)):
        return float if is_number(value) else None
    return None


_RANGE_UFUNCS = {"$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}


class _MatrixCache:
    """This process's copy of the index for ranking: unit-length rows (cosine similarity is one matrix-vector
    product), each row's key and filterable metadata, and the generation it reflects."""

    def __init__(self, dimension: int):
        self.dimension = dimension
        self.reset()

    def reset(self) -> None:
        self.generation = 0
        self.matrix = np.zeros((0, self.dimension), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self.keys: list[str | None] = []
        # Filterable metadata per row: the stored JSON text until a filter first needs it parsed.
        self.filterable: list[Any] = []
        self.slot_of: dict[str, int] = {}
        self.free: list[int] = []
        self.columns: dict[str, _Column] = {}

    def refresh(self, conn: sqlite3.Connection) -> None:
        generation = conn.execute("SELECT generation FROM state WHERE id = 1").fetchone()[0]
        if generation == self.generation:
            return
        if generation < self.generation:  # the index was recreated under us: start over
            self.reset()
        # Rows written since, tombstones included: an upper bound on the rows this refresh adds.
        (changed,) = conn.execute("SELECT COUNT(*) FROM vectors WHERE seq > ?", (self.generation,)).fetchone()
        self._reserve(len(self.keys) + changed)
        cursor = conn.execute("SELECT key, data, filterable FROM vectors WHERE seq > ?", (self.generation,))
        while rows := cursor.fetchmany(_LOAD_CHUNK_ROWS):
            self._apply(rows)
        self.columns.clear()
        self.generation = generation

    def _reserve(self, rows: int) -> None:
        if rows <= len(self.matrix):
            return
        # Room to grow by half: the next writes need no copy, and np.zeros leaves untouched pages unallocated.
        capacity = max(rows + rows // 2, 1024)
        matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        matrix[:len(self.keys)] = self.matrix[:len(self.keys)]
        alive = np.zeros(capacity, dtype=bool)
        alive[:len(self.keys)] = self.alive[:len(self.keys)]
        self.matrix, self.alive = matrix, alive

    def _apply(self, rows: list[tuple[str, bytes | None, str | None]]) -> None:
        slots: list[int] = []
        blobs: list[bytes] = []
        for key, data, filterable in rows:
            slot = self.slot_of.get(key)
            if data is None:
                if slot is not None:
                    del self.slot_of[key]
                    self.alive[slot] = False
                    self.keys[slot] = self.filterable[slot] = None
                    self.free.append(slot)
                continue
            if slot is None:
                if self.free:
                    slot = self.free.pop()
                else:
                    slot = len(self.keys)
                    self.keys.append(None)
                    self.filterable.append(None)
                self.slot_of[key] = slot
                self.keys[slot] = key
                self.alive[slot] = True
            self.filterable[slot] = filterable
            slots.append(slot)
            blobs.append(data)
        if slots:
            vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(slots), self.dimension)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0  # a zero vector stays zero: similarity 0, distance 1 to everything
            self.matrix[slots] = vectors / norms

    def _column(self, key: str) -> _Column:
        column = self.columns.get(key)
        if column is None:
            unparsed = [s for s, value in enumerate(self.filterable) if isinstance(value, str)]
            if unparsed:
                # One parse of one JSON array is cheaper than one parse per row.
                parsed = json.loads("[" + ",".join(self.filterable[s] for s in unparsed) + "]")
                for slot, metadata in zip(unparsed, parsed):
                    self.filterable[slot] = metadata
            column = self.columns[key] = _Column(key, self.filterable)
        return column

    def matching(self, filter: Mapping[str, Any]) -> np.ndarray:
        """The rows a validated filter accepts, evaluated on whole columns; agrees with ``rtrag.filters.matches``
        (the tests check this on random filters), which documents each rule's source."""
        mask = np.ones(len(self.keys), dtype=bool)
        for key, value in filter.items():
            if key == "$and":
                for sub in value:
                    mask &= self.matching(sub)
            elif key == "$or":
                either = np.zeros(len(self.keys), dtype=bool)
                for sub in value:
                    either |= self.matching(sub)
                mask &= either
            else:
                conditions = value if isinstance(value, Mapping) else {"$eq": value}
                for operator, operand in conditions.items():
                    mask &= self._condition(self._column(key), operator, operand)
        return mask

    def _condition(self, column: _Column, operator: str, operand: Any) -> np.ndarray:
        if operator == "$eq":
            return column.equal_any([operand])
        if operator == "$ne":
            return ~column.equal_any([operand])
        if operator == "$in":
            return column.equal_any(operand)
        if operator == "$nin":
            return ~column.equal_any(operand)
        if operator == "$exists":
            return column.present.copy() if operand else ~column.present
        if operator == "$startsWith":
            hits = np.fromiter((v.startswith(operand) for v in column.values[str]), dtype=bool,
                               count=len(column.values[str]))
            return column.rows_where(str, hits)
        return column.rows_where(float, _RANGE_UFUNCS[operator](column.values[float], operand))

    def nearest(self, query: np.ndarray, top_k: int, filter: Mapping[str, Any] | None) -> list[tuple[str, float]]:
        """The ``top_k`` rows nearest to the unit vector ``query`` among those a validated ``filter`` accepts (the
        filter is applied before ranking, as S3 Vectors' pre-filtering does), as (key, cosine distance), nearest
        first."""
        used = len(self.keys)
        accepted = self.alive[:used] if filter is None else self.alive[:used] & self.matching(filter)
        candidates = np.flatnonzero(accepted)
        if not candidates.size:
            return []
        if candidates.size * 8 < used:  # gathering rows costs several times more per row than a full product
            similarities = self.matrix[candidates] @ query
        else:
            similarities = (self.matrix[:used] @ query)[candidates]
        k = min(top_k, candidates.size)
        best = np.argpartition(-similarities, k - 1)[:k] if k < candidates.size else np.arange(candidates.size)
        best = best[np.argsort(-similarities[best], kind="stable")]
        distances = np.clip(1.0 - similarities[best], 0.0, 2.0)
        return [(self.keys[s], float(d)) for s, d in zip(candidates[best].tolist(), distances.tolist())]


class LocalVectorIndex:
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
        self.dimension: int = params["dimension"]
        self.distance_metric: str = params["distance_metric"]
        self.non_filterable_keys: tuple[str, ...] = tuple(params["non_filterable_keys"])
        self._adapter = S3VectorsIndex(_SqliteClient(self._db, non_filterable_keys=self.non_filterable_keys),
                                       bucket="local", index=self.path.name or "local", dimension=self.dimension,
                                       non_filterable_keys=self.non_filterable_keys)
        self._cache = _MatrixCache(self.dimension)

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
            rows = dict(conn.execute("SELECT name, value FROM params"))
        return {name: json.loads(value) for name, value in rows.items()} or None

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
                  "data_type": DATA_TYPE, "non_filterable_keys": keys}
        with self._db.transaction(write=True) as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            # Another process may have created the index since we looked: its parameters win, and are checked.
            conn.executemany("INSERT OR IGNORE INTO params (name, value) VALUES (?, ?)",
                             [(name, json.dumps(value)) for name, value in params.items()])
            conn.execute("INSERT OR IGNORE INTO state (id, generation) VALUES (1, 0)")
            rows = dict(conn.execute("SELECT name, value FROM params"))
        return {name: json.loads(value) for name, value in rows.items()}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalVectorIndex:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalVectorIndex({str(self.path)!r}, dimension={self.dimension})"

    def check(self, vector: Vector) -> int:
        """Raise LimitExceeded if ``vector`` breaks a PutVectors limit; return its size in a request in bytes."""
        return self._adapter.check(vector)

    def check_metadata(self, key: str, metadata: dict[str, Any]) -> int:
        return self._adapter.check_metadata(key, metadata)

    def check_data(self, key: str, data: list[float]) -> int:
        return self._adapter.check_data(key, data)

    def put_call(self, vectors: Sequence[Vector], *, sizes: Sequence[int] | None = None) -> None:
        """Write 1..500 vectors atomically (one PutVectors call); a key that exists is overwritten. ``sizes``:
        what ``check`` returned for these vectors, if the caller has checked them."""
        self._adapter.put_call(vectors, sizes=sizes)

    def put(self, vectors: Sequence[Vector]) -> int:
        """Write any number of vectors in as few calls as the limits allow; returns the number of calls."""
        return self._adapter.put(vectors)

    def delete_call(self, keys: Sequence[str]) -> None:
        """Delete 1..500 keys (one DeleteVectors call). Deleting a key that does not exist is not an error."""
        self._adapter.delete_call(keys)

    def delete(self, keys: Sequence[str]) -> int:
        """Delete any number of keys; returns the number of calls."""
        return self._adapter.delete(keys)

    def get(self, keys: Sequence[str], *, data: bool = False, metadata: bool = True) -> dict[str, Vector]:
        """The vectors that exist among ``keys``, by key, shaped as GetVectors returns them."""
        return self._adapter.get(keys, data=data, metadata=metadata)

    def query(self, vector: Sequence[float], *, top_k: int, filter: dict[str, Any] | None = None,
              return_metadata: bool = True, return_distance: bool = True) -> list[dict[str, Any]]:
        """The ``top_k`` (1..100) vectors nearest to ``vector`` by cosine distance (1 - cosine similarity) among
        those matching ``filter`` (S3 Vectors' filter language, applied before ranking), nearest first, each
        ``{"key", "distance", "metadata"}`` (distance None / metadata {} when not asked for). Exact search."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise LimitExceeded(f"topK must be 1..{MAX_TOP_K}, got {top_k!r}")
        values = vector.tolist() if isinstance(vector, np.ndarray) else list(vector)
        check_vector({"key": "query", "data": {"float32": values}}, dimension=self.dimension, non_filterable_keys=())
        query = np.asarray(values, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if norm > 0:
            query = query / norm
        valid = validate_filter(filter, non_filterable_keys=self.non_filterable_keys) if filter else None
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

    def list_keys(self) -> list[str]:
        """Every key in the index, sorted."""
        with self._db.transaction(write=False) as conn:
            return [key for (key,) in conn.execute("SELECT key FROM vectors WHERE data IS NOT NULL ORDER BY key")]

    def count(self) -> int:
        """The number of vectors in the index."""
        with self._db.transaction(write=False) as conn:
            return conn.execute("SELECT COUNT(*) FROM vectors WHERE data IS NOT NULL").fetchone()[0]

    def describe(self) -> dict[str, Any]:
        """The index's parameters, shaped like S3 Vectors' GetIndex ``index``."""
        return {"indexName": self.path.name, "dataType": DATA_TYPE, "dimension": self.dimension,
                "distanceMetric": self.distance_metric,
                "metadataConfiguration": {"nonFilterableMetadataKeys": list(self.non_filterable_keys)}}
