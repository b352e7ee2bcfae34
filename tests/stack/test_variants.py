"""Other settings: two stacks side by side in one account and Region, a stack with every option changed, and a
stack without the archive (the ``variants`` fixture in conftest.py synthesizes them together)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from stacks.settings import derive_base_name

from .conftest import CUSTOM, KMS_KEY_ARN, NO_ARCHIVE
from .helpers import function_by_handler, managed_policy, of_type, one, role_of, role_statements
from .test_template_checks import IGNORED_LINT_RULES, LINT_REGIONS

# Properties that would give a resource a fixed physical name (and make a second stack collide with the first).
NAME_PROPERTIES = {
    "Name", "BucketName", "FunctionName", "RoleName", "ManagedPolicyName", "PolicyName", "LogGroupName",
    "LayerName", "StreamName",
}


def _fixed_names(template: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Name properties set to a literal (a Ref or GetAtt to another resource names nothing new)."""
    found = []
    for key, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":  # an inline policy's name is scoped to its role
            continue
        for prop in NAME_PROPERTIES & set(resource.get("Properties", {})):
            if isinstance(resource["Properties"][prop], str):
                found.append((key, prop, resource["Properties"][prop]))
    return found


def test_all_variants_pass_cdk_nag(variants):
    assert variants.synth_error is None
    assert not [v for r in (variants.validation_report or {}).get("pluginReports", []) for v in r["violations"]]


@pytest.mark.parametrize("stack", [CUSTOM["stack_name"], NO_ARCHIVE["stack_name"]])
def test_the_stacks_with_options_changed_pass_cfn_lint(variants, stack):
    matches = lint(json.dumps(variants.templates[stack]),
                   config=ManualArgs(regions=LINT_REGIONS, ignore_checks=IGNORED_LINT_RULES))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id[0] in "EW"] == []


def test_two_stacks_with_different_names_share_no_physical_name(variants):
    a, b = variants.templates["RagA"], variants.templates["RagB"]

    assert _fixed_names(a) == [] and _fixed_names(b) == []
    names = [one(of_type(t["Resources"], "Custom::S3VectorIndex"))[1]["Properties"] for t in (a, b)]
    assert names[0]["VectorBucketName"] != names[1]["VectorBucketName"]
    assert names[0]["IndexName"] != names[1]["IndexName"]
    assert "Export" not in str(a["Outputs"]) + str(b["Outputs"])


def test_each_stack_manages_only_vector_buckets_of_its_own_base_name_or_its_own_tag(variants):
    for stack in ("RagA", "RagB"):
        base, index_base = derive_base_name(stack, "vectors"), derive_base_name(stack, "chunks")
        resources = variants.templates[stack]["Resources"]
        _, handler = function_by_handler(resources, "vector_index_resource.on_event")
        statements = [s for s in role_statements(resources, role_of(handler))
                      if isinstance(s["Resource"], dict) and "Fn::Join" in s["Resource"]]
        by_name = {s["Resource"]["Fn::Join"][1][-1] for s in statements if "Condition" not in s}
        assert by_name == {f":bucket/{base}-????????", f":bucket/{base}-????????/index/{index_base}-????????"}
        # beyond its names, each stack reaches only what carries its own stack id (earlier names, after a rename)
        by_tag = [s["Condition"]["StringEquals"] for s in statements if "Condition" in s]
        assert by_tag and all(c == {"aws:ResourceTag/rtrag:stack-id": {"Ref": "AWS::StackId"}} for c in by_tag)


@pytest.fixture
def custom(variants) -> Template:
    return Template.from_json(variants.templates["RagCustom"])


@pytest.fixture
def custom_resources(variants) -> dict[str, Any]:
    return variants.templates["RagCustom"]["Resources"]


def test_custom_index_uses_the_given_names_dimension_and_kms_key(custom):
    custom.has_resource_properties("Custom::S3VectorIndex", {
        "VectorBucketName": "team-vectors",
        "IndexName": "docs.v2",
        "Dimension": "512",
        "SseType": "aws:kms",
        "KmsKeyArn": KMS_KEY_ARN,
        "RetainOnDelete": "true",
    })
    custom.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "indexer.handler",
        "ReservedConcurrentExecutions": 5,
        "Environment": {"Variables": Match.object_like({"EMBED_DIMENSIONS": "512"})},
    })


