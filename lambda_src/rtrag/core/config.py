"""Indexer settings, read from the environment in one place and validated (names and bounds: ``core.contract``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from rtrag.core import contract as c
from rtrag.core.errors import ConfigError
from rtrag.core.limits import MAX_DIMENSION, TITAN_MAX_INPUT_TOKENS, TITAN_V2_DIMENSIONS, TITAN_V2_MODEL_ID

assert c.MAX_CHUNK_CHARS <= c.MAX_CHUNK_BYTES < TITAN_MAX_INPUT_TOKENS  # a chunk fits Titan even at a token a byte


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


# The settings are NamedTuples, not dataclasses: they are on the indexer's import path, where a dataclass costs
# about 0.6 ms to define at every cold start (``bench/cold_start.py``). Build them with keywords.
class _Chunking(NamedTuple):  # its defaults are ChunkSettings.__new__'s
    size_chars: int
    overlap_chars: int


class ChunkSettings(_Chunking):
    """How documents are cut into chunks; checked against the bounds on construction."""

    __slots__ = ()

    def __new__(cls, *, size_chars: int = c.DEFAULT_CHUNK_CHARS,
                overlap_chars: int = c.DEFAULT_CHUNK_OVERLAP_CHARS) -> ChunkSettings:
        if not c.MIN_CHUNK_CHARS <= size_chars <= c.MAX_CHUNK_CHARS:
            raise ConfigError(f"{c.ENV_CHUNK_SIZE_CHARS}={size_chars} is out of range; set it to "
                              f"{c.MIN_CHUNK_CHARS}..{c.MAX_CHUNK_CHARS}")
        most = c.max_chunk_overlap(size_chars)
        if not 0 <= overlap_chars <= most:
            raise ConfigError(f"{c.ENV_CHUNK_OVERLAP_CHARS}={overlap_chars} is out of range; set it to 0..{most}"
                              " (less than half the chunk size)")
        return super().__new__(cls, size_chars, overlap_chars)


class IndexerSettings(NamedTuple):
    """Everything the indexer needs to know, validated once per cold start (``from_env``)."""

    vector_bucket: str
    vector_index: str
    dead_letter_bucket: str
    version_table: str
    tombstone_retention_days: int = 0  # 0: tombstones are kept for ever
    embed_model_id: str = TITAN_V2_MODEL_ID
    embed_dimensions: int = 1024
    embed_concurrency: int = c.DEFAULT_EMBED_CONCURRENCY
    embed_max_attempts: int = c.DEFAULT_EMBED_MAX_ATTEMPTS
    chunking: ChunkSettings = ChunkSettings()
    max_ts_skew_seconds: int = c.DEFAULT_MAX_TS_SKEW_SECONDS
    index_generation: str | None = None  # the index's creation time (epoch ms): tells it from an earlier namesake

    @property
    def tombstone_seconds(self) -> int | None:
        return self.tombstone_retention_days * 86_400 if self.tombstone_retention_days else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IndexerSettings:
        env = os.environ if env is None else env
        dimensions = _int(env, c.ENV_EMBED_DIMENSIONS, 1024, 1, MAX_DIMENSION)
        if dimensions not in TITAN_V2_DIMENSIONS:
            allowed = ", ".join(str(d) for d in TITAN_V2_DIMENSIONS)
            raise ConfigError(f"{c.ENV_EMBED_DIMENSIONS}={dimensions} is not supported by Titan V2; use one of "
                              f"{allowed}")
        generation = env.get(c.ENV_VECTOR_INDEX_GENERATION, "").strip() or None
        if generation is not None and not generation.isdigit():
            raise ConfigError(f"{c.ENV_VECTOR_INDEX_GENERATION}={generation!r} is not the index's creation time in "
                              "epoch milliseconds; set it from the stack (the vector index resource's "
                              "IndexGeneration) or leave it unset")
        return cls(
            index_generation=generation,
            vector_bucket=_required(env, c.ENV_VECTOR_BUCKET),
            vector_index=_required(env, c.ENV_VECTOR_INDEX),
            dead_letter_bucket=_required(env, c.ENV_DEAD_LETTER_BUCKET),
            version_table=_required(env, c.ENV_VERSION_TABLE),
            tombstone_retention_days=_int(env, c.ENV_TOMBSTONE_RETENTION_DAYS, 0, 0, c.MAX_TOMBSTONE_RETENTION_DAYS),
            embed_model_id=env.get(c.ENV_EMBED_MODEL_ID, "").strip() or TITAN_V2_MODEL_ID,
            embed_dimensions=dimensions,
            embed_concurrency=_int(env, c.ENV_EMBED_CONCURRENCY, c.DEFAULT_EMBED_CONCURRENCY, c.MIN_EMBED_CONCURRENCY,
                                   c.MAX_EMBED_CONCURRENCY),
            embed_max_attempts=_int(env, c.ENV_EMBED_MAX_ATTEMPTS, c.DEFAULT_EMBED_MAX_ATTEMPTS,
                                    c.MIN_EMBED_MAX_ATTEMPTS, c.MAX_EMBED_MAX_ATTEMPTS),
            max_ts_skew_seconds=_int(env, c.ENV_MAX_TS_SKEW_SECONDS, c.DEFAULT_MAX_TS_SKEW_SECONDS,
                                     c.MIN_MAX_TS_SKEW_SECONDS, c.MAX_MAX_TS_SKEW_SECONDS),
            chunking=ChunkSettings(
                size_chars=_int(env, c.ENV_CHUNK_SIZE_CHARS, c.DEFAULT_CHUNK_CHARS, 1, 1_000_000),
                overlap_chars=_int(env, c.ENV_CHUNK_OVERLAP_CHARS, c.DEFAULT_CHUNK_OVERLAP_CHARS, 0, 1_000_000),
            ),
        )
