"""Bedrock model and inference-profile ARNs, resolved in whatever Region the stack is deployed to."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnCondition, CfnRule, CfnRuleAssertion, Fn, ICfnConditionExpression, Stack, Token
from constructs import Construct

from rtrag.core.regions import (
    NOVA_LITE_MODEL_ID,
    NOVA_LITE_PROFILES,
    UnsupportedRegion,
    nova_lite_profile,
    unsupported_region_message,
)
from stacks.settings import SettingsError

# Fn::Or takes 2 to 10 conditions (CloudFormation condition functions).
_MAX_OR_CONDITIONS = 10


def foundation_model_arn(scope: Construct, model_id: str, *, region: str | None = None) -> str:
    """``arn:PARTITION:bedrock:REGION::foundation-model/MODEL_ID`` (foundation models have no account)."""
    return Stack.of(scope).format_arn(
        service="bedrock",
        region=region,
        account="",
        resource="foundation-model",
        resource_name=model_id,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


class GeoInferenceProfile(Construct):
    """Nova Lite's inference profile for the deployment Region, from the one Region -> profile map the scripts use
    too (``rtrag.core.regions.NOVA_LITE_PROFILES``).

    A Region outside the map cannot call Nova Lite, so the stack refuses it up front with one line (the map's
    message): at synth when the Region is known (``env`` set), else by a template Rule that CloudFormation checks
    before it creates or updates anything. The stack is environment-agnostic, so the profile itself is chosen at
    deploy time by conditions on ``AWS::Region`` built from the map, one per geography. Conditions, not a Mapping:
    a Region missing from a Mapping fails ``Fn::FindInMap`` with CloudFormation's own "Unable to get mapping"
    error, which could be reported instead of the Rule's line; a condition never fails, so the Rule's line is the
    only one a Region outside the map can get.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        if not Token.is_unresolved(region):
            try:
                nova_lite_profile(region)
            except UnsupportedRegion as err:
                raise SettingsError(str(err)) from None
        CfnRule(self, "SupportedRegion", assertions=[CfnRuleAssertion(
            assert_=Fn.condition_contains(sorted(NOVA_LITE_PROFILES), Aws.REGION),
            assert_description=unsupported_region_message(None),
        )])

        regions_of: dict[str, list[str]] = {}
        for name, profile in NOVA_LITE_PROFILES.items():
            regions_of.setdefault(profile, []).append(name)
        *tested, (last_profile, _) = regions_of.items()
        # The last geography needs no condition: the Rule has already refused every Region outside the map.
        choice: object = last_profile
        for profile, regions in reversed(tested):
            geography = profile.split(".", 1)[0]
            condition = CfnCondition(self, f"In{geography.title()}", expression=_region_is_one_of(regions))
            choice = Fn.condition_if(condition.logical_id, profile, choice)
        self.profile_id = Token.as_string(choice)
        self.profile_arn = Stack.of(self).format_arn(
            service="bedrock",
            resource="inference-profile",
            resource_name=self.profile_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # A profile routes each request to any Region of its geography: the model must be allowed in all of them.
        self.destination_model_arn = foundation_model_arn(self, NOVA_LITE_MODEL_ID, region="*")


def _region_is_one_of(regions: list[str]) -> ICfnConditionExpression:
    """``AWS::Region`` equals one of ``regions``: Fn::Equals, or nested Fn::Or of at most ten each."""
    tests: list[ICfnConditionExpression] = [Fn.condition_equals(Aws.REGION, name) for name in regions]
    while len(tests) > 1:
        groups = [tests[i:i + _MAX_OR_CONDITIONS] for i in range(0, len(tests), _MAX_OR_CONDITIONS)]
        tests = [Fn.condition_or(*group) if len(group) > 1 else group[0] for group in groups]
    return tests[0]
