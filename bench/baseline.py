"""The naive indexer the project is measured against: what a first version of the pipeline would do.

For each record in order: decode it, chunk it (with the project's own chunker, so both sides embed the same
chunks), call Titan once per chunk, one call after another; then write the whole batch with PutVectors (one
call, or one per 500 vectors, the API's limit, which a batch of 1,000 needs). No read of the stored versions
(so no skipping of unchanged documents and no cleanup of stale chunks), no validation of limits, no
concurrency. Same clients, same request and response shapes as the project.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from rtrag.core.chunking import chunk_text

MAX_VECTORS_PER_PUT = 500


class NaiveIndexer:
    def __init__(self, bedrock: Any, s3vectors: Any, *, bucket: str, index: str, model_id: str, dimensions: int,
                 chunk_size: int, chunk_overlap: int):
        self.bedrock = bedrock
        self.s3vectors = s3vectors
        self.target = {"vectorBucketName": bucket, "indexName": index}
        self.model_id = model_id
        self.dimensions = dimensions
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def embed(self, text: str) -> list[float]:
        body = json.dumps({"inputText": text, "dimensions": self.dimensions, "normalize": True})
        response = self.bedrock.invoke_model(modelId=self.model_id, body=body, contentType="application/json",
                                             accept="application/json")
        return json.loads(response["body"].read())["embedding"]

    def process(self, records: list[dict[str, Any]]) -> int:
        """Index a batch of Kinesis event records; returns the number of vectors written."""
        vectors = []
        for record in records:
            event = json.loads(base64.b64decode(record["kinesis"]["data"]))
            chunks = chunk_text(event["text"], size=self.chunk_size, overlap=self.chunk_overlap)
            for i, chunk in enumerate(chunks):
                metadata = {"doc_id": event["doc_id"], "source": event.get("source", "unknown"),
                            "ts": event.get("ts", 0), "chunk": i, "chunks": len(chunks), "source_text": chunk,
                            **event.get("metadata", {})}
                vectors.append({"key": f"{event['doc_id']}#{i}", "data": {"float32": self.embed(chunk)},
                                "metadata": metadata})
        for start in range(0, len(vectors), MAX_VECTORS_PER_PUT):
            self.s3vectors.put_vectors(**self.target, vectors=vectors[start:start + MAX_VECTORS_PER_PUT])
        return len(vectors)
