"""The local index's exact search: this process's copy of the index as a float32 matrix of unit rows (cosine
similarity is one matrix-vector product), refreshed incrementally from the SQLite store, and the filter evaluated on
whole metadata columns (it agrees with ``rtrag.core.filters.matches``, which the tests check on random filters)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rtrag.core.filters import is_number

_LOAD_CHUNK_ROWS = 8192


class Column:
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
                       # float64 compares ints exactly up to 2**53; is_number() leaves larger ones out.
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


class MatrixCache:
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
        self.columns: dict[str, Column] = {}

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

    def _column(self, key: str) -> Column:
        column = self.columns.get(key)
        if column is None:
            unparsed = [s for s, value in enumerate(self.filterable) if isinstance(value, str)]
            if unparsed:
                # One parse of one JSON array is cheaper than one parse per row.
                parsed = json.loads("[" + ",".join(self.filterable[s] for s in unparsed) + "]")
                for slot, metadata in zip(unparsed, parsed):
                    self.filterable[slot] = metadata
            column = self.columns[key] = Column(key, self.filterable)
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

    def _condition(self, column: Column, operator: str, operand: Any) -> np.ndarray:
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
