"""The project's settings: parsed once from CDK context, typed, validated with one clear message per bad value.

Values come from ``cdk.json`` ("context") or ``cdk synth -c key=value``. The CLI passes ``-c`` values as strings,
so every value is coerced to its type here; a bad one raises :class:`SettingsError` naming the key, the value and
what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rtrag.core import contract
from rtrag.core.limits import TITAN_V2_DIMENSIONS, TITAN_V2_MODEL_ID
from rtrag.core.names import InvalidName, validate_bucket_name, validate_index_name

# The custom resource appends "-" and an 8-character hash of the immutable parameters to both base names, so a
# base name may use at most 63 - 9 characters (S3 Vectors' limit is 63 for bucket and index names).
MAX_BASE_NAME_CHARS = 54

# Values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy, "retentionInDays").
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")

# Bounds shared with the indexer, which checks the same ones at cold start (rtrag.core.contract).
MIN_CHUNK_CHARS, MAX_CHUNK_CHARS = contract.MIN_CHUNK_CHARS, contract.MAX_CHUNK_CHARS
MAX_TOMBSTONE_RETENTION_DAYS = contract.MAX_TOMBSTONE_RETENTION_DAYS

# CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128 characters.
_STACK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# One e-mail address for the alarm topic's subscription (SNS sends a confirmation to it; nothing more is checked).
_EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
# S3 lifecycle day counts (a transition or expiration at most 100 years out is plenty for an archive).
MAX_LIFECYCLE_DAYS = 36_500
# The archive's Firehose buffers up to 60 s (stacks/archive.py); its DataFreshness is never below that, so a
# lower alarm threshold would fire on every delivery.
MIN_ARCHIVE_FRESHNESS_ALARM_SECONDS = 120
SECONDS_PER_DAY = 86_400


class SettingsError(ValueError):
    """A setting in cdk.json or ``-c key=value`` is missing, malformed or out of range."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every deploy-time choice of the stack; the defaults deploy as-is."""

    stack_name: str = "RealtimeRag"
    vector_bucket_name: str = ""  # "" = derived from the stack name
    vector_index_name: str = ""  # "" = derived from the stack name
    embed_model_id: str = TITAN_V2_MODEL_ID
    embed_dimensions: int = 1024
    chunk_size_chars: int = contract.DEFAULT_CHUNK_CHARS
    chunk_overlap_chars: int = contract.DEFAULT_CHUNK_OVERLAP_CHARS
    embed_concurrency: int = contract.DEFAULT_EMBED_CONCURRENCY
    batch_size: int = 100
    max_batching_window_seconds: int = 0
    starting_position: str = "TRIM_HORIZON"
    parallelization_factor: int = 2
    enhanced_fan_out: bool = False  # True: the mapping reads through a registered consumer (its own 2 MB/s/shard)
    max_retry_attempts: int = 10
    max_record_age_seconds: int = 3600
    stream_retention_hours: int = 24
    log_retention_days: int = 30
    retain_data_on_destroy: bool = False
    vectors_kms_key_arn: str = ""  # "" = SSE-S3
    lambda_memory_mb: int = 1024
    lambda_timeout_seconds: int = 120
    reserved_concurrency: int | None = None  # None = no reservation (new accounts have too little to reserve)
    dead_letter_expiration_days: int = 30
    alarm_email: str = ""  # "" = no subscription (subscribe to the AlarmTopicArn output yourself)
    alarm_iterator_age_seconds: int = 300
    alarm_freshness_p99_seconds: int = 60
    alarm_dead_letters: int = 1
    alarm_lambda_errors: int = 1
    alarm_throttles: int = 1
    alarm_archive_freshness_seconds: int = 900
    archive_enabled: bool = True
    archive_expiration_days: int = 365  # 0 = archived events never expire (null in cdk.json means the default)
    archive_glacier_ir_days: int | None = None  # None = archived events stay in S3 Standard
    tombstone_retention_days: int = contract.DEFAULT_TOMBSTONE_RETENTION_DAYS  # 0 = kept for ever
    max_ts_skew_seconds: int = contract.DEFAULT_MAX_TS_SKEW_SECONDS  # how far ahead of its arrival a ts may be

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default of every key, as cdk.json spells it (None for "not set")."""
        return dataclasses.asdict(cls())

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Settings:
        """Parse the CDK context (e.g. ``app.node.get_all_context()``); raise SettingsError on the first bad value.

        Keys this class does not define are ignored, except snake_case ones: CDK's own keys are kebab-case or
        contain ':', so an unknown snake_case key is almost surely a misspelt setting that would otherwise be
        silently dropped.
        """
        _reject_unknown_keys(context)
        return cls.from_mapping({k: v for k, v in context.items() if k in _PARSERS and v is not None})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Coerce and validate ``values`` (missing keys keep their defaults); raise SettingsError on the first."""
        defaults = cls.defaults()
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise _unknown(unknown[0])
        raw = {**defaults, **values}
        parsed: dict[str, Any] = {key: parse(raw[key]) for key, parse in _PARSERS.items()}
        _check_combinations(parsed)
        return cls(**parsed)

    @property
    def vector_bucket_base_name(self) -> str:
        return self.vector_bucket_name or derive_base_name(self.stack_name, "vectors")

    @property
    def vector_index_base_name(self) -> str:
        return self.vector_index_name or derive_base_name(self.stack_name, "chunks")


