"""Sufficiency for the scripts: each one, run against moto with the shared fakes (which record every call), makes
only calls that the managed policy the README tells its user to attach allows (``AskerPolicyArn`` for ``ask.py``,
``OperatorPolicyArn`` for ``reindex.py`` and ``redrive.py``; ``put_event.py`` and ``ProducerPolicyArn`` are in
test_permissions_suffice.py). The policies are taken from the synthesized template, resolved for the Region and
names the tests use."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ACCOUNT, REGION  # tests/conftest.py
from test_ask import QUESTION, indexed  # noqa: F401 - the fixture of an index the real indexer filled
from test_put_event import STREAM
from test_redrive import dlq  # noqa: F401 - dead letters of both kinds, written by the real indexer
from test_reindex import ARCHIVE, DEAD_LETTERED_ONE, archive  # noqa: F401 - the archive bucket as Firehose fills it

from .helpers import holds_in_region, managed_policy
from .test_permissions_suffice import _denied, resource_attributes


def _in_region(node: Any, template: dict[str, Any]) -> Any:
    """``node`` with every ``Fn::If`` replaced by the branch CloudFormation takes in the tests' Region."""
    if isinstance(node, list):
        return [_in_region(n, template) for n in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, if_true, if_false = node["Fn::If"]
            chosen = if_true if holds_in_region(template, {"Condition": name}, REGION) else if_false
            return _in_region(chosen, template)
        return {k: _in_region(v, template) for k, v in node.items()}
    return node


def _policy(synth, description_start: str) -> list[dict[str, Any]]:
    template = synth.template_json
    policy = managed_policy(template["Resources"], description_start)
    return _in_region(policy["Properties"]["PolicyDocument"]["Statement"], template)


def _attributes(synth) -> dict[tuple[str, str], str]:
    return resource_attributes(synth.template_json["Resources"],
                               stream_arn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}", archive=ARCHIVE)


def test_ask_with_only_the_asker_policy_embeds_queries_and_answers(indexed, synth, capsys):  # noqa: F811
    from scripts import ask

    # given the asker policy as synthesized, in the tests' Region (its Nova profile chosen by the Region map)
    statements = _policy(synth, "Ask the real-time RAG index")
    start = len(indexed.aws.recorder.calls)

    # when ask.py answers a question, and then retrieves only
    assert ask.main([QUESTION]) == 0
    assert ask.main(["--no-generate", "--json", QUESTION]) == 0
    capsys.readouterr()
    calls = indexed.aws.recorder.calls[start:]

    # then it embedded, queried and answered through the profile, and the policy allows each call (the profile
    # and the model in the Region a request is routed to)
    assert {(s, o) for s, o, _ in calls} >= {
        ("bedrock", "InvokeModel"), ("s3vectors", "QueryVectors"), ("bedrock", "ConverseStream")}
    assert _denied(calls, statements, _attributes(synth)) == []


def test_redrive_with_only_the_operator_policy_lists_shows_and_sends(dlq, synth, capsys):  # noqa: F811
    from scripts import redrive

    statements = _policy(synth, "Operate the real-time RAG pipeline")
    start = len(dlq.aws.recorder.calls)

    assert redrive.main(["list"]) == 0
    assert redrive.main(["show", dlq.fragile_key]) == 0
    assert redrive.main(["send", dlq.fragile_key]) == 0
    capsys.readouterr()
    calls = dlq.aws.recorder.calls[start:]

    assert {(s, o) for s, o, _ in calls} >= {("s3", "ListObjectsV2"), ("s3", "GetObject"), ("s3", "PutObject"),
                                             ("kinesis", "PutRecords")}
    assert _denied(calls, statements, _attributes(synth)) == []


@pytest.mark.parametrize("target", [["--to-index", "--indexer-disabled"], ["--to-stream"]], ids=["index", "stream"])
def test_reindex_with_only_the_operator_policy_replays_the_archive(archive, synth, target, capsys):  # noqa: F811
    from scripts import reindex

    statements = _policy(synth, "Operate the real-time RAG pipeline")
    start = len(archive.aws.recorder.calls)

    assert reindex.main(target) == DEAD_LETTERED_ONE  # the archive's one bad line: replayed but for it
    capsys.readouterr()
    calls = archive.aws.recorder.calls[start:]

    expected = {("s3", "ListObjectsV2"), ("s3", "GetObject"), ("s3", "PutObject")}  # the bad line: a dead letter
    expected |= ({("bedrock", "InvokeModel"), ("s3vectors", "PutVectors"), ("dynamodb", "BatchWriteItem")}
                 if "--to-index" in target else {("kinesis", "PutRecords")})
    assert {(s, o) for s, o, _ in calls} >= expected
    assert _denied(calls, statements, _attributes(synth)) == []


def test_check_index_with_only_the_operator_policy_lists_reads_the_ledger_and_fixes(indexed, synth, capsys):  # noqa: F811
    import boto3
    from conftest import BUCKET, INDEX

    from scripts import check_index

    boto3.client("s3vectors").put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=[
        {"key": "stray#0", "data": {"float32": [0.1] * 256}, "metadata": {}}])
    statements = _policy(synth, "Operate the real-time RAG pipeline")
    start = len(indexed.aws.recorder.calls)

    assert check_index.main(["--fix", "--indexer-disabled"]) == 0
    capsys.readouterr()
    calls = indexed.aws.recorder.calls[start:]

    assert {(s, o) for s, o, _ in calls} >= {("s3vectors", "GetIndex"), ("s3vectors", "ListVectors"),
                                             ("dynamodb", "BatchGetItem"), ("s3vectors", "DeleteVectors")}
    assert _denied(calls, statements, _attributes(synth)) == []
