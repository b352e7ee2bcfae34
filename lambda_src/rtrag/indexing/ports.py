"""What the indexer needs from the outside, as small protocols: an embedder, a vector index, the version ledger and
a dead-letter sink. The AWS adapters (``rtrag.aws``) and the local ones (``rtrag.local``) implement them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import RagError
from rtrag.core.vectors import Vector
from rtrag.core.versions import VersionEntry


class Embedder(Protocol):
    """Embeds texts, yielding ``(index, vector or error)`` as each is done, so the indexer writes the first
    documents while the others are still being embedded. ``calls`` counts the model calls made (the metrics'
    EmbeddingCalls)."""

    calls: int

    def embed_iter(self, texts: Sequence[str]) -> Iterator[tuple[int, list[float] | RagError]]: ...


class VectorIndex(Protocol):
    """One vector index, narrowed to what the indexer does with it: one PutVectors call (vectors already checked,
    with their request sizes), one DeleteVectors call, and reading vectors back by key. The per-vector limits
    are checked by the indexer with ``rtrag.core.vectors`` against the index's ``dimension`` and
    ``non_filterable_keys``."""

    dimension: int
    non_filterable_keys: tuple[str, ...]

    def put_call(self, vectors: Sequence[Vector], *, sizes: Sequence[int] | None = None) -> None: ...
    def delete_call(self, keys: Sequence[str]) -> None: ...
    def get(self, keys: Sequence[str], *, data: bool = False, metadata: bool = True) -> dict[str, Vector]: ...


class DeadLetterSink(Protocol):
    def write(self, letter: DeadLetter) -> str: ...


class VersionLedger(Protocol):
    """The store of version entries. ``get`` reads strongly consistently; ``put`` writes whole entries (last
    writer wins: the one-writer-per-document rule above makes that safe). Both raise TransientError on failure;
    a failed ``put`` may have written some of its entries."""

    def get(self, doc_ids: Sequence[str]) -> dict[str, VersionEntry]: ...
    def put(self, entries: Sequence[VersionEntry]) -> None: ...
