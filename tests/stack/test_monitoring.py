"""Monitoring: the dashboard's widgets, every alarm (metric, threshold, period, missing data, action), the topic."""

from __future__ import annotations

import math
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

import indexer
from rtrag.indexing.batch import BatchResult
from stacks.monitoring import LEDGER_OPERATIONS, STALL_PERIOD_SECONDS
from stacks.settings import Settings

from .conftest import CUSTOM
from .helpers import (
    alarms_by_name,
    dashboard_body,
    function_by_handler,
    of_type,
    one,
    placeholder,
)

DEFAULTS = Settings()
STACK = DEFAULTS.stack_name
# Lambda's, Kinesis's, Firehose's and DynamoDB's metric namespaces (CloudWatch User Guide, "AWS services that
# publish CloudWatch metrics").
LAMBDA, KINESIS, FIREHOSE, DYNAMODB = "AWS/Lambda", "AWS/Kinesis", "AWS/Firehose", "AWS/DynamoDB"
# The operations the version ledger calls (lambda_src/rtrag/ledger.py), as DynamoDB's Operation dimension names them.
BATCH_GET, BATCH_WRITE = "BatchGetItem", "BatchWriteItem"


def _ids(resources: dict[str, Any]) -> dict[str, str]:
    function_id, _ = function_by_handler(resources, "indexer.handler")
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    table_id, _ = one(of_type(resources, "AWS::DynamoDB::Table"))
    ids = {"function": f"${{{function_id}}}", "stream": f"${{{stream_id}}}", "table": f"${{{table_id}}}"}
    firehose = of_type(resources, "AWS::KinesisFirehose::DeliveryStream")
    if firehose:
        ids["firehose"] = f"${{{one(firehose)[0]}}}"
    return ids


def _indexer_env(resources: dict[str, Any]) -> tuple[str, str]:
    _, function = function_by_handler(resources, "indexer.handler")
    variables = function["Properties"]["Environment"]["Variables"]
    return variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]


def _widget_metrics(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str, int]]:
    """(namespace, metric, dimensions, statistic, period) of each line of a metric widget."""
    lines = []
    for line in widget["properties"]["metrics"]:
        options = line[-1] if isinstance(line[-1], dict) else {}
        fields = line[:-1] if options else line
        dimensions = dict(zip(fields[2::2], fields[3::2], strict=True))
        # the dashboard's default period (300 s) and statistic (Average) are left out of the body
        lines.append((fields[0], fields[1], dimensions, options.get("stat", "Average"), options.get("period", 300)))
    return lines


