"""An extractive answerer for local mode: quotes the retrieved passages' sentences that answer the question, or
says "The answer is not in the indexed documents."

No language model runs: the answer is made of sentences copied from the indexed documents, each cited with its
document id, so it can never say anything the documents do not. The hard part is knowing when to say nothing: a
sentence near the question's topic ("The society has 640 volunteer members.") is not an answer to what it asks
("Who is the chairman of the society?"). So a quote must cover what the question is specifically about:

- ``coverage``: the question's content words, each weighted by its rarity in the index (inverse document
  frequency: "chairman" counts for more than "society"), and the share of that weight the sentence holds (words
  match by their Porter stem).
- the focus: the thing a "what is the X", "how many X", "which X" or "who is the X" question asks for must be in
  the sentence (or a close paraphrase of it): the society's members do not tell its chairman.
- the kind of answer: a question asking when, how many, how much, how long or how often needs a sentence with a
  number, a date or a time in it.
- ``similarity``: cosine similarity of the sentence's and the question's embeddings (the local embedder).

``score = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * similarity``; a quote needs ``min_score``. A
question of several parts ("When did Orbit 3.0 launch, and when did 3.2 go out?", "How long is A kept, compared
with B?") is answered part by part, each part by its own sentence, and refused unless every part is answered; a
one-part question is answered by one sentence, so nothing unrelated is appended. A sentence that opens with a
pronoun ("It was finished in 1889.") is scored and quoted with the one before it. Each sentence is quoted once,
however many overlapping chunks hold it.

The weights and thresholds were set on a tuning question set (``eval/tuning_questions.jsonl``), never on the
shipped evaluation set (``eval/demo_questions.jsonl``), which was written before any tuning.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtrag.core.errors import RagError
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.workflows.answering import NOT_FOUND
from rtrag.workflows.retrieval import cosine
from rtrag.workflows.text import STOP_WORDS, question_parts, split_sentences, stem, term_words, words
from rtrag.workflows.text import terms as terms_of

EXTRACTIVE_MODEL_ID = "local-extractive"
COVERAGE_WEIGHT = 0.7
DEFAULT_MIN_SCORE = 0.50

# A sentence opening with one of these leans on the one before ("It was finished in 1889.").
_ANAPHORA = frozenset("it its this that these those they their them he his she her such there".split())
# What kind of thing answers a question, and what a sentence must say to be such an answer:
# - WHEN (when, what date, which year): a time expression (a date, a clock time, a weekday or month, "every
#   night", "the first day of each month");
# - DURATION (how long, how often, how quickly): a number or a frequency with a unit of time;
# - NUMBER (how many, how much, how large, what percentage): a number it does not already name;
# - NAME (who): a person's name; NAME_OR_NUMBER (which, where): a name, a code or a number.
WHEN, DURATION, NUMBER, NAME, NAME_OR_NUMBER = "when", "duration", "number", "name", "name or number"
_KINDS = (
    (WHEN, re.compile(r"\b(when|what (time|date|day|month|year)|which (date|day|month|year)|since when|until when)\b",
                      re.I)),
    (DURATION, re.compile(r"\bhow (long|often|quickly|soon|frequently|early|late)\b", re.I)),
    (NUMBER, re.compile(r"\b(how (many|much|old|far|big|large|fast|high|low)|what (percentage|percent|share|number|"
                        r"amount))\b", re.I)),
    (NAME, re.compile(r"\b(who|whom|whose)\b", re.I)),
    (NAME_OR_NUMBER, re.compile(r"\b(which|where)\b", re.I)),
)
_MONTHS = "january february march april may june july august september october november december"
_DAYS = "monday tuesday wednesday thursday friday saturday sunday"
_UNITS = r"(second|minute|hour|day|night|week|month|quarter|year|business day|working day)s?"
_FREQUENCY = r"(daily|weekly|monthly|yearly|annually|quarterly|nightly|hourly|once|twice|every|each)"
_NUMBER_WORD = (r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
                r"sixty|ninety|hundred|thousand|million|billion|dozen|half|first|second|third|fourth|fifth|last|next)")
_NUMBER = re.compile(rf"\d|\b{_NUMBER_WORD}\b", re.I)
_TIME_EXPRESSION = re.compile(
    rf"\b(\d{{1,2}}:\d{{2}}|(19|20)\d\d|\d{{4}}-\d\d-\d\d|{'|'.join(_MONTHS.split())}|{'|'.join(_DAYS.split())}|noon|"
    rf"midnight|{_FREQUENCY}|(\d+|{_NUMBER_WORD}|each|every|end of|start of|beginning of)\s+(\w+\s+)?{_UNITS}|"
    rf"(before|after|within|until|by|at|on)\s+(the\s+)?(\d|{_NUMBER_WORD}))", re.I)
_DURATION = re.compile(rf"\b(\d[\d,.]*|{_NUMBER_WORD}|a|an|few|several)\s+(\w+\s+)?{_UNITS}\b|\b{_FREQUENCY}\b", re.I)
# The focus of "what is the title", "which date", "what number": a word that names the kind of answer, not a
# thing the sentence must repeat ("Dr. Ana Costa, Head of Reliability" answers "what is her job title").
_KIND_NOUNS = {
    **dict.fromkeys("name title role position job owner person lead head".split(), NAME),
    **dict.fromkeys("date day year month time deadline".split(), WHEN),
    **dict.fromkeys("number amount count total size price cost percentage share rate limit".split(), NUMBER),
    **dict.fromkeys("duration period frequency interval".split(), DURATION),
    **dict.fromkeys("address location place".split(), NAME_OR_NUMBER),
}
# A person's name ("Kofi", "O'Neil"), and for "which"/"where" any name or code ("ISO/IEC", "SREcon", "Baixa").
_PERSON_TOKEN = re.compile(r"^[A-Z][a-z][\w'\u2019-]*$")
_NAME_TOKEN = re.compile(r"^[A-Z][\w/&.-]*$")
_YEAR = re.compile(r"^(19|20)\d\d$")
# Below this similarity to the question a sentence is about something else, whatever words it shares.
MIN_SIMILARITY = 0.3
_TOKEN = re.compile(r"[A-Za-z0-9][\w/&.:'\u2019-]*")
# The thing a question asks for: the noun after "what is the", "what's our", "how many", "which", "who is the"
# (the last word of the run of content words there: "how many leave days" -> "days").
_FOCUS = re.compile(r"\b(?:how (?:many|much)|which|what(?:'s|\s+(?:is|are|was|were|will be))?|who(?:'s|\s+(?:is|are|"
                    r"was|were))(?=\s+(?:the|our|a|an|its|their|his|her|my)\b))(?:\s+(?:the|our|a|an|its|their|his|"
                    r"her|my))?\s+(.*)", re.I)


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
    required: frozenset[str]  # in the sentence: numbers, versions, the focus
    in_passage: frozenset[str]  # in the sentence's passage: years, names ("Atlas", "Lisbon")
    kind: str | None
    terms: frozenset[str]


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
    main: str = ""  # the sentence that answers; ``sentence`` may start with the one before it, for context
    similarity: dict[str, float] = field(default_factory=dict)  # part text -> cosine similarity
    matches: dict[str, float] = field(default_factory=dict)  # question term -> how well this sentence holds it


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


def focus_words(part: str) -> list[str]:
    """What the part asks for, when it names it: the run of words after "how many", "which", "what is the"...
    ("what's the maximum number of users" -> ["maximum", "number"]); its last word is the thing asked for."""
    match = _FOCUS.search(part)
    if match is None:
        return []
    run = []
    for word in words(match.group(1)):
        if word in STOP_WORDS:
            break
        run.append(word)
    return run


def _kind_noun(word: str) -> str | None:
    return _KIND_NOUNS.get(word) or _KIND_NOUNS.get(word.removesuffix("s"))


def answer_kind(part: str) -> str | None:
    for kind, pattern in _KINDS:
        if pattern.search(part):
            return kind
    return None


class ExtractiveAnswerer:
    """Answers from retrieved chunks by quoting the sentences that answer the question (module docstring).

    ``embedder`` defaults to the local WordLlama embedder; ``vocabulary`` (the index) gives each word's rarity,
    without it every word weighs the same.
    """

    def __init__(self, embedder: SentenceEmbedder | None = None, *, vocabulary: Vocabulary | None = None,
                 min_score: float = DEFAULT_MIN_SCORE, coverage_weight: float = COVERAGE_WEIGHT):
        if embedder is None:
            from rtrag.local.embedder import LocalEmbedder

            embedder = LocalEmbedder()
        self.embedder = embedder
        self.vocabulary = vocabulary
        self.min_score = min_score
        self.coverage_weight = coverage_weight

    # the question
    def parts(self, question: str) -> list[Part]:
        texts = question_parts(question)
        by_term: dict[str, str] = {}
        for text in texts:
            for term, word in term_words(text):
                by_term.setdefault(term, word)
        idf = self._idf(by_term)
        out = []
        known = self._known(by_term)
        for text in texts:
            terms = [term for term, _ in term_words(text)]
            # Numbers, versions and dates identify what is asked about ("Orbit 3.1", "p99", "2025"): an answer
            # holds them. So does the focus, when the index knows the word (else it may be a paraphrase).
            # A year is often said once for a whole document ("in October", in the report for 2025): it only
            # weighs, like any word.
            required = {t for t in terms if any(ch.isdigit() for ch in t) and not _YEAR.match(t)}
            # The names it asks about ("Atlas", "Lisbon", "Ana Costa"): in the sentence, or the passage it is in,
            # doc id included ("A single cluster can contain 96 nodes" in atlas-architecture-guide).
            names = {stem(w.lower()) for i, w in enumerate(_TOKEN.findall(text))
                     if i > 0 and _NAME_TOKEN.match(w) and w.lower() not in STOP_WORDS}
            kind = answer_kind(text)
            run = focus_words(text)
            weights = {t: idf[t] for t in dict.fromkeys(terms)}
            if run and _kind_noun(run[-1]) and kind in (None, NAME_OR_NUMBER):
                # "what is her job title": a name answers it, not the word "title"; what qualifies the noun
                # ("the maximum number") must be said, unless it is a name or itself such a noun.
                kind = _kind_noun(run[-1])
                for word in run:
                    if _kind_noun(word):
                        weights.pop(stem(word), None)  # the answer need not say "title" to be one
                required.update(stem(w) for w in run[:-1] if not _kind_noun(w) and stem(w) in known
                                and stem(w) not in names)
            elif run and stem(run[-1]) in known:
                required.add(stem(run[-1]))
            out.append(Part(text=text, weights=weights, required=frozenset(required),
                            in_passage=frozenset(names & set(terms)), kind=kind,
                            terms=frozenset(terms)))
        return out

    def _known(self, by_term: dict[str, str]) -> set[str]:
        if self.vocabulary is None:
            return set(by_term)
        _, counts = self.vocabulary.document_frequencies(list(by_term.values()))
        return {term for term, word in by_term.items() if counts.get(word, 0) > 0}

    def _idf(self, by_term: dict[str, str]) -> dict[str, float]:
        if self.vocabulary is None or not by_term:
            return {term: 1.0 for term in by_term}
        total, counts = self.vocabulary.document_frequencies(list(by_term.values()))
        # A word the index never uses weighs as much as the rarest word it does use.
        return {term: math.log((total + 1) / (max(counts.get(word, 0), 1) + 0.5)) + 1.0
                for term, word in by_term.items()}

    # the sentences
    def candidates(self, hits: Sequence[Any]) -> list[_Candidate]:
        """Every distinct sentence of the hits, alone and with the sentence before it (which often names what it
        is about: "Orbit 3.2 introduces offline mode. The release went out on 2026-07-21."); a sentence that opens
        with a pronoun comes only with the one before."""
        out: list[_Candidate] = []
        seen: set[str] = set()
        for passage in (_passage(h) for h in hits):
            sentences = split_sentences(passage.text)
            passage_terms = frozenset(terms_of(f"{passage.text} {passage.doc_id.replace('-', ' ')}"))
            for i, sentence in enumerate(sentences):
                first = words(sentence[:40])
                leans = i > 0 and bool(first) and first[0] in _ANAPHORA
                texts = [f"{sentences[i - 1]} {sentence}"] if leans else [sentence]
                if i > 0 and not leans:
                    texts.append(f"{sentences[i - 1]} {sentence}")
                for text in texts:
                    norm = " ".join(text.lower().split())
                    if norm not in seen:  # overlapping chunks repeat sentences: each is quoted once
                        seen.add(norm)
                        out.append(_Candidate(text, passage, frozenset(terms_of(text)),
                                              tuple(_TOKEN.findall(text)), passage_terms, main=sentence))
        return out

    def _measure(self, parts: list[Part], candidates: list[_Candidate]) -> None:
        """Each candidate's similarity to each part, and which question terms it holds."""
        vectors = self.embedder.embed_many([p.text for p in parts] + [c.sentence for c in candidates])
        part_vectors, sentence_vectors = vectors[:len(parts)], vectors[len(parts):]
        terms = {t for p in parts for t in p.weights}
        for candidate, vector in zip(candidates, sentence_vectors):
            for part, part_vector in zip(parts, part_vectors):
                candidate.similarity[part.text] = (
                    0.0 if isinstance(part_vector, RagError) or isinstance(vector, RagError)
                    else max(0.0, cosine(part_vector, vector)))
            candidate.matches = {t: 1.0 for t in terms & candidate.terms}

    def part_score(self, part: Part, candidate: _Candidate) -> tuple[float, float]:
        """(score, coverage) of ``candidate`` as the answer to ``part``; score 0 when it fails a gate."""
        total = sum(part.weights.values())
        coverage = (sum(w * candidate.matches.get(t, 0.0) for t, w in part.weights.items()) / total) if total else 0.0
        if (not part.required <= candidate.terms or not part.in_passage <= candidate.passage_terms
                or not self._holds_kind(part, candidate)):
            return 0.0, coverage
        similarity = candidate.similarity.get(part.text, 0.0)
        if similarity < MIN_SIMILARITY:
            return 0.0, coverage
        return self.coverage_weight * coverage + (1 - self.coverage_weight) * similarity, coverage

    @staticmethod
    def _holds_kind(part: Part, candidate: _Candidate) -> bool:
        """Whether the sentence says something new of the kind the part asks for: a number or date it does not
        already name, or a name (``which``/``where``: either)."""
        if part.kind is None:
            return True
        # In a pair, the answer is the second sentence; the first only says what it is about.
        main = candidate.main
        if part.kind == WHEN:
            return bool(_TIME_EXPRESSION.search(main))
        if part.kind == DURATION:
            return bool(_DURATION.search(main))
        tokens = _TOKEN.findall(main)
        new = [t for t in tokens if stem(words(t)[0] if words(t) else t) not in part.terms]
        numbers = any(_NUMBER.search(t) for t in new)
        later = [t for i, t in enumerate(tokens) if i > 0 and t in new and t.lower() not in STOP_WORDS]
        if part.kind == NUMBER:
            return numbers
        if part.kind == NAME:
            return any(_PERSON_TOKEN.match(t) for t in later)
        return numbers or any(_NAME_TOKEN.match(t) for t in later)

    def score(self, question: str, hits: Sequence[Any]) -> list[Quote]:
        """Every distinct sentence of the hits with its best score over the question's parts, best first."""
        parts = self.parts(question)
        candidates = self.candidates(hits)
        if not candidates:
            return []
        self._measure(parts, candidates)
        quotes = [max((self._quote(c, p) for p in parts), key=lambda q: q.score) for c in candidates]
        return sorted(quotes, key=lambda q: -q.score)

    def _quote(self, candidate: _Candidate, part: Part) -> Quote:
        score, coverage = self.part_score(part, candidate)
        p = candidate.passage
        return Quote(sentence=candidate.sentence, doc_id=p.doc_id, source=p.source, key=p.key, score=score,
                     similarity=candidate.similarity.get(part.text, 0.0), coverage=coverage)

    # the answer
    def choose(self, question: str, hits: Sequence[Any]) -> list[Quote]:
        """One sentence per part of the question, each reaching ``min_score``; nothing if a part has none."""
        parts = self.parts(question)
        candidates = self.candidates(hits)
        if not candidates or not any(p.weights for p in parts):
            return []
        self._measure(parts, candidates)
        chosen: list[Quote] = []
        for part in parts:
            best = max(candidates, key=lambda c: self.part_score(part, c)[0])
            quote = self._quote(best, part)
            if quote.score < self.min_score:
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
