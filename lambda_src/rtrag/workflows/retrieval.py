"""Finding the chunks to answer from: hybrid retrieval on both backends.

A question's candidates come from up to three rankings, fused by reciprocal rank fusion
(``rtrag.workflows.text.reciprocal_rank_fusion``):

1. dense: the index's nearest chunks to the question's embedding (S3 Vectors' QueryVectors, or the local index);
2. lexical: BM25 on the question's words (SQLite FTS5): over the whole index when it has a full-text table (the
   local index's ``text_query``), else over the dense candidates (S3 Vectors has none), which re-ranks them so a
   chunk holding the question's rare words moves up;
3. sentences (when a sentence embedder is given, as local mode's is free): each candidate scored by its best
   sentence, so one relevant sentence inside a long chunk is not averaged away.

The first ``top_k`` of the fused order are the hits. A hit farther than ``max_distance`` that matched none of
the question's words lexically is dropped as unrelated.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rtrag.core.contract import MAX_CHUNK_BYTES
from rtrag.core.errors import RagError, UserError
from rtrag.core.events import SOURCE_TEXT_KEY, has_surrogate
from rtrag.core.limits import MAX_TOP_K
from rtrag.workflows.text import fts_query, question_parts, reciprocal_rank_fusion, split_sentences

DEFAULT_TOP_K = 3
# Candidates each ranking contributes before fusion: enough to bring a chunk the dense ranking puts 16th into the
# top 3 when its words match.
DEFAULT_CANDIDATES = 20
# Cosine distance above which a chunk that matched none of the question's words is not relevant (Titan V2).
DEFAULT_MAX_DISTANCE = 0.8
# The offline embedder spreads distances wider; in local mode the extractive answerer judges relevance sentence
# by sentence, so retrieval only drops what is clearly unrelated.
LOCAL_MAX_DISTANCE = 0.95


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk."""

    key: str
    distance: float
    doc_id: str
    chunk: int
    source: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_query(cls, raw: dict[str, Any]) -> Hit:
        meta = raw.get("metadata") or {}
        doc_id, _, chunk = raw["key"].rpartition("#")
        return cls(key=raw["key"], distance=float(raw.get("distance") or 0.0), doc_id=meta.get("doc_id", doc_id),
                   chunk=int(meta.get("chunk", chunk or 0)), source=str(meta.get("source", "unknown")),
                   text=str(meta.get(SOURCE_TEXT_KEY, "")),
                   metadata={k: v for k, v in meta.items() if k != SOURCE_TEXT_KEY})

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("text")
        return out


class QuestionEmbedder(Protocol):
    def embed(self, text: str) -> list[float]: ...


class SentenceEmbedder(Protocol):
    def embed_many(self, texts: Sequence[str]) -> list[list[float] | RagError]: ...


class QueryIndex(Protocol):
    def query(self, vector: Sequence[float], *, top_k: int, filter: dict[str, Any] | None = None,
              return_metadata: bool = True) -> list[dict[str, Any]]: ...


