"""What the indexer and the local runner log about a record: every user value bounded, document text never.

A producer controls every field of an event; a 100 KB ``op``, field name or doc id must not become a 100 KB log
line, and the text of a document has no place in the logs at all. The dead letter still keeps the record whole."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
import test_indexer
from conftest import run
from kinesis import batch

import indexer
from rtrag.core.shown import LOG_VALUE_CHARS, clipped, shown

# A log line carries the Lambda context and a few bounded fields: far below this even with several user values.
MAX_LOG_LINE_CHARS = 2_000
BIG = 100_000
MARKER = "Zq7-UNIQUE-DOCUMENT-TEXT-MARKER"


@pytest.fixture
def log_lines():
    """Every line the indexer's loggers write (Powertools' JSON, as CloudWatch receives it), as a list."""
    targets = [logging.getLogger("rtrag"), indexer.handler.logger._logger]
    buffer = io.StringIO()
    added = []
    for target in targets:
        formatter = next((h.formatter for h in target.handlers if h.formatter), None)
        capture = logging.StreamHandler(buffer)
        capture.setFormatter(formatter)
        target.addHandler(capture)
        added.append((target, capture))
    yield lambda: buffer.getvalue().splitlines()
    for target, capture in added:
        target.removeHandler(capture)


def dead_letters(env) -> dict[str, dict]:
    """Each dead letter by the doc id or partition key it was written for."""
    return {letter["partition_key"]: letter for letter in test_indexer.dead_letters(env)}


def test_huge_user_values_are_bounded_in_every_log_line_and_document_text_is_never_logged(env, log_lines):
    big = "x" * BIG
    events = {
        "big-op": {"doc_id": "big-op", "text": f"{MARKER} one", "op": big},
        "big-field": {"doc_id": "big-field", "text": f"{MARKER} two", big: 1},
        "big-id": {"doc_id": "i" * BIG, "text": f"{MARKER} three"},
        "big-key": {"doc_id": "big-key", "text": f"{MARKER} four", "metadata": {"k" * BIG: {"nested": 1}}},
        "bad-ts": {"doc_id": "bad-ts", "text": f"{MARKER} five", "ts": "yesterday"},
        "rejected": {"doc_id": "rejected", "text": f"{MARKER} six: poison"},
        "fine": {"doc_id": "fine", "text": f"{MARKER} seven is indexed"},
    }
    env.aws.titan.reject = lambda text: "poison" in text
    records = batch(*events.values())
    for r, key in zip(records["Records"], events):
        r["kinesis"]["partitionKey"] = key  # the dead letters are found by it below

    response = run(records)

    assert response == {"batchItemFailures": []}
    lines = log_lines()
    dead_lettered = [line for line in lines if '"record dead-lettered"' in line]
    assert len(dead_lettered) == 6  # every record but the fine one was logged...
    assert all(len(line) <= MAX_LOG_LINE_CHARS for line in lines), max(map(len, lines))  # ...bounded
    assert not [line for line in lines if MARKER in line]
    letters = dead_letters(env)
    assert set(letters) == set(events) - {"fine"}
    for key, letter in letters.items():
        # The dead letter is the copy kept: the record's data whole, byte for byte.
        assert json.loads(base64.b64decode(letter["data"])) == events[key]
        assert len(letter["reason"]) <= MAX_LOG_LINE_CHARS
    assert "op must be 'upsert' or 'delete'" in letters["big-op"]["reason"]
    assert "unknown field(s) 'xxx" in letters["big-field"]["reason"]
    assert f"doc_id is {BIG} characters" in letters["big-id"]["reason"]
    assert "must be a string, number, boolean or list of strings" in letters["big-key"]["reason"]


def test_the_dead_lettered_doc_id_is_logged_bounded_but_kept_whole_in_the_letter(env, log_lines):
    long_id = "d" * BIG

    run(batch({"doc_id": long_id, "text": "some text"}))

    [line] = [json.loads(line) for line in log_lines() if '"record dead-lettered"' in line]
    assert line["doc_id"] == clipped(long_id) and len(line["doc_id"]) < LOG_VALUE_CHARS + 50
    [letter] = dead_letters(env).values()
    assert letter["doc_id"] == long_id


def test_a_handler_error_quoting_a_record_is_logged_bounded_by_the_local_runner(tmp_path, log_lines):
    from rtrag.local.deadletters import LocalDeadLetters
    from rtrag.local.runner import LocalEventSourceMapping
    from rtrag.local.stream import LocalStream

    stream = LocalStream(tmp_path / "stream", shard_count=1, name="rag-documents")
    stream.put_record(b'{"doc_id": "a", "text": "hello"}', "a")

    def handler(event, context):
        raise ValueError("cannot handle " + "y" * BIG)

    try:
        LocalEventSourceMapping(stream, handler, on_failure=LocalDeadLetters(tmp_path / "dead"),
                                retry_backoff_seconds=0, max_retry_attempts=0).run_once()
    finally:
        stream.close()

    raised = [json.loads(line) for line in log_lines() if '"handler raised' in line]
    assert raised and all(len(json.dumps(line)) <= MAX_LOG_LINE_CHARS for line in raised)
    assert raised[0]["error"].startswith("ValueError: cannot handle yyy")
    assert raised[0]["raised_at"].startswith("test_logs.py:")
    assert all(len(line) <= MAX_LOG_LINE_CHARS for line in log_lines())


@pytest.mark.parametrize("value, limit", [("x" * BIG, 80), ("short", 80), (["a"] * 10_000, 40)])
def test_shown_quotes_a_value_within_its_limit(value, limit):
    text = shown(value, limit)

    assert len(text) <= limit + len("...")
    assert text == repr(value) if len(repr(value)) <= limit else text == repr(value)[:limit] + "..."


def test_records_under_another_partition_key_are_indexed_counted_and_the_fix_logged(env, log_lines, capsys):
    from kinesis import record

    response = run({"Records": [record({"doc_id": "a", "text": "Keyed by its doc id."}, seq=1),
                                record({"doc_id": "b", "text": "Keyed by something else."}, seq=2,
                                       partition_key="random-key-1")]})

    assert response == {"batchItemFailures": []}
    assert sorted(test_indexer.vectors(env)) == ["a#0", "b#0"]
    logged = [json.loads(line) for line in log_lines()]
    [warning] = [x for x in logged if x.get("message") == "records put under a partition key other than their doc id"]
    assert warning["records"] == 1 and "put each event with its doc_id as the partition key" in warning["fix"]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counts = [blob["RecordsMisKeyed"] for blob in emf]
    assert [c if isinstance(c, list) else [c] for c in counts] == [[1]]  # one value, 1 (a list or not, per flush)
