"""Split a document into overlapping chunks that each fit one Titan call and one vector's metadata."""

from __future__ import annotations

import re

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


def chunk_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters, none of them blank (see ``chunk_spans``)."""
    return [text[start:end] for start, end in chunk_spans(text, size=size, overlap=overlap)]


def chunk_spans(text: str, *, size: int, overlap: int) -> list[tuple[int, int]]:
    """Where the chunks of ``text`` are: ``(start, end)`` pairs in order, each at most ``size`` characters.

    Consecutive chunks share at most ``overlap`` characters, the next one starting at a sentence's start where one
    is in the overlap (so a sentence cut by a break is whole in the next chunk when it fits), else on a word
    boundary; breaks fall on paragraph, sentence or word boundaries in the chunk's second half where possible.
    Each chunk is trimmed of surrounding whitespace, and a stretch holding no letter or digit (a run of spaces, a
    ruler of dashes) is dropped rather than made a chunk of its own: such a chunk has nothing to retrieve, and a blank
    one would make the embedding model refuse the whole document. Every letter and digit of ``text`` lands in at
    least one chunk. A text with no letter or digit keeps its non-blank pieces; a text of at most ``size``
    characters is one chunk. Only a blank text gives no chunk.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need size > 0 and 0 <= overlap < size, got size={size} overlap={overlap}")
    spans = [_trim(text, start, end) for start, end in _cut(text, size=size, overlap=overlap)]
    spans = [(start, end) for start, end in spans if start < end]
    worded = [(start, end) for start, end in spans if _WORD.search(text, start, end)]
    return worded or spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut(text: str, *, size: int, overlap: int) -> list[tuple[int, int]]:
    n = len(text)
    if n <= size:
        return [(0, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        hard_end = start + size
        if hard_end >= n:
            spans.append((start, n))
            return spans
        cut = _break_at(text, start + size // 2, hard_end)
        spans.append((start, cut))
        next_start = cut - overlap
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