def test_custom_event_source_mapping_follows_the_settings(custom):
    custom.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "StartingPosition": "LATEST",
        "BatchSize": 500,
        "MaximumBatchingWindowInSeconds": 2,
    })


def test_kms_key_is_usable_by_exactly_the_principals_that_touch_the_vectors(custom_resources):
    def key_actions(statements):
        return {a for s in statements if s["Resource"] == KMS_KEY_ARN for a in (
            s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}

    _, handler = function_by_handler(custom_resources, "vector_index_resource.on_event")
    _, indexer = function_by_handler(custom_resources, "indexer.handler")
    asker = managed_policy(custom_resources, "Ask the real-time RAG index")

    assert key_actions(role_statements(custom_resources, role_of(handler))) == {
        "kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"}
    assert key_actions(role_statements(custom_resources, role_of(indexer))) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert key_actions(asker["Properties"]["PolicyDocument"]["Statement"]) == {"kms:GenerateDataKey", "kms:Decrypt"}


def test_retained_data_survives_destroy(custom_resources):
    for cfn_type in ("AWS::S3::Bucket", "AWS::Kinesis::Stream", "AWS::Logs::LogGroup", "AWS::DynamoDB::Table"):
        for key, resource in of_type(custom_resources, cfn_type).items():
            assert resource["DeletionPolicy"] == "Retain", key
    assert of_type(custom_resources, "Custom::S3AutoDeleteObjects") == {}
    for log_group in of_type(custom_resources, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 365


# enhanced fan-out (RagCustom sets enhanced_fan_out=true; every other stack polls)
def test_enhanced_fan_out_registers_a_consumer_and_the_mapping_reads_through_it(variants):
    resources = variants.templates["RagCustom"]["Resources"]
    consumer_id, consumer = one(of_type(resources, "AWS::Kinesis::StreamConsumer"))
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    _, mapping = one(of_type(resources, "AWS::Lambda::EventSourceMapping"))

    assert consumer["Properties"] == {"ConsumerName": "RagCustom-indexer",
                                      "StreamARN": {"Fn::GetAtt": [stream_id, "Arn"]}}
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [consumer_id, "ConsumerARN"]}
    # Everything else about the mapping is as with polling: partial failures, bisect, the S3 on-failure copy.
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["BisectBatchOnFunctionError"] is True
    assert "OnFailure" in mapping["Properties"]["DestinationConfig"]


def test_the_indexer_may_subscribe_through_its_consumer_and_no_other(variants):
    resources = variants.templates["RagCustom"]["Resources"]
    consumer_id, _ = one(of_type(resources, "AWS::Kinesis::StreamConsumer"))
    _, function = function_by_handler(resources, "indexer.handler")
    statements = role_statements(resources, role_of(function))

    subscribe = [s for s in statements if "kinesis:SubscribeToShard" in json.dumps(s["Action"])]
    resources_granted = [s["Resource"] for s in subscribe]
    assert {"Fn::GetAtt": [consumer_id, "ConsumerARN"]} in resources_granted
    assert "*" not in json.dumps(resources_granted), "never on every consumer of every stream"
    # CDK's stream read grant names the two actions on the stream too; they authorize nothing there (SubscribeToShard
    # and DescribeStreamConsumer are authorized against a consumer ARN).
    assert all(r == {"Fn::GetAtt": [consumer_id, "ConsumerARN"]} or "Stream" in json.dumps(r)
               for r in resources_granted)


def test_the_dashboard_shows_the_consumer_s_lag_and_polling_stacks_have_no_consumer(variants):
    custom = json.dumps(variants.templates["RagCustom"]["Resources"])
    assert "SubscribeToShardEvent.MillisBehindLatest" in custom and "RagCustom-indexer" in custom

    for stack in ("RagA", NO_ARCHIVE["stack_name"]):
        resources = variants.templates[stack]["Resources"]
        assert of_type(resources, "AWS::Kinesis::StreamConsumer") == {}
        _, mapping = one(of_type(resources, "AWS::Lambda::EventSourceMapping"))
        assert "Stream" in json.dumps(mapping["Properties"]["EventSourceArn"])
        assert "SubscribeToShardEvent.MillisBehindLatest" not in json.dumps(resources)
