"""Least privilege: exact actions on exact ARNs, no statement on "*", no managed policies on our roles."""

from __future__ import annotations

import json

import pytest

from rtrag.core import contract as c
from rtrag.core.regions import NOVA_LITE_PROFILES, nova_lite_profile
from stacks.settings import Settings

from .helpers import (
    ACCOUNT,
    actions,
    all_policy_statements,
    as_list,
    custom_resource,
    dead_letter_bucket,
    function_by_handler,
    getatt,
    in_region,
    managed_policy,
    of_type,
    one,
    role_of,
    role_statements,
    statements_with_action,
)


def _partition_region_join(suffix: str) -> dict:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:", {"Ref": "AWS::Region"}, suffix]]}


TITAN_ARN = _partition_region_join("::foundation-model/amazon.titan-embed-text-v2:0")


def _indexer(resources):
    _, function = function_by_handler(resources, "indexer.handler")
    return role_of(function), role_statements(resources, role_of(function))


def test_no_statement_allows_anything_on_a_bare_wildcard(resources):
    offenders = [
        (key, statement) for key, statement in all_policy_statements(resources)
        if statement["Effect"] == "Allow" and "*" in as_list(statement["Resource"])
    ]
    assert offenders == []


def test_no_statement_uses_an_action_wildcard(resources):
    assert [a for _, s in all_policy_statements(resources) for a in actions(s) if "*" in a] == []


def test_our_roles_have_no_managed_policies(resources):
    for handler in ("indexer.handler", "vector_index_resource.on_event", "framework.onEvent"):
        _, function = function_by_handler(resources, handler)
        assert "ManagedPolicyArns" not in resources[role_of(function)]["Properties"], handler


def test_indexer_role_holds_exactly_the_permissions_the_indexer_uses(resources):
    role_id, statements = _indexer(resources)
    granted = {a for s in statements for a in actions(s)}

    assert granted == {
        "logs:CreateLogStream", "logs:PutLogEvents",
        # stream reads, as CDK's Stream.grantRead and the event source mapping need them
        "kinesis:DescribeStream", "kinesis:DescribeStreamConsumer", "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:ListStreams",
        "kinesis:SubscribeToShard",
        "bedrock:InvokeModel",
        "s3vectors:GetVectors", "s3vectors:PutVectors", "s3vectors:DeleteVectors",
        "s3:PutObject", "s3:ListBucket",
        "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
    }


def test_indexer_may_invoke_only_the_embedding_model(resources):
    _, statements = _indexer(resources)
    (bedrock,) = statements_with_action(statements, "bedrock:InvokeModel")
    assert actions(bedrock) == {"bedrock:InvokeModel"}
    assert bedrock["Resource"] == TITAN_ARN


def test_indexer_s3vectors_actions_apply_to_the_index_arn_only(resources):
    _, statements = _indexer(resources)
    vectors = [s for s in statements if any(a.startswith("s3vectors:") for a in actions(s))]
    assert len(vectors) == 1
    assert vectors[0]["Resource"] == getatt(custom_resource(resources), "IndexArn")


def _version_table_arn(resources) -> dict:
    table_id, _ = one(of_type(resources, "AWS::DynamoDB::Table"))
    return getatt(table_id, "Arn")


def test_indexer_reads_and_writes_only_the_version_ledger_table_with_batch_calls(resources):
    _, statements = _indexer(resources)
    ledger = [s for s in statements if any(a.startswith("dynamodb:") for a in actions(s))]

    assert len(ledger) == 1
    assert actions(ledger[0]) == {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}
    assert ledger[0]["Resource"] == _version_table_arn(resources)  # the table itself: no index, no "*"


def test_indexer_reads_only_its_stream(resources):
    _, statements = _indexer(resources)
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    reads = [s for s in statements if any(a.startswith("kinesis:") for a in actions(s))]
    assert reads, "the indexer reads its stream"
    assert all(statement["Resource"] == getatt(stream_id, "Arn") for statement in reads)


def test_indexer_writes_dead_letters_only_under_its_two_prefixes(resources):
    _, statements = _indexer(resources)
    bucket_id, _ = dead_letter_bucket(resources)
    bucket_arn = getatt(bucket_id, "Arn")

    puts = statements_with_action(statements, "s3:PutObject")
    assert sorted(json.dumps(s["Resource"], sort_keys=True) for s in puts) == sorted(
        json.dumps({"Fn::Join": ["", [bucket_arn, f"/{prefix}*"]]}, sort_keys=True)
        for prefix in ("invalid/", "aws/lambda/")
    )
    (listing,) = statements_with_action(statements, "s3:ListBucket")
    assert listing["Resource"] == bucket_arn
    assert all(actions(s) <= {"s3:PutObject", "s3:ListBucket"} for s in statements
               if any(a.startswith("s3:") for a in actions(s)))


def test_indexer_writes_logs_only_to_its_own_log_group(resources):
    _, function = function_by_handler(resources, "indexer.handler")
    _, statements = _indexer(resources)
    own = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    writes = [s for s in statements if any(a.startswith("logs:") for a in actions(s))]
    assert writes, "the indexer writes its logs"
    assert all(statement["Resource"] == getatt(own, "Arn") for statement in writes)


# The handler names things f"{base}-{8 hex digits}"; "?" matches one character (see test_permissions_suffice).
SUFFIX = "-????????"
BUCKET_BASE, INDEX_BASE = Settings().vector_bucket_base_name, Settings().vector_index_base_name


