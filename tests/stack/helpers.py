"""Finding resources in a template by what they are, never by generated logical ids."""

from __future__ import annotations

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


def custom_resource(resources: Resources) -> str:
    key, _ = one(of_type(resources, "Custom::S3VectorIndex"))
    return key
