"""The answering model's Region: a Region Nova Lite cannot be called from is refused with one line, at synth when
the stack's Region is known, else by a template Rule that CloudFormation checks before it creates or updates
anything; every other Region gets the inference profile of the one Region -> profile map the scripts use too
(``rtrag.core.regions``)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app as cdk_app
from rtrag.core.regions import NOVA_LITE_PROFILES, unsupported_region_message
from stacks.models import GeoInferenceProfile, _region_is_one_of
from stacks.rag_stack import RealtimeRagStack
from stacks.settings import Settings, SettingsError

from .conftest import SKIP_BUNDLING, cdk_json_context
from .helpers import holds_in_region, in_region

# Regions no Nova Lite inference profile serves: the audit's two examples and a few more, checked against the
# Amazon Bedrock User Guide (see rtrag.core.regions for the pages and the date).
WITHOUT_NOVA_LITE = ["eu-west-2", "ca-central-1", "ap-southeast-3", "sa-east-1", "us-west-1"]


def _nova_region_assertion(template: dict) -> dict:
    """The one rule assertion whose description is the map's line; the rule has no condition (always checked)."""
    found = [(rule, assertion) for rule in template.get("Rules", {}).values() for assertion in rule["Assertions"]
             if assertion["AssertDescription"] == unsupported_region_message(None)]
    assert len(found) == 1, "expected one rule that refuses a Region Nova Lite cannot be called from"
    rule, assertion = found[0]
    assert "RuleCondition" not in rule
    return assertion


@pytest.mark.parametrize("region", WITHOUT_NOVA_LITE)
def test_deploying_to_a_region_without_nova_lite_fails_up_front_with_one_line(synth, region):
    # given the synthesized template, environment-agnostic (the Region is known only when it is deployed)
    assertion = _nova_region_assertion(synth.template_json)

    # then its rule is false there, so CloudFormation refuses the stack before creating anything, with a line that
    # names the cause and every Region that works
    assert not holds_in_region(synth.template_json, assertion["Assert"], region)
    description = assertion["AssertDescription"]
    assert "\n" not in description and "Amazon Nova Lite" in description
    assert all(name in description for name in NOVA_LITE_PROFILES)


def test_every_region_of_the_map_passes_the_rule_and_gets_its_own_profile(synth):
    template = synth.template_json
    assertion = _nova_region_assertion(template)

    for region, profile in NOVA_LITE_PROFILES.items():
        assert holds_in_region(template, assertion["Assert"], region), region
        assert in_region(template, template["Outputs"]["AnswerModelId"]["Value"], region) == profile, region


@pytest.mark.parametrize("region", ["eu-west-2", "ca-central-1"])
def test_a_stack_pinned_to_a_region_without_nova_lite_fails_synth_with_the_one_line(region):
    # given an app whose stack names its Region (env), as a user's own app may
    app = cdk.App(context={**cdk_json_context(), **SKIP_BUNDLING})
    settings = Settings.from_context(app.node.get_all_context())

    # when the stack is defined, then synth stops with the map's line for that Region
    with pytest.raises(SettingsError) as raised:
        RealtimeRagStack(app, "Pinned", settings=settings, env=cdk.Environment(region=region))
    assert str(raised.value) == unsupported_region_message(region)
    assert region in str(raised.value) and "\n" not in str(raised.value)


def test_a_stack_pinned_to_a_region_of_the_map_synthesizes_with_that_regions_profile():
    app = cdk.App(context={**cdk_json_context(), **SKIP_BUNDLING})
    settings = Settings.from_context(app.node.get_all_context())

    stack = RealtimeRagStack(app, "PinnedEu", settings=settings, env=cdk.Environment(region="eu-south-2"))

    template = Template.from_stack(stack).to_json()
    assert in_region(template, template["Outputs"]["AnswerModelId"]["Value"], "eu-south-2") == (
        NOVA_LITE_PROFILES["eu-south-2"])


def test_app_prints_the_one_line_and_exits_non_zero_for_a_pinned_region_without_nova_lite(monkeypatch, capsys):
    # given app.py building a stack pinned to ca-central-1 (only its answering model, to keep the test quick)
    def pinned(app, settings):
        return GeoInferenceProfile(cdk.Stack(app, "Pinned", env=cdk.Environment(region="ca-central-1")), "Answer")

    monkeypatch.setattr(cdk_app, "add_stack", pinned)

    # when it runs, then it prints the map's line, no traceback, and exits non-zero
    code = cdk_app.main()

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"error: {unsupported_region_message('ca-central-1')}\n"


def test_a_geography_of_more_than_ten_regions_still_becomes_one_valid_condition():
    # given more Regions than one Fn::Or may hold (2 to 10 conditions)
    regions = [f"xx-test-{n}" for n in range(23)]
    stack = cdk.Stack(cdk.App())

    condition = stack.resolve(_region_is_one_of(regions))

    def widest_or(node) -> int:
        if isinstance(node, dict):
            own = len(node["Fn::Or"]) if "Fn::Or" in node else 0
            return max([own, *(widest_or(v) for v in node.values())])
        return max((widest_or(v) for v in node), default=0) if isinstance(node, list) else 0

    assert 2 <= widest_or(condition) <= 10
    assert all(holds_in_region({}, condition, region) for region in regions)
    assert not holds_in_region({}, condition, "xx-test-23")
