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

from rtrag import limits


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
        self.throttle: Callable[[str], bool] = lambda text: False
        self.reject: Callable[[str], bool] = lambda text: False
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], **kwargs: Any):
        body = _body(params)
        text = body.get("inputText")
        with self._lock:
            self.calls += 1
            self.texts.append(text)
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
        payload = json.dumps({"embedding": hashed_embedding(text, dimensions),
                              "inputTextTokenCount": len(text.split())}).encode()
        return ok_response({"body": StreamingBody(io.BytesIO(payload), len(payload)),
                            "contentType": "application/json"})


class StrictS3Vectors:
    """Enforces S3 Vectors' documented request limits in front of moto (which checks only the dimension) and
    records every data-plane call with its size."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail: Callable[[str, dict[str, Any]], tuple | None] = lambda op, body: None
        self._lock = threading.Lock()

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
                problem = self._vector_problem(vector)
                if problem:
                    return error_response(400, "ValidationException", problem)
        elif operation == "DeleteVectors":
            size = len(body.get("keys", []))
            if size > limits.MAX_KEYS_PER_DELETE:
                return error_response(400, "ValidationException", f"{size} keys per DeleteVectors call")
        elif operation == "GetVectors":
            size = len(body.get("keys", []))
            if size > limits.MAX_KEYS_PER_GET:
                return error_response(400, "ValidationException", f"{size} keys per GetVectors call")
        else:
            size = 0
        with self._lock:
            self.calls.append((operation, size))
        return self.fail(operation, body)

    @staticmethod
    def _vector_problem(vector: dict[str, Any]) -> str | None:
        key = vector.get("key", "")
        if not 1 <= len(key) <= limits.MAX_VECTOR_KEY_CHARS:
            return f"key length {len(key)}"
        data = vector.get("data", {}).get("float32", [])
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in data):
            return "non-finite value"
        metadata = vector.get("metadata", {})
        if len(metadata) > limits.MAX_METADATA_KEYS:
            return "too many metadata keys"
        encoded = lambda m: len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode())  # noqa: E731
        if encoded(metadata) > limits.MAX_METADATA_BYTES:
            return "metadata over 40 KB"
        if encoded({k: v for k, v in metadata.items() if k != "source_text"}) > limits.MAX_FILTERABLE_METADATA_BYTES:
            return "Filterable metadata must have at most 2048 bytes"
        return None


class ApiRecorder:
    """Records every AWS call a test's clients make: (service signing name, operation, request params)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((model.service_model.signing_name, model.name, params))
