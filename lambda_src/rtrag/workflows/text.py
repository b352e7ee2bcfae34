"""Text analysis shared by retrieval and the local answerer: sentences, content terms, and the full-text query that
SQLite's FTS5 ranks with BM25.

- Sentences come from pySBD (rule-based sentence boundary disambiguation), which knows abbreviations ("No. 4",
  "Dr.", "e.g."), initials ("J. R. R. Tolkien") and numbers ("v2.1", "3.9", "a.m."); line breaks always end one
  (lists, headings).
  pySBD misses a few abbreviations before a number ("approx. 41 million"); ``split_sentences`` joins those back.
- Terms are lower-cased words without stop words, possessives folded and stemmed by the Porter stemmer (the
  ``snowballstemmer`` package's, the algorithm SQLite's FTS5 ``porter`` tokenizer uses, so a term counted in the
  index and a term matched in a sentence are the same); numbers and versions stay whole ("2.1", "2026-05-18").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# A word: letters and digits, with inner dots, hyphens and apostrophes ("v2.1", "0-6-2t", "o'neil").
_WORD = re.compile(r"[a-z0-9]+(?:[.'\u2019-][a-z0-9]+)*")
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing done down during each few for from further get gets got had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most much many my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through to too under until up very
was we were what when where which while who whom whose why will with would you your yours yourself yourselves
tell please know anyone anything someone something thing things there's what's who's let lets us
""".split())


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``, possessives folded ("society's" -> "society")."""
    return [_fold_possessive(w) for w in _WORD.findall(text.lower())]


def _fold_possessive(word: str) -> str:
    for suffix in ("'s", "\u2019s"):
        if word.endswith(suffix):
            return word[: -len(suffix)]
    return word.rstrip("'\u2019")


@functools.cache
def _stemmer():  # type: ignore[no-untyped-def]
    import snowballstemmer

    return snowballstemmer.stemmer("porter")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Porter stem of a lower-cased word ("rotation", "rotated" -> "rotat"); numbers and versions as they are."""
    return _stemmer().stemWord(word) if word.isalpha() else word


# Irregular past forms the Porter stemmer leaves apart from their verb ("kept" / "keeps").
_IRREGULAR = dict(pair.split(":") for pair in """
kept:keep ran:run led:lead went:go gone:go took:take taken:take made:make held:hold began:begin begun:begin
grew:grow grown:grow paid:pay sent:send spent:spend built:build bought:buy brought:bring chose:choose
chosen:choose drove:drive driven:drive fell:fall fallen:fall found:find gave:give given:give got:get gotten:get
knew:know known:know left:leave lost:lose met:meet said:say sold:sell stood:stand told:tell thought:think
won:win wrote:write written:write rose:rise risen:rise shut:shut set:set put:put cut:cut hit:hit let:let
""".split())
# Prefixes that are not words of their own in a hyphenated word ("pre-upgrade" -> "upgrade").
_PREFIXES = frozenset("pre post non re co multi sub anti self cross semi".split())


def term_words(text: str) -> list[tuple[str, str]]:
    """``(term, word)`` for each content word of ``text`` in order (stop words dropped), the term its Porter stem
    (of the verb, for an irregular past form), and each part of a hyphenated word as a word of its own too."""
    out = []
    for word in words(text):
        if word in STOP_WORDS:
            continue
        out.append((stem(_IRREGULAR.get(word, word)), word))
        if "-" in word and not any(ch.isdigit() for ch in word):
            for part in word.split("-"):
                if len(part) > 2 and part not in _PREFIXES and part not in STOP_WORDS:
                    out.append((stem(_IRREGULAR.get(part, part)), part))
    return out


def terms(text: str) -> list[str]:
    """The content terms of ``text`` in order (``term_words``), repeats kept."""
    return [term for term, _ in term_words(text)]


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any content word of ``text`` (each quoted, so no word is read as an operator), or
    None when it has none. FTS5's porter tokenizer stems both sides."""
    unique = dict.fromkeys(w for w in words(text) if w not in STOP_WORDS)
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique) or None


@functools.cache
def _segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


# Abbreviations pySBD can end a sentence at when a number or a lower-case word follows.
_ABBREVIATION_END = re.compile(r"\b(approx|ca|cf|vs|est|incl|excl|min|max|avg|fig|vol|dept|ref)\.$",
                               re.I)


# "10:30 a.m. CET": a time zone after a.m./p.m. does not start a sentence.
_CLOCK_END = re.compile(r"\b[ap]\.m\.$", re.I)
_ZONE_START = re.compile(r"[A-Z]{2,5}\b")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, in order: split at line breaks, then by pySBD. Retrieval and the answerer both
    split the same chunks; pySBD takes milliseconds per chunk, so each text is split once."""
    return list(_split_sentences(text))


@functools.lru_cache(maxsize=4096)
def _split_sentences(text: str) -> tuple[str, ...]:
    out = []
    for line in re.split(r"\s*\n\s*", text):
        line = line.strip()
        if not line:
            continue
        pieces: list[str] = []
        for piece in (p.strip() for p in _segmenter().segment(line)):
            if pieces and (_ABBREVIATION_END.search(pieces[-1]) or
                           (_CLOCK_END.search(pieces[-1]) and _ZONE_START.match(piece))):
                pieces[-1] = f"{pieces[-1]} {piece}"
            else:
                pieces.append(piece)
        out.extend(p for p in pieces if re.search(r"[A-Za-z0-9]", p))
    return tuple(out)


# Where a question of several parts divides: ", and when ...", "; ...", "compared with ...", "versus ...".
_PART_BREAK = re.compile(r"\s*(?:;|,?\s+and\s+(?=(?:when|what|what's|who|whom|whose|which|where|why|how|at|in|on|"
                         r"for|from|after|before|is|are|was|were|does|do|did|can|will|has|have)\b)|,?\s+(?:compared "
                         r"(?:with|to)|versus|vs\.?)\s+)", re.I)


MAX_QUESTION_PARTS = 8  # more "parts" than this are not several questions (a pasted log line, a list): one part


def question_parts(question: str) -> list[str]:
    """The parts of a question that each need their own answer (most questions have one). Each part is retrieved
    and answered on its own; a text that would make more than ``MAX_QUESTION_PARTS`` is taken as one part, so
    that what a question costs and brings to the prompt stays bounded."""
    parts = [p.strip(" ,?") for p in _PART_BREAK.split(question)]
    parts = [p for p in parts if any(w not in STOP_WORDS for w in words(p))]
    return parts if 0 < len(parts) <= MAX_QUESTION_PARTS else [question]


def reciprocal_rank_fusion(rankings: Iterable[list[str]], *, k: int = 60) -> list[str]:
    """Keys ordered by reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): each ranking adds
    ``1 / (k + rank)`` to a key's score; ``k = 60`` is the paper's constant. Ties keep first-seen order."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda key: -scores[key])
