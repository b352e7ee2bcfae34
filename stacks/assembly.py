"""Builds the app's stack and its checks; shared by app.py and the tests so both synthesize the same thing."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.rag_stack import RealtimeRagStack
from stacks.settings import Settings

DESCRIPTION = "Real-time RAG: Kinesis -> Lambda indexer -> Bedrock Titan V2 embeddings -> Amazon S3 Vectors"


def add_stack(app: App, settings: Settings) -> RealtimeRagStack:
    """The stack named ``settings.stack_name``, environment-agnostic (deploys to the CLI's account and Region)."""
    return RealtimeRagStack(app, settings.stack_name, settings=settings, description=DESCRIPTION)


def add_checks(app: App) -> None:
    """cdk-nag's AwsSolutions rules run at synth; an unacknowledged finding fails it."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
