"""cfn-lint and cdk-nag over the synthesized template: clean, and every acknowledgment says why."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Validations
from cfnlint.api import lint
from cfnlint.config import ManualArgs

# W3005 (a DependsOn that a GetAtt already implies) is how CDK writes every function's dependency on its role.
IGNORED_LINT_RULES = ["W3005"]
# Regions where the stack is meant to run; cfn-lint checks resource types and properties per Region.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2"]


def test_cfn_lint_finds_no_errors_or_warnings(synth):
    matches = lint(
        json.dumps(synth.template_json),
        config=ManualArgs(regions=LINT_REGIONS, ignore_checks=IGNORED_LINT_RULES),
    )

    problems = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def test_cdk_nag_aws_solutions_reports_nothing_unacknowledged(synth):
    violations = [
        (violation["ruleName"], [c["constructPath"] for c in violation.get("violatingConstructs", [])])
        for report in (synth.validation_report or {}).get("pluginReports", [])
        for violation in report.get("violations", [])
    ]

    assert violations == []
    assert synth.synth_error is None


def _acknowledgments(app) -> list[tuple[str, str, str]]:
    found = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found += [(construct.node.path, rule, reason) for rule, reason in entry.data.items()]
    return found


def test_every_acknowledgment_carries_a_specific_reason(synth):
    acknowledgments = _acknowledgments(synth.app)

    assert acknowledgments, "expected the acknowledged findings to be recorded"
    for path, rule, reason in acknowledgments:
        assert len(reason) >= 80, f"{rule} on {path} needs a specific reason"
    # each wildcard finding has its own reason, not one pasted across unrelated findings
    wildcard_reasons = [reason for _, rule, reason in acknowledgments if "AwsSolutions-IAM5" in rule]
    assert len(set(wildcard_reasons)) == len(wildcard_reasons)


@pytest.mark.parametrize("rule", ["AwsSolutions-L1", "AwsSolutions-S1", "AwsSolutions-KDF1"])
def test_known_acknowledgments_are_placed_on_the_resources_they_concern(synth, rule):
    paths = {path for path, acknowledged, _ in _acknowledgments(synth.app) if acknowledged.endswith(rule)}
    stack = synth.stack.stack_name
    expected = {
        "AwsSolutions-L1": {f"{stack}/Indexer/Function", f"{stack}/Vectors/Handler"},
        "AwsSolutions-S1": {f"{stack}/DeadLetters/Bucket", f"{stack}/Archive/Bucket"},
        "AwsSolutions-KDF1": {f"{stack}/Archive/DeliveryStream"},
    }[rule]
    assert paths == expected


def test_synth_leaves_no_warning_or_error_annotations(synth):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    messages = [
        (path, entry["type"], entry.get("data"))
        for artifact in manifest["artifacts"].values()
        for path, entries in artifact.get("metadata", {}).items()
        for entry in entries
        if entry["type"] in ("aws:cdk:warning", "aws:cdk:error")
    ]
    assert messages == []
