"""Fake Bedrock Runtime (Titan V2), S3 Vectors and DynamoDB (the version ledger's two calls) that cost what the
services cost in time, not in CPU.

Every call sleeps a fixed latency (the model of the service round trip), so a benchmark measures the schedule
of calls our code makes plus our own CPU time, exactly. Optionally the service throttles: a fixed fraction of
attempts at random (``throttle_rate``), and/or every attempt beyond a request rate (``quota_rps``, a token
bucket like a per-minute quota seen at a finer grain). A throttled attempt costs the round trip, then the
backoff botocore's retry handler sleeps before the next attempt: ``rand(0, 1) * min(1 s * 2 ** (attempt - 1),
20 s)`` for throttling errors (botocore.retries.standard.ExponentialBackoff, used by both the ``standard`` and
the ``adaptive`` retry modes), up to ``max_attempts`` attempts, then a ThrottlingException ClientError.

Two front ends drive the same service model:

- ``FakeBedrockRuntime`` / ``FakeS3Vectors`` / ``FakeDynamoDB``: plain objects with the boto3 clients' method
  names, request and response shapes, and botocore's retries modelled as above. No botocore CPU cost: the
  figures are our code plus the modelled latency.
- ``install_http_fakes``: hooks botocore's ``before-send`` event, so REAL boto3 clients (with the indexer's own
  retry configuration) serialize, sign, parse, retry and rate-limit for real, and only the HTTP exchange is
  faked. This shows what botocore's CPU adds. What the services do on their side stays out of the figures: its
  CPU is timed apart (``FakeCpu``), and a PutVectors body is parsed only after the timed run
  (``VectorStore.put_body``), so it cannot stall the indexer's threads inside it.

All of it is thread-safe: the indexer calls Titan from a thread pool.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

MAX_VECTORS_PER_PUT = 500  # S3 Vectors PutVectors / DeleteVectors (docs: "Limitations and restrictions")
MAX_KEYS_PER_GET = 100  # S3 Vectors GetVectors
THROTTLE_BASE_S = 1.0  # botocore ExponentialBackoff: base scale for throttling errors
MAX_BACKOFF_S = 20.0  # botocore ExponentialBackoff: cap


class Service:
    """The time model of one service: latency per attempt, throttling, and what was called (thread-safe)."""

    def __init__(self, name: str, latency_s: float, *, throttle_rate: float = 0.0, quota_rps: float | None = None,
                 burst: float | None = None, max_attempts: int = 6, seed: int = 7,
                 sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.latency_s = latency_s
        self.throttle_rate = throttle_rate
        self.quota_rps = quota_rps
        self.burst = burst if burst is not None else (quota_rps or 0.0)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: Counter[str] = Counter()
            self.attempts = 0
            self.throttled = 0
            self.backoff_s = 0.0
            self.in_flight = 0
            self.peak_in_flight = 0
            self._tokens = self.burst
            self._refilled = time.monotonic()

    def _admit(self) -> bool:
        """Whether one attempt arriving now is served (called with the lock held)."""
        if self.throttle_rate and self._rng.random() < self.throttle_rate:
            return False
        if self.quota_rps:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.quota_rps)
            self._refilled = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
        return True

    def attempt(self, operation: str) -> bool:
        """One attempt: takes the round-trip latency; returns whether the service served it (False: throttled)."""
        with self._lock:
            self.attempts += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            admitted = self._admit()
            if not admitted:
                self.throttled += 1
        try:
            self.sleep(self.latency_s)
        finally:
            with self._lock:
                self.in_flight -= 1
        return admitted

    def call(self, operation: str) -> None:
        """One client call with botocore's throttling retries modelled; raises the final ThrottlingException."""
        with self._lock:
            self.calls[operation] += 1
        for attempt in range(1, self.max_attempts + 1):
            if self.attempt(operation):
                return
            if attempt == self.max_attempts:
                break
            with self._lock:
                delay = self._rng.random() * min(THROTTLE_BASE_S * 2 ** (attempt - 1), MAX_BACKOFF_S)
                self.backoff_s += delay
            self.sleep(delay)
        raise throttling_error(operation, self.max_attempts)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls), "attempts": self.attempts, "throttled": self.throttled,
                    "backoff_s": round(self.backoff_s, 3), "peak_in_flight": self.peak_in_flight}


