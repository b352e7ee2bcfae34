"""What the indexer needs from the outside, as small protocols: an embedder, a vector index, the version ledger and
a dead-letter sink. The AWS adapters (``rtrag.aws``) and the local ones (``rtrag.local``) implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import RagError
from rtrag.core.vectors import Vector
from rtrag.core.versions import VersionEntry


class Embedder(Protocol):
    """``embed_many`` returns every text's vector (or error) in order. An embedder may also offer
    ``embed_iter(texts)``, yielding ``(index, vector or error)`` as each text is done; the indexer then writes
    documents while the others are still being embedded."""

    calls: int

    def embed_many(self, texts: Sequence[str]) -> list[list[float] | RagError]: ...


class VectorIndex(Protocol):
    def check(self, vector: Vector) -> int: ...
    def check_metadata(self, key: str, metadata: dict[str, Any]) -> int: ...
    def check_data(self, key: str, data: list[float]) -> int: ...
    def put_call(self, vectors: Sequence[Vector], *, sizes: Sequence[int] | None = None) -> None: ...
    def put(self, vectors: Sequence[Vector]) -> int: ...
    def delete_call(self, keys: Sequence[str]) -> None: ...
    def delete(self, keys: Sequence[str]) -> int: ...
    def get(self, keys: Sequence[str], *, data: bool = False, metadata: bool = True) -> dict[str, Vector]: ...


class DeadLetterSink(Protocol):
    def write(self, letter: DeadLetter) -> str: ...


class VersionLedger(Protocol):
    """The store of version entries. ``get`` reads strongly consistently; ``put`` writes whole entries (last
    writer wins: the one-writer-per-document rule above makes that safe). Both raise TransientError on failure;
    a failed ``put`` may have written some of its entries."""

    def get(self, doc_ids: Sequence[str]) -> dict[str, VersionEntry]: ...
    def put(self, entries: Sequence[VersionEntry]) -> None: ...