def derive_base_name(stack_name: str, suffix: str) -> str:
    """``<stack name, lowercased and shortened>-<6 hex digits of its hash>-<suffix>``, a valid S3 Vectors base name.

    Vector bucket names are unique per account and Region, as stack names are, so different stack names must
    derive different names; lowercasing and shortening alone could merge two ("RagA", "raga"), the hash of the
    exact stack name keeps them apart.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", stack_name.lower()).strip("-") or "rag"
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:6]
    keep = MAX_BASE_NAME_CHARS - len(suffix) - len(digest) - 2
    return f"{slug[:keep].rstrip('-')}-{digest}-{suffix}"


# Context keys that are the CDK's own: feature flags ("@aws-cdk/..."), its "aws:cdk:..." and "cdk-..." switches,
# and the CLI's acknowledged notices.
_CDK_KEYS = re.compile(r"@.*|.*:.*|cdk-.*|acknowledged-issue-numbers")


def _reject_unknown_keys(context: Mapping[str, Any]) -> None:
    """Every context key is one of ours or the CDK's: a typo (``-c batchsize=50``) fails synth, never passes
    silently."""
    for key in sorted(context):
        if key not in _PARSERS and not _CDK_KEYS.fullmatch(key):
            raise _unknown(key)


def _unknown(key: str) -> SettingsError:
    close = difflib.get_close_matches(key, list(_PARSERS), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return SettingsError(f"unknown setting {key!r}: {hint}the settings are {', '.join(_PARSERS)}")


def _fail(key: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(
        f"setting {key}={value!r} is invalid: {allowed} "
        f'(set it under "context" in cdk.json or pass -c {key}=VALUE)'
    )


def _integer(key: str, low: int, high: int, *, choices: tuple[int, ...] = ()) -> Callable[[Any], int]:
    if choices:
        allowed = f"allowed values are {', '.join(map(str, choices))}"
    else:
        allowed = f"expected a whole number {low}..{high}"

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise _fail(key, value, allowed)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise _fail(key, value, allowed)
        if (choices and number not in choices) or not low <= number <= high:
            raise _fail(key, value, allowed)
        return number

    return parse


def _optional_integer(key: str, low: int, high: int, unset_means: str) -> Callable[[Any], int | None]:
    strict = _integer(key, low, high)

    def parse(value: Any) -> int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        try:
            return strict(value)
        except SettingsError:
            raise _fail(key, value, f"expected a whole number {low}..{high}, or none ({unset_means})") from None

    return parse


def _boolean(key: str) -> Callable[[Any], bool]:
    def parse(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _fail(key, value, "expected true or false")

    return parse


def _choice(key: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if isinstance(value, str) and value.strip() in choices:
            return value.strip()
        raise _fail(key, value, f"allowed values are {', '.join(choices)}")

    return parse


def _pattern(key: str, pattern: re.Pattern[str], allowed: str, *, optional: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = value.strip() if isinstance(value, str) else None
        if text == "" and optional:
            return ""
        if text is None or not pattern.match(text):
            raise _fail(key, value, allowed)
        return text

    return parse


def _vector_name(key: str, validate: Callable[..., str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _fail(key, value, "expected a name, or empty to derive it from the stack name")
        if not value.strip():
            return ""
        try:
            return validate(value.strip(), max_chars=MAX_BASE_NAME_CHARS)
        except InvalidName as err:
            raise _fail(key, value, f"{err}; or leave it empty to derive it from the stack name") from None

    return parse


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "stack_name": _pattern(
        "stack_name", _STACK_NAME_RE,
        "expected 1..128 characters: a letter, then letters, digits and '-' (a CloudFormation stack name)",
    ),
    "vector_bucket_name": _vector_name("vector_bucket_name", validate_bucket_name),
    "vector_index_name": _vector_name("vector_index_name", validate_index_name),
    "embed_model_id": _choice("embed_model_id", (TITAN_V2_MODEL_ID,)),
    "embed_dimensions": _integer("embed_dimensions", 1, 4096, choices=TITAN_V2_DIMENSIONS),
    "chunk_size_chars": _integer("chunk_size_chars", MIN_CHUNK_CHARS, MAX_CHUNK_CHARS),
    "chunk_overlap_chars": _integer("chunk_overlap_chars", 0, MAX_CHUNK_CHARS),
    "embed_concurrency": _integer("embed_concurrency", contract.MIN_EMBED_CONCURRENCY, contract.MAX_EMBED_CONCURRENCY),
    # Lambda ESM limits for Kinesis (CreateEventSourceMapping API reference).
    "batch_size": _integer("batch_size", 1, 10_000),
    "max_batching_window_seconds": _integer("max_batching_window_seconds", 0, 300),
    "starting_position": _choice("starting_position", STARTING_POSITIONS),
    "parallelization_factor": _integer("parallelization_factor", 1, 10),
    "enhanced_fan_out": _boolean("enhanced_fan_out"),
    # -1 (retry forever) is deliberately not allowed: one failing document would stall its shard for days.
    "max_retry_attempts": _integer("max_retry_attempts", 0, 10_000),
    "max_record_age_seconds": _integer("max_record_age_seconds", 60, 604_800),
    # Kinesis retention: 24 hours .. 365 days.
    "stream_retention_hours": _integer("stream_retention_hours", 24, 8760),
    "log_retention_days": _integer("log_retention_days", 1, 3653, choices=LOG_RETENTION_DAYS),
    "retain_data_on_destroy": _boolean("retain_data_on_destroy"),
    "vectors_kms_key_arn": _pattern(
        "vectors_kms_key_arn", re.compile(contract.KMS_KEY_ARN_PATTERN),
        "expected a full KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID), or empty for SSE-S3",
        optional=True,
    ),
    "lambda_memory_mb": _integer("lambda_memory_mb", 128, 10_240),
    "lambda_timeout_seconds": _integer("lambda_timeout_seconds", 1, 900),
    "reserved_concurrency": _optional_integer("reserved_concurrency", 1, 1000, "no reserved concurrency"),
    "dead_letter_expiration_days": _integer("dead_letter_expiration_days", 1, 3650),
    "alarm_email": _pattern(
        "alarm_email", _EMAIL_RE, "expected one e-mail address, or empty for no subscription", optional=True
    ),
    # At most a day: CloudWatch evaluates an alarm over at most one day, and the stall alarm's window grows with
    # this threshold (stacks/monitoring.py).
    "alarm_iterator_age_seconds": _integer("alarm_iterator_age_seconds", 10, 86_400),
    "alarm_freshness_p99_seconds": _integer("alarm_freshness_p99_seconds", 1, 86_400),
    "alarm_dead_letters": _integer("alarm_dead_letters", 1, 1_000_000),
    "alarm_lambda_errors": _integer("alarm_lambda_errors", 1, 1_000_000),
    "alarm_throttles": _integer("alarm_throttles", 1, 1_000_000),
    "alarm_archive_freshness_seconds": _integer(
        "alarm_archive_freshness_seconds", MIN_ARCHIVE_FRESHNESS_ALARM_SECONDS, 86_400
    ),
    "archive_enabled": _boolean("archive_enabled"),
    "archive_expiration_days": _integer("archive_expiration_days", 0, MAX_LIFECYCLE_DAYS),
    "archive_glacier_ir_days": _optional_integer(
        "archive_glacier_ir_days", 1, MAX_LIFECYCLE_DAYS, "archived events stay in S3 Standard"
    ),
    # The indexer reads the same bound (TOMBSTONE_RETENTION_DAYS, lambda_src/rtrag/config.py).
    "tombstone_retention_days": _integer("tombstone_retention_days", 0, MAX_TOMBSTONE_RETENTION_DAYS),
    # The indexer reads the same bounds (MAX_TS_SKEW_SECONDS, rtrag.core.config).
    "max_ts_skew_seconds": _integer("max_ts_skew_seconds", contract.MIN_MAX_TS_SKEW_SECONDS,
                                    contract.MAX_MAX_TS_SKEW_SECONDS),
}


def replay_window_days(stream_retention_hours: int, max_record_age_seconds: int) -> int:
    """Whole days during which the stream can still deliver an event (retention, plus the mapping's record age;
    a record age of -1 means no limit of its own, so the stream's retention alone)."""
    seconds = stream_retention_hours * 3600 + max(0, max_record_age_seconds)
    return math.ceil(seconds / SECONDS_PER_DAY)


def _check_combinations(parsed: dict[str, Any]) -> None:
    size, overlap = parsed["chunk_size_chars"], parsed["chunk_overlap_chars"]
    if overlap > contract.max_chunk_overlap(size):
        raise _fail(
            "chunk_overlap_chars", overlap,
            f"expected a whole number 0..{(size - 1) // 2} (less than half of chunk_size_chars={size})",
        )
    retention_seconds = parsed["stream_retention_hours"] * 3600
    if parsed["max_record_age_seconds"] > retention_seconds:
        raise _fail(
            "max_record_age_seconds", parsed["max_record_age_seconds"],
            f"expected a whole number 60..{retention_seconds} (at most stream_retention_hours="
            f"{parsed['stream_retention_hours']}; older records have left the stream)",
        )
    if parsed["alarm_iterator_age_seconds"] >= parsed["max_record_age_seconds"]:
        raise _fail(
            "alarm_iterator_age_seconds", parsed["alarm_iterator_age_seconds"],
            f"expected a whole number 10..{min(86_400, parsed['max_record_age_seconds'] - 1)} (less than "
            f"max_record_age_seconds={parsed['max_record_age_seconds']}, so the alarm fires before the mapping "
            "starts discarding records)",
        )
    expire, glacier = parsed["archive_expiration_days"], parsed["archive_glacier_ir_days"]
    if expire and glacier is not None and glacier >= expire:
        raise _fail(
            "archive_glacier_ir_days", glacier,
            f"expected a whole number 1..{expire - 1}, or none (less than archive_expiration_days={expire}; "
            "objects that expire first are never moved)",
        )
    tombstones = parsed["tombstone_retention_days"]
    hours, age = parsed["stream_retention_hours"], parsed["max_record_age_seconds"]
    replay_days = replay_window_days(hours, age)
    if tombstones and tombstones < replay_days:
        raise _fail(
            "tombstone_retention_days", tombstones,
            f"expected 0 (keep for ever) or a whole number {replay_days}..{MAX_TOMBSTONE_RETENTION_DAYS}: a "
            f"tombstone must outlive the {replay_days}-day replay window of stream_retention_hours={hours} and "
            f"max_record_age_seconds={age}, or a redelivered older upsert brings the deleted document back; "
            "raise it, or lower stream_retention_hours",
        )
    letters = parsed["dead_letter_expiration_days"]
    if tombstones and letters > tombstones:
        raise _fail(
            "tombstone_retention_days", tombstones,
            f"expected 0 (keep for ever) or at least dead_letter_expiration_days={letters}: a dead letter keeps its "
            f"events {letters} days, and redriving one (redrive.py) older than its tombstone would bring a deleted "
            "document back; raise it, set it to 0, or shorten dead_letter_expiration_days",
        )
    archive_days = parsed["archive_expiration_days"] if parsed["archive_enabled"] else None
    if tombstones and archive_days is not None and (archive_days == 0 or archive_days > tombstones):
        kept = "for ever" if archive_days == 0 else f"{archive_days} days"
        raise _fail(
            "tombstone_retention_days", tombstones,
            f"expected 0 (keep for ever) or at least archive_expiration_days={archive_days}: the archive keeps "
            f"events {kept}, and replaying one (reindex.py) older than its tombstone would bring a deleted "
            "document back; raise it, set it to 0, or shorten archive_expiration_days",
        )