def throttling_error(operation: str, attempts: int) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Too many requests, please wait "
                                  "before trying again."},
                        "ResponseMetadata": {"HTTPStatusCode": 429, "MaxAttemptsReached": True,
                                             "RetryAttempts": attempts - 1}}, operation)


def validation_error(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def titan_payload(dimensions: int, seed: int = 1) -> bytes:
    """A Titan V2 InvokeModel response body: a unit vector printed the way Titan prints floats."""
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(x * x for x in raw) ** 0.5
    return json.dumps({"embedding": [round(x / norm, 8) for x in raw], "inputTextTokenCount": 128}).encode()


class _Titan:
    """Titan V2's request checks and response, shared by both front ends."""

    def __init__(self) -> None:
        self._payloads: dict[int, bytes] = {}

    def respond(self, body: Any) -> bytes:
        request = json.loads(body)
        text, dimensions = request.get("inputText"), request.get("dimensions", 1024)
        if not isinstance(text, str) or not text:
            raise validation_error("InvokeModel", "inputText must be 1..50000 characters")
        if dimensions not in (256, 512, 1024):
            raise validation_error("InvokeModel", f"dimensions {dimensions} not supported")
        payload = self._payloads.get(dimensions)
        if payload is None:
            payload = self._payloads[dimensions] = titan_payload(dimensions)
        return payload


class FakeBedrockRuntime:
    """``bedrock-runtime`` InvokeModel for Titan Text Embeddings V2, with the latency of ``service``."""

    def __init__(self, service: Service):
        self.service = service
        self._titan = _Titan()

    def invoke_model(self, *, modelId: str, body: Any, contentType: str = "application/json",  # noqa: N803
                     accept: str = "application/json", **_: Any) -> dict[str, Any]:
        payload = self._titan.respond(body)
        self.service.call("InvokeModel")
        return {"body": io.BytesIO(payload), "contentType": "application/json"}


class VectorStore:
    """The vectors of one index, by key (thread-safe).

    ``put_body`` keeps a PutVectors request body as it came and parses it on the next read, delete or look at
    ``vectors``: parsing a body of 1,024-dimension vectors in this process holds the interpreter lock about 0.2 ms
    per vector, work S3 Vectors does on its side, which would otherwise stall the indexer's own threads inside the
    timed run (the modelled latency is the service's whole time).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors: dict[str, dict[str, Any]] = {}
        self._pending: list[bytes] = []

    @property
    def vectors(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            self._apply_pending()
            return self._vectors

    def reset(self) -> None:
        with self._lock:
            self._vectors = {}
            self._pending = []

    def put(self, vectors: Sequence[dict[str, Any]]) -> None:
        if not 1 <= len(vectors) <= MAX_VECTORS_PER_PUT:
            raise validation_error("PutVectors", f"{len(vectors)} vectors per call; the limit is 500")
        with self._lock:
            self._apply_pending()
            for vector in vectors:
                self._vectors[vector["key"]] = vector

    def put_body(self, body: bytes) -> None:
        """A PutVectors request body, applied in order with the other calls (parsed on the next read)."""
        count = body.count(b'"key":')  # each vector's key; a metadata field named "key" counts too
        if not 1 <= count <= MAX_VECTORS_PER_PUT:
            raise validation_error("PutVectors", f"{count} vectors per call; the limit is 500")
        with self._lock:
            self._pending.append(body)

    def _apply_pending(self) -> None:  # with the lock held
        for body in self._pending:
            vectors = json.loads(body)["vectors"]
            if not 1 <= len(vectors) <= MAX_VECTORS_PER_PUT:  # the count above can only be too high (metadata)
                raise AssertionError(f"a PutVectors call of {len(vectors)} vectors was answered 200")
            for vector in vectors:
                self._vectors[vector["key"]] = vector
        self._pending = []

    def delete(self, keys: Sequence[str]) -> None:
        if not 1 <= len(keys) <= MAX_VECTORS_PER_PUT:
            raise validation_error("DeleteVectors", f"{len(keys)} keys per call; the limit is 500")
        with self._lock:
            self._apply_pending()
            for key in keys:
                self._vectors.pop(key, None)

    def get(self, keys: Sequence[str], *, data: bool, metadata: bool) -> list[dict[str, Any]]:
        if not 1 <= len(keys) <= MAX_KEYS_PER_GET:
            raise validation_error("GetVectors", f"{len(keys)} keys per call; the limit is 100")
        with self._lock:
            self._apply_pending()
            found = [self._vectors[k] for k in dict.fromkeys(keys) if k in self._vectors]
        out = []
        for vector in found:
            item: dict[str, Any] = {"key": vector["key"]}
            if data:
                item["data"] = vector["data"]
            if metadata:
                item["metadata"] = vector.get("metadata", {})
            out.append(item)
        return out


class FakeS3Vectors:
    """``s3vectors`` PutVectors / DeleteVectors / GetVectors on an in-memory store, with the latency of
    ``service``. Writes land when the call returns (S3 Vectors writes are strongly consistent)."""

    def __init__(self, service: Service, store: VectorStore | None = None):
        self.service = service
        self.store = store or VectorStore()

    def put_vectors(self, *, vectors: Sequence[dict[str, Any]], **_: Any) -> dict[str, Any]:
        self.service.call("PutVectors")
        self.store.put(vectors)
        return {}

    def delete_vectors(self, *, keys: Sequence[str], **_: Any) -> dict[str, Any]:
        self.service.call("DeleteVectors")
        self.store.delete(keys)
        return {}

    def get_vectors(self, *, keys: Sequence[str], returnData: bool = False,  # noqa: N803
                    returnMetadata: bool = False, **_: Any) -> dict[str, Any]:
        self.service.call("GetVectors")
        return {"vectors": self.store.get(keys, data=returnData, metadata=returnMetadata)}


class ItemStore:
    """The items of one DynamoDB table, by partition key (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        with self._lock:
            self.items = {}

    def get(self, request: dict[str, Any]) -> dict[str, Any]:
        responses = {}
        with self._lock:
            for table, spec in request.items():
                keys = spec["Keys"]
                if not 1 <= len(keys) <= 100:
                    raise validation_error("BatchGetItem", "Too many items requested for the BatchGetItem call")
                responses[table] = [self.items[k["pk"]["S"]] for k in keys if k["pk"]["S"] in self.items]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def write(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for table, writes in request.items():
                if not 1 <= len(writes) <= 25:
                    raise validation_error("BatchWriteItem", "Too many items in the BatchWriteItem call")
                for write in writes:
                    item = write["PutRequest"]["Item"]
                    self.items[item["pk"]["S"]] = item
        return {"UnprocessedItems": {}}


class FakeDynamoDB:
    """``dynamodb`` BatchGetItem / BatchWriteItem (the version ledger's calls) on an in-memory table, with the
    latency of ``service``."""

    def __init__(self, service: Service, store: ItemStore | None = None):
        self.service = service
        self.store = store or ItemStore()

    def batch_get_item(self, *, RequestItems: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.service.call("BatchGetItem")
        return self.store.get(RequestItems)

    def batch_write_item(self, *, RequestItems: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.service.call("BatchWriteItem")
        return self.store.write(RequestItems)


# Real boto3 clients, fake HTTP

class _Raw(io.BytesIO):
    """The raw HTTP body botocore reads (``read`` for streaming outputs, ``stream`` for the rest)."""

    def stream(self, **_: Any):
        yield self.getvalue()


def _http(request: Any, status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    from botocore.awsrequest import AWSResponse

    headers = {"content-type": "application/json", "content-length": str(len(body)), **(headers or {})}
    return AWSResponse(request.url, status, headers, _Raw(body))


def _error(request: Any, status: int, code: str, message: str) -> Any:
    return _http(request, status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": f"{code}:"})


class FakeCpu:
    """The CPU the fake services spend answering (parsing a PutVectors body, storing it): the services' work, not
    the indexer's, so the benchmark takes it out of the process's CPU time (thread-safe)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def timed(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def timed_handler(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return handler(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - start
        return timed_handler


def install_http_fakes(events: Any, *, bedrock: Service, s3vectors: Service, store: VectorStore,
                       dynamodb: Service, items: ItemStore, cpu: FakeCpu | None = None) -> None:
    """Answer the HTTP requests of every client created afterwards from the session owning ``events``.

    Each attempt botocore sends costs the service's latency; a throttled attempt gets HTTP 429
    ThrottlingException, which botocore's own retry mode (standard or adaptive) then handles. With ``cpu``, the
    handlers' own CPU time is added to it.
    """
    timed = cpu.timed if cpu is not None else (lambda handler: handler)
    titan = _Titan()

    def invoke_model(request: Any, **_: Any) -> Any:
        try:
            payload = titan.respond(request.body)
        except ClientError as exc:
            return _error(request, 400, "ValidationException", exc.response["Error"]["Message"])
        if not bedrock.attempt("InvokeModel"):
            return _error(request, 429, "ThrottlingException", "Too many requests, please wait before trying again.")
        return _http(request, 200, payload)

    def vectors_call(operation: str) -> Callable[..., Any]:
        def handler(request: Any, **_: Any) -> Any:
            if operation == "PutVectors":  # kept as it came, parsed later: VectorStore.put_body
                if not s3vectors.attempt(operation):
                    return _error(request, 429, "TooManyRequestsException", "Rate exceeded")
                try:
                    store.put_body(bytes(request.body))
                except ClientError as exc:
                    return _error(request, 400, "ValidationException", exc.response["Error"]["Message"])
                return _http(request, 200, b"{}")
            body = json.loads(request.body or b"{}")
            if not s3vectors.attempt(operation):
                return _error(request, 429, "TooManyRequestsException", "Rate exceeded")
            try:
                if operation == "DeleteVectors":
                    store.delete(body["keys"])
                    return _http(request, 200, b"{}")
                found = store.get(body["keys"], data=body.get("returnData", False),
                                  metadata=body.get("returnMetadata", False))
                return _http(request, 200, json.dumps({"vectors": found}).encode())
            except ClientError as exc:
                return _error(request, 400, "ValidationException", exc.response["Error"]["Message"])
        return handler

    def ledger_call(operation: str) -> Callable[..., Any]:
        def handler(request: Any, **_: Any) -> Any:
            body = json.loads(request.body or b"{}")
            if not dynamodb.attempt(operation):
                return _http(request, 400, json.dumps({
                    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                    "message": "Rate exceeded"}).encode(), {"content-type": "application/x-amz-json-1.0"})
            try:
                out = (items.get if operation == "BatchGetItem" else items.write)(body["RequestItems"])
            except ClientError as exc:
                return _http(request, 400, json.dumps({
                    "__type": "com.amazon.coral.validate#ValidationException",
                    "message": exc.response["Error"]["Message"]}).encode(),
                    {"content-type": "application/x-amz-json-1.0"})
            return _http(request, 200, json.dumps(out).encode(), {"content-type": "application/x-amz-json-1.0"})
        return handler

    events.register("before-send.bedrock-runtime.InvokeModel", timed(invoke_model))
    for operation in ("PutVectors", "DeleteVectors", "GetVectors"):
        events.register(f"before-send.s3vectors.{operation}", timed(vectors_call(operation)))
    for operation in ("BatchGetItem", "BatchWriteItem"):
        events.register(f"before-send.dynamodb.{operation}", timed(ledger_call(operation)))
