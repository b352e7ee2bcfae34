"""The archive: Firehose copies the stream, as put, into gzipped JSON Lines by hour, on a least-privilege role."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.settings import Settings

from .conftest import CUSTOM, NO_ARCHIVE
from .helpers import (
    actions,
    archive_bucket,
    as_list,
    dead_letter_bucket,
    getatt,
    of_type,
    one,
    placeholder,
    role_statements,
)
from .iam_eval import ACCOUNT, PARTITION, REGION, Request, allows

DEFAULTS = Settings()
# The archive's layout is a contract with scripts/reindex.py; these literals are that contract.
OBJECT_PREFIX = "events/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
ERROR_OUTPUT_PREFIX = "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"


def _delivery_stream(resources: dict[str, Any]) -> dict[str, Any]:
    _, stream = one(of_type(resources, "AWS::KinesisFirehose::DeliveryStream"))
    return stream["Properties"]


def test_delivery_stream_reads_the_ingest_stream(resources):
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    props = _delivery_stream(resources)

    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert props["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == getatt(stream_id, "Arn")
    assert "DeliveryStreamName" not in props  # two stacks must not collide
    assert "DeliveryStreamEncryptionConfigurationInput" not in props  # Direct PUT only; the source is encrypted


def test_each_record_becomes_one_line_of_a_gzipped_file_under_an_hourly_prefix(resources):
    bucket_id, _ = archive_bucket(resources)
    destination = _delivery_stream(resources)["ExtendedS3DestinationConfiguration"]

    assert destination["BucketARN"] == getatt(bucket_id, "Arn")
    # the built-in processor, not a Lambda: it appends "\n" to each record's data and changes nothing else
    assert destination["ProcessingConfiguration"] == {
        "Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord"}]}
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["FileExtension"] == ".jsonl.gz"
    assert destination["Prefix"] == OBJECT_PREFIX
    assert destination["ErrorOutputPrefix"] == ERROR_OUTPUT_PREFIX
    assert destination["S3BackupMode"] == "Disabled"
    assert "DataFormatConversionConfiguration" not in destination  # records are kept exactly as put
    assert "DynamicPartitioningConfiguration" not in destination


def test_archive_is_at_most_a_minute_or_5_mib_behind(resources):
    destination = _delivery_stream(resources)["ExtendedS3DestinationConfiguration"]
    assert destination["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 5}


def test_delivery_errors_are_logged_to_the_archives_own_log_group(resources):
    destination = _delivery_stream(resources)["ExtendedS3DestinationConfiguration"]
    logging = destination["CloudWatchLoggingOptions"]
    log_group_id = logging["LogGroupName"]["Ref"]
    log_stream_id = logging["LogStreamName"]["Ref"]

    assert logging["Enabled"] is True
    assert resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == DEFAULTS.log_retention_days
    assert resources[log_group_id]["DeletionPolicy"] == "Delete"
    assert resources[log_stream_id]["Properties"]["LogGroupName"] == {"Ref": log_group_id}


def _archive_role(resources: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    props = _delivery_stream(resources)
    role_id = props["KinesisStreamSourceConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    assert props["ExtendedS3DestinationConfiguration"]["RoleARN"] == getatt(role_id, "Arn")
    return role_id, role_statements(resources, role_id)


def test_archive_role_is_assumable_by_firehose_only_and_has_no_managed_policies(resources):
    role_id, _ = _archive_role(resources)
    role = resources[role_id]["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}}]
    assert "ManagedPolicyArns" not in role


def test_archive_role_holds_exactly_stream_reads_archive_writes_and_its_log_stream(resources):
    _, statements = _archive_role(resources)
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    bucket_id, _ = archive_bucket(resources)
    bucket = f"${{{bucket_id}.Arn}}"

    granted = {(a, placeholder(r)) for s in statements for a in actions(s) for r in as_list(s["Resource"])}
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements)
    assert granted == {
        *((f"kinesis:{a}", f"${{{stream_id}.Arn}}") for a in (
            "DescribeStream", "DescribeStreamSummary", "GetShardIterator", "GetRecords", "ListShards")),
        *((f"s3:{a}", f"{bucket}/{prefix}*") for a in ("PutObject", "GetObject", "AbortMultipartUpload")
          for prefix in ("events/", "errors/")),
        *((f"s3:{a}", bucket) for a in ("GetBucketLocation", "ListBucket", "ListBucketMultipartUploads")),
        ("logs:PutLogEvents", _log_stream_arn(resources)),
    }


def _log_stream_arn(resources: dict[str, Any]) -> str:
    logging = _delivery_stream(resources)["ExtendedS3DestinationConfiguration"]["CloudWatchLoggingOptions"]
    return (f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:"
            f"${{{logging['LogGroupName']['Ref']}}}:log-stream:${{{logging['LogStreamName']['Ref']}}}")


STREAM_ARN = f"arn:{PARTITION}:kinesis:{REGION}:{ACCOUNT}:stream/ingest"
ARCHIVE = "archive-bucket"


@pytest.mark.parametrize(("action", "resource", "allowed"), [
    # what Firehose does for this delivery stream
    ("kinesis:GetShardIterator", STREAM_ARN, True),
    ("kinesis:GetRecords", STREAM_ARN, True),
    ("kinesis:ListShards", STREAM_ARN, True),
    ("s3:PutObject", f"arn:aws:s3:::{ARCHIVE}/events/2026/11/24/10/RagArchive-1-2026-11-24-10-00-00-uuid.jsonl.gz",
     True),
    ("s3:PutObject", f"arn:aws:s3:::{ARCHIVE}/errors/processing-failed/2026/11/24/RagArchive-1-uuid", True),
    ("s3:ListBucket", f"arn:aws:s3:::{ARCHIVE}", True),
    ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:archive-logs:log-stream:S3Delivery", True),
    # and nothing else
    ("kinesis:PutRecord", STREAM_ARN, False),
    ("kinesis:GetRecords", f"arn:{PARTITION}:kinesis:{REGION}:{ACCOUNT}:stream/other", False),
    ("s3:PutObject", f"arn:aws:s3:::{ARCHIVE}/elsewhere.gz", False),
    ("s3:DeleteObject", f"arn:aws:s3:::{ARCHIVE}/events/2026/11/24/10/x.jsonl.gz", False),
    ("s3:PutObject", "arn:aws:s3:::dead-letters/invalid/x.json", False),
    ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:other:log-stream:S3Delivery", False),
])
def test_archive_role_allows_firehoses_calls_and_nothing_beside_them(resources, action, resource, allowed):
    _, statements = _archive_role(resources)
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    bucket_id, _ = archive_bucket(resources)
    logging = _delivery_stream(resources)["ExtendedS3DestinationConfiguration"]["CloudWatchLoggingOptions"]
    attributes = {(stream_id, "Arn"): STREAM_ARN, (bucket_id, "Arn"): f"arn:aws:s3:::{ARCHIVE}"}
    refs = {logging["LogGroupName"]["Ref"]: "archive-logs", logging["LogStreamName"]["Ref"]: "S3Delivery"}

    assert allows(statements, Request(action=action, resource=resource), attributes, refs) is allowed


def test_archive_bucket_is_encrypted_private_and_expires_by_lifecycle(resources):
    _, bucket = archive_bucket(resources)
    props = bucket["Properties"]

    assert props["BucketEncryption"] == {"ServerSideEncryptionConfiguration": [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LifecycleConfiguration"] == {"Rules": [{
        "Id": "archive-lifecycle", "Status": "Enabled",
        "ExpirationInDays": DEFAULTS.archive_expiration_days,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }]}
    assert DEFAULTS.archive_expiration_days == 365 and DEFAULTS.archive_glacier_ir_days is None
    assert "BucketName" not in props


def test_archive_bucket_denies_requests_without_tls(resources):
    bucket_id, _ = archive_bucket(resources)
    (policy,) = [p for p in of_type(resources, "AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": bucket_id}]

    assert {"Effect": "Deny", "Action": "s3:*", "Principal": {"AWS": "*"},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}} in [
        {k: v for k, v in s.items() if k != "Resource"} for s in policy["Properties"]["PolicyDocument"]["Statement"]]


def test_by_default_destroy_deletes_the_archive_and_its_objects(resources):
    bucket_id, bucket = archive_bucket(resources)

    assert bucket["DeletionPolicy"] == "Delete"
    assert {"Ref": bucket_id} in [r["Properties"]["BucketName"]
                                  for r in of_type(resources, "Custom::S3AutoDeleteObjects").values()]


def test_archive_bucket_name_is_an_output(synth, resources):
    bucket_id, _ = archive_bucket(resources)
    assert synth.template_json["Outputs"]["ArchiveBucketName"]["Value"] == {"Ref": bucket_id}


def test_custom_lifecycle_moves_to_glacier_ir_keeps_forever_and_survives_destroy(variants):
    resources = variants.templates[CUSTOM["stack_name"]]["Resources"]
    bucket_id, bucket = archive_bucket(resources)
    logging = _delivery_stream(resources)["ExtendedS3DestinationConfiguration"]["CloudWatchLoggingOptions"]

    assert bucket["Properties"]["LifecycleConfiguration"] == {"Rules": [{
        "Id": "archive-lifecycle", "Status": "Enabled",  # archive_expiration_days=0: no ExpirationInDays
        "Transitions": [{"StorageClass": "GLACIER_IR", "TransitionInDays": int(CUSTOM["archive_glacier_ir_days"])}],
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }]}
    assert bucket["DeletionPolicy"] == "Retain"
    assert {"Ref": bucket_id} not in [r["Properties"]["BucketName"]
                                      for r in of_type(resources, "Custom::S3AutoDeleteObjects").values()]
    for logical_id in (logging["LogGroupName"]["Ref"], logging["LogStreamName"]["Ref"]):
        assert resources[logical_id]["DeletionPolicy"] == "Retain"


@pytest.fixture
def no_archive(variants) -> dict[str, Any]:
    return variants.templates[NO_ARCHIVE["stack_name"]]


def test_archive_enabled_false_removes_the_delivery_stream_its_bucket_role_logs_and_alarm(no_archive):
    resources = no_archive["Resources"]

    assert of_type(resources, "AWS::KinesisFirehose::DeliveryStream") == {}
    dead_letters_id, _ = dead_letter_bucket(resources)
    assert set(of_type(resources, "AWS::S3::Bucket")) == {dead_letters_id}
    assert not [r for r in of_type(resources, "AWS::IAM::Role").values()
                if "firehose.amazonaws.com" in str(r["Properties"]["AssumeRolePolicyDocument"])]
    assert not [r for r in of_type(resources, "AWS::Logs::LogStream").values()]
    assert "ArchiveBucketName" not in no_archive["Outputs"]
    assert not [a for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
                if "AWS/Firehose" in str(a["Properties"])]
    _, dashboard = one(of_type(resources, "AWS::CloudWatch::Dashboard"))
    assert "AWS/Firehose" not in placeholder(dashboard["Properties"]["DashboardBody"])
