"""Printing what the documents say without letting them drive the terminal.

Document text, doc ids, sources and metadata are data from whoever produced the events. Printed raw, an escape
sequence in them can clear the screen, fake a green "All checks passed.", hide text or plant an OSC 8 link, a
carriage return can overwrite the line before it, bidirectional overrides can reorder what is read, and a newline
in a doc id can forge a line of output. So every script prints them through these functions:

- ``safe_text``: multi-line text; keeps newline and tab, shows every other control character (C0, DEL, C1) and
  every bidirectional control as a visible escape (``\\x1b``, ``\\u202e``);
- ``one_line``: a field printed inside a line (doc id, key, source, reason): newline and tab escaped as well;
- ``safe_json``: ``json.dumps`` that also escapes DEL, C1 and bidirectional controls (JSON escapes only C0);
- ``SafeStream``: wraps stdout and stderr for the whole run of a script (``run_cli``), the net under the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidirectional controls.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def safe_text(text: str) -> str:
    """``text`` with every control character but newline and tab shown as a visible escape."""
    return _UNSAFE_TEXT.sub(_visible, text)


def one_line(value: Any) -> str:
    """``str(value)`` for printing inside one line: every control character, newline and tab included, escaped."""
    return _UNSAFE_LINE.sub(_visible, str(value))


def safe_json(value: Any, **kwargs: Any) -> str:
    """JSON text (non-ASCII kept readable) in which no character can act on a terminal."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class SafeStream:
    """A text stream that writes through ``safe_text``: whatever a script prints, no control sequence reaches the
    terminal. ``raw`` is the wrapped stream, for the one writer that needs a carriage return (progress)."""

    def __init__(self, raw: TextIO):
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(safe_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)
