"""Amazon Titan Text Embeddings V2 through Bedrock InvokeModel, one text per call, many calls at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify
from rtrag.core.errors import RagError, TransientError, UnindexableDocument
from rtrag.core.limits import TITAN_MAX_INPUT_CHARS
from rtrag.core.vectors import JsonFloats, finite_float32

Vector = JsonFloats | list[float]


class TitanEmbedder:
    """Embeds texts with Titan V2. Thread-safe; `embed_many` and `embed_iter` run up to ``concurrency`` calls at
    once.

    Throttling is retried by the client's botocore retry mode (the indexer builds it with ``adaptive``).
    """

    def __init__(self, client: Any, *, model_id: str, dimensions: int, concurrency: int = 16,
                 normalize: bool = True):
        self.client = client
        self.model_id = model_id
        self.dimensions = dimensions
        self.concurrency = concurrency
        self.normalize = normalize
        self.calls = 0
        self._calls_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def embed(self, text: str) -> Vector:
        """Embed one text; raises UnindexableDocument (never retry) or TransientError (retry later)."""
        if not text.strip():
            raise UnindexableDocument("Titan cannot embed an empty or blank text")
        if len(text) > TITAN_MAX_INPUT_CHARS:
            raise UnindexableDocument(f"text is {len(text)} characters; Titan V2 takes at most {TITAN_MAX_INPUT_CHARS}")
        body = json.dumps({"inputText": text, "dimensions": self.dimensions, "normalize": self.normalize})
        with self._calls_lock:
            self.calls += 1
        try:
            response = self.client.invoke_model(
                modelId=self.model_id, body=body, contentType="application/json", accept="application/json")
            raw = response["body"].read()
        except AWS_ERRORS as exc:
            raise classify(exc, action=f"Bedrock InvokeModel ({self.model_id})") from exc
        # The embedding stays the JSON text Titan sent (``JsonFloats``): S3 Vectors gets it as it came.
        embedding: Any = JsonFloats.from_object(raw, "embedding")
        if embedding is None or len(embedding) != self.dimensions or not embedding.finite_float32():
            embedding = self._parse(raw)
        return embedding

    def _parse(self, raw: bytes) -> list[float]:
        """The embedding of a body the text path did not take, parsed with ``json``, or the error naming why
        there is none."""
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise TransientError(f"{self.model_id} returned a body that is not JSON: {exc}") from exc
        embedding = payload.get("embedding") if isinstance(payload, dict) else None
        if (not isinstance(embedding, list) or len(embedding) != self.dimensions
                or not finite_float32(embedding)):
            got = len(embedding) if isinstance(embedding, list) else type(embedding).__name__
            raise TransientError(
                f"{self.model_id} returned no valid {self.dimensions}-dimension embedding (got {got})")
        return list(map(float, embedding))

    def _embed_or_error(self, text: str) -> Vector | RagError:
        try:
            return self.embed(text)
        except RagError as exc:
            return exc

    def embed_many(self, texts: Sequence[str]) -> list[Vector | RagError]:
        """Embed every text concurrently; each result is its vector or the error that text met, in order."""
        out: list[Vector | RagError] = [None] * len(texts)  # type: ignore[list-item]
        for i, result in self.embed_iter(texts):
            out[i] = result
        return out

    def embed_iter(self, texts: Sequence[str]) -> Iterator[tuple[int, Vector | RagError]]:
        """Embed every text concurrently, yielding ``(index, vector or error)`` as each one is done, so the
        caller can use the first results while the others are in flight."""
        if len(texts) <= 1 or self.concurrency == 1:
            for i, text in enumerate(texts):
                yield i, self._embed_or_error(text)
            return
        if self._pool is None:
            # Kept across warm invocations: threads and the client's connections are reused.
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="embed")
        futures = {self._pool.submit(self._embed_or_error, text): i for i, text in enumerate(texts)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()  # the caller stopped early: texts not yet sent are not sent
