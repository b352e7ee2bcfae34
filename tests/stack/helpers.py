"""Finding resources in a template by what they are, never by generated logical ids."""

from __future__ import annotations

import json
from typing import Any

Resources = dict[str, dict[str, Any]]


def of_type(resources: Resources, cfn_type: str) -> Resources:
    return {key: r for key, r in resources.items() if r["Type"] == cfn_type}


def one(resources: Resources) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, f"expected exactly one resource, found {sorted(resources)}"
    return next(iter(resources.items()))


def function_by_handler(resources: Resources, handler: str) -> tuple[str, dict[str, Any]]:
    return one({k: r for k, r in of_type(resources, "AWS::Lambda::Function").items()
                if r["Properties"].get("Handler") == handler})


def role_of(function: dict[str, Any]) -> str:
    """The logical id of a function's role (from its GetAtt), to find the role's policies."""
    return function["Properties"]["Role"]["Fn::GetAtt"][0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(resources: Resources, role_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: inline policies, attached AWS::IAM::Policy resources."""
    statements = []
    role = resources[role_id]["Properties"]
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def managed_policy(resources: Resources, description_start: str) -> dict[str, Any]:
    _, policy = one({k: r for k, r in of_type(resources, "AWS::IAM::ManagedPolicy").items()
                     if r["Properties"].get("Description", "").startswith(description_start)})
    return policy


def actions(statement: dict[str, Any]) -> set[str]:
    return set(as_list(statement["Action"]))


def statements_with_action(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in actions(s)]


def all_policy_statements(resources: Resources) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) for every identity policy statement in the template."""
    found = []
    for key, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(key, s) for s in props["PolicyDocument"]["Statement"]]
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(key, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def getatt(logical_id: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def bucket_with_lifecycle_rule(resources: Resources, rule_id: str) -> tuple[str, dict[str, Any]]:
    return one({k: r for k, r in of_type(resources, "AWS::S3::Bucket").items()
                if rule_id in {rule.get("Id") for rule in
                               r["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])}})


def dead_letter_bucket(resources: Resources) -> tuple[str, dict[str, Any]]:
    """The dead-letter bucket: the one whose lifecycle expires dead letters (stacks/dead_letters.py)."""
    return bucket_with_lifecycle_rule(resources, "expire-dead-letters")


def archive_bucket(resources: Resources) -> tuple[str, dict[str, Any]]:
    """The archive bucket: the one the Firehose delivery stream writes to."""
    _, stream = one(of_type(resources, "AWS::KinesisFirehose::DeliveryStream"))
    bucket_id = stream["Properties"]["ExtendedS3DestinationConfiguration"]["BucketARN"]["Fn::GetAtt"][0]
    return bucket_id, resources[bucket_id]


def custom_resource(resources: Resources) -> str:
    key, _ = one(of_type(resources, "Custom::S3VectorIndex"))
    return key


def placeholder(value: Any) -> str:
    """A template value as text: ``${LogicalId}`` for a Ref, ``${LogicalId.Attribute}`` for a GetAtt."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${%s}" % value["Ref"]
    if "Fn::GetAtt" in value:
        return "${%s.%s}" % tuple(value["Fn::GetAtt"])
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(placeholder(part) for part in parts)
    raise ValueError(f"no placeholder for {value}")


def dashboard_body(resources: Resources) -> dict[str, Any]:
    """The one dashboard's body as JSON, references replaced by placeholders (see :func:`placeholder`)."""
    _, dashboard = one(of_type(resources, "AWS::CloudWatch::Dashboard"))
    return json.loads(placeholder(dashboard["Properties"]["DashboardBody"]))


def alarms_by_name(resources: Resources) -> dict[str, dict[str, Any]]:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    return {alarm["Properties"]["AlarmName"]: alarm["Properties"] for alarm in alarms}



class _InRegion:
    """A template's values as CloudFormation resolves them for a deployment to one Region: the pseudo
    parameters, ``Fn::If`` on the template's conditions (``Fn::Equals``, ``Fn::Or``, ``Fn::And``, ``Fn::Not``,
    ``Condition``), ``Fn::Contains`` (a rule's assertion) and ``Fn::Join``. Anything else is refused, so that a test
    cannot pass on a value it did not understand."""

    def __init__(self, template: dict[str, Any], region: str, account: str):
        self.conditions = template.get("Conditions", {})
        self.pseudo = {"AWS::Region": region, "AWS::Partition": "aws", "AWS::AccountId": account}

    def holds(self, expression: dict[str, Any]) -> bool:
        (name, args), = expression.items()
        if name == "Condition":
            return self.holds(self.conditions[args])
        if name == "Fn::Equals":
            left, right = (self.value(a) for a in args)
            return left == right
        if name == "Fn::Or":
            return any(self.holds(a) for a in args)
        if name == "Fn::And":
            return all(self.holds(a) for a in args)
        if name == "Fn::Not":
            return not self.holds(args[0])
        if name == "Fn::Contains":
            choices, item = args
            return self.value(item) in [self.value(c) for c in choices]
        raise AssertionError(f"cannot evaluate the condition {expression}")

    def value(self, node: Any) -> Any:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in self.pseudo:
            return self.pseudo[node["Ref"]]
        if isinstance(node, dict) and set(node) == {"Fn::If"}:
            name, if_true, if_false = node["Fn::If"]
            return self.value(if_true if self.holds(self.conditions[name]) else if_false)
        if isinstance(node, dict) and set(node) == {"Fn::Join"}:
            delimiter, parts = node["Fn::Join"]
            return delimiter.join(self.value(part) for part in parts)
        raise AssertionError(f"cannot resolve {node}")


ACCOUNT = "123456789012"


def in_region(template: dict[str, Any], value: Any, region: str) -> Any:
    """``value`` (from ``template``) as CloudFormation resolves it when the stack is deployed to ``region``."""
    return _InRegion(template, region, ACCOUNT).value(value)


def holds_in_region(template: dict[str, Any], expression: dict[str, Any], region: str) -> bool:
    """Whether a condition or a rule's assertion (from ``template``) is true for a deployment to ``region``."""
    return _InRegion(template, region, ACCOUNT).holds(expression)
