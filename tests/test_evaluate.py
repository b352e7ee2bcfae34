"""scripts/evaluate.py: the same retrieval and answering as ask.py over a question set, on the local pipeline and
on the deployed one (moto S3 Vectors filled by the real indexer; Titan, QueryVectors and Nova faked after botocore
validated each request), with figures computed from what it asked, and errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run
from kinesis import batch

from scripts import evaluate

ROOT = Path(__file__).resolve().parents[1]
NIMBUS = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
KEYS = "Signing keys are rotated every 90 days by the security team."


def write_questions(path: Path, *items: dict) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


QUESTIONS = (
    {"question": "When does Project Nimbus v3 ship?", "expected_doc_ids": ["nimbus-v3"],
     "expected_answer": "2026-08-14", "tags": ["single"]},
    {"question": "How often are signing keys rotated?", "expected_doc_ids": ["keys"], "expected_answer": "90 days"},
    {"question": "When does Project Nimbus v4 ship?", "answerable": False, "tags": ["unanswerable"]},
)


@pytest.fixture
def indexed(env):
    run(batch({"doc_id": "nimbus-v3", "text": NIMBUS, "source": "release-notes"},
              {"doc_id": "keys", "text": KEYS, "source": "wiki"}))
    return env


def test_the_deployed_pipeline_is_measured_through_the_same_asker_as_ask_py(indexed, tmp_path, capsys):
    questions = write_questions(tmp_path / "q.jsonl", *QUESTIONS)

    assert evaluate.main(["--questions", str(questions), "--json", "--top-k", "2"]) == 0

    result = json.loads(capsys.readouterr().out)
    by_line = {r["line"]: r for r in result["results"]}
    # The Nova fake answers with the first sentence of the first document of its prompt, never refusing.
    nova_said = [r["answer"] for r in result["results"]]
    assert len(indexed.aws.nova.requests) == 3 and all(a and "[" in a for a in nova_said)
    ranks = [by_line[1]["retrieved_doc_ids"].index("nimbus-v3") + 1, by_line[2]["retrieved_doc_ids"].index("keys") + 1]
    assert result["recall@2"] == 1.0 and result["mrr"] == pytest.approx((1 / ranks[0] + 1 / ranks[1]) / 2)
    expected_right = [("2026-08-14" in by_line[1]["answer"]), ("90 days" in by_line[2]["answer"])]
    assert result["answer_accuracy"] == sum(expected_right) / 2
    assert result["refusal_rate"] == 0.0, "the fake never refuses: the unanswerable question counts as wrong"
    assert set(result) >= {"recall@2", "mrr", "answer_accuracy", "refusal_rate", "latency_ms", "goals_missed"}
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]


def test_the_table_names_each_wrong_question_and_check_fails_when_a_goal_is_missed(indexed, tmp_path, capsys):
    questions = write_questions(tmp_path / "q.jsonl", *QUESTIONS)

    assert evaluate.main(["--questions", str(questions), "--check"]) == 1

    out = capsys.readouterr().out
    assert "unanswerable refused  0%" in out and "recall@3" in out
    assert "line 3: When does Project Nimbus v4 ship?\n    expected a refusal; got " in out
    assert "goals: MISSED: refusal_rate 0.0 < 0.8" in out


@pytest.mark.parametrize("line, message", [
    ("not json", "q.jsonl:1: not JSON"),
    ('{"answer": 1}', 'q.jsonl:1: each line needs a non-empty "question" string'),
    ('{"question": "x"}', 'give "expected_doc_ids" and/or "expected_answer", or "answerable": false'),
    ('{"question": "x", "answerable": false, "expected_answer": "y"}', 'an unanswerable question has no'),
    ('{"question": "x", "expected_doc_ids": "d"}', '"expected_doc_ids" is a list of doc ids'),
    ('{"question": "x", "expected_answers": "y"}', "q.jsonl:1: unknown key(s) 'expected_answers'; the keys are"),
    ('{"question": "x", "expected_answer": "y", "tags": 5}', '"tags" is a list of strings'),
    ('{"question": "x", "expected_answer": "y", "tags": "abc"}', '"tags" is a list of strings'),
    ('{"question": "x", "expected_answer": 0}', '"expected_answer" is a string or a list of strings'),
    ('\udcff', "q.jsonl: not UTF-8 text (byte 0); save it as UTF-8 JSON Lines"),
    ('{"question": "\\udcff", "answerable": false}', 'q.jsonl:1: the "question" holds an unpaired surrogate'),
    ('{"question": "x", "answerable": false, "near_doc_ids": 5}', '"near_doc_ids" is a list of doc ids'),
])
def test_a_bad_question_line_is_named_with_the_fix(tmp_path, capsys, line, message):
    (tmp_path / "q.jsonl").write_bytes(line.encode("utf-8", "surrogateescape") + b"\n")

    assert evaluate.main(["--local", "--questions", str(tmp_path / "q.jsonl")]) == 1

    assert message in capsys.readouterr().err


def test_null_or_empty_expectations_mean_none_given(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Capital of Mars?", "answerable": false, "expected_answer": ""}\n'
                    '{"question": "Who owns it?", "expected_doc_ids": null, "expected_answer": "team"}\n')

    first, second = evaluate.load_questions(path)

    assert (first.answerable, first.expected_answer) == (False, ())
    assert (second.expected_doc_ids, second.expected_answer) == ((), ("team",))


def test_a_line_separator_inside_a_question_string_is_part_of_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Who\u2028owns\x85it?", "answerable": false}\n', encoding="utf-8")

    [question] = evaluate.load_questions(path)

    assert question.text == "Who\u2028owns\x85it?"  # both are allowed raw in a JSON string


def test_the_local_pipeline_is_measured_as_a_user_runs_it(cli, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"doc_id": "nimbus-v3", "text": NIMBUS}) + "\n" +
                      json.dumps({"doc_id": "keys", "text": KEYS}) + "\n")
    put = cli("put_event.py", "--local", "--file", str(events))
    assert put.returncode == 0, put.stderr
    questions = write_questions(tmp_path / "q.jsonl", *QUESTIONS)

    done = cli("evaluate.py", "--local", "--questions", str(questions), "--json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["questions"], result["answerable"], result["unanswerable"]) == (3, 2, 1)
    assert result["recall@3"] == 1.0 and result["answer_accuracy"] == 1.0 and result["refusal_rate"] == 1.0
    assert [r["right"] for r in result["results"]] == [True, True, True]


def test_a_refusal_counts_as_one_with_or_without_its_full_stop_as_for_the_sources():
    from rtrag.workflows.answering import NOT_FOUND, cited, is_refusal

    for text in (NOT_FOUND, NOT_FOUND.rstrip("."), f"  {NOT_FOUND}\n"):
        assert is_refusal(text) and cited(text, ["a hit"]) == []
    assert not is_refusal("Yes. " + NOT_FOUND)


def test_a_transient_failure_is_asked_again_and_a_lasting_one_says_where_the_run_stopped(tmp_path, capsys):
    from rtrag.core.errors import TransientError

    class Flaky:
        def __init__(self, failures):
            self.failures, self.calls = failures, 0

        def ask(self, text, **kwargs):
            self.calls += 1
            if self.calls <= self.failures:
                raise TransientError("Bedrock ConverseStream failed: ThrottlingException: slow down")
            return "asked"

    question = evaluate.Question(7, "Who?", True, ("d",))
    args = evaluate.parse_args(["--local", "--questions", str(tmp_path / "q.jsonl")])
    pauses: list[float] = []

    assert evaluate.ask_with_retries(Flaky(2), question, args, None, evaluated=3, of=9, sleep=pauses.append) == "asked"
    assert pauses == list(evaluate.RETRY_PAUSES_S)
    with pytest.raises(TransientError):
        evaluate.ask_with_retries(Flaky(3), question, args, None, evaluated=3, of=9, sleep=pauses.append)
    assert f"note: stopped at line 7 of {tmp_path / 'q.jsonl'} (3 of 9 questions evaluated)" in capsys.readouterr().err
