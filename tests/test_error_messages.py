"""The one-line errors the scripts print about the environment they run in (profile, Region, credentials, network,
the deployed resources): each names the thing that is wrong and the fix, prints no traceback, and is listed in the
README's Troubleshooting table.

The scripts run as a user runs them where it matters (a separate process, no network: an endpoint on a closed
loopback port), else in-process against moto."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import socket
import string
import subprocess
import sys
from pathlib import Path

import pytest

from rtrag.aws.errors import classify
from rtrag.cli import hints
from rtrag.cli.common import explain
from scripts import ask, put_event, redrive

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI = ROOT / "lambda_src" / "rtrag" / "cli"

# The README's "message begins with" column writes the variable parts of a message as these words (or "...").
PLACEHOLDERS = {"REGION", "NAME", "STACK", "KEY", "SOURCE", "URL", "PROXY", "CALL", "REPORT", "DETAIL", "VALUE",
                "REASON", "PROVIDER", "VAR", "N", "M", "D", "WHAT", "SERVICE", "OUTPUT"}


@functools.cache
def troubleshooting_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Each row of README's Troubleshooting table: the message's beginning as written, and as a pattern."""
    section = README.read_text().split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    patterns = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        written = re.match(r"\| `([^`]+)`", row).group(1)
        parts = re.split(r"(\.\.\.|\b[A-Z][A-Z_]*\b)", written)
        patterns.append((written, re.compile("".join(".+?" if p == "..." or p in PLACEHOLDERS else re.escape(p)
                                                     for p in parts))))
    return patterns


def documented(line: str) -> bool:
    """Whether README's Troubleshooting table has a row whose message begins as ``line`` does."""
    return any(pattern.match(line) for _, pattern in troubleshooting_patterns())


def fails_with_one_line(main, argv: list[str], capsys) -> str:
    """Run a script's ``main``; it must exit 1 with a single ``error: `` line, which is returned without its prefix."""
    code = main(argv)
    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    return line


