"""A version from the future would freeze its document (the greatest version wins, so no later update or delete
could win over it): a ts more than a day (MAX_TS_SKEW_SECONDS) ahead of the record's arrival is refused, by the
scripts before anything is sent and by the indexer with a dead letter, saying "milliseconds" where it looks so."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run
from kinesis import ARRIVAL, batch
from test_indexer import dead_letters, vectors

from rtrag.core.errors import InvalidEvent
from rtrag.core.events import check_not_ahead, validate_event

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400


def event(ts: int) -> object:
    return validate_event({"doc_id": "d", "text": "t", "ts": ts}, default_ts=0)


@pytest.mark.parametrize("ts, fragment", [
    (int(ARRIVAL) + 2 * DAY, "2 days ahead of the record's arrival"),
    (4_102_444_800, "74 years ahead"),  # 2100-01-01
])
def test_a_ts_too_far_ahead_of_its_arrival_is_refused_with_the_reason(ts, fragment):
    with pytest.raises(InvalidEvent, match="would freeze the document") as refused:
        check_not_ahead(event(ts), arrival=ARRIVAL, max_skew_seconds=DAY)
    assert fragment in refused.value.reason


def test_a_ts_in_milliseconds_is_refused_as_such_whatever_the_skew():
    with pytest.raises(InvalidEvent, match="it looks like milliseconds: send seconds since the epoch"):
        event(int(ARRIVAL * 1000))


def test_a_ts_within_the_skew_or_in_the_past_is_accepted():
    for ts in (0, int(ARRIVAL) - 10 * DAY, int(ARRIVAL), int(ARRIVAL) + DAY):
        check_not_ahead(event(ts), arrival=ARRIVAL, max_skew_seconds=DAY)


def test_the_indexer_dead_letters_a_future_version_and_indexes_the_rest(env):
    response = run(batch({"doc_id": "frozen", "text": "From the future.", "ts": int(ARRIVAL) + 3 * DAY},
                         {"doc_id": "fine", "text": "From now.", "ts": int(ARRIVAL)}))

    assert response == {"batchItemFailures": []}
    assert list(vectors(env)) == ["fine#0"]
    [letter] = dead_letters(env)
    assert letter["doc_id"] == "frozen" and "3 days ahead of the record's arrival" in letter["reason"]


def test_the_skew_is_a_setting_of_the_function(env, monkeypatch):
    import indexer

    monkeypatch.setenv("MAX_TS_SKEW_SECONDS", str(4 * DAY))
    indexer.handler.reset()

    run(batch({"doc_id": "soon", "text": "Three days ahead is allowed now.", "ts": int(ARRIVAL) + 3 * DAY}))

    assert list(vectors(env)) == ["soon#0"] and dead_letters(env) == []


def test_put_event_refuses_a_ts_in_milliseconds_in_one_line_and_sends_nothing(cli):
    import time

    result = cli("put_event.py", "--local", "Some text.", "doc-1", "--ts", str(int(time.time() * 1000)))

    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: event for doc_id 'doc-1' is invalid: ts=") and "looks like milliseconds" in line


def test_put_event_refuses_a_year_2100_version_before_sending(cli):
    result = cli("put_event.py", "--local", "Some text.", "doc-1", "--ts", "4102444800")

    assert result.returncode == 1 and "would freeze the document" in result.stderr
    asked = cli("ask.py", "--local", "--json", "--no-generate", "text?")
    assert asked.returncode == 1 and "the local index" in asked.stderr and "is empty" in asked.stderr, \
        "nothing was put"
