"""Fakes at the boto3 level, as strict as the real services where the tests depend on it.

They hook botocore's ``before-call`` event, which fires after botocore has validated the request against the
real service model: a request our code builds wrongly fails here just as it would against AWS.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from rtrag.core import limits


def error_response(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("https://fake.invalid", status, {}, None)
    return http, {"Error": {"Code": code, "Message": message},
                  "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}}}


def ok_response(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": 200, "HTTPHeaders": {}})
    return AWSResponse("https://fake.invalid", 200, {}, None), parsed


def _body(params: dict[str, Any]) -> dict[str, Any]:
    body = params.get("body") or b"{}"
    return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """Deterministic, normalized bag-of-words embedding: texts sharing words are close in cosine distance."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return [x / norm for x in vector]


class FakeTitan:
    """Bedrock Runtime InvokeModel for Titan Text Embeddings V2: checks the body as Titan does, answers with a
    deterministic embedding, counts calls, and throttles or rejects the texts a test chooses."""

    MODEL_ID = limits.TITAN_V2_MODEL_ID

    def __init__(self) -> None:
        self.calls = 0
        self.texts: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.throttle: Callable[[str], bool] = lambda text: False
        self.reject: Callable[[str], bool] = lambda text: False
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], **kwargs: Any):
        from urllib.parse import unquote

        body = _body(params)
        text = body.get("inputText")
        with self._lock:
            self.calls += 1
            self.texts.append(text)
            self.bodies.append(body)
        model_id = unquote(params["url_path"].split("/")[2])  # /model/{modelId}/invoke
        if model_id != self.MODEL_ID:
            return error_response(400, "ValidationException", "The provided model identifier is invalid.")
        if set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}:
            return error_response(400, "ValidationException", f"unknown keys {sorted(body)}")
        if not isinstance(text, str) or not text or len(text) > limits.TITAN_MAX_INPUT_CHARS:
            return error_response(400, "ValidationException", "inputText must be 1..50000 characters")
        dimensions = body.get("dimensions", 1024)
        if dimensions not in limits.TITAN_V2_DIMENSIONS:
            return error_response(400, "ValidationException", f"dimensions {dimensions} not supported")
        if self.throttle(text):
            return error_response(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        if self.reject(text):
            return error_response(400, "ValidationException", "Input is too long for requested model.")
        embedding = hashed_embedding(text, dimensions)
        if body.get("normalize", True) is not True:  # Titan's default is true; false gives raw magnitudes
            embedding = [x * 7.5 for x in embedding]
        payload = json.dumps({"embedding": embedding, "inputTextTokenCount": len(text.split())}).encode()
        return ok_response({"body": StreamingBody(io.BytesIO(payload), len(payload)),
                            "contentType": "application/json"})


def keep_metadata_configuration() -> None:
    """Make moto's S3 Vectors keep an index's metadata configuration, and GetIndex return it, as the service does
    (moto drops it). For the in-process mock and the moto server alike; once per process."""
    from moto.s3vectors.responses import S3VectorsResponse

    if getattr(S3VectorsResponse.create_index, "keeps_metadata_configuration", False):
        return
    create = S3VectorsResponse.create_index

    def create_index(self):  # type: ignore[no-untyped-def]
        result = create(self)
        configuration = self._get_param("metadataConfiguration")
        if configuration:
            index = self.s3vectors_backend.get_index(vector_bucket_name=self._get_param("vectorBucketName"),
                                                     index_name=self._get_param("indexName"), index_arn=None)
            index.metadataConfiguration = configuration  # what GetIndex's serializer reads
        return result

    create_index.keeps_metadata_configuration = True  # type: ignore[attr-defined]
    S3VectorsResponse.create_index = create_index


class StrictS3Vectors:
    """Enforces S3 Vectors' documented request limits in front of moto (which checks only the dimension) and
    records every data-plane call with its size."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail: Callable[[str, dict[str, Any]], tuple | None] = lambda op, body: None
        self._lock = threading.Lock()
        # Each index's non-filterable metadata keys as CreateIndex declared them (moto keeps none of it).
        self.declared: dict[tuple[str, str], list[str]] = {}

    def non_filterable(self, body: dict[str, Any]) -> list[str]:
        """The non-filterable keys of the index a request names (by names, or by its ARN)."""
        bucket, index = body.get("vectorBucketName"), body.get("indexName")
        if body.get("indexArn"):
            bucket, index = body["indexArn"].split(":bucket/", 1)[1].split("/index/", 1)
        return self.declared.get((bucket, index), [])


    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def sizes(self, operation: str) -> list[int]:
        return [n for op, n in self.calls if op == operation]

    def __call__(self, params: dict[str, Any], model: Any, **kwargs: Any):
        operation = model.name
        body = _body(params)
        if operation == "PutVectors":
            vectors = body.get("vectors", [])
            size = len(vectors)
            raw = params.get("body") or b""
            if size > limits.MAX_VECTORS_PER_PUT or len(raw) > limits.MAX_PUT_PAYLOAD_BYTES:
                return error_response(400, "ValidationException", f"{size} vectors / {len(raw)} bytes per call")
            for vector in vectors:
                problem = self._vector_problem(vector, self.non_filterable(body))
                if problem:
                    return error_response(400, "ValidationException", problem)
        elif operation == "CreateIndex":
            size = 0
            keys = (body.get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or []
            self.declared[(body.get("vectorBucketName"), body.get("indexName"))] = list(keys)
        elif operation in ("DeleteVectors", "GetVectors"):
            keys = body.get("keys", [])
            size, most = len(keys), limits.MAX_KEYS_PER_DELETE if operation == "DeleteVectors" else limits.MAX_KEYS_PER_GET
            if size > most:
                return error_response(400, "ValidationException", f"{size} keys per {operation} call")
            if any(not 1 <= len(key) <= limits.MAX_VECTOR_KEY_CHARS for key in keys):
                return error_response(400, "ValidationException", "a key of 1..1024 characters")
        else:
            size = 0
        with self._lock:
            self.calls.append((operation, size))
        return self.fail(operation, body)

    @staticmethod
    def _vector_problem(vector: dict[str, Any], non_filterable: list[str]) -> str | None:
        key = vector.get("key", "")
        if not 1 <= len(key) <= limits.MAX_VECTOR_KEY_CHARS:
            return f"key length {len(key)}"
        data = vector.get("data", {}).get("float32", [])
        if not all(isinstance(x, (int, float)) and math.isfinite(x) and abs(x) <= limits.FLOAT32_MAX for x in data):
            return "a value that is not a finite float32"
        metadata = vector.get("metadata", {})
        if len(metadata) > limits.MAX_METADATA_KEYS:
            return "too many metadata keys"
        encoded = lambda m: len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode())  # noqa: E731
        if encoded(metadata) > limits.MAX_METADATA_BYTES:
            return "metadata over 40 KB"
        if encoded({k: v for k, v in metadata.items() if k not in non_filterable}) > limits.MAX_FILTERABLE_METADATA_BYTES:
            return "Filterable metadata must have at most 2048 bytes"
        return None


class ServiceFaults:
    """Fails chosen calls of one service after botocore has validated them: ``fail(operation, params)`` returns
    an error response (see ``error_response``) or None to let the call through to moto."""

    def __init__(self) -> None:
        self.fail: Callable[[str, dict[str, Any]], tuple | None] = lambda operation, params: None

    def __call__(self, params: dict[str, Any], model: Any, **kwargs: Any):
        return self.fail(model.name, _body(params))


class ApiRecorder:
    """Records every AWS call a test's clients make: (service signing name, operation, request params)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((model.service_model.signing_name, model.name, params))


class KinesisPartialFailure:
    """Makes chosen PutRecords entries fail the way Kinesis reports it (per-entry ErrorCode in a 200 response):
    the failed entries never reach moto, the others do, and the response keeps the request's order."""

    def __init__(self) -> None:
        self.fail_entries: Callable[[int, int], bool] = lambda call, index: False  # (call number, entry index)
        self.calls = 0
        self._dropped: list[int] = []

    def before(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.calls += 1
        body = _body(params)
        records = body.get("Records", [])
        self._dropped = [i for i in range(len(records)) if self.fail_entries(self.calls, i)]
        if self._dropped:
            body["Records"] = [r for i, r in enumerate(records) if i not in self._dropped]
            params["body"] = json.dumps(body).encode()
        return None

    def after(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        if not self._dropped:
            return
        records = parsed.get("Records", [])
        for i in self._dropped:
            records.insert(i, {"ErrorCode": "ProvisionedThroughputExceededException",
                               "ErrorMessage": "Rate exceeded for shard shardId-000000000000"})
        parsed["Records"] = records
        parsed["FailedRecordCount"] = len(self._dropped)
        self._dropped = []


class FakeQueryVectors:
    """S3 Vectors QueryVectors, which moto lacks: exact cosine search over the vectors moto holds, with the
    metadata filter applied as S3 Vectors does, and the service's request limits."""

    def __init__(self, indexes: StrictS3Vectors | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.indexes = indexes  # for each index's non-filterable keys

    def __call__(self, params: dict[str, Any], **kwargs: Any):
        from moto.s3vectors.models import s3vectors_backends

        from rtrag.core.filters import matches

        body = _body(params)
        self.requests.append(body)
        top_k = body.get("topK", 0)
        if not 1 <= top_k <= limits.MAX_TOP_K:
            return error_response(400, "ValidationException", f"topK {top_k} out of range")
        hidden = set(self.indexes.non_filterable(body)) if self.indexes else set()
        if body.get("filter") and hidden & _filter_keys(body["filter"]):
            return error_response(400, "ValidationException", "Invalid use of non-filterable metadata in filter")
        backend = s3vectors_backends["123456789012"]["aws"]  # moto keys S3 Vectors by partition
        try:
            index = backend.get_index(body.get("vectorBucketName"), body.get("indexName"), body.get("indexArn"))
        except Exception:  # noqa: BLE001 - moto's own not-found error
            return error_response(404, "NotFoundException", "The specified index could not be found")
        query = body["queryVector"]["float32"]
        if len(query) != index.dimension:
            return error_response(400, "ValidationException", "Query vector dimension mismatch")
        scored = []
        for vector in index.vectors.values():
            if body.get("filter") and not matches(body["filter"], vector.metadata or {}):
                continue
            data = vector.data["float32"]
            dot = sum(a * b for a, b in zip(query, data))
            norm = math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in data)) or 1.0
            scored.append((1.0 - dot / norm, vector))
        scored.sort(key=lambda pair: pair[0])
        out = []
        for distance, vector in scored[:top_k]:
            item: dict[str, Any] = {"key": vector.key}
            if body.get("returnDistance"):
                item["distance"] = distance
            if body.get("returnMetadata"):
                item["metadata"] = vector.metadata
            out.append(item)
        return ok_response({"vectors": out, "distanceMetric": "cosine"})


class FakeListVectors:
    """S3 Vectors ListVectors paged as the service pages it (moto returns every vector at once): ``maxResults``
    1..1,000, 500 by default, a ``nextToken`` while more remain; data and metadata only when asked for."""

    DEFAULT_PAGE = 500

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any], **kwargs: Any):
        from moto.s3vectors.models import s3vectors_backends

        body = _body(params)
        self.requests.append(body)
        page = body.get("maxResults", self.DEFAULT_PAGE)
        if not 1 <= page <= 1_000:
            return error_response(400, "ValidationException", f"maxResults {page} out of range")
        backend = s3vectors_backends["123456789012"]["aws"]
        try:
            index = backend.get_index(body.get("vectorBucketName"), body.get("indexName"), body.get("indexArn"))
        except Exception:  # noqa: BLE001 - moto's own not-found error
            return error_response(404, "NotFoundException", "The specified index could not be found")
        vectors = list(index.vectors.values())
        start = int(body.get("nextToken") or 0)
        out = []
        for vector in vectors[start:start + page]:
            item: dict[str, Any] = {"key": vector.key}
            if body.get("returnData"):
                item["data"] = vector.data
            if body.get("returnMetadata"):
                item["metadata"] = vector.metadata or {}
            out.append(item)
        response: dict[str, Any] = {"vectors": out}
        if start + page < len(vectors):
            response["nextToken"] = str(start + page)
        return ok_response(response)


