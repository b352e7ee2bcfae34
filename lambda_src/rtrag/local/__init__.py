"""Local mode: the pipeline's adapters for one machine and no AWS account, behind the same ports as
``rtrag.aws``.

A durable stream (``stream``) and an event source mapping (``runner``) that feeds the same
``rtrag.indexing.handler.IndexerHandler`` as the Lambda, a vector index with S3 Vectors semantics (``index``), a version
ledger (``ledger``), an offline embedder, retrieval and an extractive answerer (``embedder``, ``search``,
``answerer``), dead letters in a directory and the stream as an archive. ``compose.LocalBackend`` is the one
composition root, used by every script's ``--local``. State lives under ``.rag-local/`` in the working directory
or ``$RAG_LOCAL_DIR``.

May import: ``rtrag.workflows``, ``rtrag.indexing``, ``rtrag.core``, numpy; never ``rtrag.aws``.
"""
