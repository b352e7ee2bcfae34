"""Amazon S3 Vectors adapter. Every documented limit is checked here before a request is sent (moto checks
only the dimension, the service checks all of them).

PutVectors' vector values skip botocore's parameter walk (``FastPutVectors``, on ``rtrag.aws.fastbody``): botocore
would validate and serialize them value by value, about 3 ms of CPU per 1,024-dimension vector, more than the rest
of the indexer's work per document. botocore gets each vector with a one-value placeholder for its data (keys and
metadata still go through its validation and serialization); the body is then written with the vectors' real
values: the JSON text Titan returned (``JsonFloats``), copied, or ``json``'s encoding of a list. Our own
``check_vector`` has checked the values (dimension, finite float32) before the call, which is what botocore's
validation of them did.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify
from rtrag.aws.fastbody import FastBody
from rtrag.core.errors import LimitExceeded
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.limits import MAX_LIST_PAGE, MAX_TOP_K
from rtrag.core.vectors import CheckedVectorIndex, Vector, check_vector, floats_json
from rtrag.core.versions import index_generation

_PLACEHOLDER = [0.0]


class FastPutVectors(FastBody):
    """PutVectors' body (module docstring)."""

    operation = "s3vectors.PutVectors"

    @classmethod
    def take(cls, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        vectors = params.get("vectors")
        if not isinstance(vectors, list) or not all(isinstance(v, dict) and isinstance(v.get("data"), dict)
                                                    and "float32" in v["data"] for v in vectors):
            return None  # not ours to speed up: botocore validates it as it is
        params["vectors"] = [{**v, "data": {"float32": _PLACEHOLDER}} for v in vectors]
        return vectors

    @classmethod
    def body(cls, envelope: dict[str, Any], taken: list[dict[str, Any]]) -> str:
        """Compact JSON with text as UTF-8 (not ``\\uXXXX``, which botocore writes: up to 6 bytes a character), so
        the body's size is what ``check_vector`` counted against the 20 MiB payload limit."""
        items = []
        for serialized, vector in zip(envelope.pop("vectors"), taken, strict=True):
            serialized.pop("data")
            head = _compact(serialized)
            items.append(f'{head[:-1]},"data":{{"float32":{floats_json(vector["data"]["float32"])}}}}}')
        return f'{_compact(envelope)[:-1]},"vectors":[{",".join(items)}]}}'


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class S3VectorsIndex(CheckedVectorIndex):
    """One S3 Vectors index. Single-call methods refuse oversized requests; the plural helpers split them."""

    def __init__(self, client: Any, *, bucket: str, index: str, dimension: int,
                 non_filterable_keys: Sequence[str] = (SOURCE_TEXT_KEY,)):
        super().__init__(dimension=dimension, non_filterable_keys=non_filterable_keys)
        self.client = client
        FastPutVectors.install(client)
        self.bucket = bucket
        self.index = index
        self.described: dict[str, Any] | None = None  # what GetIndex said of the index, when it was asked

    @property
    def identity(self) -> str | None:
        """This index, told apart from one created later under the same name (as ``LocalVectorIndex.identity``):
        its ARN and creation time, from GetIndex; None when GetIndex was not asked or did not say."""
        described = self.described
        if not described or not described.get("indexArn") or not described.get("creationTime"):
            return None
        created = described["creationTime"]
        return f"{described['indexArn']}@{created.isoformat() if hasattr(created, 'isoformat') else created}"

    @property
    def generation(self) -> str | None:
        """This index's generation (``versions.index_generation``), from GetIndex; None when not asked or not said."""
        return index_generation((self.described or {}).get("creationTime"))

    def _target(self) -> dict[str, str]:
        return {"vectorBucketName": self.bucket, "indexName": self.index}

    def _put_vectors(self, vectors: list[Vector]) -> None:
        try:
            self.client.put_vectors(**self._target(), vectors=vectors)
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors PutVectors") from exc

    def _delete_vectors(self, keys: list[str]) -> None:
        try:
            self.client.delete_vectors(**self._target(), keys=keys)
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors DeleteVectors") from exc

    def _get_vectors(self, keys: list[str], *, data: bool, metadata: bool) -> list[Vector]:
        try:
            response = self.client.get_vectors(**self._target(), keys=keys, returnData=data, returnMetadata=metadata)
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors GetVectors") from exc
        return response.get("vectors", [])

    def list_keys(self) -> Iterator[str]:
        """Every key of the index (ListVectors through botocore's paginator, 1,000 a page, neither data nor
        metadata)."""
        pages = self.client.get_paginator("list_vectors").paginate(
            **self._target(), returnData=False, returnMetadata=False, PaginationConfig={"PageSize": MAX_LIST_PAGE})
        try:
            for page in pages:
                yield from (vector["key"] for vector in page.get("vectors", []))
        except AWS_ERRORS as exc:
            raise classify(exc, action="S3 Vectors ListVectors") from exc

    def query(self, vector: Sequence[float], *, top_k: int, filter: dict[str, Any] | None = None,
              return_metadata: bool = True) -> list[dict[str, Any]]:
        """The ``top_k`` nearest vectors (QueryVectors), each ``{"key", "distance", "metadata"}``, nearest first."""
        if isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise LimitExceeded(f"topK must be 1..{MAX_TOP_K}, got {top_k}")
        check_vector({"key": "query", "data": {"float32": list(vector)}}, dimension=self.dimension,
                     non_filterable_keys=())
        request: dict[str, Any] = {**self._target(), "topK": top_k, "queryVector": {"float32": list(vector)},
                                   "returnMetadata": return_metadata, "returnDistance": True}
        if filter is not None:
            # Only queries filter: imported here, the filter language stays off the indexer's cold start.
            from rtrag.core.filters import validate_filter

            request["filter"] = validate_filter(filter, non_filterable_keys=self.non_filterable_keys,
                                                index_mode=(self.described or {}).get("indexMode"))
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