class TextQueryIndex(QueryIndex, Protocol):
    """An index with its own full-text search (the local index)."""

    def text_query(self, text: str, *, vector: Sequence[float], top_k: int,
                   filter: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


@dataclass
class Retrieval:
    hits: list[Hit]  # what to answer from, best first
    dropped: list[Hit]  # retrieved, but far from the question and sharing none of its words
    embed_ms: float
    query_ms: float  # everything after the question's embedding: queries, lexical ranking, fusion


# Titan V2 embeds at most 8,192 tokens (aws-facts); a token is at least one character in practice, and at least one
# byte of UTF-8 for a byte-level tokenizer (an emoji can be 4): a question is far shorter than either bound, so a
# longer one is refused before any call instead of rejected by Titan.
MAX_QUESTION_CHARS = 4_000
MAX_QUESTION_BYTES = MAX_CHUNK_BYTES


def retrieve(question: str, *, embedder: QuestionEmbedder, index: QueryIndex, top_k: int = DEFAULT_TOP_K,
             filter: dict[str, Any] | None = None, max_distance: float = DEFAULT_MAX_DISTANCE,
             candidates: int = DEFAULT_CANDIDATES, sentence_embedder: SentenceEmbedder | None = None) -> Retrieval:
    """The ``top_k`` chunks to answer ``question`` from, by hybrid retrieval (see the module docstring). A question
    of several parts ("When did A launch, and when did B go out?") is retrieved part by part: ``top_k`` chunks for
    each part (the parts' best chunks taking turns), so each part has its own chunks to be answered from."""
    if not question.strip():
        raise UserError("the question is empty: ask something, e.g. \"When is the next release?\"")
    if has_surrogate(question):
        raise UserError("the question is not valid UTF-8 text: type it in a UTF-8 terminal or locale")
    size = len(question.encode("utf-8"))
    if len(question) > MAX_QUESTION_CHARS or size > MAX_QUESTION_BYTES:
        raise UserError(f"the question is {len(question)} characters ({size} bytes of UTF-8); ask in at most "
                        f"{MAX_QUESTION_CHARS} characters and {MAX_QUESTION_BYTES} bytes (it is embedded whole, and "
                        "Titan takes at most 8,192 tokens)")
    start = time.perf_counter()
    texts = question_parts(question)  # at most MAX_QUESTION_PARTS: each costs an embedding and its own queries
    vectors = [embedder.embed(text) for text in texts]
    embedded = time.perf_counter()
    pool = min(MAX_TOP_K, max(top_k, candidates))
    by_key: dict[str, Hit] = {}
    matched: set[str] = set()
    orders = []
    for text, vector in zip(texts, vectors):
        order, lexical = _fused(text, vector, index=index, pool=pool, filter=filter, by_key=by_key,
                                sentence_embedder=sentence_embedder)
        orders.append(order)
        matched.update(lexical)
    # At most MAX_TOP_K chunks in all, whatever the number of parts: 100 chunks of 2,000 characters are about 50K
    # tokens, well inside Nova Lite's 300K-token context (aws-facts); answering.fit_prompt bounds larger ones.
    fused = [by_key[key] for key in _take_turns(orders, min(MAX_TOP_K, top_k * len(orders)))]
    done = time.perf_counter()
    return Retrieval(hits=[h for h in fused if h.distance <= max_distance or h.key in matched],
                     dropped=[h for h in fused if h.distance > max_distance and h.key not in matched],
                     embed_ms=(embedded - start) * 1000, query_ms=(done - embedded) * 1000)


def _fused(text: str, vector: Sequence[float], *, index: QueryIndex, pool: int, filter: dict[str, Any] | None,
           by_key: dict[str, Hit], sentence_embedder: SentenceEmbedder | None) -> tuple[list[str], list[str]]:
    """One text's candidates in fused order, and those that matched its words lexically."""
    dense = [Hit.from_query(raw) for raw in index.query(vector, top_k=pool, filter=filter)]
    for hit in dense:
        by_key.setdefault(hit.key, hit)
    text_query = getattr(index, "text_query", None)
    if text_query is not None:
        lexical = [Hit.from_query(raw) for raw in text_query(text, vector=vector, top_k=pool, filter=filter)]
        for hit in lexical:
            by_key.setdefault(hit.key, hit)
        lexical_keys = [hit.key for hit in lexical]
        pooled = {hit.key: hit for hit in dense + lexical}
    else:
        lexical_keys = lexical_ranking(text, dense)
        pooled = {hit.key: hit for hit in dense}
    rankings = [[hit.key for hit in dense], lexical_keys]
    if sentence_embedder is not None:
        rankings.append(sentence_ranking(vector, list(pooled.values()), sentence_embedder))
    return reciprocal_rank_fusion(rankings), lexical_keys


def _take_turns(orders: list[list[str]], top_k: int) -> list[str]:
    """The first ``top_k`` keys taking one from each order in turn, each key once."""
    out: list[str] = []
    for rank in range(max(len(order) for order in orders)):
        for order in orders:
            if rank < len(order) and order[rank] not in out:
                out.append(order[rank])
                if len(out) == top_k:
                    return out
    return out


def lexical_ranking(question: str, hits: Sequence[Hit]) -> list[str]:
    """The keys of the ``hits`` that share a word with ``question``, by BM25 over the hits' texts (FTS5 in memory:
    the same engine and stemmer as the local index's full-text table)."""
    match = fts_query(question)
    if match is None or not hits:
        return []
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE VIRTUAL TABLE passages USING fts5(text, "
                     "tokenize = 'porter unicode61 remove_diacritics 2')")
        conn.executemany("INSERT INTO passages (rowid, text) VALUES (?, ?)",
                         [(i, hit.text) for i, hit in enumerate(hits)])
        rows = conn.execute("SELECT rowid FROM passages WHERE passages MATCH ? ORDER BY bm25(passages)",
                            (match,)).fetchall()
    conn.close()
    return [hits[rowid].key for (rowid,) in rows]


def sentence_ranking(question_vector: Sequence[float], hits: Sequence[Hit], embedder: SentenceEmbedder) -> list[str]:
    """The hits' keys ordered by the cosine similarity of their best sentence to the question."""
    sentences: list[tuple[int, str]] = [(i, s) for i, hit in enumerate(hits) for s in split_sentences(hit.text)]
    if not sentences:
        return []
    vectors = embedder.embed_many([s for _, s in sentences])
    best = [-math.inf] * len(hits)
    for (i, _), sentence_vector in zip(sentences, vectors):
        if not isinstance(sentence_vector, RagError):
            best[i] = max(best[i], cosine(question_vector, sentence_vector))
    order = sorted(range(len(hits)), key=lambda i: -best[i])
    return [hits[i].key for i in order if best[i] > -math.inf]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
