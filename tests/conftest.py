"""Shared fixtures. Every test runs with fake credentials and a fixed Region, so nothing can reach a real account."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Fake credentials and Region; no profile or endpoint from the developer's shell leaks in."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("STREAM_NAME", "VECTOR_BUCKET", "VECTOR_INDEX", "RAG_LOCAL_DIR"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "RealtimeRagTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "indexer")
    yield


@pytest.fixture
def aws():
    """moto for S3, S3 Vectors and Kinesis; Titan faked at the boto3 level; S3 Vectors' limits enforced; every
    call recorded. Clients created with boto3.client() during the test get these hooks."""
    import boto3
    from moto import mock_aws

    from fakes import ApiRecorder, FakeTitan, StrictS3Vectors

    with mock_aws():
        boto3.setup_default_session()
        titan, strict, recorder = FakeTitan(), StrictS3Vectors(), ApiRecorder()
        events = boto3.DEFAULT_SESSION.events
        events.register("provide-client-params", recorder)
        events.register("before-call.bedrock-runtime.InvokeModel", titan)
        events.register("before-call.s3vectors", strict)
        yield SimpleNamespace(titan=titan, s3vectors=strict, recorder=recorder)
    boto3.DEFAULT_SESSION = None
