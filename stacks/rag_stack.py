"""The stack: assembles the constructs and wires the grants between them; it creates nothing of its own."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.access_policies import AccessPolicies
from stacks.archive import EventArchive
from stacks.dead_letters import (
    FAILED_BATCHES_METRICS_ID,
    FAILED_BATCHES_PREFIX,
    INVALID_EVENTS_PREFIX,
    DeadLetterBucket,
    S3FailedBatchDestination,
)
from stacks.dependencies import DependencyLayer
from stacks.indexer import SERVICE_NAME, EmbeddingOptions, FunctionSizing, StreamBatching, StreamIndexer
from stacks.ingest_stream import IngestStream
from stacks.models import GeoInferenceProfile, foundation_model_arn
from stacks.monitoring import AlarmThresholds, PipelineMonitoring
from stacks.nag import acknowledge, wildcard_resource
from stacks.operator_access import OperatorPolicy
from stacks.settings import Settings
from stacks.vector_index import VectorIndex
from stacks.version_table import VersionTable, ledger_statement
from rtrag.core import contract as c

METRICS_NAMESPACE_PREFIX = c.METRICS_NAMESPACE_PREFIX

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class RealtimeRagStack(Stack):
    """Kinesis -> indexer Lambda -> Titan V2 -> S3 Vectors, with dead letters, client policies and outputs."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        retain = settings.retain_data_on_destroy
        log_retention = _RETENTION[settings.log_retention_days]
        metrics_namespace = f"{METRICS_NAMESPACE_PREFIX}/{self.stack_name}"

        dependencies = DependencyLayer(self, "Dependencies")
        ingest = IngestStream(
            self, "Ingest", retention_hours=settings.stream_retention_hours, retain_on_destroy=retain
        )
        dead_letters = DeadLetterBucket(
            self, "DeadLetters", expiration_days=settings.dead_letter_expiration_days, retain_on_destroy=retain
        )
        versions = VersionTable(self, "Versions", retain_on_destroy=retain)
        vectors = VectorIndex(
            self,
            "Vectors",
            bucket_base_name=settings.vector_bucket_base_name,
            index_base_name=settings.vector_index_base_name,
            dimension=settings.embed_dimensions,
            kms_key_arn=settings.vectors_kms_key_arn or None,
            retain_on_destroy=retain,
            layer=dependencies.layer,
            log_retention=log_retention,
        )
        indexer = StreamIndexer(
            self,
            "Indexer",
            stream=ingest.stream,
            dead_letter_bucket_name=dead_letters.bucket.bucket_name,
            failed_batch_destination=S3FailedBatchDestination(dead_letters.bucket),
            vector_bucket_name=vectors.bucket_name,
            vector_index_name=vectors.index_name,
            vector_index_generation=vectors.index_generation,
            version_table_name=versions.table.table_name,
            tombstone_retention_days=settings.tombstone_retention_days,
            max_ts_skew_seconds=settings.max_ts_skew_seconds,
            layer=dependencies.layer,
            embedding=EmbeddingOptions(
                model_id=settings.embed_model_id,
                dimensions=settings.embed_dimensions,
                concurrency=settings.embed_concurrency,
                chunk_size_chars=settings.chunk_size_chars,
                chunk_overlap_chars=settings.chunk_overlap_chars,
            ),
            sizing=FunctionSizing(
                memory_mb=settings.lambda_memory_mb,
                timeout_seconds=settings.lambda_timeout_seconds,
                reserved_concurrency=settings.reserved_concurrency,
            ),
            batching=StreamBatching(
                starting_position=lambda_.StartingPosition(settings.starting_position),
                batch_size=settings.batch_size,
                max_batching_window_seconds=settings.max_batching_window_seconds,
                parallelization_factor=settings.parallelization_factor,
                max_retry_attempts=settings.max_retry_attempts,
                max_record_age_seconds=settings.max_record_age_seconds,
                enhanced_fan_out=settings.enhanced_fan_out,
            ),
            metrics_namespace=metrics_namespace,
            log_retention=log_retention,
            retain_logs=retain,
        )

        embed_model_arn = foundation_model_arn(self, settings.embed_model_id)
        indexer.role.add_to_policy(
            iam.PolicyStatement(sid="EmbedChunks", actions=["bedrock:InvokeModel"], resources=[embed_model_arn])
        )
        for statement in vectors.writer_statements():
            indexer.role.add_to_policy(statement)
        indexer.role.add_to_policy(ledger_statement(versions.table, sid="ReadWriteVersionLedger"))
        indexer.role.add_to_policy(dead_letters.invalid_events_statement())
        acknowledge(
            indexer.role,
            wildcard_resource(self, dead_letters.bucket.arn_for_objects(f"{INVALID_EVENTS_PREFIX}*")),
            "The indexer writes each bad event as a new object named by its shard and sequence number; the "
            "wildcard is limited to PutObject under the invalid/ prefix of this stack's dead-letter bucket.",
        )
        acknowledge(
            indexer.role,
            wildcard_resource(self, dead_letters.bucket.arn_for_objects(f"{FAILED_BATCHES_PREFIX}*")),
            "Lambda writes the event source mapping's failed-batch records with the function's role under keys "
            "it generates (aws/lambda/<mapping>/<shard>/<date>/...); the wildcard is limited to PutObject under "
            "that prefix of this stack's dead-letter bucket.",
        )

        answer_profile = GeoInferenceProfile(self, "AnswerModel")
        policies = AccessPolicies(
            self,
            "Access",
            stream=ingest.stream,
            embed_model_id=settings.embed_model_id,
            index_statements=vectors.reader_statements(),
            answer_profile=answer_profile,
        )

        archive = (
            EventArchive(
                self,
                "Archive",
                stream=ingest.stream,
                expiration_days=settings.archive_expiration_days,
                glacier_ir_days=settings.archive_glacier_ir_days,
                log_retention=log_retention,
                retain_on_destroy=retain,
            )
            if settings.archive_enabled
            else None
        )
        operator = OperatorPolicy(
            self,
            "Operator",
            stream=ingest.stream,
            dead_letter_bucket=dead_letters.bucket,
            archive_bucket=archive.bucket if archive else None,
            embed_model_arn=embed_model_arn,
            index_statements=[
                *vectors.writer_statements(),
                # GetIndex: reindex.py checks the index it fills; ListVectors: check_index.py lists its keys.
                iam.PolicyStatement(sid="CheckVectorIndex", actions=["s3vectors:GetIndex", "s3vectors:ListVectors"],
                                    resources=[vectors.index_arn]),
            ],
            version_table=versions.table,
        )
        monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            stream=ingest.stream,
            function=indexer.function,
            metrics_namespace=metrics_namespace,
            service_name=SERVICE_NAME,
            thresholds=AlarmThresholds(
                iterator_age_seconds=settings.alarm_iterator_age_seconds,
                freshness_p99_seconds=settings.alarm_freshness_p99_seconds,
                dead_letters=settings.alarm_dead_letters,
                lambda_errors=settings.alarm_lambda_errors,
                throttles=settings.alarm_throttles,
                archive_freshness_seconds=settings.alarm_archive_freshness_seconds,
            ),
            alarm_email=settings.alarm_email,
            archive_delivery_stream_name=archive.delivery_stream.ref if archive else None,
            consumer_name=indexer.consumer.stream_consumer_name if indexer.consumer else None,
            failed_batches=(dead_letters.bucket.bucket_name, FAILED_BATCHES_METRICS_ID),
            version_table=versions.table,
        )

        self.ingest, self.dead_letters, self.vectors, self.indexer = ingest, dead_letters, vectors, indexer
        self.versions = versions
        self.policies, self.answer_profile = policies, answer_profile
        self.archive, self.operator, self.monitoring = archive, operator, monitoring
        self._outputs()

    def _outputs(self) -> None:
        """One output per name the scripts read; the keys come from the contract the scripts read them by
        (``rtrag.core.contract``)."""
        s = self.settings
        outputs = {
            c.STREAM.output: (self.ingest.stream.stream_name, "Kinesis stream that document events are put on"),
            c.OUTPUT_STREAM_ARN: (self.ingest.stream.stream_arn, "ARN of the Kinesis stream"),
            c.VECTOR_BUCKET.output: (self.vectors.bucket_name, "S3 Vectors bucket holding the index"),
            c.VECTOR_INDEX.output: (self.vectors.index_name, "S3 Vectors index of document chunks"),
            c.OUTPUT_VECTOR_INDEX_ARN: (self.vectors.index_arn, "ARN of the S3 Vectors index"),
            c.OUTPUT_VECTOR_INDEX_GENERATION: (
                self.vectors.index_generation,
                "Creation time (epoch ms) of the S3 Vectors index the indexer was given (its ledger's generation)",
            ),
            c.DEAD_LETTER_BUCKET.output: (
                self.dead_letters.bucket.bucket_name,
                "S3 bucket of bad events (invalid/) and failed batches (aws/lambda/)",
            ),
            c.VERSION_TABLE.output: (
                self.versions.table.table_name,
                "DynamoDB table of the version ledger (each document's winning version and delete tombstone)",
            ),
            c.OUTPUT_INDEXER_FUNCTION: (self.indexer.function.function_name, "Lambda function that indexes the stream"),
            c.OUTPUT_MAX_TS_SKEW: (str(s.max_ts_skew_seconds),
                                   "How far ahead of its arrival an event's ts may be (the indexer's MAX_TS_SKEW_SECONDS)"),
            c.OUTPUT_PRODUCER_POLICY: (
                self.policies.producer_policy.managed_policy_arn,
                "Managed policy to attach to principals that put document events",
            ),
            c.OUTPUT_ASKER_POLICY: (
                self.policies.asker_policy.managed_policy_arn,
                "Managed policy to attach to principals that ask questions",
            ),
            c.EMBED_MODEL.output: (s.embed_model_id, "Bedrock embedding model of the index"),
            c.EMBED_DIMENSIONS.output: (str(s.embed_dimensions), "Dimension of the embeddings and of the index"),
            c.ANSWER_MODEL.output: (
                self.answer_profile.profile_id,
                "Bedrock inference profile that answers questions (Nova Lite, this Region's geography)",
            ),
            c.OUTPUT_REGION: (Aws.REGION, "Region the stack is deployed in"),
            c.OUTPUT_OPERATOR_POLICY: (
                self.operator.policy.managed_policy_arn,
                "Managed policy to attach to principals that reindex and redrive",
            ),
            c.OUTPUT_ALARM_TOPIC: (
                self.monitoring.topic.topic_arn,
                "SNS topic every alarm notifies (subscribe to it, or set alarm_email)",
            ),
            c.OUTPUT_DASHBOARD_NAME: (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard of the pipeline"),
            c.OUTPUT_DASHBOARD_URL: (self.monitoring.dashboard_url, "Console address of the CloudWatch dashboard"),
        }
        if self.archive is not None:
            outputs[c.ARCHIVE_BUCKET.output] = (
                self.archive.bucket.bucket_name,
                "S3 bucket of archived document events (events/YYYY/MM/DD/HH/*.jsonl.gz) for reindex.py",
            )
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
