"""Shared fixtures. Every test runs with fake credentials and a fixed Region, so nothing can reach a real account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path):
    """Runs a script as a user would, in local mode, in a process of its own: no AWS variable, its state under
    ``cli.state``; no run may end in a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["RAG_LOCAL_DIR"] = str(tmp_path / "state")

    def run(script: str, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True,
                                text=True, env=env, timeout=120, cwd=tmp_path)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    run.state = tmp_path / "state"
    return run


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
    """moto for S3, S3 Vectors, DynamoDB and Kinesis; Bedrock and QueryVectors faked at the boto3 level; S3
    Vectors' limits enforced; DynamoDB calls can be made to fail; every call recorded. The hooks join botocore's built-in handlers (as moto's own do), so every
    session created during the test has them, including the ones the scripts create."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS
    from fakes import (
        ApiRecorder,
        FakeListVectors,
        FakeNova,
        FakeQueryVectors,
        FakeTitan,
        KinesisPartialFailure,
        ServiceFaults,
        StrictS3Vectors,
        keep_metadata_configuration,
    )
    from moto import mock_aws

    keep_metadata_configuration()
    indexes = StrictS3Vectors()
    fakes = SimpleNamespace(titan=FakeTitan(), s3vectors=indexes, recorder=ApiRecorder(),
                            nova=FakeNova(), query=FakeQueryVectors(indexes), listing=FakeListVectors(),
                            kinesis=KinesisPartialFailure(),
                            dynamodb=ServiceFaults())
    handlers = [
        ("provide-client-params", fakes.recorder),
        ("before-call.bedrock-runtime.InvokeModel", fakes.titan),
        ("before-call.bedrock-runtime.ConverseStream", fakes.nova),
        ("before-call.s3vectors.QueryVectors", fakes.query),
        ("before-call.s3vectors.ListVectors", fakes.listing),
        ("before-call.s3vectors", fakes.s3vectors),
        ("before-call.dynamodb", fakes.dynamodb),
        ("before-call.kinesis.PutRecords", fakes.kinesis.before),
        ("after-call.kinesis.PutRecords", fakes.kinesis.after),
    ]
    with mock_aws():
        BUILTIN_HANDLERS.extend(handlers)
        try:
            boto3.setup_default_session()
            yield fakes
        finally:
            for handler in handlers:
                BUILTIN_HANDLERS.remove(handler)
            boto3.DEFAULT_SESSION = None


BUCKET, INDEX, DEAD_LETTERS, VERSIONS = "vectors-test", "docs", "dead-letters-test", "versions-test"
DIMENSIONS = 256
CHUNK, OVERLAP = 1000, 100


class Context:
    function_name = "indexer"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:indexer"
    aws_request_id = "req-1"


@pytest.fixture
def env(aws, monkeypatch):
    """The deployed resources and the function's environment, as the stack sets them."""
    s3vectors = boto3.client("s3vectors")
    s3vectors.create_vector_bucket(vectorBucketName=BUCKET)
    s3vectors.create_index(vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=DIMENSIONS,
                           distanceMetric="cosine",
                           metadataConfiguration={"nonFilterableMetadataKeys": ["source_text"]})
    boto3.client("s3").create_bucket(Bucket=DEAD_LETTERS)
    create_version_table(boto3.client("dynamodb"), VERSIONS)
    for name, value in {"VECTOR_BUCKET": BUCKET, "VECTOR_INDEX": INDEX, "DEAD_LETTER_BUCKET": DEAD_LETTERS,
                        "VERSION_TABLE": VERSIONS,
                        "EMBED_DIMENSIONS": str(DIMENSIONS), "EMBED_CONCURRENCY": "8",
                        "CHUNK_SIZE_CHARS": str(CHUNK), "CHUNK_OVERLAP_CHARS": str(OVERLAP)}.items():
        monkeypatch.setenv(name, value)
    import indexer

    indexer.handler.reset()  # a cold start: the next invocation builds the indexer from this environment
    aws.s3vectors.calls.clear()
    return SimpleNamespace(aws=aws, s3vectors=s3vectors, s3=boto3.client("s3"), dynamodb=boto3.client("dynamodb"))


def create_version_table(client, name: str) -> None:
    """The version ledger's table as the stack defines it (stacks/version_table.py): key ``pk``, on demand."""
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def run(event):
    """Invoke the indexer Lambda handler with a Kinesis event, as the event source mapping does."""
    import indexer

    return indexer.handler(event, Context())


@pytest.fixture
def creation_times():
    """GetIndex as S3 Vectors answers it, with the index's creationTime (moto leaves it out): the time of its last
    CreateIndex, by index name."""
    from datetime import UTC, datetime

    from botocore.handlers import BUILTIN_HANDLERS

    created: dict[str, datetime] = {}

    def on_create(params, **kwargs):
        created[json.loads(params["body"])["indexName"]] = datetime.now(UTC)

    def on_get(parsed, **kwargs):
        index = parsed.get("index") or {}
        if index.get("indexName") in created:
            index["creationTime"] = created[index["indexName"]]

    handlers = [("before-call.s3vectors.CreateIndex", on_create), ("after-call.s3vectors.GetIndex", on_get)]
    BUILTIN_HANDLERS.extend(handlers)
    yield created
    for handler in handlers:
        BUILTIN_HANDLERS.remove(handler)
