"""User-supplied values as error reasons and log lines may hold them: bounded.

A producer controls every field of an event: a 100 KB ``op``, a 100 KB unknown field name or doc id must become a
reason of a few hundred characters, not a 100 KB log line (logs are paid per byte, and a log line that size is cut or
dropped by the log pipeline anyway). Every reason that quotes a user value and every log field that carries one goes
through these two functions. Document text is never passed to either: it is not logged at all.

The dead letters keep the record whole (its data is the copy kept); only what describes it is bounded.
"""

from __future__ import annotations

from typing import Any

SHOWN_CHARS = 80  # a user value quoted inside a reason ("op must be ..., got 'xxx...'")
LOG_VALUE_CHARS = 300  # a user value or an error text in one field of a log line


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` quoted for a reason: its repr (control characters show as escapes), cut to ``limit`` characters
    and marked with ``...`` when cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def clipped(value: Any, limit: int = LOG_VALUE_CHARS) -> str | None:
    """``str(value)`` for a log field, cut to ``limit`` characters, saying how many were left out; None stays None
    (a field that has no value)."""
    if value is None:
        return None
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
