"""The operator's managed policy: what ``scripts/reindex.py`` and ``scripts/redrive.py`` need, and nothing more."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.archive import EVENTS_PREFIX
from stacks.dead_letters import FAILED_BATCHES_PREFIX, INVALID_EVENTS_PREFIX
from stacks.nag import acknowledge, wildcard_resource
from stacks.version_table import ledger_statement

# redrive.py records what it has re-put under this prefix of the dead-letter bucket, so nothing is sent twice.
REDRIVEN_PREFIX = "redriven/"


class OperatorPolicy(Construct):
    """``policy``: a customer managed policy for the people (or jobs) that reindex and redrive.

    - reindex: read the archive (when there is one), put events back on the stream, or write them straight into
      this stack's index (embed with the index's model, read stored state, upsert and delete vectors, and read
      and write the documents' versions in the version ledger's table, where every index has its own keys);
    - redrive: read the dead letters (bad events and the mapping's failed-batch records), re-read a failed
      batch's records from the stream while retention allows, put them back, and mark them as redriven;
    - both: read this stack's outputs to find their resources.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        dead_letter_bucket: s3.IBucket,
        archive_bucket: s3.IBucket | None,
        embed_model_arn: str,
        index_statements: list[iam.PolicyStatement],
        version_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        statements = [
            iam.PolicyStatement(
                sid="ReadStackOutputs", actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID]
            ),
            iam.PolicyStatement(
                sid="ReplayOntoStream",
                actions=[
                    # What reindex.py --to-stream and redrive.py call: puts, and reads of a failed batch's range.
                    "kinesis:PutRecord",
                    "kinesis:PutRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                ],
                resources=[stream.stream_arn],
            ),
            iam.PolicyStatement(
                sid="ListDeadLetters", actions=["s3:ListBucket"], resources=[dead_letter_bucket.bucket_arn]
            ),
            iam.PolicyStatement(
                sid="ReadDeadLetters",
                actions=["s3:GetObject"],
                resources=[
                    dead_letter_bucket.arn_for_objects(f"{INVALID_EVENTS_PREFIX}*"),
                    dead_letter_bucket.arn_for_objects(f"{FAILED_BATCHES_PREFIX}*"),
                    dead_letter_bucket.arn_for_objects(f"{REDRIVEN_PREFIX}*"),
                ],
            ),
            iam.PolicyStatement(
                sid="MarkRedriven",
                actions=["s3:PutObject"],
                resources=[dead_letter_bucket.arn_for_objects(f"{REDRIVEN_PREFIX}*")],
            ),
            # reindex.py dead-letters archive lines it cannot replay (and, with --to-index, the indexer code it
            # runs dead-letters unindexable documents), under invalid/ like the indexer does.
            iam.PolicyStatement(
                sid="WriteReindexDeadLetters",
                actions=["s3:PutObject"],
                resources=[dead_letter_bucket.arn_for_objects(f"{INVALID_EVENTS_PREFIX}*")],
            ),
            iam.PolicyStatement(sid="EmbedForReindex", actions=["bedrock:InvokeModel"], resources=[embed_model_arn]),
            *index_statements,
            ledger_statement(version_table, sid="ReindexVersionLedger"),
        ]
        if archive_bucket is not None:
            statements += [
                iam.PolicyStatement(
                    sid="ListArchive", actions=["s3:ListBucket"], resources=[archive_bucket.bucket_arn]
                ),
                iam.PolicyStatement(
                    sid="ReadArchive",
                    actions=["s3:GetObject"],
                    resources=[archive_bucket.arn_for_objects(f"{EVENTS_PREFIX}*")],
                ),
            ]
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Operate the real-time RAG pipeline: reindex from the archive, redrive dead letters",
            statements=statements,
        )
        self._acknowledge(dead_letter_bucket, archive_bucket)

    def _acknowledge(self, dead_letter_bucket: s3.IBucket, archive_bucket: s3.IBucket | None) -> None:
        reasons = {
            INVALID_EVENTS_PREFIX: (
                "redrive.py reads the indexer's bad-event letters, and reindex.py writes the lines it cannot replay, "
                "one object per shard and sequence number under invalid/; access is limited to that prefix of this "
                "stack's dead-letter bucket."
            ),
            FAILED_BATCHES_PREFIX: (
                "redrive.py reads the event source mapping's failed-batch records, which Lambda names itself under "
                "aws/lambda/<mapping>/<shard>/<date>/; read access is limited to that prefix of this stack's "
                "dead-letter bucket."
            ),
            REDRIVEN_PREFIX: (
                "redrive.py writes and reads one marker per redriven letter, keyed by the letter, under redriven/; "
                "the wildcard is limited to that prefix of this stack's dead-letter bucket."
            ),
        }
        for prefix, reason in reasons.items():
            acknowledge(
                self.policy, wildcard_resource(self, dead_letter_bucket.arn_for_objects(f"{prefix}*")), reason
            )
        if archive_bucket is not None:
            acknowledge(
                self.policy,
                wildcard_resource(self, archive_bucket.arn_for_objects(f"{EVENTS_PREFIX}*")),
                "reindex.py reads archive objects whose names Firehose generates (events/YYYY/MM/DD/HH/<stream>-"
                "<time>-<uuid>.jsonl.gz); read-only, limited to the events/ prefix of this stack's archive bucket.",
            )
