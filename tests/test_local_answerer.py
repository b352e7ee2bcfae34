"""The extractive answerer quotes the sentences that answer, cites them, and says when nothing does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rtrag.local.answerer import NOT_FOUND, ExtractiveAnswerer, split_sentences

SEED = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
SEED_QUESTION = "When does Project Nimbus v3 ship and what does it drop?"
CORPUS = {
    "nimbus-about": "Nimbus is a weather service for farmers. It sends frost alerts by text message.",
    "leave-policy": "Staff receive 25 days of paid leave per year. Unused days expire at the end of March.",
    "capex": "Our capital expenditure grew by 12% last quarter. The board approved next year's budget.",
    "refunds": "Customers can return products within 30 days for a full refund.",
    "eiffel": "The Eiffel Tower is in Paris. It was finished in 1889.",
}


def hit(doc_id: str, text: str, distance: float = 0.4, chunk: int = 0) -> dict:
    return {"key": f"{doc_id}#{chunk}", "doc_id": doc_id, "chunk": chunk, "distance": distance,
            "source": "handbook", "source_text": text}


@pytest.fixture(scope="module")
def answerer():
    return ExtractiveAnswerer()


def test_seed_question_is_answered_with_the_seed_sentence_cited(answerer):
    hits = [hit("nimbus-v3", SEED, 0.3)] + [hit(d, t) for d, t in CORPUS.items()]

    result = answerer.answer(SEED_QUESTION, hits)

    assert result.found
    assert result.text == f"{SEED} [nimbus-v3]"
    assert [q.doc_id for q in result.quotes] == ["nimbus-v3"]
    assert result.sources == [hits[0]]


def test_unrelated_question_says_the_answer_is_not_in_the_documents(answerer):
    hits = [hit("nimbus-v3", SEED)] + [hit(d, t) for d, t in CORPUS.items()]

    result = answerer.answer("What is the capital of France?", hits)

    assert not result.found
    assert result.text == NOT_FOUND
    assert result.quotes == [] and result.sources == []


def test_no_hits_at_all_is_not_found(answerer):
    result = answerer.answer(SEED_QUESTION, [])

    assert (result.found, result.text) == (False, NOT_FOUND)


def test_answer_quotes_only_the_relevant_sentence_of_a_longer_passage(answerer):
    passage = ("The handbook covers many topics. " + CORPUS["leave-policy"] + " Parking is free for visitors.")

    result = answerer.answer("How many vacation days do employees get?", [hit("leave-policy", passage)])

    assert result.text == "Staff receive 25 days of paid leave per year. [leave-policy]"


def test_sentence_leaning_on_the_previous_one_is_quoted_with_it(answerer):
    result = answerer.answer("When was the Eiffel Tower finished?", [hit("eiffel", CORPUS["eiffel"])])

    assert result.text == "The Eiffel Tower is in Paris. It was finished in 1889. [eiffel]"


def test_each_quote_is_cited_with_its_own_document(answerer):
    hits = [hit("nimbus-v3", SEED), hit("nimbus-python", "Nimbus v3 requires Python 3.10 or later.")]

    result = answerer.answer("Which Python versions does Nimbus v3 support?", hits)

    assert result.found
    assert f"{SEED} [nimbus-v3]" in result.text
    assert "Nimbus v3 requires Python 3.10 or later. [nimbus-python]" in result.text
    assert {id(s) for s in result.sources} == {id(h) for h in hits}


def test_a_sentence_repeated_by_overlapping_chunks_is_quoted_once(answerer):
    hits = [hit("nimbus-v3", SEED, chunk=0), hit("nimbus-v3", f"{SEED} More notes follow.", chunk=1)]

    result = answerer.answer(SEED_QUESTION, hits)

    assert result.text.count(SEED) == 1


def test_hits_may_be_raw_query_results_or_objects(answerer):
    raw = {"key": "nimbus-v3#0", "distance": 0.2,
           "metadata": {"doc_id": "nimbus-v3", "source": "release-notes", "source_text": SEED}}
    obj = SimpleNamespace(key="nimbus-v3#0", doc_id="nimbus-v3", source="release-notes", text=SEED, distance=0.2)

    assert answerer.answer(SEED_QUESTION, [raw]).text == f"{SEED} [nimbus-v3]"
    assert answerer.answer(SEED_QUESTION, [obj]).text == f"{SEED} [nimbus-v3]"


def test_on_text_receives_the_answer(answerer):
    seen = []

    result = answerer.answer(SEED_QUESTION, [hit("nimbus-v3", SEED)], on_text=seen.append)

    assert seen == [result.text]


def test_sentences_split_at_sentence_ends_and_lines_but_not_inside_numbers():
    text = "Version 3.9 is dropped. E.g. this stays whole.\n- First item\n\"Quoted.\" Next one? yes"

    assert split_sentences(text) == ["Version 3.9 is dropped.", "E.g. this stays whole.", "- First item",
                                     "\"Quoted.\"", "Next one? yes"]
