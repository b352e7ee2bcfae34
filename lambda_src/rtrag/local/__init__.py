"""Local mode: the pipeline's adapters for one machine and no AWS account (DESIGN.md, "Local mode").

A durable stream and an event-source runner that feeds the same ``indexer.handler``, a vector index with
S3 Vectors semantics, an offline embedder, an extractive answerer, and a dead-letter directory. State lives
under ``.rag-local/`` in the working directory or ``$RAG_LOCAL_DIR``.
"""
