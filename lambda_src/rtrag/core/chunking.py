"""Split a document into overlapping chunks that each fit one Titan call and one vector's metadata."""

from __future__ import annotations

import re

from rtrag.core.contract import MAX_CHUNK_BYTES

_SEPARATORS = (
    re.compile(r"\n\s*\n"),  # paragraph
    re.compile(r"[.!?。！？][\"')\]]*\s+|\n"),  # sentence or line
    re.compile(r"\s+"),  # word
)


def _break_at(text: str, lo: int, hi: int) -> int:
    """The end of the last separator in text[lo:hi], preferring paragraphs, then sentences, then words."""
    for pattern in _SEPARATORS:
        last = None
        for last in pattern.finditer(text, lo, hi):
            pass
        if last is not None:
            return last.end()
    return hi


_SENTENCE_END = _SEPARATORS[1]  # a sentence end and its space, or a line break
_WORD = re.compile(r"\w")
_SPACE = re.compile(r"\s+")


def chunk_text(text: str, *, size: int, overlap: int, max_bytes: int = MAX_CHUNK_BYTES) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters, none of them blank (see ``chunk_spans``)."""
    return [text[start:end] for start, end in chunk_spans(text, size=size, overlap=overlap, max_bytes=max_bytes)]


def chunk_spans(text: str, *, size: int, overlap: int, max_bytes: int = MAX_CHUNK_BYTES) -> list[tuple[int, int]]:
    """Where the chunks of ``text`` are: ``(start, end)`` pairs in order, each at most ``size`` characters and
    ``max_bytes`` bytes of UTF-8 (a chunk of 4-byte characters, emoji say, is cut shorter: see ``MAX_CHUNK_BYTES``).

    Consecutive chunks share at most ``overlap`` characters, the next one starting at a sentence's start where one
    is in the overlap (so a sentence cut by a break is whole in the next chunk when it fits), else on a word
    boundary; breaks fall on paragraph, sentence or word boundaries in the chunk's second half where possible.
    Each chunk is trimmed of surrounding whitespace, and a stretch holding no letter or digit (a run of spaces, a
    ruler of dashes) is dropped rather than made a chunk of its own: such a chunk has nothing to retrieve, and a blank
    one would make the embedding model refuse the whole document. Every letter and digit of ``text`` lands in at
    least one chunk. A text with no letter or digit keeps its non-blank pieces; a text of at most ``size``
    characters is one chunk. Only a blank text gives no chunk.
    """
    if size <= 0 or not 0 <= overlap < size or max_bytes < 4:
        raise ValueError(f"need size > 0, 0 <= overlap < size and max_bytes >= 4, got size={size} overlap={overlap} "
                         f"max_bytes={max_bytes}")
    spans = [_trim(text, start, end) for start, end in _cut(text, size=size, overlap=overlap, max_bytes=max_bytes)]
    spans = [(start, end) for start, end in spans if start < end]
    worded = [(start, end) for start, end in spans if _WORD.search(text, start, end)]
    return worded or spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _within_bytes(text: str, start: int, end: int, max_bytes: int) -> int:
    """The greatest ``e <= end`` with ``text[start:e]`` at most ``max_bytes`` bytes of UTF-8 (at least one
    character: none takes more than 4 bytes)."""
    if _utf8_bytes(text[start:end]) <= max_bytes:
        return end
    lo, hi = start + 1, end - 1  # text[start:lo] fits; text[start:hi + 1] does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _utf8_bytes(text[start:mid]) <= max_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cut(text: str, *, size: int, overlap: int, max_bytes: int) -> list[tuple[int, int]]:
    n = len(text)
    if n <= size and _utf8_bytes(text) <= max_bytes:
        return [(0, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        hard_end = _within_bytes(text, start, min(n, start + size), max_bytes)
        if hard_end >= n:
            spans.append((start, n))
            return spans
        length = hard_end - start
        cut = _break_at(text, start + length // 2, hard_end)
        spans.append((start, cut))
        # A chunk cut short by bytes keeps the overlap under half of it (as settings keep it under half of size), so
        # that the next chunk still moves on by half a chunk.
        next_start = cut - (overlap if length == size else min(overlap, (cut - start) // 2))
        if overlap:
            sentence = _sentence_start(text, next_start, cut)
            space = _SPACE.search(text, next_start, cut)
            if sentence is not None and sentence < cut:
                next_start = sentence
            elif space is not None and space.end() < cut:
                next_start = space.end()
        start = max(next_start, start + 1)


def _sentence_start(text: str, lo: int, hi: int) -> int | None:
    """Where the first sentence in text[lo:hi] starts: after a sentence end and its space, or after a line break
    and the space that follows it."""
    end = _SENTENCE_END.search(text, lo, hi)
    if end is None:
        return None
    space = _SPACE.match(text, end.end(), hi)
    return space.end() if space is not None else end.end()
