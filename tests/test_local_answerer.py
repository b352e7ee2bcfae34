"""The extractive answerer quotes the sentence that answers what a question asks, cites it, and otherwise says the
answer is not in the documents: near misses (another version, another year, "Series B" for "Series A", a topic
sentence with no name for "who") are refused; a question of two parts gets one sentence per part."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rtrag.local.answerer import NOT_FOUND, ExtractiveAnswerer
from rtrag.local.questions import DURATION, NAME, NAME_OR_NUMBER, NUMBER, WHEN, answer_kind, focus_words
from rtrag.workflows.text import question_parts, split_sentences

SEED = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
SEED_QUESTION = "When does Project Nimbus v3 ship and what does it drop?"
CORPUS = {
    "nimbus-about": "Nimbus is a weather service for farmers. It sends frost alerts by text message.",
    "leave-policy": "Staff receive 25 days of paid leave per year. Unused days expire at the end of March.",
    "capex": "Our capital expenditure grew by 12% last quarter. The board approved next year's budget.",
    "refunds": "Customers can return products within 30 days for a full refund.",
    "eiffel": "The Eiffel Tower is in Paris. It was finished in 1889.",
}


class Vocabulary:
    """Document frequencies over a small corpus, as the local index's FTS5 table gives them."""

    def __init__(self, texts):
        from rtrag.workflows.text import words

        self.docs = [set(words(t)) for t in texts]

    def document_frequencies(self, asked):
        return len(self.docs), {w: sum(w in d for d in self.docs) for w in asked}


def hit(doc_id: str, text: str, distance: float = 0.4, chunk: int = 0) -> dict:
    return {"key": f"{doc_id}#{chunk}", "doc_id": doc_id, "chunk": chunk, "distance": distance,
            "source": "handbook", "source_text": text}


@pytest.fixture(scope="module")
def answerer():
    return ExtractiveAnswerer(vocabulary=Vocabulary(list(CORPUS.values()) + [SEED]))


def test_seed_question_is_answered_with_the_seed_sentence_cited(answerer):
    hits = [hit("nimbus-v3", SEED, 0.3)] + [hit(d, t) for d, t in CORPUS.items()]

    result = answerer.answer(SEED_QUESTION, hits)

    assert result.found
    assert result.text == f"{SEED} [nimbus-v3]", "both parts answered by the one sentence, quoted once"
    assert [q.doc_id for q in result.quotes] == ["nimbus-v3"]
    assert result.sources == [hits[0]]


def test_unrelated_question_says_the_answer_is_not_in_the_documents(answerer):
    hits = [hit("nimbus-v3", SEED)] + [hit(d, t) for d, t in CORPUS.items()]

    result = answerer.answer("What is the capital of France?", hits)

    assert (result.found, result.text, result.quotes, result.sources) == (False, NOT_FOUND, [], [])


def test_no_hits_at_all_is_not_found(answerer):
    result = answerer.answer(SEED_QUESTION, [])
    assert (result.found, result.text) == (False, NOT_FOUND)


def test_only_the_answering_sentence_of_a_longer_passage_is_quoted(answerer):
    passage = "The handbook covers many topics. " + CORPUS["leave-policy"] + " Parking is free for visitors."

    result = answerer.answer("How many days of paid leave do staff receive?", [hit("leave-policy", passage)])

    assert result.text == "Staff receive 25 days of paid leave per year. [leave-policy]"


def test_sentence_leaning_on_the_previous_one_is_quoted_with_it(answerer):
    result = answerer.answer("When was the Eiffel Tower finished?", [hit("eiffel", CORPUS["eiffel"])])

    assert result.text == "The Eiffel Tower is in Paris. It was finished in 1889. [eiffel]"


def test_a_question_of_two_parts_is_answered_part_by_part_each_quote_cited(answerer):
    hits = [hit("refunds", CORPUS["refunds"]), hit("eiffel", CORPUS["eiffel"])]

    result = answerer.answer("How many days do customers have to return products, and when was the Eiffel Tower "
                             "finished?", hits)

    assert result.text == (f"{CORPUS['refunds']} [refunds] The Eiffel Tower is in Paris. It was finished in 1889. "
                           "[eiffel]")
    assert {id(s) for s in result.sources} == {id(h) for h in hits}


def test_a_question_of_two_parts_is_refused_when_one_part_has_no_answer(answerer):
    hits = [hit("refunds", CORPUS["refunds"]), hit("eiffel", CORPUS["eiffel"])]

    result = answerer.answer("How many days do customers have to return products, and who designed the Eiffel "
                             "Tower?", hits)

    assert result.text == NOT_FOUND, "no sentence names who designed it"