def _expected_widgets(resources: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, str], str, int]]]:
    namespace, service = _indexer_env(resources)
    ids = _ids(resources)
    fn, stream = {"FunctionName": ids["function"]}, {"StreamName": ids["stream"]}

    def ledger(operation: str) -> dict[str, str]:
        return {"TableName": ids["table"], "Operation": operation}

    table = {"TableName": ids["table"]}
    mine = {"service": service}

    def indexer_sums(*names: str) -> list[tuple[str, str, dict[str, str], str, int]]:
        return [(namespace, name, mine, "Sum", 60) for name in names]

    widgets = {
        "Freshness: put -> searchable (IndexLag, ms)": [
            (namespace, "IndexLag", mine, p, 60) for p in ("p50", "p90", "p99")],
        "Iterator age (ms)": [
            (LAMBDA, "IteratorAge", fn, "Maximum", 60),
            (KINESIS, "GetRecords.IteratorAgeMilliseconds", stream, "Maximum", 60)],
        "Documents per minute": indexer_sums(
            "DocumentsUpserted", "DocumentsDeleted", "DocumentsSkippedUnchanged", "DocumentsSkippedStale",
            "DocumentsRetagged", "RecordsReceived", "EventsSuperseded"),
        "Embedding calls and chunks written per minute": indexer_sums("EmbeddingCalls", "ChunksWritten",
                                                                      "ChunksDeleted"),
        "Dead letters and failed documents per minute": [
            *indexer_sums("DeadLetters", "DocumentsFailed", "RecordsMisKeyed"),
            (LAMBDA, "DestinationDeliveryFailures", fn, "Sum", 60)],
        "Indexer errors and throttles": [
            (LAMBDA, name, fn, "Sum", 60) for name in ("Errors", "Throttles", "Invocations")],
        "Indexer duration (ms)": [(LAMBDA, "Duration", fn, stat, 60) for stat in ("p50", "p99", "Maximum")],
        "Stream: records put per minute": [(KINESIS, "IncomingRecords", stream, "Sum", 60)],
        "Stream: throttled requests per minute": [
            (KINESIS, "WriteProvisionedThroughputExceeded", stream, "Sum", 60),
            (KINESIS, "ReadProvisionedThroughputExceeded", stream, "Sum", 60)],
        "Version ledger: throttled and failed requests per minute": [
            (DYNAMODB, "ThrottledRequests", ledger(BATCH_GET), "Sum", 60),
            (DYNAMODB, "ThrottledRequests", ledger(BATCH_WRITE), "Sum", 60),
            (DYNAMODB, "SystemErrors", ledger(BATCH_GET), "Sum", 60),
            (DYNAMODB, "SystemErrors", ledger(BATCH_WRITE), "Sum", 60),
            (DYNAMODB, "ReadThrottleEvents", table, "Sum", 60),
            (DYNAMODB, "WriteThrottleEvents", table, "Sum", 60)],
        "Version ledger: request latency (ms)": [
            (DYNAMODB, "SuccessfulRequestLatency", ledger(operation), stat, 60)
            for operation in (BATCH_GET, BATCH_WRITE) for stat in ("Average", "Maximum")],
    }
    if "firehose" in ids:
        archive = {"DeliveryStreamName": ids["firehose"]}
        widgets |= {
            "Archive: records read and delivered per 5 minutes": [
                (FIREHOSE, "DataReadFromKinesisStream.Records", archive, "Sum", 300),
                (FIREHOSE, "DeliveryToS3.Records", archive, "Sum", 300)],
            "Archive: freshness (s) and delay behind the stream (ms)": [
                (FIREHOSE, "DeliveryToS3.DataFreshness", archive, "Maximum", 300),
                (FIREHOSE, "KinesisMillisBehindLatest", archive, "Maximum", 300)],
        }
    return widgets


def test_dashboard_shows_freshness_backlog_throughput_failures_and_the_stream(resources):
    body = dashboard_body(resources)

    shown = {w["properties"]["title"]: _widget_metrics(w) for w in body["widgets"] if w["type"] == "metric"}

    assert shown == _expected_widgets(resources)


def test_dashboard_opens_with_the_state_of_every_alarm(resources):
    body = dashboard_body(resources)
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]

    assert body["widgets"][0] is status
    assert sorted(status["properties"]["alarms"]) == sorted(
        f"${{{key}.Arn}}" for key in of_type(resources, "AWS::CloudWatch::Alarm"))


def test_dashboard_is_named_after_the_stack_and_region(resources):
    _, dashboard = one(of_type(resources, "AWS::CloudWatch::Dashboard"))
    assert placeholder(dashboard["Properties"]["DashboardName"]) == f"{STACK}-${{AWS::Region}}"


