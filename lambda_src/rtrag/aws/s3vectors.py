"""Amazon S3 Vectors adapter. Every documented limit is checked here before a request is sent (moto checks
only the dimension, the service checks all of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify
from rtrag.core.errors import LimitExceeded
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.limits import (
    MAX_KEYS_PER_DELETE,
    MAX_KEYS_PER_GET,
    MAX_PUT_PAYLOAD_BYTES,
    MAX_TOP_K,
    MAX_VECTORS_PER_PUT,
)
from rtrag.core.vectors import (
    _PAYLOAD_MARGIN,
    Vector,
    batched,
    check_data,
    check_key,
    check_metadata,
    check_vector,
    pack_puts,
)


class S3VectorsIndex:
    """One S3 Vectors index. Single-call methods refuse oversized requests; the plural helpers split them."""

    def __init__(self, client: Any, *, bucket: str, index: str, dimension: int,
                 non_filterable_keys: Sequence[str] = (SOURCE_TEXT_KEY,)):
        self.client = client
        self.bucket = bucket
        self.index = index
        self.dimension = dimension
        self.non_filterable_keys = tuple(non_filterable_keys)

    def _target(self) -> dict[str, str]:
        return {"vectorBucketName": self.bucket, "indexName": self.index}

    def check(self, vector: Vector) -> int:
        return check_vector(vector, dimension=self.dimension, non_filterable_keys=self.non_filterable_keys)

    def check_metadata(self, key: str, metadata: dict[str, Any]) -> int:
        return check_metadata(key, metadata, non_filterable_keys=self.non_filterable_keys)

    def check_data(self, key: str, data: list[float]) -> int:
        return check_data(key, data, dimension=self.dimension)

    def put_call(self, vectors: Sequence[Vector], *, sizes: Sequence[int] | None = None) -> None:
        """One PutVectors call (at most 500 vectors, 20 MiB). ``sizes``: what ``check`` returned for these
        vectors, when the caller has just checked them (they are then not checked again)."""
        if not 1 <= len(vectors) <= MAX_VECTORS_PER_PUT:
            raise LimitExceeded(f"PutVectors takes 1..{MAX_VECTORS_PER_PUT} vectors per call, got {len(vectors)}")
        if sizes is None or len(sizes) != len(vectors):
            sizes = [self.check(v) for v in vectors]
        payload = sum(sizes)
        if payload > MAX_PUT_PAYLOAD_BYTES - _PAYLOAD_MARGIN:
            raise LimitExceeded(f"PutVectors payload of {payload} bytes is over {MAX_PUT_PAYLOAD_BYTES}")
        try:
            self.client.put_vectors(**self._target(), vectors=list(vectors))
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors PutVectors") from exc

    def put(self, vectors: Sequence[Vector]) -> int:
        """Write any number of vectors in as few calls as the limits allow; returns the number of calls."""
        calls = 0
        for call in pack_puts([((v, size), size) for v in vectors for size in (self.check(v),)]):
            self.put_call([v for v, _ in call], sizes=[size for _, size in call])  # checked once, above
            calls += 1
        return calls

    def delete_call(self, keys: Sequence[str]) -> None:
        """One DeleteVectors call (at most 500 keys). Deleting a key that does not exist is not an error."""
        if not 1 <= len(keys) <= MAX_KEYS_PER_DELETE:
            raise LimitExceeded(f"DeleteVectors takes 1..{MAX_KEYS_PER_DELETE} keys per call, got {len(keys)}")
        for key in keys:
            check_key(key)
        try:
            self.client.delete_vectors(**self._target(), keys=list(keys))
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors DeleteVectors") from exc

    def delete(self, keys: Sequence[str]) -> int:
        calls = 0
        for call in batched(list(keys), MAX_KEYS_PER_DELETE):
            self.delete_call(call)
            calls += 1
        return calls

    def get(self, keys: Sequence[str], *, data: bool = False, metadata: bool = True) -> dict[str, Vector]:
        """The vectors that exist among ``keys`` (GetVectors, 100 keys per call), by key."""
        found: dict[str, Vector] = {}
        for call in batched(list(dict.fromkeys(keys)), MAX_KEYS_PER_GET):
            for key in call:
                check_key(key)
            try:
                response = self.client.get_vectors(
                    **self._target(), keys=list(call), returnData=data, returnMetadata=metadata)
            except AWS_ERRORS as exc:
                raise classify(exc, action="S3 Vectors GetVectors") from exc
            for vector in response.get("vectors", []):
                found[vector["key"]] = vector
        return found

    def query(self, vector: Sequence[float], *, top_k: int, filter: dict[str, Any] | None = None,
              return_metadata: bool = True) -> list[dict[str, Any]]:
        """The ``top_k`` nearest vectors (QueryVectors), each ``{"key", "distance", "metadata"}``, nearest first."""
        from rtrag.core.filters import validate_filter

        if isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise LimitExceeded(f"topK must be 1..{MAX_TOP_K}, got {top_k}")
        check_vector({"key": "query", "data": {"float32": list(vector)}}, dimension=self.dimension,
                     non_filterable_keys=())
        request: dict[str, Any] = {**self._target(), "topK": top_k, "queryVector": {"float32": list(vector)},
                                   "returnMetadata": return_metadata, "returnDistance": True}
        if filter is not None:
            request["filter"] = validate_filter(filter, non_filterable_keys=self.non_filterable_keys)
        try:
            response = self.client.query_vectors(**request)
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors QueryVectors") from exc
        return [{"key": v["key"], "distance": v.get("distance"), "metadata": v.get("metadata") or {}}
                for v in response.get("vectors", [])]

    def describe(self) -> dict[str, Any]:
        """The index's parameters (GetIndex): dimension, distance metric, data type, metadata configuration."""
        try:
            return self.client.get_index(**self._target())["index"]
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors GetIndex") from exc
