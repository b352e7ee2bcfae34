"""Bedrock model and inference-profile ARNs, resolved in whatever Region the stack is deployed to."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnCondition, Fn, Stack, Token
from constructs import Construct

ANSWER_MODEL_ID = "amazon.nova-lite-v1:0"


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
    """The geographic inference profile of ``model_id`` for the deployment Region: ``us.``, ``eu.`` or ``apac.``.

    The Region is a token at synth (the stack is environment-agnostic), so the prefix is chosen by CloudFormation
    conditions on the Region's first segment: ``eu-*`` -> ``eu``, ``ap-*`` -> ``apac``, anything else -> ``us``
    (the US profile also serves Regions such as ``ca-central-1`` that have no profile of their own). Conditions,
    unlike a Region-keyed mapping, never fail a deployment in a Region the table did not list.
    """

    def __init__(self, scope: Construct, construct_id: str, *, model_id: str) -> None:
        super().__init__(scope, construct_id)
        region_prefix = Fn.select(0, Fn.split("-", Aws.REGION))
        is_eu = CfnCondition(self, "InEurope", expression=Fn.condition_equals(region_prefix, "eu"))
        is_apac = CfnCondition(self, "InAsiaPacific", expression=Fn.condition_equals(region_prefix, "ap"))
        self.geo_prefix = Token.as_string(
            Fn.condition_if(is_eu.logical_id, "eu", Fn.condition_if(is_apac.logical_id, "apac", "us"))
        )
        self.profile_id = f"{self.geo_prefix}.{model_id}"
        self.profile_arn = Stack.of(self).format_arn(
            service="bedrock",
            resource="inference-profile",
            resource_name=self.profile_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # A profile routes each request to any Region of its geography: the model must be allowed in all of them.
        self.destination_model_arn = foundation_model_arn(self, model_id, region="*")