def _referenced_indexer_metrics(resources: dict[str, Any], namespace: str) -> list[tuple[str, dict[str, str]]]:
    found = [(name, dims) for widget in dashboard_body(resources)["widgets"] if widget["type"] == "metric"
             for ns, name, dims, _, _ in _widget_metrics(widget) if ns == namespace]
    for alarm in alarms_by_name(resources).values():
        for metric in _alarm_metrics(alarm):
            if metric["Namespace"] == namespace:
                found.append((metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}))
    return found


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads, as {Namespace, MetricName, Dimensions, Stat, Period}, whichever form CDK
    rendered (plain properties, or a Metrics array when the metric has a label or is an expression)."""
    if "Metrics" not in alarm:
        return [{"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                 "Dimensions": alarm["Dimensions"], "Period": alarm["Period"],
                 "Stat": alarm.get("Statistic") or alarm["ExtendedStatistic"]}]
    return [{**m["MetricStat"]["Metric"], "Stat": m["MetricStat"]["Stat"], "Period": m["MetricStat"]["Period"]}
            for m in alarm["Metrics"] if "MetricStat" in m]


def test_every_indexer_metric_referenced_is_one_the_indexer_publishes_with_that_exact_dimension_set(resources):
    # given the namespace and service the stack gives the function, and Powertools emitting with them
    namespace, service = _indexer_env(resources)
    metrics = Metrics(namespace=namespace, service=service)
    original = indexer.handler.metrics
    indexer.handler.metrics = metrics
    try:
        # when the indexer reports a batch
        indexer.handler.emit_metrics(BatchResult(records=1, upserted=1, chunks_written=1, embedding_calls=1,
                                                 lags_ms=[42.0]))
        blob = metrics.serialize_metric_set()
    finally:
        indexer.handler.metrics = original
        metrics.clear_metrics()

    # then every metric the dashboard and the alarms read is in the EMF blob, under exactly those dimensions
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == namespace
    assert directive["Dimensions"] == [["service"]]
    assert blob["service"] == service
    published = {m["Name"] for m in directive["Metrics"]}
    referenced = _referenced_indexer_metrics(resources, namespace)
    assert {"IndexLag", "DeadLetters", "DocumentsUpserted", "EmbeddingCalls"} <= {n for n, _ in referenced}
    for name, dimensions in referenced:
        assert name in published
        assert dimensions == {"service": service}, name


def _expected_alarms(resources: dict[str, Any], settings: Settings) -> dict[str, dict[str, Any]]:
    namespace, service = _indexer_env(resources)
    fn = [{"Name": "FunctionName", "Value": {"Ref": _ids(resources)["function"][2:-1]}}]
    mine = [{"Name": "service", "Value": service}]
    expected = {
        "IteratorAge": {
            "Namespace": LAMBDA, "MetricName": "IteratorAge", "Dimensions": fn, "Stat": "Maximum",
            "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 3,
            "Threshold": settings.alarm_iterator_age_seconds * 1000, "ComparisonOperator": "GreaterThanThreshold",
        },
        "FreshnessP99": {
            "Namespace": namespace, "MetricName": "IndexLag", "Dimensions": mine, "Stat": "p99",
            "Period": 300, "EvaluationPeriods": 2, "DatapointsToAlarm": 2,
            "Threshold": settings.alarm_freshness_p99_seconds * 1000, "ComparisonOperator": "GreaterThanThreshold",
        },
        "DeadLetters": {
            "Namespace": namespace, "MetricName": "DeadLetters", "Dimensions": mine, "Stat": "Sum",
            "Period": 300, "EvaluationPeriods": 1,
            "Threshold": settings.alarm_dead_letters, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        "LambdaErrors": {
            "Namespace": LAMBDA, "MetricName": "Errors", "Dimensions": fn, "Stat": "Sum",
            "Period": 300, "EvaluationPeriods": 1,
            "Threshold": settings.alarm_lambda_errors, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        "LambdaThrottles": {
            "Namespace": LAMBDA, "MetricName": "Throttles", "Dimensions": fn, "Stat": "Sum",
            "Period": 300, "EvaluationPeriods": 1,
            "Threshold": settings.alarm_throttles, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        # a failed batch that could not be written to the dead-letter bucket is in no dead letter: any one
        "FailedBatchNotSaved": {
            "Namespace": LAMBDA, "MetricName": "DestinationDeliveryFailures", "Dimensions": fn, "Stat": "Sum",
            "Period": 300, "EvaluationPeriods": 1, "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        # documents retried by the mapping (Lambda's Errors stays 0): in 2 of 3 periods, not one blip
        "DocumentsFailing": {
            "Namespace": namespace, "MetricName": "DocumentsFailed", "Dimensions": mine, "Stat": "Sum",
            "Period": 300, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        "RecordsMisKeyed": {
            "Namespace": namespace, "MetricName": "RecordsMisKeyed", "Dimensions": mine, "Stat": "Sum",
            "Period": 300, "EvaluationPeriods": 1, "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    }
    dead_letter_bucket, _ = one({k: r for k, r in of_type(resources, "AWS::S3::Bucket").items()
                                 if r["Properties"].get("MetricsConfigurations")})
    expected["FailedBatches"] = {
        "Namespace": "AWS/S3", "MetricName": "PutRequests", "Stat": "Sum",
        "Dimensions": [{"Name": "BucketName", "Value": {"Ref": dead_letter_bucket}},
                       {"Name": "FilterId", "Value": "FailedBatches"}],
        "Period": 300, "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    if settings.archive_enabled:
        firehose_id = _ids(resources)["firehose"][2:-1]
        expected["ArchiveFreshness"] = {
            "Namespace": FIREHOSE, "MetricName": "DeliveryToS3.DataFreshness",
            "Dimensions": [{"Name": "DeliveryStreamName", "Value": {"Ref": firehose_id}}], "Stat": "Maximum",
            "Period": 300, "EvaluationPeriods": 1,
            "Threshold": settings.alarm_archive_freshness_seconds, "ComparisonOperator": "GreaterThanThreshold",
        }
    for props in expected.values():
        # Every alarm treats a missing datapoint as "nothing happened" (stacks/monitoring.py says why per alarm).
        props["TreatMissingData"] = "notBreaching"
    return expected


def _metric_properties(alarm: dict[str, Any]) -> dict[str, Any]:
    """What an alarm evaluates: its one metric (if it has one) and its evaluation settings."""
    rendered = ("Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic", "Period", "Metrics")
    props = {k: v for k, v in alarm.items() if k not in (
        "AlarmName", "AlarmDescription", "AlarmActions", "OKActions", *rendered)}
    metrics = _alarm_metrics(alarm)
    if len(metrics) == 1:
        props |= metrics[0]
    return props


@pytest.mark.parametrize("key", ["IteratorAge", "FreshnessP99", "DeadLetters", "LambdaErrors", "LambdaThrottles",
                                 "ArchiveFreshness", "FailedBatches", "FailedBatchNotSaved", "DocumentsFailing",
                                 "RecordsMisKeyed"])
def test_each_alarm_watches_its_metric_with_its_threshold_period_and_missing_data_treatment(resources, key):
    alarm = alarms_by_name(resources)[f"{STACK}-{key}"]

    assert _metric_properties(alarm) == _expected_alarms(resources, DEFAULTS)[key]
    assert len(alarm["AlarmDescription"]) > 100  # says what it means and what to do


def test_default_thresholds_suit_a_real_time_index():
    # minutes, not the 12 hours of iterator age seen in generic templates
    assert DEFAULTS.alarm_iterator_age_seconds == 5 * 60
    assert DEFAULTS.alarm_freshness_p99_seconds == 60
    assert DEFAULTS.alarm_dead_letters == 1  # any dead letter
    assert DEFAULTS.alarm_iterator_age_seconds < DEFAULTS.max_record_age_seconds


def _stall_periods(settings: Settings) -> int:
    return max(2, math.ceil(settings.alarm_iterator_age_seconds / STALL_PERIOD_SECONDS))


def _check_stall_alarm(resources: dict[str, Any], stack: str, settings: Settings) -> None:
    alarm = alarms_by_name(resources)[f"{stack}-IndexerStalled"]
    ids = _ids(resources)
    expression, *inputs = alarm["Metrics"]

    assert expression["Expression"] == "IF(FILL(incoming, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
    assert expression["ReturnData"] is True
    assert {m["Id"]: (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"],
                      placeholder(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]),
                      m["MetricStat"]["Stat"], m["MetricStat"]["Period"], m["ReturnData"]) for m in inputs} == {
        "incoming": (KINESIS, "IncomingRecords", ids["stream"], "Sum", 300, False),
        "invocations": (LAMBDA, "Invocations", ids["function"], "Sum", 300, False),
    }
    assert {k: v for k, v in alarm.items() if k not in ("AlarmName", "AlarmDescription", "AlarmActions",
                                                         "OKActions", "Metrics")} == {
        "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": _stall_periods(settings), "DatapointsToAlarm": _stall_periods(settings),
        "TreatMissingData": "notBreaching",
    }


def test_archive_stall_alarm_fires_when_records_keep_arriving_and_the_archive_reads_none(resources):
    alarm = alarms_by_name(resources)[f"{STACK}-ArchiveStalled"]
    ids = _ids(resources)
    expression, *inputs = alarm["Metrics"]

    assert expression["Expression"] == "IF(FILL(incoming, 0) > 0 AND FILL(archived, 0) == 0, 1, 0)"
    assert {m["Id"]: (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"],
                      placeholder(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]),
                      m["MetricStat"]["Stat"], m["MetricStat"]["Period"]) for m in inputs} == {
        "incoming": (KINESIS, "IncomingRecords", ids["stream"], "Sum", 300),
        "archived": (FIREHOSE, "DataReadFromKinesisStream.Records", ids["firehose"], "Sum", 300),
    }
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["TreatMissingData"]) == (
        _stall_periods(DEFAULTS), _stall_periods(DEFAULTS), "notBreaching")


def test_stall_alarm_fires_when_records_keep_arriving_and_the_indexer_is_never_invoked(resources):
    _check_stall_alarm(resources, STACK, DEFAULTS)
    assert _stall_periods(DEFAULTS) == 2  # ten minutes: a record put at a period's end is indexed in the next


def _check_ledger_alarm(resources: dict[str, Any], stack: str) -> None:
    alarm = alarms_by_name(resources)[f"{stack}-VersionLedgerErrors"]
    table = _ids(resources)["table"]
    expression, *inputs = alarm["Metrics"]

    # every throttled or failed ledger call counts, even when the other operations published nothing
    assert expression["ReturnData"] is True
    terms = expression["Expression"].split(" + ")
    assert sorted(terms) == sorted(f"FILL({m['Id']}, 0)" for m in inputs)

    def watched(m: dict[str, Any]) -> tuple[Any, ...]:
        metric = m["MetricStat"]["Metric"]
        dimensions = sorted((d["Name"], placeholder(d["Value"])) for d in metric["Dimensions"])
        return (metric["Namespace"], metric["MetricName"], dimensions, m["MetricStat"]["Stat"],
                m["MetricStat"]["Period"], m["ReturnData"])

    assert sorted(map(watched, inputs)) == sorted([
        *((DYNAMODB, name, [("Operation", operation), ("TableName", table)], "Sum", 300, False)
          for name in ("ThrottledRequests", "SystemErrors") for operation in (BATCH_GET, BATCH_WRITE)),
        # items throttled one by one (ThrottledRequests counts a batch call only when all of it was throttled)
        *((DYNAMODB, name, [("TableName", table)], "Sum", 300, False)
          for name in ("ReadThrottleEvents", "WriteThrottleEvents"))])
    assert {k: v for k, v in alarm.items() if k not in ("AlarmName", "AlarmDescription", "AlarmActions",
                                                         "OKActions", "Metrics")} == {
        "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
    }
    assert len(alarm["AlarmDescription"]) > 100


def test_ledger_alarm_fires_on_any_throttled_or_failed_call_to_the_version_table(resources):
    assert LEDGER_OPERATIONS == (BATCH_GET, BATCH_WRITE)
    _check_ledger_alarm(resources, STACK)


def test_there_is_exactly_one_alarm_per_condition(resources):
    assert sorted(alarms_by_name(resources)) == sorted(
        f"{STACK}-{key}" for key in ("IteratorAge", "IndexerStalled", "FreshnessP99", "DeadLetters",
                                     "LambdaErrors", "LambdaThrottles", "ArchiveFreshness", "ArchiveStalled",
                                     "FailedBatches", "FailedBatchNotSaved", "DocumentsFailing", "RecordsMisKeyed",
                                     "VersionLedgerErrors"))


def test_dead_letter_bucket_counts_writes_of_failed_batches_for_the_failed_batches_alarm(resources):
    _, bucket = one({k: r for k, r in of_type(resources, "AWS::S3::Bucket").items()
                     if r["Properties"].get("MetricsConfigurations")})

    assert bucket["Properties"]["MetricsConfigurations"] == [{"Id": "FailedBatches", "Prefix": "aws/lambda/"}]


def test_every_alarm_notifies_the_one_topic_when_it_fires_and_when_it_clears(resources):
    topic_id, _ = one(of_type(resources, "AWS::SNS::Topic"))
    for name, alarm in alarms_by_name(resources).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name


def test_topic_requires_tls_and_lets_only_this_accounts_alarms_publish(resources):
    topic_id, _ = one(of_type(resources, "AWS::SNS::Topic"))
    _, policy = one(of_type(resources, "AWS::SNS::TopicPolicy"))
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}

    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    assert statements["AllowPublishThroughSSLOnly"] == {
        "Sid": "AllowPublishThroughSSLOnly", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
        "Resource": {"Ref": topic_id}, "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    publish = statements["CloudWatchAlarmsPublish"]
    assert (publish["Effect"], publish["Principal"], publish["Action"]) == (
        "Allow", {"Service": "cloudwatch.amazonaws.com"}, "sns:Publish")
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert placeholder(publish["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*")
    assert set(statements) == {"AllowPublishThroughSSLOnly", "CloudWatchAlarmsPublish"}


def test_no_email_subscription_unless_an_address_is_configured(resources):
    assert DEFAULTS.alarm_email == ""
    assert of_type(resources, "AWS::SNS::Subscription") == {}


def test_monitoring_outputs_name_the_topic_and_the_dashboard(synth, resources):
    outputs = {key: o["Value"] for key, o in synth.template_json["Outputs"].items()}
    topic_id, _ = one(of_type(resources, "AWS::SNS::Topic"))
    dashboard_id, _ = one(of_type(resources, "AWS::CloudWatch::Dashboard"))

    assert outputs["AlarmTopicArn"] == {"Ref": topic_id}
    assert outputs["DashboardName"] == {"Ref": dashboard_id}
    assert placeholder(outputs["DashboardUrl"]) == (
        "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
        f"#dashboards/dashboard/${{{dashboard_id}}}")


@pytest.fixture
def custom_resources(variants) -> dict[str, Any]:
    return variants.templates[CUSTOM["stack_name"]]["Resources"]


def test_alarm_thresholds_and_windows_follow_the_settings(custom_resources):
    settings = Settings.from_mapping(CUSTOM)
    alarms = alarms_by_name(custom_resources)
    expected = _expected_alarms(custom_resources, settings)

    for key, props in expected.items():
        assert _metric_properties(alarms[f"{settings.stack_name}-{key}"]) == props, key
    _check_stall_alarm(custom_resources, settings.stack_name, settings)
    _check_ledger_alarm(custom_resources, settings.stack_name)
    assert _stall_periods(settings) == 3  # 15 minutes for a 15-minute iterator-age threshold


def test_a_configured_address_is_subscribed_by_email(custom_resources):
    topic_id, _ = one(of_type(custom_resources, "AWS::SNS::Topic"))
    _, subscription = one(of_type(custom_resources, "AWS::SNS::Subscription"))

    assert subscription["Properties"] == {
        "Protocol": "email", "Endpoint": CUSTOM["alarm_email"], "TopicArn": {"Ref": topic_id}}


def test_two_stacks_name_their_alarms_and_dashboards_apart(variants):
    def names(stack: str) -> set[str]:
        resources = variants.templates[stack]["Resources"]
        (_, dashboard), = of_type(resources, "AWS::CloudWatch::Dashboard").items()
        return set(alarms_by_name(resources)) | {placeholder(dashboard["Properties"]["DashboardName"])}

    assert names("RagA").isdisjoint(names("RagB"))
