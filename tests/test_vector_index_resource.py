"""The vector bucket + index custom resource, driven through its CloudFormation entry point against moto.

moto 5.2.5 neither stores nor reports an index's metadataConfiguration and returns no ARN from the create
calls, so the tests that need the exact request and response shapes use botocore's Stubber on a real client.
"""

from __future__ import annotations

import json
import re

import boto3
import pytest
from moto import mock_aws

import vector_index_resource  # the entry point CloudFormation's provider invokes
from rtrag.aws import index_lifecycle as lifecycle
from rtrag.aws import index_resource as resource
from rtrag.functions import vector_index_resource as function
from conftest import ACCOUNT, REGION
from rtrag.core import names
from rtrag.core.limits import NAME_MAX_CHARS

# Titan Text Embeddings V2's default output size (aws-facts: Titan V2 outputs 1024, 512 or 256); the replacement tests move to 512.
DIMENSION = 1024
SMALLER_DIMENSION = 512
KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ARN_PREFIX = f"arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/"
SERVICE_TOKEN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:provider-framework-onEvent"
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"  # aws-cdk-lib cfn-response.js


def props(**overrides) -> dict:
    """ResourceProperties as CloudFormation sends them: every scalar a string, plus the ServiceToken."""
    base = {
        "ServiceToken": SERVICE_TOKEN,
        "VectorBucketName": "rtrag-vectors",
        "IndexName": "documents",
        "Dimension": str(DIMENSION),
        "DistanceMetric": "cosine",
        "DataType": "float32",
        "NonFilterableMetadataKeys": ["source_text"],
        "SseType": "AES256",
        "RetainOnDelete": "false",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def event(request_type: str, properties: dict, *, physical_id: str | None = None, old: dict | None = None) -> dict:
    evt = {
        "RequestType": request_type,
        "ServiceToken": SERVICE_TOKEN,
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/presigned",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/rtrag/11111111-2222-3333-4444-555555555555",
        "RequestId": "6f1c2f0e-0d5c-4d5e-9d1e-0c1a2b3c4d5e",
        "LogicalResourceId": "VectorIndex",
        "ResourceType": "Custom::VectorIndex",
        "ResourceProperties": properties,
    }
    if physical_id is not None:
        evt["PhysicalResourceId"] = physical_id
    if old is not None:
        evt["OldResourceProperties"] = old
    return evt


@pytest.fixture(autouse=True)
def fresh_handler_client():
    """The handler caches its client; each test gets one made inside its own mock."""
    function._s3vectors_client.cache_clear()
    yield
    function._s3vectors_client.cache_clear()


@pytest.fixture
def s3v():
    """A moto-backed s3vectors client for arranging and inspecting state."""
    with mock_aws():
        yield boto3.client("s3vectors", region_name=REGION)


@pytest.fixture
def created_at(s3v):
    """The handler's client, as S3 Vectors answers it: GetIndex reports the creationTime of the index's last
    CreateIndex (moto leaves it out), so each index made again has a new generation."""
    from datetime import UTC, datetime, timedelta

    client = function._s3vectors_client()
    times: dict[str, datetime] = {}

    def on_create(params, **_):
        name = json.loads(params["body"])["indexName"]
        times[name] = datetime.now(UTC) + timedelta(seconds=len(times))  # distinct even within a millisecond

    def on_get(parsed, **_):
        index = parsed.get("index") or {}
        if index.get("indexName") in times:
            index["creationTime"] = times[index["indexName"]]

    client.meta.events.register("before-call.s3vectors.CreateIndex", on_create)
    client.meta.events.register("after-call.s3vectors.GetIndex", on_get)
    return times


def bucket_names(client) -> list[str]:
    return sorted(b["vectorBucketName"] for b in client.list_vector_buckets()["vectorBuckets"])


def index_names(client, bucket: str) -> list[str]:
    return sorted(i["indexName"] for i in client.list_indexes(vectorBucketName=bucket)["indexes"])


def create(properties: dict | None = None) -> dict:
    return vector_index_resource.on_event(event("Create", properties or props()), None)


# --- names ---------------------------------------------------------------------------------------------------


def test_given_base_names_when_deriving_then_names_are_base_dash_eight_hex_and_stable():
    p = resource.parse_properties(props())

    assert re.fullmatch(r"rtrag-vectors-[0-9a-f]{8}", p.bucket_name)
    assert re.fullmatch(r"documents-[0-9a-f]{8}", p.index_name)
    assert resource.parse_properties(props()).index_name == p.index_name


def test_given_longest_base_names_when_deriving_then_actual_names_are_valid_and_63_chars():
    assert resource.MAX_BUCKET_BASE_NAME_CHARS == resource.MAX_INDEX_BASE_NAME_CHARS == NAME_MAX_CHARS - 9 == 54
    p = resource.parse_properties(props(VectorBucketName="b" * 54, IndexName="i" * 54))

    assert len(p.bucket_name) == len(p.index_name) == NAME_MAX_CHARS
    names.validate_bucket_name(p.bucket_name)
    names.validate_index_name(p.index_name)


@pytest.mark.parametrize(
    "change",
    [
        {"Dimension": str(SMALLER_DIMENSION)},
        {"DistanceMetric": "euclidean"},
        {"NonFilterableMetadataKeys": ["source_text", "title"]},
        {"NonFilterableMetadataKeys": []},
    ],
)
def test_given_an_immutable_index_change_when_deriving_then_index_name_changes_and_bucket_name_does_not(change):
    before, after = resource.parse_properties(props()), resource.parse_properties(props(**change))

    assert after.index_name != before.index_name
    assert after.bucket_name == before.bucket_name


def test_given_reordered_non_filterable_keys_when_deriving_then_index_name_is_unchanged():
    one = resource.parse_properties(props(NonFilterableMetadataKeys=["source_text", "title"]))
    other = resource.parse_properties(props(NonFilterableMetadataKeys=["title", "source_text"]))

    assert one.index_name == other.index_name


def test_given_kms_encryption_when_deriving_then_bucket_name_changes_and_index_name_does_not():
    aes, kms = resource.parse_properties(props()), resource.parse_properties(props(SseType="aws:kms", KmsKeyArn=KMS_KEY_ARN))

    assert kms.bucket_name != aes.bucket_name
    assert kms.index_name == aes.index_name


def test_given_an_index_arn_when_parsing_then_bucket_and_index_names_come_out():
    ref = resource.parse_index_arn(f"{ARN_PREFIX}my-bucket-0a1b2c3d/index/docs.v1-99aa88bb")

    assert (ref.bucket_name, ref.index_name) == ("my-bucket-0a1b2c3d", "docs.v1-99aa88bb")
    assert ref.bucket_arn == f"{ARN_PREFIX}my-bucket-0a1b2c3d"
    assert resource.parse_index_arn(CREATE_FAILED_MARKER) is None
    assert resource.parse_index_arn(f"{ARN_PREFIX}my-bucket-0a1b2c3d") is None


# --- create ---------------------------------------------------------------------------------------------------


def test_given_nothing_when_create_then_bucket_and_index_exist_with_requested_params(s3v):
    expected = resource.parse_properties(props())

    response = create()

    bucket = s3v.get_vector_bucket(vectorBucketName=expected.bucket_name)["vectorBucket"]
    index = s3v.get_index(vectorBucketName=expected.bucket_name, indexName=expected.index_name)["index"]
    assert bucket["encryptionConfiguration"] == {"sseType": "AES256"}
    assert (index["dataType"], index["dimension"], index["distanceMetric"]) == ("float32", DIMENSION, "cosine")
    index_arn = f"{ARN_PREFIX}{expected.bucket_name}/index/{expected.index_name}"
    assert response == {
        "PhysicalResourceId": index_arn,
        "Data": {
            "VectorBucketName": expected.bucket_name,
            "VectorBucketArn": f"{ARN_PREFIX}{expected.bucket_name}",
            "IndexName": expected.index_name,
            "IndexArn": index_arn,
            "IndexGeneration": "",  # moto 5.2.5 reports no creationTime (the Stubber test checks it)
        },
    }


def test_given_kms_properties_when_create_then_bucket_is_encrypted_with_that_key(s3v):
    response = create(props(SseType="aws:kms", KmsKeyArn=KMS_KEY_ARN))

    bucket = s3v.get_vector_bucket(vectorBucketName=response["Data"]["VectorBucketName"])["vectorBucket"]
    assert bucket["encryptionConfiguration"] == {"sseType": "aws:kms", "kmsKeyArn": KMS_KEY_ARN}


def test_given_a_completed_create_when_create_is_repeated_then_it_succeeds_with_the_same_result(s3v):
    first = create()

    second = create()

    assert second == first
    assert bucket_names(s3v) == [first["Data"]["VectorBucketName"]]
    assert index_names(s3v, first["Data"]["VectorBucketName"]) == [first["Data"]["IndexName"]]


def test_given_the_bucket_of_an_interrupted_create_when_create_is_retried_then_the_index_is_added(s3v):
    expected = resource.parse_properties(props())
    s3v.create_vector_bucket(vectorBucketName=expected.bucket_name, encryptionConfiguration={"sseType": "AES256"})

    response = create()

    assert index_names(s3v, expected.bucket_name) == [expected.index_name]
    assert response["Data"]["IndexName"] == expected.index_name


OWNER_KEY = "rtrag:stack-id"


def tags_of(client, arn: str) -> dict:
    return client.list_tags_for_resource(resourceArn=arn)["tags"]


def test_given_an_owner_tag_key_when_create_then_bucket_and_index_carry_the_stack_id(s3v):
    response = create(props(OwnerTagKey=OWNER_KEY))

    stack_id = event("Create", {})["StackId"]
    assert tags_of(s3v, response["Data"]["VectorBucketArn"]) == {OWNER_KEY: stack_id}
    assert tags_of(s3v, response["Data"]["IndexArn"]) == {OWNER_KEY: stack_id}


def test_given_an_untagged_bucket_of_an_interrupted_create_when_retried_with_the_owner_tag_then_it_is_tagged(s3v):
    expected = resource.parse_properties(props())
    s3v.create_vector_bucket(vectorBucketName=expected.bucket_name, encryptionConfiguration={"sseType": "AES256"})

    response = create(props(OwnerTagKey=OWNER_KEY))

    assert tags_of(s3v, response["Data"]["VectorBucketArn"]) == {OWNER_KEY: event("Create", {})["StackId"]}


def test_given_an_owner_tag_key_when_the_event_has_no_stack_id_then_nothing_is_made_and_the_error_says_why(s3v):
    bare = event("Create", props(OwnerTagKey=OWNER_KEY))
    del bare["StackId"]

    with pytest.raises(resource.VectorIndexResourceError, match="no StackId to tag"):
        vector_index_resource.on_event(bare, None)
    assert bucket_names(s3v) == []


@pytest.mark.parametrize("key", ["aws:owner", "", "k" * 129, "bad,key"])
def test_given_an_invalid_owner_tag_key_when_parsing_then_it_is_refused_or_absent(key):
    if key == "":
        assert resource.parse_properties(props(OwnerTagKey=key)).owner_tag_key is None
        return
    with pytest.raises(resource.InvalidProperties, match="OwnerTagKey must be a tag key"):
        resource.parse_properties(props(OwnerTagKey=key))


def test_given_an_index_with_the_derived_name_but_other_params_when_create_then_it_fails_and_keeps_it(s3v):
    expected = resource.parse_properties(props())
    s3v.create_vector_bucket(vectorBucketName=expected.bucket_name)
    s3v.create_index(
        vectorBucketName=expected.bucket_name,
        indexName=expected.index_name,
        dataType="float32",
        dimension=8,
        distanceMetric="euclidean",
    )

    with pytest.raises(resource.ResourceConflict) as failure:
        create()

    message = str(failure.value)
    assert f"Vector index {expected.index_name}" in message and "already exists" in message
    assert "'dimension': 8" in message and f"'dimension': {DIMENSION}" in message
    assert "delete it or choose another IndexName" in message
    index = s3v.get_index(vectorBucketName=expected.bucket_name, indexName=expected.index_name)["index"]
    assert (index["dimension"], index["distanceMetric"]) == (8, "euclidean")


def test_given_a_bucket_with_the_derived_name_but_other_encryption_when_create_then_it_fails_clearly(s3v):
    expected = resource.parse_properties(props())
    s3v.create_vector_bucket(
        vectorBucketName=expected.bucket_name,
        encryptionConfiguration={"sseType": "aws:kms", "kmsKeyArn": KMS_KEY_ARN},
    )

    with pytest.raises(resource.ResourceConflict, match="already exists with encryption .*choose another VectorBucketName"):
        create()

    assert index_names(s3v, expected.bucket_name) == []


def test_given_an_index_kept_from_an_earlier_stack_that_holds_vectors_when_create_then_it_is_refused(s3v):
    expected = resource.parse_properties(props())
    kept = create()  # the earlier stack's, kept by retain_data_on_destroy
    s3v.put_vectors(vectorBucketName=expected.bucket_name, indexName=expected.index_name,
                    vectors=[{"key": "doc#0", "data": {"float32": [0.5] * DIMENSION}}])

    with pytest.raises(lifecycle.ResourceConflict) as raised:
        create()

    message = str(raised.value)
    assert f"Vector index {expected.index_name} in bucket {expected.bucket_name} already holds vectors" in message
    assert (f"aws s3vectors delete-index --vector-bucket-name {expected.bucket_name} --index-name "
            f"{expected.index_name}") in message and "reindex.py --from-dir ./archive --to-index" in message
    assert index_names(s3v, expected.bucket_name) == [kept["Data"]["IndexName"]], "kept, not deleted"
    # and not taken over: the earlier stack's owner tag stays on the bucket and the index
    earlier = {"rtrag:stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/earlier/1"}
    for arn in (kept["Data"]["VectorBucketArn"], kept["Data"]["IndexArn"]):
        s3v.tag_resource(resourceArn=arn, tags=earlier)
    with pytest.raises(lifecycle.ResourceConflict):
        vector_index_resource.on_event(event("Create", props(OwnerTagKey="rtrag:stack-id")), None)
    assert [tags_of(s3v, arn) for arn in (kept["Data"]["VectorBucketArn"], kept["Data"]["IndexArn"])] == [earlier] * 2


def test_given_an_index_that_holds_vectors_when_update_keeps_the_names_then_it_is_kept(s3v):
    created = create()
    data = created["Data"]
    s3v.put_vectors(vectorBucketName=data["VectorBucketName"], indexName=data["IndexName"],
                    vectors=[{"key": "doc#0", "data": {"float32": [0.5] * DIMENSION}}])

    response = vector_index_resource.on_event(
        event("Update", props(RetainOnDelete="true"), physical_id=created["PhysicalResourceId"], old=props()), None)

    assert response == created
    listed = s3v.list_vectors(vectorBucketName=data["VectorBucketName"], indexName=data["IndexName"])["vectors"]
    assert [v["key"] for v in listed] == ["doc#0"]


def test_given_an_index_deleted_outside_the_stack_when_update_keeps_the_names_then_it_is_made_again(s3v, created_at):
    created = create()
    data = created["Data"]
    s3v.delete_index(vectorBucketName=data["VectorBucketName"], indexName=data["IndexName"])

    # Not a TagResource on a missing index, which would fail the update and then its rollback the same way.
    response = vector_index_resource.on_event(
        event("Update", props(RetainOnDelete="true"), physical_id=created["PhysicalResourceId"], old=props()), None)

    assert response["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert index_names(s3v, data["VectorBucketName"]) == [data["IndexName"]]
    # a new index: its own generation, which the indexer's ledger entries will be stamped with
    assert data["IndexGeneration"] and response["Data"]["IndexGeneration"] > data["IndexGeneration"]
    assert {k: v for k, v in response["Data"].items() if k != "IndexGeneration"} == \
        {k: v for k, v in data.items() if k != "IndexGeneration"}


def test_given_a_stack_made_before_index_generation_when_data_version_arrives_then_the_update_answers_every_key(
        s3v, created_at):
    # A resource created by the earlier template: no DataVersion property, and Data without IndexGeneration.
    created = create()
    earlier = {k: v for k, v in created["Data"].items() if k != "IndexGeneration"}

    # This template adds DataVersion: the property change makes CloudFormation send an Update.
    response = vector_index_resource.on_event(
        event("Update", props(DataVersion="2"), physical_id=created["PhysicalResourceId"], old=props()), None)

    assert response["PhysicalResourceId"] == created["PhysicalResourceId"], "kept, not replaced"
    assert earlier.items() <= response["Data"].items()
    assert response["Data"]["IndexGeneration"] == created["Data"]["IndexGeneration"] != "", "the same index"


@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_given_any_data_version_when_parsing_then_it_is_accepted_since_a_rollback_sends_an_earlier_one(version):
    assert resource.parse_properties(props(DataVersion=version)) == resource.parse_properties(props())


# --- update ---------------------------------------------------------------------------------------------------


def test_given_only_retain_on_delete_changed_when_update_then_same_physical_id_and_data_and_no_new_index(s3v):
    created = create()
    new_props = props(RetainOnDelete="true")

    response = vector_index_resource.on_event(
        event("Update", new_props, physical_id=created["PhysicalResourceId"], old=props()), None
    )

    assert response == created
    assert index_names(s3v, created["Data"]["VectorBucketName"]) == [created["Data"]["IndexName"]]


def test_given_a_dimension_change_when_update_and_cleanup_delete_then_only_the_new_index_remains(s3v):
    created = create()
    new_props = props(Dimension=str(SMALLER_DIMENSION))
    bucket = created["Data"]["VectorBucketName"]

    updated = vector_index_resource.on_event(event("Update", new_props, physical_id=created["PhysicalResourceId"], old=props()), None)

    assert updated["PhysicalResourceId"] != created["PhysicalResourceId"]
    assert updated["Data"]["VectorBucketName"] == bucket
    new_index = s3v.get_index(vectorBucketName=bucket, indexName=updated["Data"]["IndexName"])["index"]
    assert new_index["dimension"] == SMALLER_DIMENSION
    assert updated["PhysicalResourceId"] == new_index["indexArn"]
    assert index_names(s3v, bucket) == sorted([created["Data"]["IndexName"], updated["Data"]["IndexName"]])

    # CloudFormation's cleanup after the successful update: Delete with the OLD physical id.
    cleanup = vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    assert cleanup == {"PhysicalResourceId": created["PhysicalResourceId"]}
    assert bucket_names(s3v) == [bucket]
    assert index_names(s3v, bucket) == [updated["Data"]["IndexName"]]


def test_given_an_encryption_change_when_update_and_cleanup_delete_then_the_old_bucket_is_gone(s3v):
    created = create()
    new_props = props(SseType="aws:kms", KmsKeyArn=KMS_KEY_ARN)

    updated = vector_index_resource.on_event(event("Update", new_props, physical_id=created["PhysicalResourceId"], old=props()), None)
    vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    new_bucket = updated["Data"]["VectorBucketName"]
    assert new_bucket != created["Data"]["VectorBucketName"]
    assert bucket_names(s3v) == [new_bucket]
    assert s3v.get_vector_bucket(vectorBucketName=new_bucket)["vectorBucket"]["encryptionConfiguration"] == {
        "sseType": "aws:kms",
        "kmsKeyArn": KMS_KEY_ARN,
    }
    assert index_names(s3v, new_bucket) == [updated["Data"]["IndexName"]]


def test_given_invalid_new_properties_when_update_then_it_fails_and_the_index_stays(s3v):
    created = create()

    with pytest.raises(resource.InvalidProperties, match="Dimension"):
        vector_index_resource.on_event(event("Update", props(Dimension="0"), physical_id=created["PhysicalResourceId"]), None)

    assert index_names(s3v, created["Data"]["VectorBucketName"]) == [created["Data"]["IndexName"]]


# --- delete ---------------------------------------------------------------------------------------------------


def test_given_a_created_resource_when_delete_then_index_and_bucket_are_gone(s3v):
    created = create()

    response = vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    assert response == {"PhysicalResourceId": created["PhysicalResourceId"]}
    assert bucket_names(s3v) == []


def test_given_index_and_bucket_already_gone_when_delete_then_it_succeeds(s3v):
    created = create()
    vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    again = vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    assert again == {"PhysicalResourceId": created["PhysicalResourceId"]}
    assert bucket_names(s3v) == []


def test_given_a_bucket_without_the_index_when_delete_then_the_empty_bucket_is_removed(s3v):
    created = create()
    bucket = created["Data"]["VectorBucketName"]
    s3v.delete_index(vectorBucketName=bucket, indexName=created["Data"]["IndexName"])

    vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    assert bucket_names(s3v) == []


def test_given_retain_on_delete_when_delete_then_bucket_and_index_are_kept(s3v):
    created = create(props(RetainOnDelete="true"))

    response = vector_index_resource.on_event(
        event("Delete", props(RetainOnDelete="true"), physical_id=created["PhysicalResourceId"]), None
    )

    assert response == {"PhysicalResourceId": created["PhysicalResourceId"]}
    assert index_names(s3v, created["Data"]["VectorBucketName"]) == [created["Data"]["IndexName"]]


def test_given_a_bucket_holding_another_index_when_delete_then_only_our_index_goes(s3v):
    created = create()
    bucket = created["Data"]["VectorBucketName"]
    s3v.create_index(vectorBucketName=bucket, indexName="someone-else", dataType="float32", dimension=4,
                     distanceMetric="cosine")

    vector_index_resource.on_event(event("Delete", props(), physical_id=created["PhysicalResourceId"]), None)

    assert index_names(s3v, bucket) == ["someone-else"]


@pytest.mark.parametrize(
    "physical_id",
    [CREATE_FAILED_MARKER, "AWSCDK::CustomResourceProviderFramework::MISSING_PHYSICAL_ID", "6f1c2f0e-request-id"],
)
def test_given_a_physical_id_that_is_not_an_index_arn_when_delete_then_it_succeeds_and_touches_nothing(
    s3v, physical_id
):
    created = create()

    response = vector_index_resource.on_event(event("Delete", props(), physical_id=physical_id), None)

    assert response == {"PhysicalResourceId": physical_id}
    assert index_names(s3v, created["Data"]["VectorBucketName"]) == [created["Data"]["IndexName"]]


# --- invalid properties ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"VectorBucketName": "RTRAG_Vectors"}, r"VectorBucketName: .*may use only lowercase letters, digits and '-'"),
        ({"VectorBucketName": "v" * 55}, r"VectorBucketName: .*must be 3\.\.54 characters long.*appends '-'"),
        ({"IndexName": "docs_v1"}, r"IndexName: .*may use only lowercase letters, digits, '-' and '\.'"),
        ({"IndexName": None}, r"IndexName is required"),
        ({"Dimension": "0"}, r"Dimension must be from 1 to 4096, got 0"),
        ({"Dimension": "4097"}, r"Dimension must be from 1 to 4096, got 4097"),
        ({"Dimension": "1024.0"}, r"Dimension must be a whole number from 1 to 4096, got '1024.0'"),
        ({"Dimension": None}, r"Dimension must be a whole number"),
        ({"DistanceMetric": "dotproduct"}, r"DistanceMetric must be one of \['cosine', 'euclidean'\]"),
        ({"DataType": "float16"}, r"DataType must be one of \['float32'\]"),
        ({"SseType": "aws:kms"}, r"KmsKeyArn is required when SseType is 'aws:kms'"),
        (
            {"SseType": "aws:kms", "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/rtrag"},
            r"KmsKeyArn must be a full key ARN .*not a key id or alias",
        ),
        ({"KmsKeyArn": KMS_KEY_ARN}, r"KmsKeyArn is allowed only when SseType is 'aws:kms'"),
        ({"SseType": "SSE-S3"}, r"SseType must be one of \['AES256', 'aws:kms'\]"),
        ({"NonFilterableMetadataKeys": "source_text"}, r"NonFilterableMetadataKeys must be a list of strings"),
        ({"NonFilterableMetadataKeys": [f"k{i}" for i in range(11)]}, r"has 11 keys; S3 Vectors allows at most 10"),
        ({"NonFilterableMetadataKeys": ["a", "a"]}, r"lists \['a'\] more than once"),
        ({"NonFilterableMetadataKeys": ["x" * 64]}, r"must each be 1\.\.63 characters long"),
        ({"RetainOnDelete": "yes"}, r"RetainOnDelete must be 'true' or 'false', got 'yes'"),
        ({"Dimensions": "1024"}, r"unknown properties \['Dimensions'\]"),
    ],
)
def test_given_invalid_properties_when_create_then_it_fails_with_the_property_and_rule_and_creates_nothing(
    s3v, overrides, expected
):
    with pytest.raises(resource.InvalidProperties, match=expected):
        create(props(**overrides))

    assert bucket_names(s3v) == []


