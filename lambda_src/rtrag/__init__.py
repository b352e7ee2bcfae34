"""Domain code of the real-time RAG pipeline, shared by the Lambda functions, the scripts and local mode.

Layers, each importing only the ones below it (import-linter holds this: pyproject.toml, ``make test``):

- ``functions`` and ``cli``: entry points. The Lambda handlers, and what the scripts share.
- ``aws`` and ``local``: adapters for one backend each, behind the same ports, with one composition root each
  (``aws.compose.AwsBackend``, ``local.compose.LocalBackend``). They never import each other.
- ``workflows``: producing, answering, replaying and redriving, written against ports.
- ``indexing``: the indexer's algorithm (decode, plan, embed, write) and its ports.
- ``core``: the data contract, versions, chunking, limits, filters, names, errors and the contract module of
  names that cross layers (``core.contract``). No SDK, no adapter.

docs/ARCHITECTURE.md draws the whole picture.
"""
