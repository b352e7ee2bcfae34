"""Settings: parsed once from CDK context, coerced from -c strings, and rejected with one message naming the fix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from rtrag.core.names import validate_bucket_name, validate_index_name
from stacks.settings import (
    LOG_RETENTION_DAYS,
    MAX_BASE_NAME_CHARS,
    Settings,
    SettingsError,
    derive_base_name,
    replay_window_days,
)

from .conftest import PROJECT_ROOT, cdk_json_context


def test_cdk_json_lists_every_setting_with_its_default():
    # given the context block of cdk.json
    context = cdk_json_context()

    # then every setting is there, with the default the code would use
    assert {key: context[key] for key in Settings.keys()} == Settings.defaults()


def test_defaults_parse_to_the_documented_values():
    settings = Settings.from_context(cdk_json_context())

    assert settings == Settings()
    assert settings.starting_position == "TRIM_HORIZON"
    assert settings.reserved_concurrency is None
    assert settings.retain_data_on_destroy is False


def test_values_given_with_dash_c_arrive_as_strings_and_are_coerced():
    # given: what `cdk synth -c key=value` passes for every kind of setting
    context = {
        "embed_dimensions": "512",
        "batch_size": "250",
        "max_batching_window_seconds": "5",
        "retain_data_on_destroy": "true",
        "reserved_concurrency": "20",
        "starting_position": "LATEST",
        "log_retention_days": "90",
    }

    settings = Settings.from_context(context)

    assert settings.embed_dimensions == 512
    assert settings.batch_size == 250
    assert settings.max_batching_window_seconds == 5
    assert settings.retain_data_on_destroy is True
    assert settings.reserved_concurrency == 20
    assert settings.starting_position == "LATEST"
    assert settings.log_retention_days == 90


@pytest.mark.parametrize("unset", [None, "", "none", "null"])
def test_reserved_concurrency_can_be_left_unset(unset):
    assert Settings.from_mapping({"reserved_concurrency": unset}).reserved_concurrency is None


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("embed_dimensions", "768", "256, 512, 1024"),
        ("embed_dimensions", "abc", "256, 512, 1024"),
        ("batch_size", "0", "1..10000"),
        ("batch_size", 10_001, "1..10000"),
        ("max_batching_window_seconds", "301", "0..300"),
        ("starting_position", "AT_TIMESTAMP", "TRIM_HORIZON, LATEST"),
        ("parallelization_factor", "11", "1..10"),
        ("max_retry_attempts", "-1", "0..10000"),
        ("max_record_age_seconds", "59", "60..604800"),
        ("stream_retention_hours", "23", "24..8760"),
        ("log_retention_days", "10", "1, 3, 5, 7, 14, 30"),
        ("retain_data_on_destroy", "yes", "true or false"),
        ("lambda_memory_mb", "64", "128..10240"),
        ("lambda_timeout_seconds", "901", "1..900"),
        ("reserved_concurrency", "0", "1..1000, or none"),
        ("embed_concurrency", "65", "1..64"),
        ("chunk_size_chars", "100", "200..8000"),
        ("dead_letter_expiration_days", "0", "1..3650"),
        ("embed_model_id", "amazon.titan-embed-text-v1", "amazon.titan-embed-text-v2:0"),
        ("stack_name", "1stack", "a letter, then letters, digits and '-'"),
        ("stack_name", "my_stack", "a letter, then letters, digits and '-'"),
        ("vector_bucket_name", "My_Bucket", "lowercase letters, digits and '-'"),
        ("vector_bucket_name", "b" * (MAX_BASE_NAME_CHARS + 1), f"3..{MAX_BASE_NAME_CHARS} characters"),
        ("vector_index_name", "ix", f"3..{MAX_BASE_NAME_CHARS} characters"),
        ("vectors_kms_key_arn", "alias/my-key", "full KMS key ARN"),
        ("alarm_email", "ops at example.com", "one e-mail address, or empty"),
        ("alarm_email", "a@example.com,b@example.com", "one e-mail address, or empty"),
        ("alarm_iterator_age_seconds", "5", "10..86400"),
        ("alarm_iterator_age_seconds", "86401", "10..86400"),
        ("alarm_freshness_p99_seconds", "0", "1..86400"),
        ("alarm_dead_letters", "0", "1..1000000"),
        ("alarm_lambda_errors", "0", "1..1000000"),
        ("alarm_throttles", "-1", "1..1000000"),
        ("alarm_archive_freshness_seconds", "60", "120..86400"),
        ("archive_enabled", "no", "true or false"),
        ("enhanced_fan_out", "yes please", "true or false"),
        ("archive_expiration_days", "-1", "0..36500"),
        ("archive_glacier_ir_days", "0", "1..36500, or none"),
        ("tombstone_retention_days", "-1", "0..36500"),
        ("tombstone_retention_days", "36501", "0..36500"),
        ("max_ts_skew_seconds", "59", "60..31536000"),
        ("tombstone_retention_days", "1.5", "0..36500"),
    ],
)
def test_a_bad_value_fails_with_one_message_naming_key_value_and_allowed_values(key, value, allowed):
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({key: value})

    message = str(caught.value)
    assert "\n" not in message
    assert f"{key}={value!r}" in message
    assert allowed in message
    assert f"-c {key}=" in message  # says where to fix it


def test_chunk_overlap_must_be_less_than_half_the_chunk_size():
    with pytest.raises(SettingsError, match=r"chunk_overlap_chars=500 .*less than half of chunk_size_chars=1000"):
        Settings.from_mapping({"chunk_size_chars": 1000, "chunk_overlap_chars": 500})

    assert Settings.from_mapping({"chunk_size_chars": 1000, "chunk_overlap_chars": 499}).chunk_overlap_chars == 499


def test_record_age_cannot_exceed_stream_retention():
    with pytest.raises(SettingsError, match=r"max_record_age_seconds=90000 .*stream_retention_hours=24"):
        Settings.from_mapping({"max_record_age_seconds": 90_000})


def test_iterator_age_alarm_must_fire_before_the_mapping_discards_records():
    with pytest.raises(SettingsError, match=r"alarm_iterator_age_seconds=3600 .*less than max_record_age_seconds=3600"):
        Settings.from_mapping({"alarm_iterator_age_seconds": 3600})


def test_archive_moves_to_glacier_ir_only_before_it_expires():
    with pytest.raises(SettingsError, match=r"archive_glacier_ir_days=365 .*less than archive_expiration_days=365"):
        Settings.from_mapping({"archive_glacier_ir_days": 365})

    assert Settings.from_mapping({"archive_glacier_ir_days": 90}).archive_glacier_ir_days == 90
    # 0 = never expire, so any transition day is fine
    assert Settings.from_mapping({"archive_expiration_days": 0, "archive_glacier_ir_days": 400,
                                  "tombstone_retention_days": 0}).archive_glacier_ir_days


def test_tombstones_are_kept_400_days_by_default_and_the_indexer_accepts_the_same_bounds():
    from rtrag.core.contract import MAX_TOMBSTONE_RETENTION_DAYS

    assert Settings().tombstone_retention_days == 400
    assert Settings.from_context({"tombstone_retention_days": "36500"}).tombstone_retention_days == 36_500
    assert MAX_TOMBSTONE_RETENTION_DAYS == 36_500


@pytest.mark.parametrize(("hours", "age", "days"), [
    (24, 3600, 2),  # the defaults: a day of retention plus an hour of record age
    (24, 60, 2),
    (48, 0, 2),  # exactly two days
    (8760, 604_800, 372),  # the longest stream retention plus the longest record age
    (24, -1, 1),  # no record age limit of the mapping's own: the stream's retention alone
])
def test_replay_window_is_stream_retention_plus_record_age_in_whole_days(hours, age, days):
    assert replay_window_days(hours, age) == days


def test_tombstones_must_outlive_the_replay_window_of_the_stream():
    # given a year of stream retention, a week of record age: a replay can deliver events 372 days old
    longest = {"stream_retention_hours": 8760, "max_record_age_seconds": 604_800}

    # then a shorter tombstone retention is refused with the two settings that set the window and the fix
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({**longest, "tombstone_retention_days": 371})
    message = str(caught.value)
    assert "tombstone_retention_days=371" in message
    assert "372..36500" in message
    assert "stream_retention_hours=8760" in message and "max_record_age_seconds=604800" in message
    assert "-c tombstone_retention_days=" in message
    assert "\n" not in message

    # and the window itself, or 0 (never expire), is accepted
    assert Settings.from_mapping({**longest, "tombstone_retention_days": 372}).tombstone_retention_days == 372
    assert Settings.from_mapping({**longest, "tombstone_retention_days": 0}).tombstone_retention_days == 0
    with pytest.raises(SettingsError, match=r"tombstone_retention_days=1 .*2\.\.36500"):
        Settings.from_mapping({"tombstone_retention_days": 1})


def test_tombstones_must_outlive_the_dead_letters_that_a_redrive_reads():
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({"archive_enabled": False, "tombstone_retention_days": 3,
                               "dead_letter_expiration_days": 4})

    message = str(caught.value)
    assert "tombstone_retention_days=3" in message and "dead_letter_expiration_days=4" in message
    assert "redrive.py" in message and "set it to 0" in message
    for fine in ({"tombstone_retention_days": 4}, {"tombstone_retention_days": 0}):
        assert Settings.from_mapping({"archive_enabled": False, "dead_letter_expiration_days": 4, **fine})


@pytest.mark.parametrize(("archive", "fragment"), [(0, "keeps events for ever"), (500, "keeps events 500 days")])
def test_tombstones_must_outlive_the_archive_that_a_replay_reads(archive, fragment):
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({"archive_expiration_days": archive, "tombstone_retention_days": 400})

    message = str(caught.value)
    assert "tombstone_retention_days=400" in message and fragment in message
    assert "reindex.py" in message and "set it to 0" in message
    # Kept for ever, or as long as the archive, or with no archive at all: accepted.
    assert Settings.from_mapping({"archive_expiration_days": archive, "tombstone_retention_days": 0})
    assert Settings.from_mapping({"archive_expiration_days": 500, "tombstone_retention_days": 500})
    assert Settings.from_mapping({"archive_enabled": False, "archive_expiration_days": 0,
                                  "tombstone_retention_days": 400})


@pytest.mark.parametrize("unset", [None, "", "none", "null"])
def test_glacier_transition_can_be_left_unset(unset):
    assert Settings.from_mapping({"archive_glacier_ir_days": unset}).archive_glacier_ir_days is None


def test_monitoring_and_archive_values_given_with_dash_c_are_coerced():
    settings = Settings.from_context({
        "alarm_email": " ops@example.com ", "alarm_iterator_age_seconds": "120", "archive_enabled": "false",
        "archive_expiration_days": "0", "archive_glacier_ir_days": "30",
    })

    assert settings.alarm_email == "ops@example.com"
    assert settings.alarm_iterator_age_seconds == 120
    assert settings.archive_enabled is False
    assert (settings.archive_expiration_days, settings.archive_glacier_ir_days) == (0, 30)


def test_a_misspelt_setting_is_reported_with_a_suggestion_not_ignored():
    with pytest.raises(SettingsError, match=r"unknown setting 'batch_sise': did you mean batch_size\?"):
        Settings.from_context({"batch_sise": "10"})


def test_cdk_own_context_keys_are_not_mistaken_for_settings():
    context = {"@aws-cdk/core:checkSecretUsage": True, "aws:cdk:bundling-stacks": [], "acknowledged-issue-numbers": []}
    assert Settings.from_context(context) == Settings()


def test_log_retention_accepts_every_cloudwatch_value():
    for days in LOG_RETENTION_DAYS:
        assert Settings.from_mapping({"log_retention_days": days}).log_retention_days == days


@pytest.mark.parametrize("stack_name", ["RealtimeRag", "rag-2", "A" * 128, "Team-" + "x" * 100])
def test_derived_vector_names_are_valid_and_leave_room_for_the_handler_suffix(stack_name):
    settings = Settings.from_mapping({"stack_name": stack_name})

    validate_bucket_name(settings.vector_bucket_base_name, max_chars=MAX_BASE_NAME_CHARS)
    validate_index_name(settings.vector_index_base_name, max_chars=MAX_BASE_NAME_CHARS)


@pytest.mark.parametrize(("first", "second"), [
    ("RagA", "RagB"),
    ("RagA", "raga"),  # stack names are case-sensitive, vector bucket names are lowercase
    ("rag-dev", "rag--dev"),
    ("Team-" + "x" * 100 + "-a", "Team-" + "x" * 100 + "-b"),  # differ only past the shortened part
])
def test_different_stack_names_derive_different_vector_names(first, second):
    for suffix in ("vectors", "chunks"):
        assert derive_base_name(first, suffix) != derive_base_name(second, suffix)


def test_derived_names_read_as_the_stack_name():
    assert re.fullmatch(r"realtimerag-[0-9a-f]{6}-vectors", Settings().vector_bucket_base_name)
    assert re.fullmatch(r"realtimerag-[0-9a-f]{6}-chunks", Settings().vector_index_base_name)


def test_explicit_vector_names_win_over_derived_ones():
    settings = Settings.from_mapping({"vector_bucket_name": "shared-vectors", "vector_index_name": "docs.v1"})

    assert (settings.vector_bucket_base_name, settings.vector_index_base_name) == ("shared-vectors", "docs.v1")


def test_app_prints_one_line_and_exits_non_zero_on_a_bad_setting(tmp_path):
    # given the context the CDK CLI hands to the app for `cdk synth -c batch_size=0`
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"batch_size": "0"}),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }

    result = subprocess.run(
        [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: setting batch_size='0' is invalid: expected a whole number 1..10000 "
        '(set it under "context" in cdk.json or pass -c batch_size=VALUE)'
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("key, hint", [("batchsize", "did you mean batch_size?"), ("Batch_Size", "did you mean "),
                                       ("enhancedfanout", "did you mean enhanced_fan_out?")])
def test_every_unknown_context_key_fails_not_only_those_with_an_underscore(key, hint):
    with pytest.raises(SettingsError, match=f"unknown setting {key!r}: {re.escape(hint)}"):
        Settings.from_context({**cdk_json_context(), key: "50"})

