"""Indexer settings, read from the environment in one place and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rtrag.core.errors import ConfigError
from rtrag.core.limits import (
    TITAN_MAX_INPUT_TOKENS,
    TITAN_V2_DIMENSIONS,
    TITAN_V2_MODEL_ID,
)

# A chunk may not exceed Titan's token limit; at worst one character is one token, so cap characters below it.
MAX_CHUNK_CHARS = TITAN_MAX_INPUT_TOKENS - 192
MIN_CHUNK_CHARS = 200
# Tombstones: 0 keeps them for ever; otherwise days (a hundred years is more than any replay can reach back).
MAX_TOMBSTONE_RETENTION_DAYS = 36_500


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set it to {low}..{high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; set it to {low}..{high}")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; the stack sets it on the function (or export it for local runs)")
    return value


@dataclass(frozen=True, kw_only=True)
class ChunkSettings:
    size_chars: int = 2000
    overlap_chars: int = 200

    def __post_init__(self) -> None:
        if not MIN_CHUNK_CHARS <= self.size_chars <= MAX_CHUNK_CHARS:
            raise ConfigError(
                f"CHUNK_SIZE_CHARS={self.size_chars} is out of range; set it to {MIN_CHUNK_CHARS}..{MAX_CHUNK_CHARS}"
            )
        if not 0 <= self.overlap_chars <= self.size_chars // 2:
            raise ConfigError(
                f"CHUNK_OVERLAP_CHARS={self.overlap_chars} is out of range; set it to 0..{self.size_chars // 2}"
                " (at most half the chunk size)"
            )


@dataclass(frozen=True, kw_only=True)
class IndexerSettings:
    """Everything the indexer needs to know, validated once per cold start."""

    vector_bucket: str
    vector_index: str
    dead_letter_bucket: str
    version_table: str
    tombstone_retention_days: int = 0  # 0: tombstones are kept for ever
    embed_model_id: str = TITAN_V2_MODEL_ID
    embed_dimensions: int = 1024
    embed_concurrency: int = 16
    embed_max_attempts: int = 6
    chunking: ChunkSettings = ChunkSettings()

    @property
    def tombstone_seconds(self) -> int | None:
        return self.tombstone_retention_days * 86_400 if self.tombstone_retention_days else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IndexerSettings:
        env = os.environ if env is None else env
        dimensions = _int(env, "EMBED_DIMENSIONS", 1024, 1, 4096)
        if dimensions not in TITAN_V2_DIMENSIONS:
            allowed = ", ".join(str(d) for d in TITAN_V2_DIMENSIONS)
            raise ConfigError(f"EMBED_DIMENSIONS={dimensions} is not supported by Titan V2; use one of {allowed}")
        return cls(
            vector_bucket=_required(env, "VECTOR_BUCKET"),
            vector_index=_required(env, "VECTOR_INDEX"),
            dead_letter_bucket=_required(env, "DEAD_LETTER_BUCKET"),
            version_table=_required(env, "VERSION_TABLE"),
            tombstone_retention_days=_int(env, "TOMBSTONE_RETENTION_DAYS", 0, 0, MAX_TOMBSTONE_RETENTION_DAYS),
            embed_model_id=env.get("EMBED_MODEL_ID", "").strip() or TITAN_V2_MODEL_ID,
            embed_dimensions=dimensions,
            embed_concurrency=_int(env, "EMBED_CONCURRENCY", 16, 1, 64),
            embed_max_attempts=_int(env, "EMBED_MAX_ATTEMPTS", 6, 1, 20),
            chunking=ChunkSettings(
                size_chars=_int(env, "CHUNK_SIZE_CHARS", 2000, 1, 1_000_000),
                overlap_chars=_int(env, "CHUNK_OVERLAP_CHARS", 200, 0, 1_000_000),
            ),
        )
