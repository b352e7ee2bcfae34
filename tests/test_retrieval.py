"""Hybrid retrieval (rtrag.workflows.retrieval): a chunk the dense ranking buries is brought up by its words, on
the local index's own full-text table and, for S3 Vectors (which has none), within the dense candidates; each
part of a two-part question gets its own chunks; the local lexical table follows every write and delete."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from rtrag.local.index import DB_FILE, LocalVectorIndex
from rtrag.workflows.retrieval import lexical_ranking, retrieve
from rtrag.workflows.text import reciprocal_rank_fusion

DIM = 4
BURIED = "The dead-letter bucket keeps undeliverable batches for 400 days."


def chunk(key: str, text: str, distance: float) -> dict:
    return {"key": key, "distance": distance, "metadata": {"doc_id": key.split("#")[0], "source_text": text}}


class DenseOnly:
    """An index with no full-text search (like S3 Vectors): the buried chunk comes 16th of 20 by distance."""

    def __init__(self):
        texts = [f"General note {i} about the platform and its teams." for i in range(19)]
        self.results = [chunk(f"note-{i}#0", t, 0.30 + i / 100) for i, t in enumerate(texts[:15])]
        self.results.append(chunk("retention#0", BURIED, 0.46))
        self.results += [chunk(f"note-{i}#0", t, 0.47 + i / 100) for i, t in enumerate(texts[15:], start=15)]
        self.requests: list[dict] = []

    def query(self, vector, *, top_k, filter=None, return_metadata=True):
        self.requests.append({"top_k": top_k, "filter": filter})
        return self.results[:top_k]


class Flat:
    def embed(self, text):
        return [1.0, 0.0, 0.0, 0.0]


def test_a_chunk_the_dense_ranking_buries_is_re_ranked_into_the_top_3_by_its_words():
    index = DenseOnly()

    found = retrieve("How long does the dead-letter bucket keep batches?", embedder=Flat(), index=index, top_k=3)

    assert [h.key for h in found.hits][:1] == ["retention#0"]
    assert len(found.hits) == 3 and index.requests == [{"top_k": 20, "filter": None}]


def test_lexical_ranking_orders_the_candidates_sharing_the_question_s_words_by_bm25():
    hits = retrieve("x", embedder=Flat(), index=DenseOnly(), top_k=20, candidates=20).hits

    ranking = lexical_ranking("dead-letter retention of batches", hits)

    assert ranking == ["retention#0"], "only the chunk holding the words ranks; the others share none"
    assert lexical_ranking("the of and", hits) == [], "no content word: no lexical ranking"


def test_reciprocal_rank_fusion_rewards_agreement_between_rankings():
    assert reciprocal_rank_fusion([["a", "b", "c"], ["c", "b"], ["b"]]) == ["b", "c", "a"]


@pytest.fixture
def local(tmp_path):
    index = LocalVectorIndex.open(tmp_path / "index", dimension=DIM)
    yield index
    index.close()


def vector(key: str, text: str, data=(1.0, 0.0, 0.0, 0.0), **metadata) -> dict:
    return {"key": key, "data": {"float32": list(data)}, "metadata": {"source_text": text, **metadata}}


def test_the_local_index_finds_by_words_what_its_vectors_rank_last(local):
    local.put([vector(f"near-{i}#0", f"Unrelated note {i}.", (1.0, 0.0, 0.0, 0.0)) for i in range(30)] +
              [vector("far#0", BURIED, (0.0, 0.0, 1.0, 0.0))])

    dense = [h["key"] for h in local.query([1.0, 0.0, 0.0, 0.0], top_k=30)]
    found = retrieve("How long are undeliverable batches kept in the dead-letter bucket?", embedder=Flat(),
                     index=local, top_k=3)

    assert "far#0" not in dense, "the dense ranking alone never reaches it"
    [far] = [h for h in found.hits if h.key == "far#0"]
    assert len(found.hits) == 3 and far.distance == pytest.approx(1.0), "kept though far: it holds the words"


def test_the_lexical_table_follows_overwrites_deletes_and_filters(local):
    local.put([vector("a#0", "Backups are kept for 35 days.", team="platform"),
               vector("b#0", "Backups are encrypted.", team="security")])

    def keys(text, **kwargs):
        return [h["key"] for h in local.text_query(text, vector=[1.0, 0.0, 0.0, 0.0], top_k=5, **kwargs)]

    assert keys("backups") == ["a#0", "b#0"] or keys("backups") == ["b#0", "a#0"]
    assert keys("backups", filter={"team": "security"}) == ["b#0"]
    local.put([vector("a#0", "Invoices are sent monthly.", team="platform")])
    assert keys("backups") == ["b#0"] and keys("invoices") == ["a#0"]
    local.delete(["b#0"])
    assert keys("backups") == [] and local.document_frequencies(["invoices", "backups"]) == (1, {"invoices": 1,
                                                                                                  "backups": 0})


def test_an_index_of_the_first_format_gets_its_lexical_table_when_opened(tmp_path):
    path = tmp_path / "index"
    with LocalVectorIndex.open(path, dimension=DIM) as index:
        index.put([vector("a#0", "Backups are kept for 35 days.")])
    with sqlite3.connect(path / DB_FILE) as conn:  # what format 1 looked like: no lexical table
        conn.execute("DROP TABLE lexical")
        conn.execute("UPDATE params SET value = '1' WHERE name = 'schema_version'")
    conn.close()

    with LocalVectorIndex.open(path) as index:
        assert [h["key"] for h in index.text_query("backups", vector=[1.0, 0, 0, 0], top_k=3)] == ["a#0"]
    with sqlite3.connect(path / DB_FILE) as conn:
        assert json.loads(conn.execute("SELECT value FROM params WHERE name = 'schema_version'").fetchone()[0]) == 2
    conn.close()


def test_each_part_of_a_two_part_question_gets_its_own_chunks(local):
    local.put([vector("orbit#0", "Orbit 3.0 launched on 9 September 2025."),
               vector("comet#0", "Comet 1.4 shipped on 2026-06-09."),
               vector("noise#0", "Orbit and Comet are products.")])

    found = retrieve("When did Orbit 3.0 launch, and when did Comet 1.4 ship?", embedder=Flat(), index=local,
                     top_k=1)

    assert {h.key for h in found.hits} == {"orbit#0", "comet#0"}, "top_k chunks for each part"


def test_a_text_of_too_many_parts_is_one_part_and_the_chunks_stay_within_the_query_limit():
    from rtrag.core.limits import MAX_TOP_K
    from rtrag.workflows.text import MAX_QUESTION_PARTS, question_parts

    pasted = "What does this error mean: ERROR db=orders; host=pg-1; port=5432; user=app; sslmode=require; " \
             "timeout=30s; retries=3; pool=20; state=FATAL?"
    assert len(pasted.split(";")) > MAX_QUESTION_PARTS
    assert question_parts(pasted) == [pasted]
    index = DenseOnly()
    retrieve(pasted, embedder=Flat(), index=index, top_k=3)
    assert len(index.requests) == 1, "one part, one query"

    class EachPartItsOwn(DenseOnly):
        """Every query returns chunks no other query returned."""

        def query(self, vector, *, top_k, filter=None, return_metadata=True):
            start = len(self.requests) * top_k
            self.requests.append({"top_k": top_k})
            return [chunk(f"c{i}#0", f"Chunk {i}.", 0.1) for i in range(start, start + top_k)]

    most = "; ".join(f"who owns service {i}" for i in range(MAX_QUESTION_PARTS))
    found = retrieve(most, embedder=Flat(), index=EachPartItsOwn(), top_k=MAX_TOP_K)
    assert len(found.hits) + len(found.dropped) == MAX_TOP_K  # not 8 x 100: the prompt stays bounded


# 4,001 characters, or 2,001 emoji (8,004 bytes of UTF-8: a byte-level tokenizer's 8,004 tokens), are refused.
@pytest.mark.parametrize("question, fragment", [
    ("x" * 4_001, "the question is 4001 characters (4001 bytes of UTF-8); ask in at most"),
    ("😀" * 2_001, "the question is 2001 characters (8004 bytes of UTF-8); ask in at most"),
    (" \n ", "the question is empty: ask something"),
])
def test_a_question_titan_would_refuse_is_refused_before_any_call(question, fragment):
    from rtrag.core.errors import UserError
    from rtrag.workflows.retrieval import MAX_QUESTION_BYTES, MAX_QUESTION_CHARS

    assert (MAX_QUESTION_CHARS, MAX_QUESTION_BYTES) == (4_000, 8_000)
    index = DenseOnly()
    with pytest.raises(UserError, match=re.escape(fragment)):
        retrieve(question, embedder=Flat(), index=index)
    assert index.requests == []
    assert retrieve("😀" * 2_000, embedder=Flat(), index=index) is not None, "8,000 bytes are asked"
