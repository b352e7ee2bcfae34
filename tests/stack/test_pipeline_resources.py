"""The stream, the indexer function, its log group and layer, and the event source mapping, as synthesized."""

from __future__ import annotations

import re

from aws_cdk.assertions import Match

from rtrag.core.config import IndexerSettings
from stacks.settings import Settings

from .helpers import custom_resource, dead_letter_bucket, function_by_handler, getatt, of_type, one

DEFAULTS = Settings()
# Lambda rejects these (Lambda Developer Guide, "Defined runtime environment variables"); see shared/aws-facts.md.
RESERVED_ENV = re.compile(
    r"^(AWS_REGION|AWS_DEFAULT_REGION|AWS_EXECUTION_ENV|AWS_LAMBDA_.*|AWS_ACCESS_KEY.*|AWS_SECRET_ACCESS_KEY"
    r"|AWS_SESSION_TOKEN|_HANDLER|_X_AMZN_TRACE_ID|LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR|AWS_XRAY_.*)$"
)


def test_stream_is_on_demand_with_kms_managed_encryption_and_configured_retention(template):
    template.has_resource_properties("AWS::Kinesis::Stream", {
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
        "RetentionPeriodHours": DEFAULTS.stream_retention_hours,
    })


def test_stream_has_no_fixed_name_so_stacks_can_coexist(template):
    template.has_resource_properties("AWS::Kinesis::Stream", {"Name": Match.absent()})


def test_indexer_runs_python_3_13_on_arm64_with_configured_size(template):
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "indexer.handler",
        "Runtime": "python3.13",
        "Architectures": ["arm64"],
        "MemorySize": DEFAULTS.lambda_memory_mb,
        "Timeout": DEFAULTS.lambda_timeout_seconds,
        "ReservedConcurrentExecutions": Match.absent(),  # default: nothing reserved (fits new accounts)
    })


def test_both_functions_use_the_dependency_layer_built_for_arm64_python_3_13(resources):
    layer_id, _ = one(of_type(resources, "AWS::Lambda::LayerVersion"))
    layer = resources[layer_id]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    for handler in ("indexer.handler", "vector_index_resource.on_event"):
        _, function = function_by_handler(resources, handler)
        assert function["Properties"]["Layers"] == [{"Ref": layer_id}]


def test_indexer_environment_carries_actual_names_and_configuration(resources):
    _, function = function_by_handler(resources, "indexer.handler")
    index = custom_resource(resources)
    bucket_id, _ = dead_letter_bucket(resources)
    table_id, _ = one(of_type(resources, "AWS::DynamoDB::Table"))

    assert function["Properties"]["Environment"]["Variables"] == {
        "VECTOR_BUCKET": getatt(index, "VectorBucketName"),
        "VECTOR_INDEX": getatt(index, "IndexName"),
        "VECTOR_INDEX_GENERATION": getatt(index, "IndexGeneration"),
        "DEAD_LETTER_BUCKET": {"Ref": bucket_id},
        "VERSION_TABLE": {"Ref": table_id},
        "TOMBSTONE_RETENTION_DAYS": "400",
        "MAX_TS_SKEW_SECONDS": "86400",
        "EMBED_MODEL_ID": "amazon.titan-embed-text-v2:0",
        "EMBED_DIMENSIONS": "1024",
        "EMBED_CONCURRENCY": "16",
        "CHUNK_SIZE_CHARS": "2000",
        "CHUNK_OVERLAP_CHARS": "200",
        "POWERTOOLS_SERVICE_NAME": "indexer",
        "POWERTOOLS_METRICS_NAMESPACE": "RealtimeRag/RealtimeRag",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_no_function_sets_a_reserved_environment_variable(resources):
    for key, function in of_type(resources, "AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not [name for name in variables if RESERVED_ENV.match(name)], key


def test_the_indexer_accepts_the_environment_the_stack_gives_it(resources):
    # given the synthesized environment, with deploy-time references standing in as plain names
    _, function = function_by_handler(resources, "indexer.handler")
    env = {k: v if isinstance(v, str) else f"resolved-{k.lower()}"
           for k, v in function["Properties"]["Environment"]["Variables"].items()}
    env["VECTOR_INDEX_GENERATION"] = "1795478400000"  # the index's creation time, as the custom resource gives it

    # when the indexer reads its settings the way it does on a cold start
    settings = IndexerSettings.from_env(env)

    # then it sees the configured values
    assert settings.embed_dimensions == DEFAULTS.embed_dimensions
    assert settings.embed_concurrency == DEFAULTS.embed_concurrency
    assert settings.chunking.size_chars == DEFAULTS.chunk_size_chars
    assert settings.chunking.overlap_chars == DEFAULTS.chunk_overlap_chars
    assert settings.version_table == "resolved-version_table"
    assert settings.index_generation == "1795478400000"
    assert settings.tombstone_retention_days == DEFAULTS.tombstone_retention_days


def test_every_function_logs_to_its_own_log_group_with_configured_retention(resources):
    log_groups = of_type(resources, "AWS::Logs::LogGroup")
    functions = of_type(resources, "AWS::Lambda::Function")
    ours = {k: f for k, f in functions.items() if "LoggingConfig" in f["Properties"]}

    assert len(ours) == 3  # indexer, custom resource handler, Provider framework
    used = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in ours.values()]
    assert sorted(used) == sorted(set(used)) and set(used) <= set(log_groups)
    for key in used:
        assert log_groups[key]["Properties"]["RetentionInDays"] == DEFAULTS.log_retention_days
        assert log_groups[key]["DeletionPolicy"] == "Delete"


def test_event_source_mapping_is_tuned_for_freshness_and_bounded_failure(resources, template):
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    bucket_id, _ = dead_letter_bucket(resources)
    function_id, _ = function_by_handler(resources, "indexer.handler")

    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": getatt(stream_id, "Arn"),
        "FunctionName": {"Ref": function_id},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 2,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": DEFAULTS.max_retry_attempts,
        "MaximumRecordAgeInSeconds": DEFAULTS.max_record_age_seconds,
        "DestinationConfig": {"OnFailure": {"Destination": getatt(bucket_id, "Arn")}},
    })


def test_retries_and_record_age_are_bounded(resources):
    _, mapping = one(of_type(resources, "AWS::Lambda::EventSourceMapping"))
    assert 0 <= mapping["Properties"]["MaximumRetryAttempts"] <= 10_000
    assert 60 <= mapping["Properties"]["MaximumRecordAgeInSeconds"] <= DEFAULTS.stream_retention_hours * 3600
