"""The vector bucket + index custom resource's exact requests and responses, on a real s3vectors client behind
botocore's Stubber, which validates every request against the service model (moto 5.2.5 neither stores nor reports
an index's metadataConfiguration and returns no ARN from the create calls). The behaviour on moto is in
test_vector_index_resource.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber
from test_vector_index_resource import ARN_PREFIX, DIMENSION, props

from conftest import REGION
from rtrag.aws import index_lifecycle as lifecycle
from rtrag.aws import index_resource as resource


# --- exact request shapes (botocore Stubber validates them against the s3vectors service model) ---------------


@pytest.fixture
def stubbed():
    client = boto3.client("s3vectors", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_given_nothing_when_create_then_requests_carry_encryption_and_non_filterable_source_text(stubbed):
    client, stubber = stubbed
    p = resource.parse_properties(props())
    bucket_arn = f"{ARN_PREFIX}{p.bucket_name}"
    index_arn = f"{bucket_arn}/index/{p.index_name}"
    described_index = {
        "vectorBucketName": p.bucket_name,
        "indexName": p.index_name,
        "indexArn": index_arn,
        # As botocore parses it: an aware datetime, here in a time zone other than UTC (the generation is the same).
        "creationTime": datetime(2026, 11, 24, 1, 0, tzinfo=timezone(timedelta(hours=1))),
        "dataType": "float32",
        "dimension": DIMENSION,
        "distanceMetric": "cosine",
        "metadataConfiguration": {"nonFilterableMetadataKeys": ["source_text"]},
    }
    stubber.add_response(
        "create_vector_bucket",
        {"vectorBucketArn": bucket_arn},
        {"vectorBucketName": p.bucket_name, "encryptionConfiguration": {"sseType": "AES256"}},
    )
    stubber.add_response(
        "get_vector_bucket",
        {
            "vectorBucket": {
                "vectorBucketName": p.bucket_name,
                "vectorBucketArn": bucket_arn,
                "creationTime": "2026-11-24T00:00:00Z",
                "encryptionConfiguration": {"sseType": "AES256"},
            }
        },
        {"vectorBucketName": p.bucket_name},
    )
    stubber.add_client_error(
        "get_index", "NotFoundException", "The specified index could not be found", 404,
        expected_params={"vectorBucketName": p.bucket_name, "indexName": p.index_name},
    )
    stubber.add_response(
        "create_index",
        {"indexArn": index_arn},
        {
            "vectorBucketName": p.bucket_name,
            "indexName": p.index_name,
            "dataType": "float32",
            "dimension": DIMENSION,
            "distanceMetric": "cosine",
            "metadataConfiguration": {"nonFilterableMetadataKeys": ["source_text"]},
        },
    )
    stubber.add_response(
        "get_index", {"index": described_index}, {"vectorBucketName": p.bucket_name, "indexName": p.index_name}
    )

    response = lifecycle.create_vector_index(client, p)

    assert response["PhysicalResourceId"] == index_arn
    assert response["Data"]["VectorBucketArn"] == bucket_arn
    assert response["Data"]["IndexGeneration"] == "1795478400000"  # 2026-11-24T00:00:00Z in epoch milliseconds


def test_given_an_index_reported_with_other_non_filterable_keys_when_create_then_it_fails_clearly(stubbed):
    client, stubber = stubbed
    p = resource.parse_properties(props())
    bucket_arn = f"{ARN_PREFIX}{p.bucket_name}"
    stubber.add_client_error("create_vector_bucket", "ConflictException", "exists", 409)
    stubber.add_response(
        "get_vector_bucket",
        {"vectorBucket": {"vectorBucketName": p.bucket_name, "vectorBucketArn": bucket_arn,
                          "creationTime": "2026-11-24T00:00:00Z"}},
    )
    stubber.add_response(
        "get_index",
        {
            "index": {
                "vectorBucketName": p.bucket_name,
                "indexName": p.index_name,
                "indexArn": f"{bucket_arn}/index/{p.index_name}",
                "creationTime": "2026-11-24T00:00:00Z",
                "dataType": "float32",
                "dimension": DIMENSION,
                "distanceMetric": "cosine",
                "metadataConfiguration": {"nonFilterableMetadataKeys": []},
            }
        },
    )

    with pytest.raises(resource.ResourceConflict, match=r"'nonFilterableMetadataKeys': \[\].*\['source_text'\]"):
        lifecycle.create_vector_index(client, p)


def test_given_index_creation_fails_when_create_then_the_new_bucket_is_removed_and_the_aws_code_kept(stubbed):
    client, stubber = stubbed
    p = resource.parse_properties(props())
    bucket_arn = f"{ARN_PREFIX}{p.bucket_name}"
    stubber.add_response("create_vector_bucket", {"vectorBucketArn": bucket_arn})
    stubber.add_response(
        "get_vector_bucket",
        {"vectorBucket": {"vectorBucketName": p.bucket_name, "vectorBucketArn": bucket_arn,
                          "creationTime": "2026-11-24T00:00:00Z", "encryptionConfiguration": {"sseType": "AES256"}}},
    )
    stubber.add_client_error("get_index", "NotFoundException", "not found", 404)
    stubber.add_client_error("create_index", "ServiceQuotaExceededException", "Too many indexes", 402)
    stubber.add_response("list_indexes", {"indexes": []}, {"vectorBucketName": p.bucket_name})
    stubber.add_response("delete_vector_bucket", {}, {"vectorBucketName": p.bucket_name})

    with pytest.raises(resource.S3VectorsError) as failure:
        lifecycle.create_vector_index(client, p)

    assert failure.value.code == "ServiceQuotaExceededException"
    assert failure.value.operation == "CreateIndex"
    assert "Too many indexes" in str(failure.value) and "raise the quota" in str(failure.value)
    assert failure.value.__cause__ is not None


def test_given_access_denied_when_delete_then_the_error_names_the_action_and_keeps_the_code(stubbed):
    client, stubber = stubbed
    physical_id = f"{ARN_PREFIX}rtrag-vectors-0a1b2c3d/index/documents-99aa88bb"
    stubber.add_client_error("delete_index", "AccessDeniedException", "not authorized", 403)

    with pytest.raises(resource.S3VectorsError, match=r"Allow s3vectors:DeleteIndex") as failure:
        lifecycle.delete_vector_index(client, physical_id, retain=False)

    assert failure.value.code == "AccessDeniedException"


def test_given_an_index_added_after_listing_when_deleting_the_bucket_then_it_is_kept_and_delete_succeeds(stubbed):
    client, stubber = stubbed
    physical_id = f"{ARN_PREFIX}rtrag-vectors-0a1b2c3d/index/documents-99aa88bb"
    stubber.add_response(
        "delete_index", {}, {"vectorBucketName": "rtrag-vectors-0a1b2c3d", "indexName": "documents-99aa88bb"}
    )
    stubber.add_response("list_indexes", {"indexes": []}, {"vectorBucketName": "rtrag-vectors-0a1b2c3d"})
    stubber.add_client_error("delete_vector_bucket", "ConflictException", "The vector bucket is not empty", 409)

    response = lifecycle.delete_vector_index(client, physical_id, retain=False)

    assert response == {"PhysicalResourceId": physical_id}


def test_given_paged_index_listing_when_deleting_then_indexes_on_later_pages_keep_the_bucket(stubbed):
    client, stubber = stubbed
    summary = {
        "vectorBucketName": "rtrag-vectors-0a1b2c3d",
        "indexName": "other-index",
        "indexArn": f"{ARN_PREFIX}rtrag-vectors-0a1b2c3d/index/other-index",
        "creationTime": "2026-11-24T00:00:00Z",
    }
    stubber.add_response("list_indexes", {"indexes": [], "nextToken": "page-2"})
    stubber.add_response(
        "list_indexes", {"indexes": [summary]}, {"vectorBucketName": "rtrag-vectors-0a1b2c3d", "nextToken": "page-2"}
    )

    assert lifecycle.delete_bucket_if_empty(client, "rtrag-vectors-0a1b2c3d") is False

