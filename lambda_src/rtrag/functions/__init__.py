"""The Lambda functions' handlers, each built on its composition root: ``indexer`` (the Kinesis indexer, on
``rtrag.aws.compose``) and ``vector_index_resource`` (the custom resource of the vector bucket and index).

The entry modules the stack names (``lambda_src/indexer.py``, ``lambda_src/vector_index_resource.py``) only
re-export these handlers. May import: ``rtrag.aws``, ``rtrag.indexing``, ``rtrag.core``; never local mode, the
workflows or the CLI (import-linter holds it, pyproject.toml).
"""
