"""Dead letters in a local directory, laid out exactly like the dead-letter bucket (``invalid/YYYY/MM/DD/...``)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import ConfigError, TransientError, UserError
from rtrag.core.files import write_atomically


class LocalDeadLetters:
    """A directory standing in for the dead-letter bucket: object key ``k`` is the file ``<directory>/k``.

    Same interface as ``S3DeadLetters`` (``write(letter) -> key``); also holds the event source runner's
    on-failure records (``write_object``). Writes are atomic: a reader never sees half a letter.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.written = 0

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
            raise ConfigError(f"dead-letter key {key!r} would leave {self.directory}; keys are relative paths")
        return self.directory.joinpath(*parts)

    def write(self, letter: DeadLetter) -> str:
        """Store ``letter`` under its key (a redelivered record overwrites its own letter); returns the key.
        ``written`` counts this object's letters (the ones this process wrote)."""
        key = self.write_object(letter.key, letter.to_json())
        self.written += 1
        return key

    def write_object(self, key: str, body: dict[str, Any]) -> str:
        """Store ``body`` as JSON under ``key``. A failed write raises TransientError (the caller retries)."""
        path = self._path(key)
        payload = json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            write_atomically(path, payload, prefix=".tmp-", suffix=".json")
        except OSError as exc:
            raise TransientError(f"could not write dead letter {path}: {exc}") from exc
        return key

    def list(self, prefix: str = "") -> list[str]:
        """Keys of the stored objects that start with ``prefix``, sorted (like ListObjectsV2). Only the directory
        the prefix names is walked: a replay asks for one letter's key per bad record."""
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self._path(folder) if folder else self.directory
        if not top.is_dir():
            return []
        keys = (p.relative_to(self.directory).as_posix() for p in top.rglob("*")
                if p.is_file() and not p.name.startswith(".tmp-"))
        return sorted(k for k in keys if k.startswith(prefix))

    def read(self, key: str) -> dict[str, Any]:
        """The JSON object stored under ``key`` (as ``S3DeadLetters.read``: a missing or unreadable one is a
        UserError that names it)."""
        letter = self.find(key)
        if letter is None:
            raise UserError(f"no dead letter {key} in {self.directory}: see `redrive.py list --local`")
        return letter

    def find(self, key: str) -> dict[str, Any] | None:
        """The JSON object stored under ``key``, or None when there is none."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            letter = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise UserError(f"{path} is not a readable JSON file ({exc}); it is not a dead letter: move it out of "
                            f"{self.directory}") from None
        if not isinstance(letter, dict):
            raise UserError(f"{path} holds JSON but not an object; it is not a dead letter: move it out of "
                            f"{self.directory}")
        return letter
