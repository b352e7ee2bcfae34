"""Acknowledging cdk-nag findings with a reason, by the exact finding id cdk-nag reports."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ``rule_id`` on ``scope`` and everything under it; every acknowledgment must say why."""
    if len(reason.strip()) < 40:
        raise ValueError(f"the acknowledgment of {rule_id} needs a specific reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def wildcard_resource(scope: IConstruct, arn: str) -> str:
    """The AwsSolutions-IAM5 finding id for a statement resource ``arn`` that contains a wildcard.

    cdk-nag names such a finding after the resource with CloudFormation references flattened (``<Logical.Arn>``,
    ``<AWS::Region>``); building the id the same way keeps it correct when logical ids or base names change.
    """
    return f"AwsSolutions-IAM5[Resource::{_flatten(Stack.of(scope).resolve(arn))}]"


def _flatten(node: Any) -> str:
    # Mirrors cdk-nag's flattenCfnReference (lib/utils/flatten-cfn-reference).
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_flatten(item) for item in items)
    if "Fn::Sub" in node:
        return _flatten(node["Fn::Sub"])
    if "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{_flatten(resource)}.{_flatten(attribute)}>"
    if "Fn::ImportValue" in node:
        return _flatten(node["Fn::ImportValue"])
    if "Ref" in node:
        return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
