"""An extractive answerer for local mode: quotes the retrieved passages' sentences that answer the question, or
says "The answer is not in the indexed documents."

No language model runs: the answer is made of sentences copied from the indexed documents, each cited with its
document id, so it can never say anything the documents do not. The hard part is knowing when to say nothing: a
sentence near the question's topic ("The society has 640 volunteer members.") is not an answer to what it asks
("Who is the chairman of the society?"). So a sentence answers a question only when:

1. it passes the gates (``holds``): it holds the question's identifiers (numbers, versions, one-letter codes:
   "Orbit 3.1", "p99", "Series A"); the thing asked for ("how many *engineers*") is in the answering sentence;
   what qualifies it ("*sick* days") and the names asked about ("Atlas", "Chief Financial Officer", as a run of
   words) are in its passage or doc id; a year asked about is there and no other year replaces it; and it says
   something new of the kind asked for: a time expression for "when", a duration for "how long/often", a number
   for "how many", a person's name for "who", a name, code or number for "which/where" ("what is her job
   *title*" asks for a name, not for the word);
2. a selection model ranks it first among the sentences that pass, and an answer model gives it a probability
   of answering of at least ``threshold``. Both are logistic models over the interpretable ``features``: the
   share of the question's rarity-weighted words (inverse document frequency in the index) it holds, whether it
   holds the two rarest, the rarest it lacks, its passage's coverage, its similarity to the question (the local
   embedder), its chunk's rank... Their weights (``answerer_model.py``) are fitted by ``eval/fit_answerer.py``
   on the tuning questions (``eval/tuning_questions.jsonl``) only, never on the shipped evaluation set
   (``eval/demo_questions.jsonl``).

A question of several parts ("When did Orbit 3.0 launch, and when did 3.2 go out?", "How long is A kept,
compared with B?") is answered part by part, each part by its own sentence, and refused unless every part is
answered; a one-part question is answered by one sentence (with the one before it when it opens with a pronoun
or "The ...": "Orbit 3.2 introduces offline mode. The release went out on 2026-07-21."), so nothing unrelated
is appended, and each sentence is quoted once however many overlapping chunks hold it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtrag.core.errors import RagError
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.local import answerer_model as model
from rtrag.local.questions import (
    CALENDAR,
    DURATION,
    DURATION_EXPRESSION,
    NAME,
    NAME_OR_NUMBER,
    NAME_TOKEN,
    NUMBER,
    NUMBER_EXPRESSION,
    PERSON_TOKEN,
    TIME_EXPRESSION,
    TOKEN,
    WHEN,
    YEAR,
    answer_kind,
    focus_words,
    holds_run,
    kind_noun,
    name_runs,
)
from rtrag.workflows.answering import NOT_FOUND
from rtrag.workflows.retrieval import cosine
from rtrag.workflows.text import STOP_WORDS, question_parts, split_sentences, stem, term_words, words
from rtrag.workflows.text import terms as terms_of

EXTRACTIVE_MODEL_ID = "local-extractive"

# A sentence opening with one of these leans on the one before ("It was finished in 1889.").
_DEFINITE = frozenset("the both each either neither all".split())  # "The release went out on ...": about the one before
_ANAPHORA = frozenset("it its this that these those they their them he his she her such there".split())
class SentenceEmbedder(Protocol):
    def embed_many(self, texts: Sequence[str]) -> list[list[float] | RagError]: ...


class Vocabulary(Protocol):
    """The index's word statistics (the local index's FTS5 table)."""

    def document_frequencies(self, words: Sequence[str]) -> tuple[int, dict[str, int]]: ...


@dataclass(frozen=True)
class Quote:
    """One quoted sentence with where it comes from and how it scored."""

    sentence: str
    doc_id: str
    source: str
    key: str
    score: float
    similarity: float
    coverage: float


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
class Part:
    """One part of a question: its text, content terms with their weights, the terms an answer must hold (its
    numbers, versions and dates, and its focus), and the kind of thing that answers it."""

    text: str
    weights: dict[str, float]
    required: frozenset[str]  # in the sentences: numbers, versions
    names: tuple[tuple[str, ...], ...]  # in the sentences' passage, each run of words in order: "Ana Costa"
    context: frozenset[str]  # in the sentences or their passage: what qualifies the focus ("sick" days)
    kind: str | None
    terms: frozenset[str]
    known: frozenset[str] = frozenset()  # the terms the index uses (the others: paraphrases, or absent topics)
    years: frozenset[str] = frozenset()
    letters: frozenset[str] = frozenset()  # one-letter codes: "Series A"
    focus: str | None = None  # the thing asked for, in the answering sentence itself


@dataclass(frozen=True)
class _Passage:
    hit: Any
    doc_id: str
    source: str
    key: str
    text: str


@dataclass
class _Candidate:
    sentence: str
    passage: _Passage
    terms: frozenset[str]
    tokens: tuple[str, ...]  # as written, for what is new in it
    passage_terms: frozenset[str] = frozenset()
    passage_sequence: tuple[str, ...] = ()  # its terms in order, for names of several words
    rank: int = 0  # of its hit among the hits
    main: str = ""  # the sentence that answers; ``sentence`` may start with the one before it, for context
    main_terms: frozenset[str] = frozenset()
    similarity: dict[str, float] = field(default_factory=dict)  # part text -> cosine similarity


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


def _dot(features: Sequence[float], weights: Sequence[float]) -> float:
    return sum(f * w for f, w in zip(features, weights, strict=True))


def _logistic(features: Sequence[float], weights: Sequence[float]) -> float:
    return 1.0 / (1.0 + math.exp(-_dot(features, weights)))


def _holds_years(years: frozenset[str], candidate: _Candidate) -> bool:
    """Each year asked about is in the sentences, or in their passage while the sentences name no other year."""
    said = {t for t in candidate.terms if YEAR.match(t)}
    return all(y in said or (not said and y in candidate.passage_terms) for y in years)


HOLDS = 7  # the index of ``holds`` (the gates) in ``ExtractiveAnswerer.features``: only such sentences can answer


class ExtractiveAnswerer:
    """Answers from retrieved chunks by quoting the sentences that answer the question (module docstring).

    ``embedder`` defaults to the local WordLlama embedder; ``vocabulary`` (the index) gives each word's rarity,
    without it every word weighs the same.
    """

    def __init__(self, embedder: SentenceEmbedder | None = None, *, vocabulary: Vocabulary | None = None,
                 threshold: float = model.THRESHOLD):
        if embedder is None:
            from rtrag.local.embedder import LocalEmbedder

            embedder = LocalEmbedder()
        self.embedder = embedder
        self.vocabulary = vocabulary
        self.threshold = threshold

    # the question
    def parts(self, question: str) -> list[Part]:
        texts = question_parts(question)
        by_term: dict[str, str] = {}
        for text in texts:
            for term, word in term_words(text):
                by_term.setdefault(term, word)
        idf, known = self._rarity(by_term)
        # A year anywhere in the question holds for every part ("How many incidents in 2024, and how many were
        # SEV1?"). It is often said once for a whole document ("in October", in the report for 2025): it must be
        # in the sentence's passage, and no other year in the sentence (``_holds_years``).
        years = frozenset(t for t in by_term if YEAR.match(t))
        out = []
        for text in texts:
            terms = [term for term, _ in term_words(text)]
            # Numbers, versions and one-letter codes identify what is asked about ("Orbit 3.1", "p99", "Series
            # A"): an answer holds them.
            required = {t for t in terms if any(ch.isdigit() for ch in t) and not YEAR.match(t)}
            tokens = TOKEN.findall(text)
            letters = {w for i, w in enumerate(tokens) if i > 0 and len(w) == 1 and w.isupper() and w != "I"}
            # The names it asks about ("Atlas", "Ana Costa", "Chief Financial Officer"): each run of capitalized
            # words, in the sentence or the passage it is in, doc id included, as a run.
            names = name_runs(tokens)
            kind = answer_kind(text)
            focus = None
            run = focus_words(text)
            weights = {t: idf[t] for t in dict.fromkeys(terms)}
            context = set()
            if run:
                head = run[-1]
                if kind_noun(head) and kind in (None, NAME_OR_NUMBER):
                    kind = kind_noun(head)  # "what is her job title": a name answers it, not the word "title"
                if kind_noun(head):
                    for word in run:
                        if kind_noun(word):
                            weights.pop(stem(word), None)  # the answer need not say "title" to be one
                elif stem(head) in known:
                    focus = stem(head)  # "how many engineers": the answering sentence names them
                # What qualifies the thing asked for ("sick days", "maximum number") is said around the answer.
                context = {stem(w) for w in run[:-1] if not kind_noun(w)}
            out.append(Part(text=text, weights=weights, required=frozenset(required), names=names,
                            context=frozenset(context), kind=kind, terms=frozenset(terms),
                            known=frozenset(known & set(terms)), years=years, letters=frozenset(letters),
                            focus=focus))
        return out

    def _rarity(self, by_term: dict[str, str]) -> tuple[dict[str, float], set[str]]:
        """Each term's weight (inverse document frequency in the index) and the terms the index uses at all,
        from one lookup of the words' document frequencies."""
        if self.vocabulary is None or not by_term:
            return {term: 1.0 for term in by_term}, set(by_term)
        total, counts = self.vocabulary.document_frequencies(list(by_term.values()))
        # A word the index never uses weighs as much as the rarest word it does use.
        idf = {term: math.log((total + 1) / (max(counts.get(word, 0), 1) + 0.5)) + 1.0
               for term, word in by_term.items()}
        return idf, {term for term, word in by_term.items() if counts.get(word, 0) > 0}

    # the sentences
    def candidates(self, hits: Sequence[Any]) -> list[_Candidate]:
        """Every distinct sentence of the hits, alone and with the sentence before it (which often names what it
        is about: "Orbit 3.2 introduces offline mode. The release went out on 2026-07-21."); a sentence that opens
        with a pronoun comes only with the one before."""
        out: list[_Candidate] = []
        seen: set[str] = set()
        for rank, passage in enumerate(_passage(h) for h in hits):
            sentences = split_sentences(passage.text)
            sequence = tuple(stem(w) for w in words(f"{passage.text} {passage.doc_id.replace('-', ' ')}"))
            passage_terms = frozenset(terms_of(f"{passage.text} {passage.doc_id.replace('-', ' ')}"))
            for i, sentence in enumerate(sentences):
                first = words(sentence[:40])
                leans = i > 0 and bool(first) and first[0] in _ANAPHORA
                texts = [f"{sentences[i - 1]} {sentence}"] if leans else [sentence]
                if i > 0 and not leans and first and first[0] in _DEFINITE:
                    texts.append(f"{sentences[i - 1]} {sentence}")
                for text in texts:
                    norm = " ".join(text.lower().split())
                    if norm not in seen:  # overlapping chunks repeat sentences: each is quoted once
                        seen.add(norm)
                        out.append(_Candidate(text, passage, frozenset(terms_of(text)),
                                              tuple(TOKEN.findall(text)), passage_terms, sequence, rank=rank,
                                              main=sentence, main_terms=frozenset(terms_of(sentence))))
        return out

    def _measure(self, parts: list[Part], candidates: list[_Candidate]) -> None:
        """Each candidate's similarity to each part."""
        vectors = self.embedder.embed_many([p.text for p in parts] + [c.sentence for c in candidates])
        part_vectors, sentence_vectors = vectors[:len(parts)], vectors[len(parts):]
        for candidate, vector in zip(candidates, sentence_vectors):
            for part, part_vector in zip(parts, part_vectors):
                candidate.similarity[part.text] = (
                    0.0 if isinstance(part_vector, RagError) or isinstance(vector, RagError)
                    else max(0.0, cosine(part_vector, vector)))

    def holds(self, part: Part, candidate: _Candidate) -> bool:
        """Whether the candidate can answer the part at all: its identifiers (numbers, versions, one-letter codes)
        in the sentences, the focus in the answering sentence, its names and years in the passage (and no other
        year instead), and something of the kind asked for."""
        return (part.required <= candidate.terms
                and (part.focus is None or part.focus in candidate.main_terms)
                and part.letters <= {t for t in candidate.tokens if len(t) == 1}
                and part.context <= candidate.terms | candidate.passage_terms
                and all(holds_run(name, candidate.passage_sequence) for name in part.names)
                and _holds_years(part.years, candidate)
                and self._holds_kind(part, candidate))

    @staticmethod
    def _holds_kind(part: Part, candidate: _Candidate) -> bool:
        """Whether the sentence says something new of the kind the part asks for: a number or date it does not
        already name, or a name (``which``/``where``: either)."""
        if part.kind is None:
            return True
        # In a pair, the answer is the second sentence; the first only says what it is about.
        main = candidate.main
        if part.kind == WHEN:
            return bool(TIME_EXPRESSION.search(main))
        if part.kind == DURATION:
            return bool(DURATION_EXPRESSION.search(main))
        tokens = TOKEN.findall(main)
        # Something new: not a word of the question, nor a date (a month, a weekday, a year), which answers
        # "when", not "which" or "who".
        new = [t for t in tokens if stem(words(t)[0] if words(t) else t) not in part.terms
               and t.lower() not in CALENDAR and not YEAR.match(t)]
        numbers = any(NUMBER_EXPRESSION.search(t) for t in new)
        later = [t for i, t in enumerate(tokens) if i > 0 and t in new and t.lower() not in STOP_WORDS]
        if part.kind == NUMBER:
            return numbers
        if part.kind == NAME:
            return any(PERSON_TOKEN.match(t) for t in later)
        return numbers or any(NAME_TOKEN.match(t) for t in later)

    def features(self, part: Part, candidate: _Candidate) -> list[float]:
        """What the models weigh (``answerer_model``, in this order) for ``candidate`` as the answer to ``part``;
        the one at ``HOLDS`` is ``holds``, the gates."""
        weights = part.weights
        total = sum(weights.values()) or 1.0
        held = {t for t in weights if t in candidate.terms}
        coverage = sum(weights[t] for t in held) / total
        rare = sorted((t for t in weights if t in part.known), key=lambda t: -weights[t])[:2]
        rare_weight = sum(weights[t] for t in rare)
        rare_coverage = sum(weights[t] for t in rare if t in held) / rare_weight if rare else coverage
        top = max(weights.values(), default=1.0)
        missing = max((weights[t] for t in weights if t in part.known and t not in held), default=0.0) / top
        unknown = sum(w for t, w in weights.items() if t not in part.known) / total
        around = candidate.terms | candidate.passage_terms
        passage_coverage = sum(w for t, w in weights.items() if t in around) / total
        missing_around = max((weights[t] for t in weights if t in part.known and t not in around), default=0.0) / top
        return [
            coverage, rare_coverage, missing, unknown, passage_coverage, missing_around,
            candidate.similarity.get(part.text, 0.0), float(self.holds(part, candidate)), float(part.kind is not None),
            1.0 / (1 + candidate.rank), float(candidate.main != candidate.sentence),
            min(1.0, len(candidate.main) / 300), 1.0,
        ]

    def _quote(self, candidate: _Candidate, part: Part, f: list[float]) -> Quote:
        p = candidate.passage
        return Quote(sentence=candidate.sentence, doc_id=p.doc_id, source=p.source, key=p.key,
                     score=_logistic(f, model.ANSWER), similarity=candidate.similarity.get(part.text, 0.0),
                     coverage=f[0])

    # the answer
    def choose(self, question: str, hits: Sequence[Any]) -> list[Quote]:
        """Per part of the question, the sentence the selection model ranks first among those that can answer
        it; nothing unless the answer model gives each part's sentence at least ``threshold``."""
        parts = self.parts(question)
        candidates = self.candidates(hits)
        if not candidates or not any(p.weights for p in parts):
            return []
        self._measure(parts, candidates)
        chosen: list[Quote] = []
        for part in parts:
            able = [(c, f) for c in candidates if (f := self.features(part, c))[HOLDS]]
            if not able:
                return []
            best, features = max(able, key=lambda pair: _dot(pair[1], model.SELECT))
            quote = self._quote(best, part, features)
            if quote.score < self.threshold:
                return []
            if not any(quote.sentence in q.sentence or q.sentence in quote.sentence for q in chosen):
                chosen.append(quote)
        return chosen

    def answer(self, question: str, hits: Sequence[Any], *,
               on_text: Callable[[str], None] | None = None) -> ExtractiveAnswer:
        """The answer to ``question`` from ``hits``: the chosen sentences, each followed by ``[doc_id]``, or
        NOT_FOUND. ``on_text`` receives the text once, when it is ready."""
        start = time.perf_counter()
        chosen = self.choose(question, hits)
        text = " ".join(f"{q.sentence} [{q.doc_id}]" for q in chosen) if chosen else NOT_FOUND
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
