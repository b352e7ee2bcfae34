"""Every AWS adapter, behind the ports of ``rtrag.indexing`` and ``rtrag.workflows``: Titan embeddings
(``titan``), S3 Vectors (``s3vectors``), the DynamoDB version ledger (``ledger``), dead letters in S3 (``s3``),
Kinesis (``kinesis``), the Firehose archive (``archive``), Nova answers (``nova``), the vector index custom
resource (``index_resource``, ``index_lifecycle``), error classification (``errors``), and the request bodies the
indexer's bulk calls write without botocore's parameter walk (``fastbody``).

``compose.AwsBackend`` is the one composition root: one botocore client configuration (timeouts, retry mode,
pool size), one check that the embedding model fits the index, used by the Lambda handler and every script.
May import: ``rtrag.workflows``, ``rtrag.indexing``, ``rtrag.core``, boto3; never ``rtrag.local``.
"""
