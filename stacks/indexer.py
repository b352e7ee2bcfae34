"""The indexer: its role, log group and function, and the event source mapping that feeds it from the stream."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_lambda_event_sources import KinesisConsumerEventSource, KinesisEventSource
from constructs import Construct

from stacks.dead_letters import S3FailedBatchDestination
from stacks.dependencies import ARCHITECTURE, PYTHON_RUNTIME_PIN_REASON, RUNTIME, function_code
from stacks.nag import acknowledge
from rtrag.core import contract as c

HANDLER = "indexer.handler"
SERVICE_NAME = c.INDEXER_SERVICE


@dataclass(frozen=True, kw_only=True)
class EmbeddingOptions:
    """What the indexer embeds with and how it cuts documents (read by ``rtrag.core.config.IndexerSettings``)."""

    model_id: str
    dimensions: int
    concurrency: int
    chunk_size_chars: int
    chunk_overlap_chars: int


@dataclass(frozen=True, kw_only=True)
class FunctionSizing:
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int | None


@dataclass(frozen=True, kw_only=True)
class StreamBatching:
    """How the event source mapping reads the stream.

    Defaults (see stacks/settings.py) favour freshness: a batching window of 0 invokes as soon as a poll of the
    shard (once a second) returns records; a batch size of 100 only caps the batch, it never waits to fill it;
    parallelization factor 2 lets a slow batch (a long document, Bedrock throttling) hold up only half of a
    shard's partition keys, while the mapping still keeps each document's events (partition key = doc_id) in
    order. Retries and record age are bounded so a persistently failing batch goes to the dead-letter bucket
    instead of blocking its shard until the records expire.

    ``enhanced_fan_out`` reads through a registered stream consumer (SubscribeToShard: records pushed about 70 ms
    after they are written, 2 MB/s per shard for this consumer alone) instead of polling GetRecords (once a second
    per shard, the 2 MB/s shared with every other reader, such as the archive's Firehose).
    """

    starting_position: lambda_.StartingPosition
    batch_size: int
    max_batching_window_seconds: int
    parallelization_factor: int
    max_retry_attempts: int
    max_record_age_seconds: int
    enhanced_fan_out: bool = False


class StreamIndexer(Construct):
    """The indexer Lambda on an explicit least-privilege role, fed by ``stream`` through an event source mapping.

    The role starts with nothing but its own log group; the event source grants stream reads and writes of
    failed batches to the dead-letter bucket. Bedrock, S3 Vectors, the version ledger's table and the bad-event
    prefix are granted by the stack, through ``role``. ``tombstone_retention_days`` (0 = for ever) is how long
    the ledger keeps a deleted document's tombstone.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        dead_letter_bucket_name: str,
        failed_batch_destination: S3FailedBatchDestination,
        vector_bucket_name: str,
        vector_index_name: str,
        vector_index_generation: str,
        version_table_name: str,
        tombstone_retention_days: int,
        max_ts_skew_seconds: int,
        layer: lambda_.ILayerVersion,
        embedding: EmbeddingOptions,
        sizing: FunctionSizing,
        batching: StreamBatching,
        metrics_namespace: str,
        log_retention: logs.RetentionDays,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN if retain_logs else RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Indexer: reads the stream, embeds with Bedrock, writes the S3 Vectors index",
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            description="Indexes document events from Kinesis into S3 Vectors with Titan V2 embeddings",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=function_code(),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            memory_size=sizing.memory_mb,
            timeout=Duration.seconds(sizing.timeout_seconds),
            reserved_concurrent_executions=sizing.reserved_concurrency,
            # Never a reserved variable (AWS_REGION and the like): Lambda sets those and rejects the function.
            environment={
                c.ENV_VECTOR_BUCKET: vector_bucket_name,
                c.ENV_VECTOR_INDEX: vector_index_name,
                c.ENV_VECTOR_INDEX_GENERATION: vector_index_generation,
                c.ENV_DEAD_LETTER_BUCKET: dead_letter_bucket_name,
                c.ENV_VERSION_TABLE: version_table_name,
                c.ENV_TOMBSTONE_RETENTION_DAYS: str(tombstone_retention_days),
                c.ENV_MAX_TS_SKEW_SECONDS: str(max_ts_skew_seconds),
                c.ENV_EMBED_MODEL_ID: embedding.model_id,
                c.ENV_EMBED_DIMENSIONS: str(embedding.dimensions),
                c.ENV_EMBED_CONCURRENCY: str(embedding.concurrency),
                c.ENV_CHUNK_SIZE_CHARS: str(embedding.chunk_size_chars),
                c.ENV_CHUNK_OVERLAP_CHARS: str(embedding.chunk_overlap_chars),
                c.ENV_POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: metrics_namespace,
                c.ENV_POWERTOOLS_LOG_LEVEL: "INFO",
            },
        )

        options = dict(
            starting_position=batching.starting_position,
            batch_size=batching.batch_size,
            max_batching_window=Duration.seconds(batching.max_batching_window_seconds),
            parallelization_factor=batching.parallelization_factor,
            retry_attempts=batching.max_retry_attempts,
            max_record_age=Duration.seconds(batching.max_record_age_seconds),
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            on_failure=failed_batch_destination,
        )
        self.consumer: kinesis.StreamConsumer | None = None
        if batching.enhanced_fan_out:
            # Its name is unique per stream; the stack's own name keeps it readable in the console.
            self.consumer = kinesis.StreamConsumer(self, "Consumer", stream=stream,
                                                   stream_consumer_name=f"{Stack.of(self).stack_name}-indexer")
            self.event_source = KinesisConsumerEventSource(self.consumer, **options)
        else:
            self.event_source = KinesisEventSource(stream, **options)
        self.function.add_event_source(self.event_source)
        acknowledge(self.function, "AwsSolutions-L1", PYTHON_RUNTIME_PIN_REASON)
