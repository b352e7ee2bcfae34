"""The dead-letter bucket: bad events from the indexer and failed batches from the event source mapping."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.aws_lambda_event_sources import S3OnFailureDestination
from constructs import Construct

from stacks.buckets import private_bucket
from stacks.nag import acknowledge

# Prefixes written into the bucket. The indexer writes bad events under "invalid/"; Lambda names on-failure
# records "aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/..." (Lambda Developer Guide, "Retain discarded batch
# records for a Kinesis Data Streams event source", S3 destination naming convention).
INVALID_EVENTS_PREFIX = "invalid/"
FAILED_BATCHES_PREFIX = "aws/lambda/"
# S3 request metrics (AWS/S3, dimensions BucketName and FilterId) on the failed-batch prefix: the only signal that
# the event source mapping gave up on a batch whose records the indexer kept reporting as batch item failures
# (no Lambda error is raised for those).
FAILED_BATCHES_METRICS_ID = "FailedBatches"


class DeadLetterBucket(Construct):
    """A private, SSE-S3, TLS-only bucket whose objects expire after ``expiration_days``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, expiration_days: int, retain_on_destroy: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self,
            "Bucket",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-dead-letters",
                    expiration=Duration.days(expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            retain_on_destroy=retain_on_destroy,
            metrics=[s3.BucketMetrics(id=FAILED_BATCHES_METRICS_ID, prefix=FAILED_BATCHES_PREFIX)],
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            (
                "No server access logs: the bucket is private (public access blocked, TLS only, bucket owner "
                "enforced), written only by this stack's indexer role, and holds transient dead letters that "
                "expire by lifecycle. An access-log bucket would be a second bucket to pay for and to empty on "
                "destroy; where an audit trail is required, enable CloudTrail S3 data events on this bucket."
            ),
        )

    def invalid_events_statement(self) -> iam.PolicyStatement:
        """Write bad events (the indexer's own dead letters) under ``invalid/``."""
        return iam.PolicyStatement(
            sid="WriteInvalidEvents",
            actions=["s3:PutObject"],
            resources=[self.bucket.arn_for_objects(f"{INVALID_EVENTS_PREFIX}*")],
        )


class S3FailedBatchDestination(S3OnFailureDestination):
    """The event source mapping's S3 on-failure destination, granting only what Lambda needs to write there.

    CDK's ``S3OnFailureDestination`` grants ``grantReadWrite`` on the whole bucket (read, delete, ACL writes);
    Lambda needs ``s3:PutObject`` for the records and ``s3:ListBucket`` on the bucket (Lambda Developer Guide,
    Kinesis on-failure destinations), and writes only under ``aws/lambda/``.
    """

    def __init__(self, bucket: s3.IBucket) -> None:
        super().__init__(bucket)
        self._target_bucket = bucket

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        bucket = self._target_bucket
        target_handler.add_to_role_policy(
            iam.PolicyStatement(
                sid="WriteFailedBatches",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{FAILED_BATCHES_PREFIX}*")],
            )
        )
        target_handler.add_to_role_policy(
            iam.PolicyStatement(sid="CheckFailedBatchBucket", actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        return lambda_.DlqDestinationConfig(destination=bucket.bucket_arn)
