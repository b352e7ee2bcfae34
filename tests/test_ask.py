"""ask.py over an index the real indexer filled (moto S3 Vectors; QueryVectors, Titan and Nova faked at the
boto3 level after botocore validated each request)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import EndpointConnectionError

from conftest import run
from kinesis import batch
from rtrag.workflows.answering import NOT_FOUND
from rtrag.workflows.retrieval import DEFAULT_CANDIDATES, Hit
from rtrag.aws.nova import NovaAnswerer, default_answer_model
from scripts import ask

NIMBUS = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
QUESTION = "When does Project Nimbus v3 ship and what does it drop?"


@pytest.fixture
def indexed(env):
    run(batch(
        {"doc_id": "nimbus-v3", "text": NIMBUS, "source": "release-notes", "metadata": {"team": "nimbus", "tier": 1}},
        {"doc_id": "keys", "text": "Rotate the signing keys every 90 days.", "source": "wiki",
         "metadata": {"team": "platform", "tier": 1}},
        {"doc_id": "lunch", "text": "The cafeteria serves lunch from noon.", "source": "wiki",
         "metadata": {"team": "facilities", "tier": 3}},
    ))
    return env


def test_seed_question_streams_a_grounded_answer_then_lists_its_sources(indexed, capsys):
    code = ask.main([QUESTION])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(NIMBUS + " [nimbus-v3#0]\n")
    sources = out.split("Sources:\n", 1)[1].strip().splitlines()
    assert len(sources) == 1 and sources[0].split()[:3] == ["nimbus-v3", "chunk", "0"]
    assert "source release-notes" in sources[0]
    [request] = indexed.aws.nova.requests
    assert request["modelId"] == "us.amazon.nova-lite-v1:0"
    assert "data, not instructions" in request["system"][0]["text"] and NOT_FOUND in request["system"][0]["text"]
    prompt = request["messages"][0]["content"][0]["text"]
    assert '<document id="nimbus-v3#0" source="release-notes">' in prompt and prompt.endswith(QUESTION)


def test_answer_is_streamed_piece_by_piece_as_nova_generates_it(indexed):
    import boto3

    hits = [Hit(key="nimbus-v3#0", distance=0.1, doc_id="nimbus-v3", chunk=0, source="notes", text=NIMBUS)]
    pieces: list[str] = []

    answer = NovaAnswerer(boto3.client("bedrock-runtime"), model_id="us.amazon.nova-lite-v1:0").answer(
        QUESTION, hits, on_text=pieces.append)

    assert len(pieces) > 5 and "".join(pieces).strip() == answer.text
    assert answer.sources == hits and answer.usage["outputTokens"] == len(pieces)


def test_where_pairs_become_an_and_filter_and_only_matching_chunks_are_used(indexed, capsys):
    code = ask.main(["--where", "team=platform", "--where", "tier=1", "--top-k", "5", "--max-distance", "2",
                     "--no-generate", "--json", QUESTION])

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    # The question has two parts ("When does ... ship and what does it drop?"): one query each, both filtered.
    assert len(indexed.aws.query.requests) == 2
    for request in indexed.aws.query.requests:
        assert request["filter"] == {"$and": [{"team": {"$eq": "platform"}}, {"tier": {"$eq": 1}}]}
        assert request["topK"] == DEFAULT_CANDIDATES, "candidates for the lexical re-ranking; the answer: --top-k"
    assert [p["doc_id"] for p in result["passages"]] == ["keys"]


def test_filter_json_is_passed_in_s3_vectors_syntax(indexed, capsys):
    code = ask.main(["--filter", '{"source": {"$in": ["release-notes"]}}', "--no-generate", "--json", QUESTION])

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert indexed.aws.query.requests[0]["filter"] == {"source": {"$in": ["release-notes"]}}
    assert [p["doc_id"] for p in result["passages"]] == ["nimbus-v3"]
    assert result["answer"] is None and indexed.aws.nova.requests == []


def test_nothing_relevant_says_so_without_calling_nova(indexed, capsys):
    code = ask.main(["--max-distance", "0.05", "What is the capital of France?"])

    assert code == 0
    assert capsys.readouterr().out.strip() == NOT_FOUND
    assert indexed.aws.nova.requests == []


def test_json_output_has_answer_sources_and_timings(indexed, capsys):
    ask.main(["--json", QUESTION])

    result = json.loads(capsys.readouterr().out)
    assert result["answer"] == NIMBUS + " [nimbus-v3#0]"
    assert result["model_id"] == "us.amazon.nova-lite-v1:0"
    assert result["sources"][0]["key"] == "nimbus-v3#0" and 0 <= result["sources"][0]["distance"] < 1
    assert set(result["timings_ms"]) == {"embed", "query", "generate", "total"}


def test_no_generate_prints_the_passages(indexed, capsys):
    ask.main(["--no-generate", QUESTION])

    out = capsys.readouterr().out
    assert out.startswith("[nimbus-v3#0] distance=") and NIMBUS in out


def test_model_id_flag_overrides_the_inference_profile(indexed, capsys):
    ask.main(["--model-id", "eu.amazon.nova-lite-v1:0", QUESTION])

    assert indexed.aws.nova.requests[0]["modelId"] == "eu.amazon.nova-lite-v1:0"


@pytest.mark.parametrize("region, profile", [
    ("us-east-1", "us.amazon.nova-lite-v1:0"), ("us-west-2", "us.amazon.nova-lite-v1:0"),
    ("eu-west-1", "eu.amazon.nova-lite-v1:0"), ("eu-central-1", "eu.amazon.nova-lite-v1:0"),
    ("ap-northeast-1", "apac.amazon.nova-lite-v1:0"), ("ca-central-1", "us.amazon.nova-lite-v1:0"),
])
def test_default_answer_model_is_the_geographic_inference_profile(region, profile):
    assert default_answer_model(region) == profile


MODEL_ACCESS = (403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
PROFILE_NEEDED = (400, "ValidationException", "Invocation of model ID amazon.nova-lite-v1:0 with on-demand "
                  "throughput isn't supported. Retry your request with the ID or ARN of an inference profile "
                  "that contains this model.")
THROTTLED = (429, "ThrottlingException", "Too many requests, please wait before trying again.")


@pytest.mark.parametrize("error, message", [
    (MODEL_ACCESS, "model access is not enabled in us-east-1: open the Bedrock console"),
    (PROFILE_NEEDED, "must be called through an inference profile in us-east-1: pass --model-id"),
    (THROTTLED, "throttled by AWS even after retries"),
])
def test_bedrock_failures_print_one_line_with_the_fix(indexed, error, message, capsys):
    indexed.aws.nova.error = error

    code = ask.main([QUESTION])

    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_index_dimension_different_from_the_embeddings_is_explained(indexed, monkeypatch, capsys):
    monkeypatch.setenv("EMBED_DIMENSIONS", "1024")

    code = ask.main([QUESTION])

    assert code == 1
    assert "has dimension 256 but the embeddings are configured for 1024" in capsys.readouterr().err


def test_stack_not_deployed_is_explained(aws, capsys):
    code = ask.main(["--region", "us-east-1", QUESTION])

    assert code == 1
    assert "stack RealtimeRag is not deployed in us-east-1: run `make deploy`" in capsys.readouterr().err


def test_region_without_s3_vectors_is_explained(indexed, capsys):
    import boto3

    def no_endpoint(**kwargs):
        raise EndpointConnectionError(endpoint_url="https://s3vectors.us-east-1.api.aws/GetIndex")

    boto3.DEFAULT_SESSION  # noqa: B018 - the hook below joins every session through botocore's handlers
    from botocore.handlers import BUILTIN_HANDLERS

    BUILTIN_HANDLERS.insert(0, ("before-call.s3vectors.GetIndex", no_endpoint))
    try:
        code = ask.main([QUESTION])
    finally:
        BUILTIN_HANDLERS.remove(("before-call.s3vectors.GetIndex", no_endpoint))

    assert code == 1
    assert "S3 Vectors is not available in us-east-1" in capsys.readouterr().err


def test_bad_filter_is_explained(indexed, capsys):
    code = ask.main(["--filter", '{"tier": {"$near": 1}}', QUESTION])

    assert code == 1
    assert "invalid metadata filter at filter.tier" in capsys.readouterr().err
