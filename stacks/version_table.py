"""The version ledger's table: each document's winning version and its delete tombstone, outside the vector index."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from rtrag.core.contract import LEDGER_PARTITION_KEY as PARTITION_KEY
from rtrag.core.contract import LEDGER_TTL_ATTRIBUTE as TTL_ATTRIBUTE

# The only calls the ledger makes (lambda_src/rtrag/ledger.py): strongly consistent batch reads, batch puts.
LEDGER_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")


class VersionTable(Construct):
    """``table``: on demand, keyed by ``pk`` (``<vector bucket>/<index>#<doc_id>``), tombstones expired by TTL.

    Encrypted with the AWS managed key ``aws/dynamodb``, like the stream with ``aws/kinesis``: every use of the
    key shows in CloudTrail, there is no key policy to keep right, and its policy already lets principals of this
    account use it through DynamoDB, so no role needs a KMS statement. A customer managed key would add a monthly
    charge for a table that holds versions, hashes and document ids, never document text.

    Point-in-time recovery is on: losing the ledger would lose the tombstones, and a replay could then bring
    deleted documents back.
    """

    def __init__(self, scope: Construct, construct_id: str, *, retain_on_destroy: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN if retain_on_destroy else RemovalPolicy.DESTROY,
        )


def ledger_statement(table: dynamodb.ITable, *, sid: str) -> iam.PolicyStatement:
    """Read and write ledger entries (BatchGetItem, BatchWriteItem) in ``table`` and nothing else."""
    return iam.PolicyStatement(sid=sid, actions=list(LEDGER_ACTIONS), resources=[table.table_arn])
