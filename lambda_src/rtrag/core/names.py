"""S3 Vectors naming rules, checked at synth time by the stack and at run time by the custom resource."""

from __future__ import annotations

import re

from rtrag.core.limits import NAME_MAX_CHARS, NAME_MIN_CHARS

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_INDEX_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


class InvalidName(ValueError):
    """A vector bucket or index name breaks S3 Vectors' naming rules."""


def _check(kind: str, name: str, pattern: re.Pattern[str], allowed: str, max_chars: int) -> str:
    if not isinstance(name, str) or not NAME_MIN_CHARS <= len(name) <= max_chars:
        raise InvalidName(
            f"{kind} name {name!r} must be {NAME_MIN_CHARS}..{max_chars} characters long"
        )
    if not pattern.match(name):
        raise InvalidName(
            f"{kind} name {name!r} may use only {allowed}, and must begin and end with a letter or digit"
        )
    return name


def validate_bucket_name(name: str, *, max_chars: int = NAME_MAX_CHARS) -> str:
    """Return ``name`` if it is a valid vector bucket name (3..63 chars: lowercase letters, digits, '-')."""
    return _check("vector bucket", name, _BUCKET_RE, "lowercase letters, digits and '-'", max_chars)


def validate_index_name(name: str, *, max_chars: int = NAME_MAX_CHARS) -> str:
    """Return ``name`` if it is a valid vector index name (3..63 chars: lowercase letters, digits, '-', '.')."""
    return _check("vector index", name, _INDEX_RE, "lowercase letters, digits, '-' and '.'", max_chars)
