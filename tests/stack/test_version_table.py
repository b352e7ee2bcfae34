"""The version ledger's table: the key, capacity mode, TTL and recovery the ledger code relies on, kept or deleted
with the stack's data, and named to the indexer."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from rtrag.core.contract import LEDGER_PARTITION_KEY as PARTITION_KEY
from rtrag.core.contract import LEDGER_TTL_ATTRIBUTE as TTL_ATTRIBUTE

from .conftest import CUSTOM
from .helpers import function_by_handler, of_type, one


def _table(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return one(of_type(resources, "AWS::DynamoDB::Table"))


def test_table_is_keyed_by_the_ledger_partition_key_alone_and_billed_on_demand(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "ProvisionedThroughput": Match.absent(),
        "GlobalSecondaryIndexes": Match.absent(),
        "TableName": Match.absent(),  # two stacks in one account and Region must not collide
    })
    assert PARTITION_KEY == "pk"  # what lambda_src/rtrag/ledger.py writes and reads


def test_tombstones_expire_through_ttl_on_the_attribute_the_ledger_sets(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
    })
    assert TTL_ATTRIBUTE == "expires_at"


def test_table_has_point_in_time_recovery_and_encryption_with_the_aws_managed_key(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        # SSEEnabled without a key: the AWS managed key aws/dynamodb (AWS::DynamoDB::Table SSESpecification)
        "SSESpecification": {"SSEEnabled": True},
    })


def test_table_is_deleted_with_the_stack_by_default(resources):
    _, table = _table(resources)
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_table_is_kept_when_data_is_retained_on_destroy(variants):
    _, table = _table(variants.templates[CUSTOM["stack_name"]]["Resources"])
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize(("stack", "days"), [("RagA", "400"), (CUSTOM["stack_name"], "0")])
def test_indexer_is_told_the_table_and_how_long_to_keep_tombstones(variants, stack, days):
    resources = variants.templates[stack]["Resources"]
    table_id, _ = _table(resources)
    _, function = function_by_handler(resources, "indexer.handler")
    variables = function["Properties"]["Environment"]["Variables"]

    assert variables["VERSION_TABLE"] == {"Ref": table_id}
    assert variables["TOMBSTONE_RETENTION_DAYS"] == days
