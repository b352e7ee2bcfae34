"""The operator policy: reindex and redrive can do their work, and nothing else (no deletes, no other prefixes)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import NO_ARCHIVE
from .helpers import (
    actions,
    archive_bucket,
    as_list,
    custom_resource,
    dead_letter_bucket,
    managed_policy,
    of_type,
    one,
)
from .iam_eval import ACCOUNT, PARTITION, REGION, Request, allows

STREAM_ARN = f"arn:{PARTITION}:kinesis:{REGION}:{ACCOUNT}:stream/ingest"
INDEX_ARN = f"arn:{PARTITION}:s3vectors:{REGION}:{ACCOUNT}:bucket/vectors-12345678/index/chunks-12345678"
TITAN = f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/amazon.titan-embed-text-v2:0"
ARCHIVE, DEAD_LETTERS = "arn:aws:s3:::archive", "arn:aws:s3:::dead-letters"
VERSIONS = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/versions"


def _statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    return managed_policy(resources, "Operate the real-time RAG pipeline")["Properties"]["PolicyDocument"]["Statement"]


def _attributes(resources: dict[str, Any]) -> dict[tuple[str, str], str]:
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    attributes = {
        (stream_id, "Arn"): STREAM_ARN,
        (dead_letter_bucket(resources)[0], "Arn"): DEAD_LETTERS,
        (custom_resource(resources), "IndexArn"): INDEX_ARN,
        (one(of_type(resources, "AWS::DynamoDB::Table"))[0], "Arn"): VERSIONS,
    }
    if of_type(resources, "AWS::KinesisFirehose::DeliveryStream"):
        attributes[(archive_bucket(resources)[0], "Arn")] = ARCHIVE
    return attributes


@pytest.mark.parametrize(("action", "resource", "allowed"), [
    # reindex: read the archive, put events back, or write straight into this stack's index
    ("s3:ListBucket", ARCHIVE, True),
    ("s3:GetObject", f"{ARCHIVE}/events/2026/11/24/10/x.jsonl.gz", True),
    ("kinesis:PutRecords", STREAM_ARN, True),
    ("bedrock:InvokeModel", TITAN, True),
    ("s3vectors:PutVectors", INDEX_ARN, True),
    ("s3vectors:GetVectors", INDEX_ARN, True),
    ("s3vectors:GetIndex", INDEX_ARN, True),
    ("dynamodb:BatchGetItem", VERSIONS, True),
    # check_index: list the index's keys, read the ledger, delete orphans (--fix)
    ("s3vectors:ListVectors", INDEX_ARN, True),
    ("s3vectors:DeleteVectors", INDEX_ARN, True),
    ("dynamodb:BatchWriteItem", VERSIONS, True),
    # redrive: read both kinds of dead letters, re-read a failed batch from the stream, mark what was sent
    ("s3:ListBucket", DEAD_LETTERS, True),
    ("s3:GetObject", f"{DEAD_LETTERS}/invalid/2026/11/24/shardId-0/123.json", True),
    ("s3:GetObject", f"{DEAD_LETTERS}/aws/lambda/uuid/shardId-0/2026/11/24/x", True),
    ("kinesis:GetShardIterator", STREAM_ARN, True),
    ("kinesis:GetRecords", STREAM_ARN, True),
    ("s3:PutObject", f"{DEAD_LETTERS}/redriven/invalid/2026/11/24/shardId-0/123.json", True),
    # reindex dead-letters the archive lines it cannot replay, where the indexer does
    ("s3:PutObject", f"{DEAD_LETTERS}/invalid/2026/11/24/reindex-job/000001.json", True),
    # and nothing destructive or beside the point
    ("s3:DeleteObject", f"{DEAD_LETTERS}/invalid/2026/11/24/shardId-0/123.json", False),
    ("s3:PutObject", f"{DEAD_LETTERS}/aws/lambda/forged.json", False),
    ("s3:PutObject", f"{ARCHIVE}/events/2026/11/24/10/forged.jsonl.gz", False),
    ("s3:DeleteObject", f"{ARCHIVE}/events/2026/11/24/10/x.jsonl.gz", False),
    ("s3vectors:DeleteIndex", INDEX_ARN, False),
    ("kinesis:DeleteStream", STREAM_ARN, False),
    ("dynamodb:DeleteTable", VERSIONS, False),
    ("dynamodb:Scan", VERSIONS, False),
    ("dynamodb:BatchWriteItem", f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/other", False),
    ("bedrock:InvokeModel", f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/amazon.nova-pro-v1:0", False),
])
def test_operator_policy_covers_reindex_and_redrive_and_nothing_destructive(resources, action, resource, allowed):
    request = Request(action=action, resource=resource)
    assert allows(_statements(resources), request, _attributes(resources)) is allowed


def test_operator_policy_reads_stack_outputs(resources):
    (statement,) = [s for s in _statements(resources) if "cloudformation:DescribeStacks" in actions(s)]
    assert statement["Resource"] == {"Ref": "AWS::StackId"}


def test_operator_policy_uses_the_version_ledger_only_through_its_batch_calls_on_its_table(resources):
    table_id, _ = one(of_type(resources, "AWS::DynamoDB::Table"))
    ledger = [s for s in _statements(resources) if any(a.startswith("dynamodb:") for a in actions(s))]

    assert [(s["Sid"], actions(s), as_list(s["Resource"])) for s in ledger] == [
        ("ReindexVersionLedger", {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"},
         [{"Fn::GetAtt": [table_id, "Arn"]}]),
    ]


def test_operator_policy_arn_is_an_output(synth, resources):
    policy_id, _ = one({k: r for k, r in of_type(resources, "AWS::IAM::ManagedPolicy").items()
                        if r["Properties"]["Description"].startswith("Operate the real-time RAG pipeline")})
    assert synth.template_json["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": policy_id}


def test_without_the_archive_the_operator_policy_reads_no_archive(variants):
    resources = variants.templates[NO_ARCHIVE["stack_name"]]["Resources"]
    sids = {s["Sid"] for s in _statements(resources)}

    assert {"ReadDeadLetters", "ReplayOntoStream"} <= sids
    assert not sids & {"ListArchive", "ReadArchive"}
