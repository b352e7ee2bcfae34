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


def chunk_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters.

    Consecutive chunks share about ``overlap`` characters, starting on a word boundary where one is near, and
    breaks fall on paragraph, sentence or word boundaries in the chunk's second half where possible. Every
    character of ``text`` lands in at least one chunk, in order. A text of at most ``size`` is one chunk.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need size > 0 and 0 <= overlap < size, got size={size} overlap={overlap}")
    n = len(text)
    if n <= size:
        return [text]
    chunks: list[str] = []
    start = 0
    while True:
        hard_end = start + size
        if hard_end >= n:
            chunks.append(text[start:])
            return chunks
        cut = _break_at(text, start + size // 2, hard_end)
        chunks.append(text[start:cut])
        next_start = cut - overlap
        if overlap:
            space = re.compile(r"\s+").search(text, next_start, cut)
            if space is not None and space.end() < cut:
                next_start = space.end()
        start = max(next_start, start + 1)
