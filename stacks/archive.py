"""The event archive: a Firehose delivery stream that copies every record of the stream, as put, into S3.

Contract with ``scripts/reindex.py`` (change both together): objects under ``events/YYYY/MM/DD/HH/`` (UTC hour in
which Firehose read the records), named ``*.jsonl.gz``, each a GZIP-compressed JSON Lines file in which every line
is the data of one Kinesis record, byte for byte as the producer put it (one document event), followed by ``\\n``.
Records Firehose could not deliver land under ``errors/<error-output-type>/YYYY/MM/DD/``.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.buckets import private_bucket
from stacks.nag import acknowledge, wildcard_resource

EVENTS_PREFIX = "events/"
ERRORS_PREFIX = "errors/"
# Firehose evaluates the !{timestamp:...} expressions in UTC (no CustomTimeZone is set).
OBJECT_PREFIX = f"{EVENTS_PREFIX}!{{timestamp:yyyy}}/!{{timestamp:MM}}/!{{timestamp:dd}}/!{{timestamp:HH}}/"
ERROR_OUTPUT_PREFIX = (
    f"{ERRORS_PREFIX}!{{firehose:error-output-type}}/!{{timestamp:yyyy}}/!{{timestamp:MM}}/!{{timestamp:dd}}/"
)
FILE_EXTENSION = ".jsonl.gz"
# An archive object is written at least once a minute while events flow (or at 5 MiB, whichever comes first):
# the archive is for replay, so a minute behind the stream is fine, and small enough objects keep a reindex
# of a narrow time window cheap.
BUFFER_INTERVAL_SECONDS = 60
BUFFER_SIZE_MIB = 5
LOG_STREAM_NAME = "S3Delivery"


class EventArchive(Construct):
    """``delivery_stream`` reads ``stream`` (as a second consumer, beside the indexer) into ``bucket``.

    The bucket is private, SSE-S3, TLS only; objects expire after ``expiration_days`` (0 = never) and move to
    S3 Glacier Instant Retrieval after ``glacier_ir_days`` when set. Firehose runs on ``role``, which can read
    this stream, write archive objects under the two prefixes above, and write its delivery errors to
    ``log_group``; nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        expiration_days: int,
        glacier_ir_days: int | None,
        log_retention: logs.RetentionDays,
        retain_on_destroy: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_on_destroy else RemovalPolicy.DESTROY
        self.bucket = private_bucket(self, "Bucket", lifecycle_rules=[_lifecycle_rule(expiration_days, glacier_ir_days)],
                                     retain_on_destroy=retain_on_destroy)
        self.log_group = logs.LogGroup(self, "DeliveryLogs", retention=log_retention, removal_policy=removal)
        log_stream = logs.LogStream(
            self, "DeliveryLogStream", log_group=self.log_group, log_stream_name=LOG_STREAM_NAME, removal_policy=removal
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"),
            description="Archive delivery stream: reads the ingest stream, writes gzipped JSON Lines to the archive",
            # Inline, so the permissions exist as soon as the delivery stream does and starts reading; a separate
            # policy resource would need an explicit DependsOn to avoid early AccessDenied errors.
            inline_policies={"Archive": iam.PolicyDocument(statements=self._statements(stream, log_stream))},
        )

        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=stream.stream_arn, role_arn=self.role.role_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=OBJECT_PREFIX,
                error_output_prefix=ERROR_OUTPUT_PREFIX,
                file_extension=FILE_EXTENSION,
                compression_format="GZIP",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=BUFFER_INTERVAL_SECONDS, size_in_m_bs=BUFFER_SIZE_MIB
                ),
                # The built-in processor (no Lambda) appends "\n" to each record: one event per line.
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[firehose.CfnDeliveryStream.ProcessorProperty(type="AppendDelimiterToRecord")],
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
                s3_backup_mode="Disabled",
            ),
        )
        self._acknowledge()

    def _statements(self, stream: kinesis.IStream, log_stream: logs.LogStream) -> list[iam.PolicyStatement]:
        # The actions are those the Amazon Data Firehose Developer Guide lists for a Kinesis Data Streams source
        # and an S3 destination ("Controlling access"), each on the narrowest resource it applies to.
        log_stream_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return [
            iam.PolicyStatement(
                sid="ReadIngestStream",
                actions=[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                    "kinesis:ListShards",
                ],
                resources=[stream.stream_arn],
            ),
            iam.PolicyStatement(
                sid="WriteArchiveObjects",
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects(f"{EVENTS_PREFIX}*"),
                           self.bucket.arn_for_objects(f"{ERRORS_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="CheckArchiveBucket",
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.bucket.bucket_arn],
            ),
            iam.PolicyStatement(sid="LogDeliveryErrors", actions=["logs:PutLogEvents"], resources=[log_stream_arn]),
        ]

    def _acknowledge(self) -> None:
        acknowledge(
            self.role,
            wildcard_resource(self, self.bucket.arn_for_objects(f"{EVENTS_PREFIX}*")),
            "Firehose names each archive object itself (events/YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>), so "
            "the object ARN cannot be known in advance; the wildcard is limited to the events/ prefix of this "
            "stack's archive bucket.",
        )
        acknowledge(
            self.role,
            wildcard_resource(self, self.bucket.arn_for_objects(f"{ERRORS_PREFIX}*")),
            "Records Firehose fails to deliver are written under errors/<error-output-type>/YYYY/MM/DD/ with "
            "names Firehose generates; the wildcard is limited to that prefix of this stack's archive bucket.",
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "No server access logs: the archive bucket is private (public access blocked, TLS only, bucket owner "
            "enforced) and written only by this stack's Firehose role; an access-log bucket would be another "
            "bucket to pay for and empty. Where an audit trail is required, enable CloudTrail S3 data events.",
        )
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-KDF1",
            "Firehose server-side encryption applies only to Direct PUT delivery streams; this one reads a "
            "Kinesis stream that is itself encrypted with KMS, and it delivers into an SSE-S3 encrypted bucket.",
        )


def _lifecycle_rule(expiration_days: int, glacier_ir_days: int | None) -> s3.LifecycleRule:
    transitions = []
    if glacier_ir_days is not None:
        transitions.append(
            s3.Transition(
                storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                transition_after=Duration.days(glacier_ir_days),
            )
        )
    return s3.LifecycleRule(
        id="archive-lifecycle",
        expiration=Duration.days(expiration_days) if expiration_days else None,
        transitions=transitions or None,
        abort_incomplete_multipart_upload_after=Duration.days(1),
    )