def test_given_several_invalid_properties_when_parsing_then_every_problem_is_reported():
    with pytest.raises(resource.InvalidProperties) as failure:
        resource.parse_properties(props(VectorBucketName="X", Dimension="-1", SseType="aws:kms"))

    message = str(failure.value)
    assert "VectorBucketName" in message and "Dimension" in message and "KmsKeyArn is required" in message


@pytest.mark.parametrize("dimension", ["1", "4096"])
def test_given_a_boundary_dimension_when_parsing_then_it_is_accepted(dimension):
    # 1..4096: botocore s3vectors model, shape Dimension (moto 5.2.5 wrongly rejects 4096 on CreateIndex)
    assert resource.parse_properties(props(Dimension=dimension)).index.dimension == int(dimension)


def test_given_integer_and_boolean_values_when_parsing_then_they_are_accepted_like_their_strings():
    parsed = resource.parse_properties(props(Dimension=DIMENSION, RetainOnDelete=True))

    assert parsed == resource.parse_properties(props(RetainOnDelete="TRUE"))
    assert parsed.index.dimension == DIMENSION and parsed.retain_on_delete is True


def test_given_an_unknown_request_type_when_handling_then_it_fails_clearly():
    with pytest.raises(resource.VectorIndexResourceError, match="Unknown RequestType 'Refresh'"):
        lifecycle.handle_event(None, event("Refresh", props()))