@pytest.mark.parametrize("question, text", [
    # another version of the same product
    ("When did Orbit 3.1 ship?", "Orbit 3.2 shipped on 2026-07-21 to all customers."),
    # a one-letter code is an identifier, not the article "a"
    ("Who led the company's Series A round?", "In June 2025 the company raised a Series B round led by Northgate "
                                              "Ventures."),
    # another year in the sentence instead of the one asked about
    ("How many incidents were declared in 2024?", "In 2025 the company declared 41 incidents."),
    # "who" needs a person's name; a sentence on the topic without one does not answer
    ("Who chairs the audit committee?", "The audit committee met four times in 2025."),
    # the thing asked for is not in the sentence
    ("How many engineers are on the search team?", "The search team serves 120 customers."),
    # what qualifies it is not around the sentence
    ("How many sick days do employees get?", "Every employee has 28 days of paid leave per year."),
    # "when" needs a time, not a percentage
    ("When do customers get their invoices?", "A failed invoice run affects more than 10 percent of customers."),
])
def test_near_misses_are_refused(question, text):
    # The index knows every word of the question from elsewhere: only then is its absence here evidence.
    answerer = ExtractiveAnswerer(vocabulary=Vocabulary([text, question, *CORPUS.values()]))

    result = answerer.answer(question, [hit("doc", text)])

    assert result.text == NOT_FOUND, result.quotes


@pytest.mark.parametrize("question, text", [
    ("When did Orbit 3.2 ship?", "Orbit 3.2 introduces offline mode. The release went out on 2026-07-21."),
    ("What is Ana Costa's job title?", "The process was approved by Dr. Ana Costa, Head of Reliability, in 2026."),
    ("How long are the nightly backups kept?", "Databases are backed up every night and kept for 35 days."),
    ("Which floor is the Lisbon office on?", "The Lisbon office is on the fourth floor of Rua Augusta 100."),
])
def test_answers_say_the_kind_of_thing_asked_for(question, text):
    answerer = ExtractiveAnswerer(vocabulary=Vocabulary([text, *CORPUS.values()]))

    result = answerer.answer(question, [hit("doc", text)])

    assert result.found and result.text == f"{text} [doc]"


@pytest.mark.parametrize("question, kind", [
    ("When does it ship?", WHEN), ("What time do backups start?", WHEN), ("How long are logs kept?", DURATION),
    ("How many engineers are there?", NUMBER), ("How much does it cost?", NUMBER), ("Who owns billing?", NAME),
    ("Which floor is it on?", NAME_OR_NUMBER), ("Where is the office?", NAME_OR_NUMBER), ("What does it drop?", None),
])
def test_the_kind_of_answer_follows_the_question_word(question, kind):
    assert answer_kind(question) == kind


def test_the_focus_is_the_noun_asked_for_and_stops_before_a_clause():
    assert focus_words("How many leave days can I roll over?") == ["leave", "days"]
    assert focus_words("What's the biggest single document Atlas will accept?") == ["biggest", "single", "document"]
    assert focus_words("What's Ana Costa's job title?") == ["ana", "costa", "job", "title"]
    assert focus_words("When does it ship?") == []


def test_question_parts_divide_at_a_second_question_not_inside_one():
    assert question_parts("When did Orbit 3.0 launch, and when did Orbit 3.2 go out?") == [
        "When did Orbit 3.0 launch", "when did Orbit 3.2 go out"]
    assert question_parts("How long is A kept, compared with how long B is kept?") == [
        "How long is A kept", "how long B is kept"]
    assert question_parts("Which bread and butter do we buy?") == ["Which bread and butter do we buy"]


def test_a_sentence_repeated_by_overlapping_chunks_is_quoted_once(answerer):
    hits = [hit("nimbus-v3", SEED, chunk=0), hit("nimbus-v3", f"{SEED} More notes follow.", chunk=1)]

    assert answerer.answer(SEED_QUESTION, hits).text.count(SEED) == 1


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


def test_sentences_split_where_they_end_not_at_abbreviations_initials_versions_or_clock_times():
    text = ("No. 4 \"Brenna\" is an 0-6-2T tank engine built in 1898. Dr. J. R. R. Tolkien wrote it. Atlas v2.1 "
            "shipped, e.g. in Lisbon. Revenue was approx. 41.3 million euros. The review is at 10:30 a.m. CET on "
            "Tuesdays.\n- First item\nNext one? yes")

    assert split_sentences(text) == [
        "No. 4 \"Brenna\" is an 0-6-2T tank engine built in 1898.", "Dr. J. R. R. Tolkien wrote it.",
        "Atlas v2.1 shipped, e.g. in Lisbon.", "Revenue was approx. 41.3 million euros.",
        "The review is at 10:30 a.m. CET on Tuesdays.", "- First item", "Next one?", "yes"]
