"""One typing of ``KEY=VALUE`` values for every command line: ``put_event.py --metadata`` and ``ask.py --where``
type a value the same way, so metadata put with one is matched by the same text in the other."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def parse_value(text: str) -> str | int | float | bool:
    """A CLI value typed as a user means it: ``42`` -> int, ``2.5``/``1e3`` -> float, ``true``/``false`` (any case)
    -> bool, a value in double or single quotes -> that string unquoted (``"2024"`` stays text), anything else ->
    the string as written."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def parse_pairs(pairs: Iterable[str]) -> list[tuple[str, Any]]:
    """``["team=platform", "tier=1"]`` -> ``[("team", "platform"), ("tier", 1)]``, each value typed by
    ``parse_value``; raises ValueError naming a pair that is not ``KEY=VALUE``."""
    out = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
        out.append((key, parse_value(text)))
    return out
