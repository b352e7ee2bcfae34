"""ask.py and evaluate.py in local mode on an index nothing was indexed into: they say so, and how to fill it,
instead of answering "not in the indexed documents"."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from rtrag.workflows.answering import NOT_FOUND
from scripts import ask, evaluate, put_event

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(ROOT)  # the command the message names is relative to the repository, as the README runs it
    return tmp_path / "state"


def test_asking_an_empty_local_index_says_it_is_empty_and_the_command_that_fills_it(local, capsys):
    code = ask.main(["--local", "When does Project Nimbus v3 ship?"])

    captured = capsys.readouterr()
    assert code == 1 and NOT_FOUND not in captured.out
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"error: the local index ({local / 'index'}) is empty: nothing has been indexed into it: "
                           "put documents first")
    # The command it names fills the index, after which the same question is answered from it.
    command = line.split("`")[1]
    assert command == "python scripts/put_event.py --local --file scripts/sample_corpus.jsonl"
    assert put_event.main(shlex.split(command)[2:]) == 0
    capsys.readouterr()
    assert ask.main(["--local", "--json", "--no-generate", "What does the on-call rotation do?"]) == 0
    assert json.loads(capsys.readouterr().out)["passages"]


def test_evaluate_on_an_empty_local_index_says_so_too(local, capsys):
    assert evaluate.main(["--local"]) == 1
    err = capsys.readouterr().err
    assert "is empty: nothing has been indexed into it" in err and len(err.strip().splitlines()) == 1


def test_an_empty_named_index_names_the_replay_that_fills_it(local, capsys):
    (local / "indexes" / "chunks-new").mkdir(parents=True)

    assert ask.main(["--local", "--vector-index", "chunks-new", "a question"]) == 1

    assert ("local index 'chunks-new' (" in (err := capsys.readouterr().err)
            and "fill it with `python scripts/reindex.py --local --to-index --vector-index chunks-new`" in err)


def test_an_index_whose_documents_were_all_deleted_still_answers_not_found(local, capsys):
    assert put_event.main(["--local", "Project Nimbus ships v3 on 2026-08-14.", "nimbus"]) == 0
    assert put_event.main(["--local", "--delete", "nimbus"]) == 0
    capsys.readouterr()

    assert ask.main(["--local", "When does Project Nimbus v3 ship?"]) == 0
    assert NOT_FOUND in capsys.readouterr().out


def test_a_filter_that_matches_nothing_says_so_beside_the_answer(local, capsys):
    assert put_event.main(["--local", "The search team owns the query service.", "svc", "--source", "Handbook"]) == 0
    capsys.readouterr()

    assert ask.main(["--local", "--where", "source=handbook", "Who owns the query service?"]) == 0

    captured = capsys.readouterr()
    assert captured.out.strip() == NOT_FOUND
    assert captured.err.strip() == ("note: no indexed chunk matches the filter; check its keys and values (they are "
                                    "case-sensitive)")
    assert ask.main(["--local", "--where", "source=Handbook", "Who owns the query service?"]) == 0
    assert "note:" not in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--max-distance", "nan"], "--max-distance must be a cosine distance, 0..2 (got nan)"),
    (["--max-distance", "-1"], "--max-distance must be a cosine distance, 0..2 (got -1.0)"),
    (["--max-distance", "2.5"], "--max-distance must be a cosine distance, 0..2 (got 2.5)"),
    (["--no-generate", "--local-generator", "bedrock"], "--local-generator bedrock picks who answers"),
])
def test_ask_options_that_cannot_work_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        ask.parse_args(["--local", *argv, "Who?"])
    assert message in capsys.readouterr().err


def test_a_question_that_is_not_utf8_is_one_line(local, capsys):
    assert put_event.main(["--local", "The search team owns the query service.", "svc"]) == 0
    capsys.readouterr()

    assert ask.main(["--local", b"\xff\xfe who?".decode("utf-8", "surrogateescape")]) == 1

    assert capsys.readouterr().err.strip() == ("error: the question is not valid UTF-8 text: type it in a UTF-8 "
                                               "terminal or locale")


@pytest.mark.parametrize(("script", "argv", "message"), [
    ("ask", ["--local", "--vector-bucket", "b", "Who?"],
     "error: --vector-bucket names an AWS resource; local mode has one vector store and one embedder"),
    ("ask", ["--local", "--embed-model-id", "m", "Who?"], "error: --embed-model-id names an AWS resource"),
    ("redrive", ["list", "--local", "--dead-letter-bucket", "d"],
     "error: --dead-letter-bucket names an AWS resource; local mode has one stream and one dead-letter directory"),
    ("reindex", ["--local", "--to-index", "--archive-bucket", "a"],
     "error: --archive-bucket names an AWS resource; local mode has one of each"),
])
def test_a_flag_naming_an_aws_resource_is_refused_in_local_mode(local, capsys, script, argv, message):
    import importlib

    assert importlib.import_module(f"scripts.{script}").main(argv) == 1
    assert capsys.readouterr().err.strip().startswith(message)
    assert not (local / "stream").exists(), "refused before anything was opened"
