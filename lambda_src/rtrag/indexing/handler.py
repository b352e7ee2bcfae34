"""The indexer's Lambda handler around any ``BatchIndexer``: Powertools' structured logs and EMF metrics, and the
partial batch response the event source mapping reads.

One handler type serves both backends: the Lambda entry (``rtrag.functions.indexer``) builds it with the AWS
composition root, local mode (``rtrag.local.compose``) with the local one, so the local runner hands batches to
the same code as Lambda without importing the entry module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from rtrag.core import contract as c
from rtrag.indexing.batch import BatchIndexer, BatchResult


class IndexerHandler:
    """``handler(event, context)`` for a Kinesis event source mapping with ReportBatchItemFailures.

    ``build`` makes the indexer on the first invocation (a cold start) and the indexer is kept for the warm ones;
    ``reset()`` drops it, so the next invocation builds it again.
    """

    def __init__(self, build: Callable[[], BatchIndexer], *, service: str | None = None,
                 namespace: str | None = None):
        # The stack sets both variables; the defaults keep logs and metrics well formed when it does not.
        self.service = service or os.environ.get(c.ENV_POWERTOOLS_SERVICE_NAME) or "rag-indexer"
        self.logger = Logger(service=self.service)
        self.metrics = Metrics(namespace=namespace or os.environ.get(c.ENV_POWERTOOLS_METRICS_NAMESPACE)
                               or c.DEFAULT_METRICS_NAMESPACE, service=self.service)
        copy_config_to_registered_loggers(source_logger=self.logger, include={"rtrag"})
        self._build = build
        self._indexer: BatchIndexer | None = None
        self._lock = threading.Lock()
        self._handle = self.logger.inject_lambda_context(self.metrics.log_metrics(self._process))

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self._handle(event, context)

    @property
    def indexer(self) -> BatchIndexer:
        with self._lock:
            if self._indexer is None:
                self._indexer = self._build()
            return self._indexer

    def reset(self) -> None:
        with self._lock:
            self._indexer = None

    def _process(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = self.indexer.process(event.get("Records", []))
        self.emit_metrics(result)
        response = result.response()
        self.logger.info("batch done", records=result.records, upserted=result.upserted, deleted=result.deleted,
                         skipped_unchanged=result.skipped_unchanged, skipped_stale=result.skipped_stale,
                         dead_letters=result.dead_letters, failures=len(response["batchItemFailures"]),
                         embedding_calls=result.embedding_calls)
        return response

    def emit_metrics(self, result: BatchResult) -> None:
        if is_metrics_disabled():
            # Powertools neither prints nor clears a disabled metric set, but its auto-flush at 100 values prints
            # anyway: add nothing, so nothing accumulates across invocations or reaches stdout.
            return
        # One value per written document, so CloudWatch can chart p50/p90/p99 freshness. Powertools flushes every
        # 100 values; the counters come last so the final flush is never empty.
        for lag in result.lags_ms:
            self.metrics.add_metric(name=c.METRIC_INDEX_LAG, unit=MetricUnit.Milliseconds, value=lag)
        for name, value in (
            (c.METRIC_RECORDS, result.records),
            (c.METRIC_UPSERTED, result.upserted),
            (c.METRIC_RETAGGED, result.retagged),
            (c.METRIC_DELETED, result.deleted),
            (c.METRIC_UNCHANGED, result.skipped_unchanged),
            (c.METRIC_STALE, result.skipped_stale),
            (c.METRIC_SUPERSEDED, result.superseded),
            (c.METRIC_CHUNKS_WRITTEN, result.chunks_written),
            (c.METRIC_CHUNKS_DELETED, result.chunks_deleted),
            (c.METRIC_EMBEDDING_CALLS, result.embedding_calls),
            (c.METRIC_DEAD_LETTERS, result.dead_letters),
            (c.METRIC_FAILED, result.failed_documents),
            (c.METRIC_MISKEYED, result.miskeyed),
        ):
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
