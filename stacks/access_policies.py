"""Customer managed policies that users attach to their own principals to put events and to ask questions."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from constructs import Construct

from stacks.models import GeoInferenceProfile, foundation_model_arn
from stacks.nag import acknowledge, wildcard_resource


class AccessPolicies(Construct):
    """``producer_policy``: put document events on the stream. ``asker_policy``: embed a question with the
    embedding model, query the index, answer with Nova through its geographic inference profile. Both read this
    stack's outputs: the scripts find their resources there by default."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        embed_model_id: str,
        index_statements: list[iam.PolicyStatement],
        answer_profile: GeoInferenceProfile,
    ) -> None:
        super().__init__(scope, construct_id)
        self.producer_policy = iam.ManagedPolicy(
            self,
            "Producer",
            description="Put document events on the real-time RAG stream",
            statements=[
                iam.PolicyStatement(
                    sid="PutDocumentEvents",
                    actions=["kinesis:PutRecord", "kinesis:PutRecords"],  # put_event.py's only stream calls
                    resources=[stream.stream_arn],
                ),
                _read_stack_outputs(),
            ],
        )
        self.asker_policy = iam.ManagedPolicy(
            self,
            "Asker",
            description="Ask the real-time RAG index: embed the question, query the vectors, answer with Nova",
            statements=[
                iam.PolicyStatement(
                    sid="EmbedQuestion",
                    actions=["bedrock:InvokeModel"],
                    resources=[foundation_model_arn(self, embed_model_id)],
                ),
                iam.PolicyStatement(
                    sid="AnswerWithNova",
                    # ask.py answers through ConverseStream, which IAM authorizes as InvokeModelWithResponseStream
                    # (Bedrock API Reference, ConverseStream); it never calls Converse or InvokeModel on Nova.
                    actions=["bedrock:InvokeModelWithResponseStream"],
                    resources=[answer_profile.profile_arn, answer_profile.destination_model_arn],
                ),
                *index_statements,
                _read_stack_outputs(),
            ],
        )
        acknowledge(
            self.asker_policy,
            wildcard_resource(self, answer_profile.destination_model_arn),
            "A geographic inference profile routes each request to any Region of its geography, chosen by "
            "Bedrock, and each destination Region checks the foundation-model ARN of its own Region; the Region "
            "is therefore a wildcard while the model is pinned to Nova Lite.",
        )


def _read_stack_outputs() -> iam.PolicyStatement:
    """DescribeStacks on this stack alone: put_event.py and ask.py read their resources' names from its outputs."""
    return iam.PolicyStatement(sid="ReadStackOutputs", actions=["cloudformation:DescribeStacks"],
                               resources=[Aws.STACK_ID])
