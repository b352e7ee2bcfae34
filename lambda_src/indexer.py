"""Lambda entry point of the indexer: Kinesis batch -> Titan V2 embeddings -> S3 Vectors.

The work is in ``rtrag.pipeline``; this module wires it to AWS clients (created on the first invocation, from
the default session) and to Powertools logging and metrics.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from rtrag.core.config import IndexerSettings
from rtrag.indexing.batch import BatchIndexer, BatchResult

# The stack sets both variables; the defaults keep logs and metrics well formed when it does not.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "rag-indexer"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "RealtimeRag"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"rtrag"})

_indexer: BatchIndexer | None = None
IO_SWITCH_INTERVAL_S = 0.001


def build_indexer(settings: IndexerSettings) -> BatchIndexer:
    """The indexer with real AWS clients: adaptive retries for Bedrock throttling, standard for the rest."""
    import sys

    import boto3
    from botocore.config import Config

    # The indexer waits on dozens of calls at once while its main thread decodes and stages. CPython lets a
    # thread whose call returned wait up to the switch interval (5 ms) for the GIL; at 1 ms the ledger read
    # starts and each embedding wave turns over sooner (bench/indexer_throughput.py measures it).
    sys.setswitchinterval(IO_SWITCH_INTERVAL_S)

    from rtrag.aws.s3 import S3DeadLetters
    from rtrag.aws.titan import TitanEmbedder
    from rtrag.aws.ledger import DynamoDBVersionLedger, namespace
    from rtrag.aws.s3vectors import S3VectorsIndex

    bedrock = boto3.client("bedrock-runtime", config=Config(
        retries={"mode": "adaptive", "max_attempts": settings.embed_max_attempts},
        max_pool_connections=max(10, settings.embed_concurrency), connect_timeout=5, read_timeout=30))
    standard = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return BatchIndexer(
        embedder=TitanEmbedder(bedrock, model_id=settings.embed_model_id, dimensions=settings.embed_dimensions,
                               concurrency=settings.embed_concurrency),
        index=S3VectorsIndex(boto3.client("s3vectors", config=standard), bucket=settings.vector_bucket,
                             index=settings.vector_index, dimension=settings.embed_dimensions),
        ledger=DynamoDBVersionLedger(boto3.client("dynamodb", config=standard), table=settings.version_table,
                                     namespace=namespace(settings.vector_bucket, settings.vector_index)),
        dead_letters=S3DeadLetters(boto3.client("s3", config=standard), bucket=settings.dead_letter_bucket),
        chunking=settings.chunking,
        tombstone_seconds=settings.tombstone_seconds,
    )


def configure(batch_indexer: BatchIndexer | None) -> None:
    """Use ``batch_indexer`` instead of the AWS one (local mode hands the same handler local adapters)."""
    global _indexer
    _indexer = batch_indexer


def get_indexer() -> BatchIndexer:
    global _indexer
    if _indexer is None:
        _indexer = build_indexer(IndexerSettings.from_env())
    return _indexer


def emit_metrics(result: BatchResult) -> None:
    if is_metrics_disabled():
        # Powertools neither prints nor clears a disabled metric set, but its auto-flush at 100 values prints
        # anyway: add nothing, so nothing accumulates across invocations or reaches stdout.
        return
    # One value per written document, so CloudWatch can chart p50/p90/p99 freshness. Powertools flushes every
    # 100 values; the counters come last so the final flush is never empty.
    for lag in result.lags_ms:
        metrics.add_metric(name="IndexLag", unit=MetricUnit.Milliseconds, value=lag)
    count = MetricUnit.Count
    for name, value in (
        ("RecordsReceived", result.records),
        ("DocumentsUpserted", result.upserted),
        ("DocumentsRetagged", result.retagged),
        ("DocumentsDeleted", result.deleted),
        ("DocumentsSkippedUnchanged", result.skipped_unchanged),
        ("DocumentsSkippedStale", result.skipped_stale),
        ("EventsSuperseded", result.superseded),
        ("ChunksWritten", result.chunks_written),
        ("ChunksDeleted", result.chunks_deleted),
        ("EmbeddingCalls", result.embedding_calls),
        ("DeadLetters", result.dead_letters),
        ("DocumentsFailed", result.failed_documents),
    ):
        metrics.add_metric(name=name, unit=count, value=value)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = get_indexer().process(event.get("Records", []))
    emit_metrics(result)
    response = result.response()
    logger.info("batch done", records=result.records, upserted=result.upserted, deleted=result.deleted,
                skipped_unchanged=result.skipped_unchanged, skipped_stale=result.skipped_stale,
                dead_letters=result.dead_letters, failures=len(response["batchItemFailures"]),
                embedding_calls=result.embedding_calls)
    return response
