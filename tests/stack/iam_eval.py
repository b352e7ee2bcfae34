"""A small IAM evaluator for the sufficiency tests: is a recorded AWS call allowed by synthesized statements?

It covers what this stack's identity policies use: Allow statements with Action/Resource lists, "*" and "?"
wildcards, Ref/Fn::GetAtt/Fn::Join in resources, and ``StringEquals`` conditions on ``aws:ResourceTag/KEY`` (the
resource's tags come with the request). Any other condition makes an Allow cover nothing and a Deny cover all. A
reference it cannot resolve becomes a value that matches nothing, so an unknown case fails closed (the test
reports the call as denied). A call through an inference profile needs two authorizations (``requests_for``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REGION, ACCOUNT, PARTITION = "us-east-1", "123456789012", "aws"
# The id part of a stack's ARN, for the stacks the tests name: IAM authorizes DescribeStacks on that ARN.
STACK_UUID = "11111111-2222-3333-4444-555555555555"
STACK_ID = f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/RealtimeRag/{STACK_UUID}"
PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackId": STACK_ID}
_UNRESOLVED = "\x00unresolved\x00"

# Operations whose IAM action is named differently from the operation.
_ACTION_FOR = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("bedrock", "Converse"): "bedrock:InvokeModel",
    ("bedrock", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
}
_S3VECTORS_INDEX_OPERATIONS = {
    "CreateIndex", "GetIndex", "DeleteIndex",
    "PutVectors", "GetVectors", "DeleteVectors", "ListVectors", "QueryVectors",
}


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    resource_tags: Mapping[str, str] = field(default_factory=dict)


# A geographic inference profile's id starts with its geography; a request through it is authorized on the profile
# and on the foundation model in the Region it is routed to (aws-facts: "allow both ... in each destination Region").
_PROFILE_PREFIXES = ("us.", "eu.", "apac.")
_A_DESTINATION = {"us.": "us-west-2", "eu.": "eu-west-1", "apac.": "ap-southeast-2"}


def requests_for(service: str, operation: str, params: Mapping[str, Any],
                 tags_by_arn: Mapping[str, Mapping[str, str]] | None = None) -> list[Request]:
    """Every authorization one API call needs: one, or for a call through an inference profile two (the profile,
    and the foundation model in a destination Region)."""
    request = request_for(service, operation, params, tags_by_arn)
    model = params.get("modelId", "") if service == "bedrock" else ""
    prefix = next((p for p in _PROFILE_PREFIXES if model.startswith(p)), None)
    if prefix is None:
        return [request]
    destination = f"arn:{PARTITION}:bedrock:{_A_DESTINATION[prefix]}::foundation-model/{model[len(prefix):]}"
    return [request, Request(request.action, destination)]


def request_for(service: str, operation: str, params: Mapping[str, Any],
                tags_by_arn: Mapping[str, Mapping[str, str]] | None = None) -> Request:
    """The IAM action and resource ARN that authorize one API call (service = botocore signing name), with the
    resource's tags from ``tags_by_arn`` (what it carried when called; absent: none)."""
    request = _request_for(service, operation, params)
    return Request(request.action, request.resource, dict((tags_by_arn or {}).get(request.resource, {})))


def _request_for(service: str, operation: str, params: Mapping[str, Any]) -> Request:
    action = _ACTION_FOR.get((service, operation), f"{service}:{operation}")
    if service == "s3vectors":
        if "indexArn" in params:
            resource = params["indexArn"]
        elif "resourceArn" in params:  # TagResource and the other tagging calls
            resource = params["resourceArn"]
        else:
            bucket = params.get("vectorBucketArn") or (
                f"arn:{PARTITION}:s3vectors:{REGION}:{ACCOUNT}:bucket/{params['vectorBucketName']}")
            resource = f"{bucket}/index/{params['indexName']}" if operation in _S3VECTORS_INDEX_OPERATIONS else bucket
    elif service == "s3":
        resource = f"arn:{PARTITION}:s3:::{params['Bucket']}"
        if "Key" in params:
            resource += f"/{params['Key']}"
    elif service == "bedrock":
        model = params["modelId"]
        if model.startswith("arn:"):
            resource = model
        elif model.startswith(_PROFILE_PREFIXES):
            resource = f"arn:{PARTITION}:bedrock:{REGION}:{ACCOUNT}:inference-profile/{model}"
        else:
            resource = f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/{model}"
    elif service == "kinesis":
        resource = params.get("StreamARN") or (
            f"arn:{PARTITION}:kinesis:{REGION}:{ACCOUNT}:stream/{params['StreamName']}")
    elif service == "cloudformation":
        name = params.get("StackName", "")
        resource = name if name.startswith("arn:") else (
            f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{STACK_UUID}")
    elif service == "dynamodb":
        resource = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{_table_name(operation, params)}"
    else:
        raise ValueError(f"no resource mapping for {service}:{operation}; extend iam_eval.request_for")
    return Request(action=action, resource=resource)


def _table_name(operation: str, params: Mapping[str, Any]) -> str:
    """The one table a DynamoDB call acts on: ``TableName``, or the key of a batch call's ``RequestItems``.

    A batch call naming several tables needs the action on each; this evaluator checks one resource per call,
    so it refuses such a call rather than approve it on the first table alone.
    """
    if "TableName" in params:
        return params["TableName"]
    tables = list(params.get("RequestItems", {}))
    if len(tables) != 1:
        raise ValueError(f"dynamodb:{operation} on tables {tables}; iam_eval checks calls on exactly one table")
    return tables[0]


def resolve(value: Any, attributes: Mapping[tuple[str, str], str], refs: Mapping[str, str]) -> str:
    """A template value as a string; ``attributes`` maps (logical id, attribute) and ``refs`` maps Ref targets."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"]) or refs.get(value["Ref"], _UNRESOLVED)
    if "Fn::GetAtt" in value:
        return attributes.get(tuple(value["Fn::GetAtt"]), _UNRESOLVED)
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(resolve(part, attributes, refs) for part in parts)
    return _UNRESOLVED


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], request: Request, attributes: Mapping[tuple[str, str], str],
           refs: Mapping[str, str] | None = None) -> bool:
    """True if an Allow statement covers the request and no Deny statement does."""
    refs = refs or {}

    def matches(statement: dict[str, Any]) -> bool:
        return (any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["Action"]))
                and any(_glob(resolve(r, attributes, refs), request.resource, ignore_case=False)
                        for r in _as_list(statement["Resource"])))

    def conditions_hold(statement: dict[str, Any]) -> bool | None:
        """True/False for the conditions this evaluator knows, None for any other (the caller fails closed)."""
        for operator, tests in statement.get("Condition", {}).items():
            if operator != "StringEquals":
                return None
            for key, wanted in tests.items():
                if not key.startswith("aws:ResourceTag/"):
                    return None
                actual = request.resource_tags.get(key.removeprefix("aws:ResourceTag/"))
                if actual not in [resolve(w, attributes, refs) for w in _as_list(wanted)]:
                    return False
        return True

    if any(s["Effect"] == "Deny" and matches(s) and conditions_hold(s) is not False for s in statements):
        return False
    return any(s["Effect"] == "Allow" and matches(s) and conditions_hold(s) is True for s in statements)
