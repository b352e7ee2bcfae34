"""Sufficiency: every AWS call the deployed code makes on the tested paths is allowed by its synthesized role.

The code runs against moto with the shared fakes (tests/conftest.py ``aws``/``env``), which record every call;
each call is then checked, action and resource, against the role's statements from the template, with the
template's references resolved to the names the test used. A deployed function therefore cannot hit
AccessDenied on these paths.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from conftest import ACCOUNT, BUCKET, DEAD_LETTERS, INDEX, REGION, VERSIONS, run  # tests/conftest.py
from kinesis import EVENTS_DIR, STREAM_ARN, batch, load_event

from .helpers import (
    archive_bucket,
    custom_resource,
    dead_letter_bucket,
    function_by_handler,
    managed_policy,
    of_type,
    one,
    role_of,
    role_statements,
)
from .iam_eval import STACK_ID, allows, requests_for


def _denied(calls: list[tuple[str, str, dict[str, Any]]], statements, attributes, tags=None) -> list[str]:
    """Each authorization the calls needed that ``statements`` do not give (``tags``: the resources' tags by ARN,
    as they were when called)."""
    denied = []
    for service, operation, params in calls:
        for request in requests_for(service, operation, params, tags):
            if not allows(statements, request, attributes):
                denied.append(f"{request.action} on {request.resource}")
    return denied


def resource_attributes(resources, *, stream_arn: str, archive: str | None = None) -> dict[tuple[str, str], str]:
    """The template's references (logical id, attribute) as the names the tests' resources have."""
    index, (dead_letters, _), (stream, _), (versions, _) = (
        custom_resource(resources), dead_letter_bucket(resources),
        one(of_type(resources, "AWS::Kinesis::Stream")), one(of_type(resources, "AWS::DynamoDB::Table")))
    bucket_arn = f"arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/{BUCKET}"
    attributes = {
        (index, "IndexArn"): f"{bucket_arn}/index/{INDEX}",
        (index, "VectorBucketArn"): bucket_arn,
        (dead_letters, "Arn"): f"arn:aws:s3:::{DEAD_LETTERS}",
        (stream, "Arn"): stream_arn,
        (versions, "Arn"): f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{VERSIONS}",
    }
    if archive is not None:
        attributes[(archive_bucket(resources)[0], "Arn")] = f"arn:aws:s3:::{archive}"
    return attributes


def _words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}." if i % 15 == 14 else f"{tag}{i}" for i in range(n))


def test_indexer_role_allows_every_call_the_indexer_makes(env, synth):
    # given the indexer's role as synthesized, its references resolved to the test's resources
    resources = synth.template_json["Resources"]
    _, function = function_by_handler(resources, "indexer.handler")
    statements = role_statements(resources, role_of(function))
    attributes = resource_attributes(resources, stream_arn=STREAM_ARN)
    recorder = env.aws.recorder
    start = len(recorder.calls)

    # when the indexer handles the sample events and a document's whole life (long, shrunk, re-sent, re-tagged,
    # deleted)
    for sample in sorted(EVENTS_DIR.glob("*.json")):
        run(load_event(sample.name))
    run(batch({"doc_id": "life", "text": _words(900, "a"), "ts": 1}, start=100))
    run(batch({"doc_id": "life", "text": _words(120, "b"), "ts": 2}, start=101))
    run(batch({"doc_id": "life", "text": _words(120, "b"), "ts": 2}, start=102))
    run(batch({"doc_id": "life", "text": _words(120, "b"), "ts": 2, "source": "moved"}, start=103))
    run(batch({"doc_id": "life", "op": "delete", "ts": 3}, start=104))
    run(batch({"doc_id": "bad#id", "text": "x"}, b"not json", start=105))
    calls = recorder.calls[start:]

    # then the paths covered the indexer's whole surface, and the role allows every call on it
    assert {(service, operation) for service, operation, _ in calls} >= {
        ("bedrock", "InvokeModel"), ("s3vectors", "GetVectors"), ("s3vectors", "PutVectors"),
        ("s3vectors", "DeleteVectors"), ("s3", "PutObject"),
        ("dynamodb", "BatchGetItem"), ("dynamodb", "BatchWriteItem"),
    }
    assert _denied(calls, statements, attributes) == []


def _event(request_type: str, properties: dict[str, Any], physical_id: str | None = None) -> dict[str, Any]:
    event = {
        "RequestType": request_type,
        "StackId": STACK_ID,  # the stack id the policies' Ref resolves to
        "RequestId": "request-1",
        "LogicalResourceId": "Vectors",
        "ResourceType": "Custom::S3VectorIndex",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fw", **properties},
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    return event


@pytest.mark.parametrize("retain", ["false", "true"])
def test_custom_resource_role_allows_every_call_of_its_lifecycle(aws, synth, retain):
    from rtrag.aws import index_lifecycle

    # given the handler's role and the resource properties exactly as synthesized
    resources = synth.template_json["Resources"]
    _, handler = function_by_handler(resources, "vector_index_resource.on_event")
    statements = role_statements(resources, role_of(handler))
    _, resource = one(of_type(resources, "Custom::S3VectorIndex"))
    properties = {k: v for k, v in resource["Properties"].items() if k != "ServiceToken"} | {"RetainOnDelete": retain}
    client = boto3.client("s3vectors", region_name=REGION)
    start = len(aws.recorder.calls)

    # when CloudFormation creates it (twice, as a retry would), updates it in place, replaces it, cleans up the
    # old index, deletes the new one, and repeats that delete
    handle = index_lifecycle.handle_event
    created = handle(client, _event("Create", properties))
    handle(client, _event("Create", properties))
    handle(client, _event("Update", properties, created["PhysicalResourceId"]))
    replaced = handle(client, _event("Update", properties | {"Dimension": "512"}, created["PhysicalResourceId"]))
    handle(client, _event("Delete", properties, created["PhysicalResourceId"]))
    handle(client, _event("Delete", properties | {"Dimension": "512"}, replaced["PhysicalResourceId"]))
    handle(client, _event("Delete", properties | {"Dimension": "512"}, replaced["PhysicalResourceId"]))
    calls = aws.recorder.calls[start:]

    # then the names the handler chose fall inside the role's patterns, and every call is allowed
    assert replaced["PhysicalResourceId"] != created["PhysicalResourceId"]
    operations = {operation for _, operation, _ in calls}
    assert {"CreateVectorBucket", "CreateIndex", "GetIndex"} <= operations
    if retain == "false":
        assert {"DeleteIndex", "DeleteVectorBucket"} <= operations
    assert _denied(calls, statements, {}) == []


def test_put_event_with_only_the_producer_policy_finds_the_stream_in_the_outputs_and_puts(aws, synth, capsys):
    # given the stack's outputs (moto CloudFormation) and the producer policy the README tells a producer to attach
    import json

    from scripts import put_event

    boto3.client("kinesis").create_stream(StreamName="rag-stream", ShardCount=1)
    boto3.client("cloudformation").create_stack(StackName="RealtimeRag", TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"StreamName": {"Value": "rag-stream"}}}))
    resources = synth.template_json["Resources"]
    policy = managed_policy(resources, "Put document events")
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    attributes = {(stream_id, "Arn"): f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/rag-stream"}
    start = len(aws.recorder.calls)

    # when put_event.py runs with no stream named: one event, then a file of two
    assert put_event.main(["Project Nimbus ships v3.", "nimbus-v3"]) == 0
    capsys.readouterr()
    calls = aws.recorder.calls[start:]

    # then it read the outputs and put the record, and the producer policy allows each call
    assert {(s, o) for s, o, _ in calls} >= {("cloudformation", "DescribeStacks"), ("kinesis", "PutRecord")}
    assert _denied(calls, policy["Properties"]["PolicyDocument"]["Statement"], attributes) == []


def _tags_by_arn(client, arns) -> dict[str, dict[str, str]]:
    return {arn: client.list_tags_for_resource(resourceArn=arn)["tags"] for arn in arns}


@pytest.mark.parametrize("made_before_the_owner_tag", [False, True])
def test_a_renamed_index_is_cleaned_up_by_the_role_of_the_new_names(aws, synth, made_before_the_owner_tag):
    from rtrag.aws import index_lifecycle

    # given the handler's role with the synthesized base names, and a bucket and index this stack made under
    # EARLIER base names (outside the role's name patterns), with or without the owner tag of older versions
    resources = synth.template_json["Resources"]
    _, handler = function_by_handler(resources, "vector_index_resource.on_event")
    statements = role_statements(resources, role_of(handler))
    _, resource = one(of_type(resources, "Custom::S3VectorIndex"))
    properties = {k: v for k, v in resource["Properties"].items() if k != "ServiceToken"}
    earlier = properties | {"VectorBucketName": "earlier-vectors", "IndexName": "earlier-chunks"}
    if made_before_the_owner_tag:
        earlier.pop("OwnerTagKey")
    client = boto3.client("s3vectors", region_name=REGION)
    handle = index_lifecycle.handle_event
    old = handle(client, _event("Create", earlier))["Data"]
    tags = _tags_by_arn(client, [old["VectorBucketArn"], old["IndexArn"]])  # an update leaves them as they are

    # when the update renames them and CloudFormation's cleanup deletes the earlier physical id
    start = len(aws.recorder.calls)
    new = handle(client, _event("Update", properties, old["IndexArn"]))["Data"]
    handle(client, _event("Delete", earlier, old["IndexArn"]))
    calls = aws.recorder.calls[start:]

    # then the cleanup removed the earlier bucket and index, and the role allows every call on the way, unless
    # they predate the owner tag: then exactly the cleanup is denied (its error says how to delete them by hand)
    assert new["IndexArn"] != old["IndexArn"]
    assert [b["vectorBucketName"] for b in client.list_vector_buckets()["vectorBuckets"]] == [new["VectorBucketName"]]
    denied = _denied(calls, statements, {}, tags)
    if made_before_the_owner_tag:
        assert denied == [f"s3vectors:DeleteIndex on {old['IndexArn']}",
                          f"s3vectors:ListIndexes on {old['VectorBucketArn']}",
                          f"s3vectors:DeleteVectorBucket on {old['VectorBucketArn']}"]
    else:
        assert denied == []


def test_an_update_in_place_adopts_a_bucket_and_index_made_before_the_owner_tag(aws, synth):
    from rtrag.aws import index_lifecycle

    # given a bucket and index made (under this template's names) by a version without the owner tag
    resources = synth.template_json["Resources"]
    _, handler = function_by_handler(resources, "vector_index_resource.on_event")
    statements = role_statements(resources, role_of(handler))
    _, resource = one(of_type(resources, "Custom::S3VectorIndex"))
    properties = {k: v for k, v in resource["Properties"].items() if k != "ServiceToken"}
    untagged = {k: v for k, v in properties.items() if k != "OwnerTagKey"}
    client = boto3.client("s3vectors", region_name=REGION)
    handle = index_lifecycle.handle_event
    made = handle(client, _event("Create", untagged))
    assert _tags_by_arn(client, [made["Data"]["IndexArn"]]) == {made["Data"]["IndexArn"]: {}}

    # when this version's template updates it in place (the new OwnerTagKey property is the change)
    start = len(aws.recorder.calls)
    kept = handle(client, _event("Update", properties, made["PhysicalResourceId"]))
    calls = aws.recorder.calls[start:]

    # then it kept the same bucket and index, now tagged with the stack's id, and the role allowed the tagging
    assert kept["PhysicalResourceId"] == made["PhysicalResourceId"]
    owner = {properties["OwnerTagKey"]: _event("Update", {})["StackId"]}
    assert _tags_by_arn(client, [made["Data"]["VectorBucketArn"], made["Data"]["IndexArn"]]) == {
        made["Data"]["VectorBucketArn"]: owner, made["Data"]["IndexArn"]: owner}
    # (the update first makes sure both still exist: creating them is idempotent, and a conflict means they do)
    assert [o for _, o, _ in calls] == ["CreateVectorBucket", "GetVectorBucket", "TagResource", "GetIndex",
                                        "TagResource"]
    assert _denied(calls, statements, {}) == []
