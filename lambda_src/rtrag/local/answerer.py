"""An extractive answerer for local mode: quotes the retrieved passages' sentences that answer the question.

No language model runs: the answer is made of sentences copied from the indexed documents, each cited with its
document id, so it can never say anything the documents do not.

How sentences are scored (``score = 0.6 * similarity + 0.4 * overlap``):

- ``similarity``: cosine similarity of the question's and the sentence's embeddings (the local embedder);
- ``overlap``: the share of the question's content words (stop words removed, plurals folded) that the sentence
  contains.

A sentence that opens with a pronoun ("It was finished in 1889.") is scored and quoted together with the sentence
before it, which says what "it" is.

A sentence is relevant when its score reaches ``min_score`` (default 0.40). Calibrated with the WordLlama
embedder on question/sentence pairs: sentences that answer score about 0.44..0.86 (the seed's Nimbus sentence
0.86), sentences on another subject about 0.0..0.25, and near misses sharing one word or a topic ("capital
expenditure" for a question about a capital city, another sentence about Nimbus) about 0.35. When no sentence
reaches it the answer says the answer is not in the indexed documents. Among relevant sentences, those within
``relative_cutoff`` of the best one are quoted, best first, up to ``max_sentences``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtrag.core.errors import RagError
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.workflows.answering import NOT_FOUND

EXTRACTIVE_MODEL_ID = "local-extractive"
DEFAULT_MIN_SCORE = 0.40
DEFAULT_MAX_SENTENCES = 3
DEFAULT_RELATIVE_CUTOFF = 0.8
SIMILARITY_WEIGHT = 0.6
OVERLAP_WEIGHT = 0.4

# A sentence ends at . ! or ? (and any closing quotes or brackets) followed by space and a capital, digit or
# opening quote; "3.9" and "e.g. the" do not end one.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")
# A sentence opening with one of these leans on the one before ("It was finished in 1889."): it is scored and
# quoted together with that sentence.
_ANAPHORA = frozenset("it its this that these those they their them he his she her such there".split())
_WORD = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")
_STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing done down during each few for from further get gets got had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most much many my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through to too under until up very
was we were what when where which while who whom why will with would you your yours yourself yourselves tell
please know
""".split())


class SentenceEmbedder(Protocol):
    def embed_many(self, texts: Sequence[str]) -> list[list[float] | RagError]: ...


@dataclass(frozen=True)
class Quote:
    """One quoted sentence with where it comes from and how it scored."""

    sentence: str
    doc_id: str
    source: str
    key: str
    score: float
    similarity: float
    overlap: float


