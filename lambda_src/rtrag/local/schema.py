"""Whether a local SQLite file already holds its schema: then opening it takes no write lock, so a reader never
waits for a writer (the stream's and the ledger's schemas)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

_CREATED = re.compile(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)")


def schema_made(conn: sqlite3.Connection, ddl: str | Iterable[str]) -> bool:
    """Whether every table and index that ``ddl`` (``CREATE ... IF NOT EXISTS`` statements) makes is there."""
    wanted = set(_CREATED.findall(ddl if isinstance(ddl, str) else ";".join(ddl)))
    return wanted <= {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
