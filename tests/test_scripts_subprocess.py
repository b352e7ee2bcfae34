"""The scripts as a user runs them: separate processes, talking to a moto server on loopback through
AWS_ENDPOINT_URL (as any boto3 program honours it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def moto_server():
    from fakes import keep_metadata_configuration
    from moto.server import ThreadedMotoServer

    keep_metadata_configuration()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def run_script(name: str, *args: str, endpoint: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("script", ["put_event.py", "ask.py", "evaluate.py", "reindex.py", "redrive.py", "local_indexer.py",
                                    "demo.py", "check_index.py"])
def test_help_shows_usage_and_an_example(script):
    result = run_script(script, "--help")

    assert result.returncode == 0
    assert "usage:" in result.stdout and "examples:" in result.stdout and f"python scripts/{script}" in result.stdout


def test_put_event_process_puts_a_record_on_the_moto_server_stream(moto_server, monkeypatch):
    kinesis = boto3.client("kinesis", endpoint_url=moto_server, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    kinesis.create_stream(StreamName="docs-stream", ShardCount=1)

    result = run_script("put_event.py", "Project Nimbus ships v3.", "nimbus-v3", "--stream-name", "docs-stream",
                        endpoint=moto_server)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("put upsert doc_id=nimbus-v3 shard=shardId-000000000000 sequence=")
    shard = kinesis.get_shard_iterator(StreamName="docs-stream", ShardId="shardId-000000000000",
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=shard)["Records"]
    assert b'"doc_id":"nimbus-v3"' in record["Data"] and record["PartitionKey"] == "nimbus-v3"


def test_ask_process_reaches_the_index_and_reports_a_bad_embedding_in_one_line(moto_server):
    s3vectors = boto3.client("s3vectors", endpoint_url=moto_server, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
    s3vectors.create_vector_bucket(vectorBucketName="sub-vectors")
    s3vectors.create_index(vectorBucketName="sub-vectors", indexName="sub-docs", dataType="float32",
                           dimension=256, distanceMetric="cosine",
                           metadataConfiguration={"nonFilterableMetadataKeys": ["source_text"]})

    # moto's bedrock-runtime answers InvokeModel with an empty body: the script must say so, not crash.
    result = run_script("ask.py", "--vector-bucket", "sub-vectors", "--vector-index", "sub-docs",
                        "When does Nimbus ship?", endpoint=moto_server)

    assert result.returncode == 1
    assert result.stderr.startswith("error: amazon.titan-embed-text-v2:0 returned no valid 256-dimension embedding")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_ask_process_without_a_deployed_stack_names_the_fix(moto_server):
    result = run_script("ask.py", "Anything?", endpoint=moto_server)

    assert result.returncode == 1
    assert "stack RealtimeRag is not deployed in us-east-1: run `make deploy`" in result.stderr