@dataclass
class ExtractiveAnswer:
    """The answer text (quotes with ``[doc_id]`` citations, or NOT_FOUND), whether anything relevant was found,
    the quotes, and the hits they come from (the objects given, in order of first use). ``model_id``,
    ``generate_ms`` and ``usage`` mirror the generative answer's fields."""

    text: str
    found: bool
    quotes: list[Quote]
    sources: list[Any]
    model_id: str = EXTRACTIVE_MODEL_ID
    generate_ms: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Passage:
    hit: Any
    doc_id: str
    source: str
    key: str
    text: str


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``: split at sentence ends and at line breaks (lists, headings)."""
    sentences = []
    for line in re.split(r"\s*\n\s*", text):
        for part in _SENTENCE_END.split(line.strip()):
            part = part.strip()
            if re.search(r"[A-Za-z0-9]", part):
                sentences.append(part)
    return sentences


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stop words, plurals folded ("ships" -> "ship")."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOP_WORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        words.add(word)
    return words


def _passage(hit: Any) -> _Passage:
    """Reads a hit given as a mapping (``doc_id``/``source_text`` fields, or a raw query result with
    ``metadata``) or as an object with ``doc_id``, ``text`` or ``source_text``, ``source`` and ``key``."""
    if isinstance(hit, Mapping):
        meta = hit.get("metadata") or {}

        def get(name: str, default: Any = None) -> Any:
            return hit.get(name, meta.get(name, default))
    else:
        def get(name: str, default: Any = None) -> Any:
            return getattr(hit, name, default)
    key = str(get("key", "") or "")
    doc_id = str(get("doc_id") or key.rpartition("#")[0] or key)
    text = get(SOURCE_TEXT_KEY)
    if text is None:
        text = get("text", "")
    return _Passage(hit=hit, doc_id=doc_id, source=str(get("source", "unknown")), key=key or f"{doc_id}#?",
                    text=str(text or ""))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


class ExtractiveAnswerer:
    """Answers from retrieved chunks by quoting their most relevant sentences (see the module docstring).

    ``embedder`` defaults to the local WordLlama embedder; any object with ``embed_many`` works.
    """

    def __init__(self, embedder: SentenceEmbedder | None = None, *, min_score: float = DEFAULT_MIN_SCORE,
                 max_sentences: int = DEFAULT_MAX_SENTENCES, relative_cutoff: float = DEFAULT_RELATIVE_CUTOFF):
        if embedder is None:
            from rtrag.local.embedder import LocalEmbedder

            embedder = LocalEmbedder()
        self.embedder = embedder
        self.min_score = min_score
        self.max_sentences = max_sentences
        self.relative_cutoff = relative_cutoff

    def score(self, question: str, hits: Sequence[Any]) -> list[Quote]:
        """Every distinct sentence of the hits, scored against the question, best first."""
        passages = [_passage(h) for h in hits]
        candidates: list[tuple[str, _Passage]] = []
        seen: set[str] = set()
        for passage in passages:
            sentences = split_sentences(passage.text)
            for i, sentence in enumerate(sentences):
                first = _WORD.match(sentence.lower().lstrip("\"'(["))
                if i > 0 and first is not None and first.group(0) in _ANAPHORA:
                    sentence = f"{sentences[i - 1]} {sentence}"
                # Overlapping chunks repeat sentences: quote each once, from its first (nearest) hit.
                norm = " ".join(sentence.lower().split())
                if norm not in seen:
                    seen.add(norm)
                    candidates.append((sentence, passage))
        if not candidates:
            return []
        vectors = self.embedder.embed_many([question] + [s for s, _ in candidates])
        question_vector = vectors[0]
        question_words = content_words(question)
        quotes = []
        for (sentence, passage), vector in zip(candidates, vectors[1:]):
            similarity = (0.0 if isinstance(question_vector, RagError) or isinstance(vector, RagError)
                          else _cosine(question_vector, vector))
            overlap = (len(question_words & content_words(sentence)) / len(question_words)
                       if question_words else 0.0)
            quotes.append(Quote(sentence=sentence, doc_id=passage.doc_id, source=passage.source, key=passage.key,
                                score=SIMILARITY_WEIGHT * similarity + OVERLAP_WEIGHT * overlap,
                                similarity=similarity, overlap=overlap))
        order = {id(q): i for i, q in enumerate(quotes)}
        return sorted(quotes, key=lambda q: (-q.score, order[id(q)]))

    def answer(self, question: str, hits: Sequence[Any], *,
               on_text: Callable[[str], None] | None = None) -> ExtractiveAnswer:
        """The answer to ``question`` from ``hits``: the best sentences, each followed by ``[doc_id]``, or
        NOT_FOUND when no sentence is relevant enough. ``on_text`` receives the text once, when it is ready."""
        start = time.perf_counter()
        ranked = self.score(question, hits)
        best = ranked[0].score if ranked else 0.0
        chosen: list[Quote] = []
        for quote in ranked:
            if quote.score < self.min_score or quote.score < best * self.relative_cutoff:
                break
            if len(chosen) == self.max_sentences:
                break
            # A sentence already quoted as the context of a better one is not quoted twice.
            if not any(quote.sentence in c.sentence for c in chosen):
                chosen.append(quote)
        if chosen:
            text = " ".join(f"{q.sentence} [{q.doc_id}]" for q in chosen)
        else:
            text = NOT_FOUND
        by_key = {_passage(h).key: h for h in hits}
        sources: list[Any] = []
        for quote in chosen:
            hit = by_key.get(quote.key)
            if hit is not None and not any(hit is s for s in sources):
                sources.append(hit)
        if on_text is not None:
            on_text(text)
        return ExtractiveAnswer(text=text, found=bool(chosen), quotes=chosen, sources=sources,
                                generate_ms=(time.perf_counter() - start) * 1000)