def one_error_line(err: str) -> str:
    """The single line a failing script printed on stderr, without its ``error: `` prefix."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it fails at once, as with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``scripts/name`` in its own process: no AWS settings but ``env`` (no profile, no credentials, no Region)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("AWS_") and k not in ("STREAM_NAME", "VECTOR_BUCKET", "VECTOR_INDEX")}
    clean.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    clean.update(env)
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          env=clean, timeout=120, cwd=ROOT, check=False)


# each message, reproduced
def test_a_profile_from_aws_profile_that_does_not_exist_is_named_with_where_it_came_from():
    result = run_script("ask.py", "Anything?", AWS_PROFILE="nosuch")

    line = one_error_line(result.stderr)
    assert result.returncode == 1
    assert line.startswith("AWS profile 'nosuch' (from AWS_PROFILE) was not found: ")
    assert "aws configure list-profiles" in line and "--profile" in line and "None" not in line
    assert documented(line)


def test_a_profile_from_the_flag_that_does_not_exist_is_named(capsys):
    line = fails_with_one_line(redrive.main, ["list", "--profile", "nosuch"], capsys)

    assert line.startswith("AWS profile 'nosuch' (from --profile) was not found")
    assert documented(line)


def test_missing_region_and_missing_credentials_are_both_named_in_one_run():
    result = run_script("put_event.py", "some text")

    line = one_error_line(result.stderr)
    assert result.returncode == 1
    assert line.startswith("no AWS Region and no AWS credentials found: ")
    assert all(fix in line for fix in ("--region", "AWS_REGION", "aws configure", "aws sso login", "--profile"))
    assert documented(line)


@pytest.mark.parametrize("unset, expected", [
    (("AWS_REGION", "AWS_DEFAULT_REGION"), "no AWS Region: pass --region or set AWS_REGION"),
    (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
     "no AWS credentials found: run `aws configure`"),
    (("AWS_SECRET_ACCESS_KEY",), "incomplete AWS credentials in the environment (AWS_SECRET_ACCESS_KEY is missing)"),
])
def test_region_and_credentials_are_checked_before_any_call(aws, monkeypatch, capsys, unset, expected):
    for name in unset:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    line = fails_with_one_line(put_event.main, ["some text", "--stream-name", "rag-documents"], capsys)

    assert line.startswith(expected)
    assert aws.recorder.calls == []  # refused before anything was sent
    assert documented(line)


def test_no_network_names_the_endpoint_and_what_to_check_not_a_missing_service():
    endpoint = f"http://127.0.0.1:{closed_port()}"

    result = run_script("ask.py", "Anything?", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint, VECTOR_BUCKET="rag-vectors",
                        VECTOR_INDEX="docs", EMBED_DIMENSIONS="1024", ANSWER_MODEL_ID="us.amazon.nova-lite-v1:0",
                        EMBED_MODEL_ID="amazon.titan-embed-text-v2:0")

    line = one_error_line(result.stderr)
    assert result.returncode == 1
    assert line.startswith(f"cannot reach {endpoint}: check the network connection and proxy settings")
    assert "us-east-1 is the Region you mean" in line and "--region" in line
    assert "not available" not in line and "e.g." not in line
    assert documented(line)


def test_an_invalid_vector_bucket_name_is_named_with_the_variable_that_gave_it_before_any_call(aws, monkeypatch,
                                                                                                  capsys):
    monkeypatch.setenv("VECTOR_BUCKET", "b")
    monkeypatch.setenv("VECTOR_INDEX", "docs")

    line = fails_with_one_line(ask.main, ["Anything?"], capsys)

    assert line.startswith("VECTOR_BUCKET='b' is not a valid name for the vector bucket (vector bucket name 'b' "
                           "must be 3..63 characters long): correct it")
    assert aws.recorder.calls == []  # not even the stack outputs were read
    assert documented(line)


def test_a_huge_invalid_index_name_is_refused_in_a_bounded_line(aws, capsys):
    argv = ["--vector-bucket", "rag-vectors", "--vector-index", "X" * 100_000, "Anything?"]
    line = fails_with_one_line(ask.main, argv, capsys)

    assert line.startswith("--vector-index='XXX") and "is not a valid name for the vector index" in line
    assert len(line) < 1_000


def test_a_request_botocore_refuses_keeps_its_whole_report_on_one_line(aws, monkeypatch, capsys):
    monkeypatch.setenv("DEAD_LETTER_BUCKET", "not a bucket!")

    line = fails_with_one_line(redrive.main, ["list"], capsys)

    assert line.startswith("invalid AWS request parameter (S3 ListObjectsV2 on dead-letter bucket not a bucket!): "
                           'Invalid bucket name "not a bucket!": Bucket name must match the regex')
    assert line.endswith(": correct the value given by its flag or environment variable")
    assert documented(line)


def test_a_long_parameter_report_is_kept_line_by_line_and_bounded():
    from botocore.exceptions import ParamValidationError

    report = "Invalid length for parameter vectorBucketName, value: 1, valid min length: 3\n" + \
             "Invalid type for parameter topK, value: " + "9" * 100_000 + ", type: <class 'str'>"
    cause = ParamValidationError(report=report)
    error = classify(cause, action="S3 Vectors QueryVectors")
    error.__cause__ = cause

    line = explain(error, region="us-east-1")

    assert line.startswith("invalid AWS request parameter (S3 Vectors QueryVectors): Invalid length for parameter "
                           "vectorBucketName, value: 1, valid min length: 3; Invalid type for parameter topK")
    assert "\n" not in line and len(line) < 1_000
    assert documented(line)


def test_a_stream_that_does_not_exist_is_named_with_its_region_and_where_its_name_comes_from(aws, capsys):
    line = fails_with_one_line(put_event.main, ["some text", "--stream-name", "missing-stream"], capsys)

    assert line.startswith("Kinesis stream missing-stream was not found in us-east-1: ")
    assert all(fix in line for fix in ("--region", "--stream-name", "STREAM_NAME", "StreamName"))
    assert documented(line)


def test_bulk_sending_to_a_stream_that_does_not_exist_stops_at_once_and_names_it(aws, tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"doc_id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(3)))

    code = put_event.main(["--file", str(events), "--stream-name", "missing-stream"])

    err = capsys.readouterr().err
    assert code == 1
    assert "Kinesis stream missing-stream was not found in us-east-1" in err and "Traceback" not in err
    assert len([c for c in aws.recorder.calls if c[1] == "PutRecords"]) == 1  # not retried: no retry can fix it


def test_a_stack_that_is_not_deployed_is_named(aws, capsys):
    line = fails_with_one_line(put_event.main, ["some text"], capsys)

    assert line.startswith("stack RealtimeRag is not deployed in us-east-1: run `make deploy`")
    assert documented(line)


# the README lists them all
def test_every_message_the_command_line_words_is_in_the_troubleshooting_table():
    missing = []
    for key, template in hints.MESSAGES.items():
        if template.startswith("{"):
            continue  # adds a fix to a message of its own (the lower layer's message is the row)
        fields = {name.split("!")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
        sample = template.format(**{name: " in us-east-1" if name == "where" else "sample" for name in fields})
        if not documented(sample):
            missing.append(f"{key}: {sample}")
    assert not missing, "add rows to README's Troubleshooting table for:\n" + "\n".join(missing)


def _strings_outside_message_calls(node: ast.AST) -> list[str]:
    """The string literals in ``node`` but in calls to ``message`` (whose arguments are a key and fields)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "message":
        return []
    if isinstance(node, ast.JoinedStr):
        return [ast.unparse(node)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return [s for child in ast.iter_child_nodes(node) for s in _strings_outside_message_calls(child)]


@pytest.mark.parametrize("module", ["common.py", "resources.py"])
def test_the_command_line_words_its_errors_only_through_the_message_table(module):
    """So the test above sees every message: an error raised, or a line ``explain`` returns, is worded by
    ``hints.message`` (or passes on the text of a typed error, which names its own fix)."""
    tree = ast.parse((CLI / module).read_text())
    worded_elsewhere = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(function):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                worded_elsewhere += _strings_outside_message_calls(node.exc.args[0])
            if function.name == "explain" and isinstance(node, ast.Return) and node.value is not None:
                worded_elsewhere += _strings_outside_message_calls(node.value)
    assert worded_elsewhere == []


def test_the_table_has_no_row_for_the_old_misleading_messages():
    written = [w for w, _ in troubleshooting_patterns()]

    assert not [w for w in written if "is not available in" in w or w.startswith("the Kinesis stream was not found")]


def test_every_redrive_fix_has_its_command_line_wording():
    from rtrag.cli.hints import FIX_HINTS, with_fix
    from rtrag.workflows.redrive import Fix

    assert set(FIX_HINTS) == {fix.name for fix in Fix}
    assert with_fix("already redriven", Fix.FORCE) == "already redriven (--force sends it again)"


def test_the_scripts_common_modules_load_neither_the_workflows_nor_local_mode():
    import subprocess
    import sys

    loaded = "sorted(m for m in sys.modules if m.startswith(('rtrag.workflows', 'rtrag.local')))"
    code = ("import sys; from rtrag.cli import common, hints, resources; from rtrag.core.errors import UserError;"
            f" print({loaded}); hints.workflow_hint(UserError('x')); print({loaded})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = done.stdout.strip().splitlines()
    assert before == "[]"  # the workflows load only to word one of their errors
    assert "rtrag.local" not in after  # local mode's errors are matched only where local mode is loaded