def _filter_keys(node: Any) -> set[str]:
    """The metadata keys a filter names."""
    if isinstance(node, list):
        return {k for item in node for k in _filter_keys(item)}
    if not isinstance(node, dict):
        return set()
    return {k for key, value in node.items()
            for k in (_filter_keys(value) if key in ("$and", "$or") else {key})}


class FakeNova:
    """Bedrock ConverseStream for Nova: answers with the first document's first sentence, cited, streamed in
    small pieces; or the chosen error. Records each request."""

    NOT_FOUND = "The answer is not in the indexed documents."

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.error: tuple[int, str, str] | None = None
        self.stream_error: str | None = None  # e.g. "throttlingException", raised mid-answer
        self.stop_reason = "end_turn"

    def __call__(self, params: dict[str, Any], **kwargs: Any):
        from urllib.parse import unquote

        body = _body(params)
        # The model id travels in the URL path: /model/{modelId}/converse-stream
        body["modelId"] = unquote(params["url_path"].split("/")[2])
        self.requests.append(body)
        if self.error:
            return error_response(*self.error)
        prompt = body["messages"][0]["content"][0]["text"]
        match = re.search(r'<document id="([^"]+)"[^>]*>\n(.*?)\n</document>', prompt, re.S)
        if match:
            key, text = match.groups()
            first_sentence = re.split(r"(?<=[.!?])\s", text.strip())[0]
            answer = f"{first_sentence} [{key}]"
        else:
            answer = self.NOT_FOUND
        pieces = [answer[i:i + 7] for i in range(0, len(answer), 7)]
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        events += [{"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in pieces]
        events += [{"messageStop": {"stopReason": self.stop_reason}},
                   {"metadata": {"usage": {"inputTokens": len(prompt) // 4, "outputTokens": len(pieces),
                                           "totalTokens": len(prompt) // 4 + len(pieces)},
                                 "metrics": {"latencyMs": 5}}}]
        if self.stream_error:
            # As botocore delivers an error event of the stream: the iteration raises EventStreamError (a
            # ClientError) with the event's lowerCamelCase name as its code, after the text sent before it.
            return ok_response({"stream": self._broken(events[:-2], self.stream_error)})
        return ok_response({"stream": events})

    @staticmethod
    def _broken(events: list[dict[str, Any]], code: str):
        from botocore.exceptions import EventStreamError

        yield from events
        raise EventStreamError({"Error": {"Code": code, "Message": "stream broke"}}, "ConverseStream")


def listed_vectors(client: Any, bucket: str, index: str, **flags: Any) -> list[dict[str, Any]]:
    """Every vector of an index, page after page (ListVectors returns at most 1,000 at a time, 500 by default)."""
    pages = client.get_paginator("list_vectors").paginate(vectorBucketName=bucket, indexName=index, **flags,
                                                          PaginationConfig={"PageSize": 1_000})
    return [vector for page in pages for vector in page.get("vectors", [])]