def test_custom_resource_handler_is_scoped_to_this_stacks_base_names_or_its_owner_tag(resources):
    _, function = function_by_handler(resources, "vector_index_resource.on_event")
    statements = role_statements(resources, role_of(function))
    unconditional = [s for s in statements if "Condition" not in s]
    by_action = {a: s for s in unconditional for a in actions(s)}

    def arn_suffix(action: str) -> str:
        return by_action[action]["Resource"]["Fn::Join"][1][-1]

    for action in ("CreateVectorBucket", "GetVectorBucket", "DeleteVectorBucket", "ListIndexes", "TagResource"):
        assert f":bucket/{BUCKET_BASE}{SUFFIX}" in {
            s["Resource"]["Fn::Join"][1][-1] for s in unconditional if f"s3vectors:{action}" in actions(s)}
    for action in ("CreateIndex", "GetIndex", "DeleteIndex", "ListVectors"):
        assert arn_suffix(f"s3vectors:{action}") == f":bucket/{BUCKET_BASE}{SUFFIX}/index/{INDEX_BASE}{SUFFIX}"
    assert not [a for a in by_action if a.startswith("kms:")]  # no key configured by default
    assert {a for a in by_action if a.startswith("s3vectors:")} == {
        "s3vectors:CreateVectorBucket", "s3vectors:GetVectorBucket", "s3vectors:DeleteVectorBucket",
        "s3vectors:ListIndexes", "s3vectors:CreateIndex", "s3vectors:GetIndex", "s3vectors:DeleteIndex",
        "s3vectors:TagResource", "s3vectors:ListVectors",
    }
    # beyond this stack's names: only the cleanup of an earlier bucket and index, and only by the owner tag
    # (which the handler alone puts, and only on this stack's names), valued with this stack's own id
    conditional = {s["Sid"]: s for s in statements if "Condition" in s}
    assert set(conditional) == {"CleanUpEarlierVectorBuckets", "CleanUpEarlierVectorIndexes"}
    assert actions(conditional["CleanUpEarlierVectorBuckets"]) == {
        "s3vectors:ListIndexes", "s3vectors:DeleteVectorBucket"}
    assert actions(conditional["CleanUpEarlierVectorIndexes"]) == {"s3vectors:DeleteIndex"}
    for statement in conditional.values():
        assert statement["Condition"] == {
            "StringEquals": {f"aws:ResourceTag/{c.VECTOR_OWNER_TAG_KEY}": {"Ref": "AWS::StackId"}}}
    _, resource = one(of_type(resources, "Custom::S3VectorIndex"))
    assert resource["Properties"]["OwnerTagKey"] == c.VECTOR_OWNER_TAG_KEY


def test_producer_policy_puts_records_on_this_stream_only(resources):
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    policy = managed_policy(resources, "Put document events")

    assert "ManagedPolicyName" not in policy["Properties"]
    statement, outputs = policy["Properties"]["PolicyDocument"]["Statement"]
    assert actions(statement) == {"kinesis:PutRecord", "kinesis:PutRecords"}
    assert statement["Resource"] == getatt(stream_id, "Arn")
    # put_event.py finds the stream in the stack's outputs by default: the policy lets it read them, here only.
    assert actions(outputs) == {"cloudformation:DescribeStacks"} and outputs["Resource"] == {"Ref": "AWS::StackId"}


def test_asker_policy_embeds_queries_converses_and_reads_outputs(resources):
    policy = managed_policy(resources, "Ask the real-time RAG index")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}

    assert actions(statements["EmbedQuestion"]) == {"bedrock:InvokeModel"}
    assert statements["EmbedQuestion"]["Resource"] == TITAN_ARN

    nova = statements["AnswerWithNova"]
    assert actions(nova) == {"bedrock:InvokeModelWithResponseStream"}  # ConverseStream's action, nothing more
    profile, model = nova["Resource"]
    # this Region's inference profile (which one: test_asker_policy_allows_the_profile_ask_py_calls_in_each_region)
    assert profile["Fn::Join"][1][:-1] == [
        "arn:", {"Ref": "AWS::Partition"}, ":bedrock:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        ":inference-profile/"]
    nova_models = ":bedrock:*::foundation-model/amazon.nova-lite-v1:0"
    assert model == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, nova_models]]}

    query = statements["QueryVectorIndex"]
    assert actions(query) == {"s3vectors:QueryVectors", "s3vectors:GetVectors", "s3vectors:GetIndex"}
    assert query["Resource"] == getatt(custom_resource(resources), "IndexArn")

    assert actions(statements["ReadStackOutputs"]) == {"cloudformation:DescribeStacks"}
    assert statements["ReadStackOutputs"]["Resource"] == {"Ref": "AWS::StackId"}
    assert set(statements) == {"EmbedQuestion", "AnswerWithNova", "QueryVectorIndex", "ReadStackOutputs"}


@pytest.mark.parametrize("region", sorted(NOVA_LITE_PROFILES))
def test_asker_policy_allows_the_profile_ask_py_calls_in_each_region(synth, region):
    # given the asker policy's Nova statement (the Region is unknown until deploy)
    template = synth.template_json
    policy = managed_policy(template["Resources"], "Ask the real-time RAG index")
    nova = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "AnswerWithNova")
    profile, model = nova["Resource"]

    # when the stack is deployed to a Region of the map, then the policy allows exactly the inference profile that
    # ask.py calls there by default, plus Nova Lite in whichever Region of its geography the profile routes to
    assert in_region(template, profile, region) == (
        f"arn:aws:bedrock:{region}:{ACCOUNT}:inference-profile/{nova_lite_profile(region)}")
    assert in_region(template, model, region) == "arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0"
