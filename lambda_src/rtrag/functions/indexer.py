"""The indexer function: Kinesis batch -> Titan V2 embeddings -> S3 Vectors, with the version ledger in DynamoDB.

The handler builds the indexer on its first invocation (a cold start), from the function's environment, which
the stack sets (``rtrag.core.contract``); importing this module creates no AWS client.
"""

from __future__ import annotations

import sys

from rtrag.aws.compose import AwsBackend
from rtrag.core.config import IndexerSettings
from rtrag.indexing.batch import BatchIndexer
from rtrag.indexing.handler import IndexerHandler

# The indexer waits on dozens of calls at once while its main thread decodes and stages. CPython lets a thread
# whose call returned wait up to the switch interval (5 ms) for the GIL; at 1 ms the ledger read starts and each
# embedding wave turns over sooner (bench/indexer_throughput.py measures it).
IO_SWITCH_INTERVAL_S = 0.001


def indexer_from_environment() -> BatchIndexer:
    """The AWS indexer of the function's environment."""
    sys.setswitchinterval(IO_SWITCH_INTERVAL_S)
    return AwsBackend().indexer(IndexerSettings.from_env())


handler = IndexerHandler(indexer_from_environment)
