"""The indexer: a Kinesis batch in, the vector index at the winning version of every document out.

``batch.BatchIndexer`` decodes the records and keeps each document's greatest version, ``plan`` decides an
explicit ``Action`` per document from the version ledger's entries, ``work``/``writer`` embed and schedule the
writes (intents, puts, stale deletes, commits) over the narrow ``ports.VectorIndex``, and ``handler.IndexerHandler``
wraps it as a Lambda handler (Powertools logging and metrics, partial batch responses). The ports
(``ports``: Embedder, VectorIndex, VersionLedger, DeadLetterSink) are all it knows of a backend.

May import: ``rtrag.core`` and Powertools; never an SDK, an adapter or a workflow.
"""
