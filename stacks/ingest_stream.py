"""The on-demand Kinesis stream that producers put document events on."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from constructs import Construct


class IngestStream(Construct):
    """An on-demand stream (no shards to size) encrypted with the AWS managed key ``aws/kinesis``."""

    def __init__(self, scope: Construct, construct_id: str, *, retention_hours: int, retain_on_destroy: bool) -> None:
        super().__init__(scope, construct_id)
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(retention_hours),
            removal_policy=RemovalPolicy.RETAIN if retain_on_destroy else RemovalPolicy.DESTROY,
        )
