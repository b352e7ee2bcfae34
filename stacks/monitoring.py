"""Monitoring: a dashboard of the pipeline's freshness and health, and alarms that notify one SNS topic.

The indexer's own metrics are published by Powertools as EMF under ``metrics_namespace`` with exactly one
dimension, ``service`` (the function's POWERTOOLS_SERVICE_NAME; Powertools adds it to every metric and nothing
else, since the handler neither adds dimensions nor captures the cold-start metric). A metric queried with any
other dimension set finds nothing, so every reference here goes through :meth:`PipelineMonitoring.indexer_metric`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from rtrag.core import contract as c


ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
# The stall alarm looks at whole 5-minute periods and needs two in a row: a record put at the end of one period
# is normally indexed early in the next, so a single period with records in and no invocation is not a stall.
STALL_PERIOD_SECONDS = 300
MIN_STALL_PERIODS = 2
FIREHOSE_NAMESPACE = "AWS/Firehose"
DYNAMODB_NAMESPACE = "AWS/DynamoDB"
# The only operations the version ledger calls (lambda_src/rtrag/ledger.py); DynamoDB publishes ThrottledRequests,
# SystemErrors and SuccessfulRequestLatency per table and operation (dimensions TableName, Operation).
LEDGER_OPERATIONS = ("BatchGetItem", "BatchWriteItem")
# SNS topic display names (the sender name of e-mail notifications) are limited to 100 characters.
MAX_TOPIC_DISPLAY_NAME_CHARS = 100


@dataclass(frozen=True, kw_only=True)
class AlarmThresholds:
    """When each alarm fires (stacks/settings.py documents the defaults)."""

    iterator_age_seconds: int
    freshness_p99_seconds: int
    dead_letters: int
    lambda_errors: int
    throttles: int
    archive_freshness_seconds: int


class PipelineMonitoring(Construct):
    """``dashboard`` (named ``<stack>-<Region>``), ``alarms`` by short name, all notifying ``topic``.

    The topic is TLS-only, publishable by this account's CloudWatch alarms, and has an e-mail subscription when
    ``alarm_email`` is set. ``archive_delivery_stream_name`` (None when the archive is off) adds the archive's
    widgets and its freshness alarm. ``version_table`` is the version ledger's table: its widgets, and an alarm on
    its throttled requests and system errors.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        function: lambda_.IFunction,
        metrics_namespace: str,
        service_name: str,
        thresholds: AlarmThresholds,
        alarm_email: str,
        archive_delivery_stream_name: str | None,
        failed_batches: tuple[str, str],
        version_table: dynamodb.ITable,
        consumer_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.metrics_namespace = metrics_namespace
        self.service_name = service_name
        self.stack_name = Stack.of(self).stack_name
        self.consumer_name = consumer_name  # the indexer's enhanced fan-out consumer, when it reads through one
        self.topic = self._topic(alarm_email)
        self.alarms: dict[str, cw.Alarm] = {}
        self._pipeline_alarms(stream, function, thresholds)
        self._failed_batches_alarm(*failed_batches)
        self._ledger_alarm(version_table)
        self._delivery_alarms(function)
        if archive_delivery_stream_name is not None:
            self._archive_alarm(archive_delivery_stream_name, thresholds.archive_freshness_seconds)
            self._archive_stalled_alarm(stream, archive_delivery_stream_name, thresholds)
        for alarm in self.alarms.values():
            # OK notifications too: whoever was paged learns that the condition cleared without opening a console.
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            # Dashboard names are unique per account across Regions; stack names only per Region.
            dashboard_name=f"{self.stack_name}-{Aws.REGION}",
            default_interval=Duration.hours(3),
            widgets=self._widgets(stream, function, thresholds, archive_delivery_stream_name, version_table),
        )
        self.dashboard_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards/dashboard/{self.dashboard.dashboard_name}"
        )

    def indexer_metric(self, name: str, *, statistic: str, period: Duration, label: str) -> cw.Metric:
        """A metric the indexer publishes through Powertools EMF, with the dimension set Powertools writes."""
        return cw.Metric(
            namespace=self.metrics_namespace,
            metric_name=name,
            dimensions_map={"service": self.service_name},
            statistic=statistic,
            period=period,
            label=label,
        )

    def _topic(self, alarm_email: str) -> sns.Topic:
        # Not encrypted at rest, on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS
        # managed key aws/sns (its key policy cannot grant cloudwatch.amazonaws.com), and the notifications carry
        # only alarm names, states and metric values, never document content, so a customer managed key (a monthly
        # charge and a key policy to keep right) would protect nothing sensitive. Publishing requires TLS.
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{self.stack_name} alarms"[:MAX_TOPIC_DISPLAY_NAME_CHARS],
            enforce_ssl=True,
        )
        # A topic policy replaces SNS's default one, which is what lets same-account alarms publish; without this
        # statement every notification would fail with "not authorized to perform: SNS:Publish".
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                    },
                },
            )
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(self, key: str, *, metric: cw.IMetric, description: str, **props: object) -> cw.Alarm:
        alarm = cw.Alarm(
            self, key, metric=metric, alarm_name=f"{self.stack_name}-{key}", alarm_description=description, **props
        )
        self.alarms[key] = alarm
        return alarm

    def _count_alarm(self, key: str, *, metric: cw.IMetric, description: str, threshold: float = 1,
                     evaluation_periods: int = 1, datapoints_to_alarm: int | None = None) -> cw.Alarm:
        """An alarm on a count reaching ``threshold``, where a missing datapoint means nothing was counted (each
        such metric is published only when something happens, or after every batch, 0 included)."""
        return self._alarm(
            key, metric=metric, description=description, threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=evaluation_periods, datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _failed_batches_alarm(self, bucket_name: str, filter_id: str) -> None:
        self._count_alarm(
            "FailedBatches",
            metric=cw.Metric(namespace="AWS/S3", metric_name="PutRequests",
                             dimensions_map={"BucketName": bucket_name, "FilterId": filter_id},
                             statistic="Sum", period=FIVE_MINUTES, label="failed batches written"),
            # S3 publishes request metrics only for periods with requests: missing means nothing was written.
            description=(
                "The event source mapping gave up on a batch (retries or record age used up) and wrote it to the "
                "dead-letter bucket under aws/lambda/. Its documents are not indexed. Find the cause in the "
                "indexer's logs, fix it, then redrive the batch with scripts/redrive.py while the stream still "
                "holds its records."
            ),
        )

    def _ledger_alarm(self, table: dynamodb.ITable) -> None:
        def per_operation(name: str, prefix: str) -> dict[str, cw.IMetric]:
            return {f"{prefix}{i}": _ledger_metric(table, name, operation, "Sum", FIVE_MINUTES)
                    for i, operation in enumerate(LEDGER_OPERATIONS)}

        inputs: dict[str, cw.IMetric] = {
            **per_operation("ThrottledRequests", "throttled"), **per_operation("SystemErrors", "errors"),
            # A batch call counts in ThrottledRequests only when every item was throttled; items throttled one by
            # one (a hot key, a spike) come back unprocessed and count only here.
            "readItems": table.metric("ReadThrottleEvents", statistic="Sum", period=FIVE_MINUTES),
            "writeItems": table.metric("WriteThrottleEvents", statistic="Sum", period=FIVE_MINUTES),
        }
        # DynamoDB publishes these only when they happen: no datapoint means no request was throttled or failed, and
        # FILL counts one operation's datapoint even when the others published none for that period.
        self._count_alarm(
            "VersionLedgerErrors",
            metric=cw.MathExpression(
                expression=" + ".join(f"FILL({key}, 0)" for key in inputs),
                using_metrics=inputs,
                period=FIVE_MINUTES,
                label="ledger requests throttled or failed",
            ),
            description=(
                "Requests of the indexer (or reindex.py) to the version ledger's DynamoDB table were throttled (as a "
                "whole or item by item) or failed with a DynamoDB internal error in the last 5 minutes. Documents whose versions "
                "could not be read or written are not indexed until the event source mapping retries them. On an "
                "on-demand table, throttling means a traffic spike beyond twice the previous peak, a hot key, or "
                "the table's account quota: see the dashboard's ledger widgets and the indexer's logs."
            ),
        )

    def _pipeline_alarms(self, stream: kinesis.IStream, function: lambda_.IFunction, t: AlarmThresholds) -> None:
        self._alarm(
            "IteratorAge",
            metric=function.metric("IteratorAge", statistic="Maximum", period=ONE_MINUTE),
            threshold=t.iterator_age_seconds * 1000,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            # Lambda publishes IteratorAge only when the mapping invokes the function, so no data means an idle
            # stream (nothing to be behind on) or no invocations at all; the latter is the IndexerStalled alarm's
            # job. Treating missing as breaching would page on every quiet minute.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            description=(
                f"The indexer has been more than {t.iterator_age_seconds} s behind the newest record for 3 "
                "minutes: new documents are not searchable yet. Look at Lambda errors, throttles and duration and "
                "at embedding calls on the dashboard; raise parallelization_factor or embed_concurrency, or the "
                "Bedrock quota, if the indexer is simply too slow."
            ),
        )
        # No data at all means no records were put, so nothing can be stuck.
        self._stall_alarm(
            "IndexerStalled", stream, t, consumer=("invocations", function.metric_invocations(
                statistic="Sum", period=FIVE_MINUTES)), label="records put but indexer not invoked",
            description=lambda minutes: (
                f"Records were put on the stream for {minutes} minutes and the indexer was not invoked "
                "once: nothing is being indexed and IteratorAge cannot tell (it needs invocations). Check that the "
                "event source mapping is Enabled (aws lambda list-event-source-mappings), and the function's "
                "throttles and concurrency."
            ),
        )
        self._alarm(
            "FreshnessP99",
            metric=self.indexer_metric(c.METRIC_INDEX_LAG, statistic="p99", period=FIVE_MINUTES, label="index lag p99"),
            threshold=t.freshness_p99_seconds * 1000,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            # EvaluateLowSampleCountPercentile is left out: unset means "evaluate" (a quiet period's few slow
            # documents still count), and CloudWatch refuses the option with some statistics in this metric form.
            # IndexLag has one value per written document: no data means nothing was written, so nothing was
            # late. A writer that stopped altogether shows in IteratorAge, IndexerStalled and Errors instead.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            description=(
                f"For 10 minutes, 1 in 100 documents took more than {t.freshness_p99_seconds} s from being put on "
                "the stream to being searchable. Check IteratorAge (backlog), Lambda duration and errors, and "
                "Bedrock throttling in the indexer's logs."
            ),
        )
        self._count_alarm(
            "DeadLetters",
            metric=self.indexer_metric(c.METRIC_DEAD_LETTERS, statistic="Sum", period=FIVE_MINUTES,
                                       label="dead letters"),
            threshold=t.dead_letters,
            # The indexer publishes DeadLetters (0 included) after every batch; missing means no batches ran,
            # and no batch writes no dead letter.
            description=(
                f"{t.dead_letters} or more events in 5 minutes were bad (not JSON, missing fields, unindexable) "
                "and were written to the dead-letter bucket under invalid/. List them and their reasons with "
                "scripts/redrive.py, fix the producer, then redrive."
            ),
        )
        self._count_alarm(
            "LambdaErrors",
            metric=function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
            threshold=t.lambda_errors,
            # Lambda publishes Errors only for invocations; none means nothing ran, so nothing failed.
            description=(
                f"The indexer failed {t.lambda_errors} or more invocations in 5 minutes (an exception, a timeout "
                "or out of memory; documents that fail one by one are retried without counting here). The mapping "
                "retries and bisects the batch; what still fails goes to the dead-letter bucket under aws/lambda/. "
                "Read the function's log group for the error."
            ),
        )
        self._count_alarm(
            "LambdaThrottles",
            metric=function.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
            threshold=t.throttles,
            # Throttles exist only for attempted invocations; none attempted, none throttled.
            description=(
                f"{t.throttles} or more indexer invocations were throttled in 5 minutes: the account's (or the "
                "reserved) concurrency is exhausted, so indexing waits. Raise reserved_concurrency or the account's "
                "Lambda concurrency quota, or lower parallelization_factor if other functions need the room."
            ),
        )

    def _delivery_alarms(self, function: lambda_.IFunction) -> None:
        """What the indexer's own counts and Lambda's destination metric say that no other alarm does."""
        # Lambda publishes it only when a delivery to the on-failure destination fails.
        self._count_alarm(
            "FailedBatchNotSaved",
            metric=function.metric("DestinationDeliveryFailures", statistic="Sum", period=FIVE_MINUTES,
                                   label="failed batches not written to the dead-letter bucket"),
            description=(
                "The event source mapping gave up on a batch and could not write it to the dead-letter bucket (its "
                "on-failure destination): those records are in no dead letter. Check the bucket's policy and the "
                "indexer role's s3:PutObject and s3:ListBucket on it; while the stream still holds the records, "
                "replay them with scripts/reindex.py --from-stream."
            ),
        )
        self._count_alarm(
            "DocumentsFailing",
            metric=self.indexer_metric(c.METRIC_FAILED, statistic="Sum", period=FIVE_MINUTES,
                                       label="documents failed (retried)"),
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=(
                "Documents failed to be indexed (Bedrock throttled or denied, the index or ledger missing, ...) in "
                "2 of the last 3 five-minute periods. They are retried by the event source mapping (Lambda's Errors "
                "stays 0), and end in the dead-letter bucket if the cause stays. Read the indexer's logs for the "
                "error code."
            ),
        )
        self._count_alarm(
            "RecordsMisKeyed",
            metric=self.indexer_metric(c.METRIC_MISKEYED, statistic="Sum", period=FIVE_MINUTES,
                                       label="records under another partition key"),
            description=(
                "A producer put document events under a partition key other than their doc_id: they are indexed, "
                "but two versions of such a document can be indexed at once and the older can win. Make the "
                "producer use the doc_id as the partition key (rtrag.core.events.partition_key_of), as "
                "put_event.py does."
            ),
        )

    def _archive_alarm(self, delivery_stream_name: str, threshold_seconds: int) -> None:
        self._alarm(
            "ArchiveFreshness",
            metric=_firehose_metric(delivery_stream_name, "DeliveryToS3.DataFreshness", "Maximum", FIVE_MINUTES),
            threshold=threshold_seconds,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            # Firehose reports freshness only while it holds records; none held means nothing is waiting.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            description=(
                f"The archive's oldest undelivered record is more than {threshold_seconds} s old: Firehose cannot "
                "write to the archive bucket, so a later reindex would miss these events until it catches up. "
                "Read the delivery stream's error log group and the bucket's errors/ prefix."
            ),
        )

    def _archive_stalled_alarm(self, stream: kinesis.IStream, delivery_stream_name: str, t: AlarmThresholds) -> None:
        # ArchiveFreshness needs records held by Firehose: one that cannot read the stream at all (its role, a
        # throttled stream) holds none, and shows only here, as the indexer's stall does in IndexerStalled.
        self._stall_alarm(
            "ArchiveStalled", stream, t, consumer=("archived", _firehose_metric(
                delivery_stream_name, "DataReadFromKinesisStream.Records", "Sum", FIVE_MINUTES)),
            label="records put but not read by the archive",
            description=lambda minutes: (
                f"Records were put on the stream for {minutes} minutes and the archive's delivery stream "
                "read none: events are not being archived, so a later reindex would miss them. Check the delivery "
                "stream's status and its role's read access to the stream (and its error log group)."
            ),
        )

    def _stall_alarm(self, key: str, stream: kinesis.IStream, t: AlarmThresholds, *,
                     consumer: tuple[str, cw.IMetric], label: str, description: Callable[[int], str]) -> None:
        """An alarm when records keep arriving on ``stream`` and ``consumer`` (its id in the expression, its
        metric) counts nothing, in every 5-minute period of the iterator-age window (at least two, so that a
        record put at a period's end and read in the next is no stall)."""
        periods = max(MIN_STALL_PERIODS, math.ceil(t.iterator_age_seconds / STALL_PERIOD_SECONDS))
        name, metric = consumer
        self._count_alarm(
            key,
            metric=cw.MathExpression(
                expression=f"IF(FILL(incoming, 0) > 0 AND FILL({name}, 0) == 0, 1, 0)",
                using_metrics={"incoming": stream.metric_incoming_records(statistic="Sum", period=FIVE_MINUTES),
                               name: metric},
                period=FIVE_MINUTES,
                label=label,
            ),
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            description=description(periods * 5),
        )

    def _consumer_lag(self, stream: kinesis.IStream) -> list[cw.IMetric]:
        """How far the indexer's enhanced fan-out consumer is behind the stream (it does not show in GetRecords'
        iterator age, which only polling readers report)."""
        if self.consumer_name is None:
            return []
        return [cw.Metric(namespace="AWS/Kinesis", metric_name="SubscribeToShardEvent.MillisBehindLatest",
                          dimensions_map={"StreamName": stream.stream_name, "ConsumerName": self.consumer_name},
                          statistic="Maximum", period=ONE_MINUTE, label="indexer consumer (enhanced fan-out)")]

    def _widgets(
        self,
        stream: kinesis.IStream,
        function: lambda_.IFunction,
        t: AlarmThresholds,
        archive_delivery_stream_name: str | None,
        version_table: dynamodb.ITable,
    ) -> list[list[cw.IWidget]]:
        def per_minute(name: str, label: str) -> cw.Metric:
            return self.indexer_metric(name, statistic="Sum", period=ONE_MINUTE, label=label)

        def lag(percentile: str) -> cw.Metric:
            return self.indexer_metric(c.METRIC_INDEX_LAG, statistic=percentile, period=ONE_MINUTE, label=f"{percentile} (ms)")

        rows: list[list[cw.IWidget]] = [
            [cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3)],
            [
                cw.GraphWidget(
                    title="Freshness: put -> searchable (IndexLag, ms)",
                    left=[lag("p50"), lag("p90"), lag("p99")],
                    left_annotations=[cw.HorizontalAnnotation(value=t.freshness_p99_seconds * 1000,
                                                              label="p99 alarm")],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Iterator age (ms)",
                    left=[
                        function.metric("IteratorAge", statistic="Maximum", period=ONE_MINUTE,
                                        label="indexer (Lambda IteratorAge)"),
                        stream.metric_get_records_iterator_age_milliseconds(
                            statistic="Maximum", period=ONE_MINUTE, label="slowest polling reader (stream)"),
                        *self._consumer_lag(stream),
                    ],
                    left_annotations=[cw.HorizontalAnnotation(value=t.iterator_age_seconds * 1000, label="alarm")],
                    width=12,
                ),
            ],
            [
                cw.GraphWidget(
                    title="Documents per minute",
                    left=[
                        per_minute(c.METRIC_UPSERTED, "upserted"),
                        per_minute(c.METRIC_DELETED, "deleted"),
                        per_minute(c.METRIC_UNCHANGED, "skipped: unchanged"),
                        per_minute(c.METRIC_STALE, "skipped: stale"),
                        per_minute(c.METRIC_RETAGGED, "metadata only (retagged)"),
                    ],
                    right=[per_minute(c.METRIC_RECORDS, "records received"),
                           per_minute(c.METRIC_SUPERSEDED, "superseded in their batch")],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Embedding calls and chunks written per minute",
                    left=[per_minute(c.METRIC_EMBEDDING_CALLS, "embedding calls"), per_minute(c.METRIC_CHUNKS_WRITTEN, "chunks"),
                          per_minute(c.METRIC_CHUNKS_DELETED, "chunks deleted")],
                    width=12,
                ),
            ],
            [
                cw.GraphWidget(
                    title="Dead letters and failed documents per minute",
                    left=[per_minute(c.METRIC_DEAD_LETTERS, "dead letters"), per_minute(c.METRIC_FAILED, "failed (retried)"),
                          per_minute(c.METRIC_MISKEYED, "records under another partition key"),
                          function.metric("DestinationDeliveryFailures", statistic="Sum", period=ONE_MINUTE,
                                          label="failed batches not saved")],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Indexer errors and throttles",
                    left=[
                        function.metric_errors(statistic="Sum", period=ONE_MINUTE, label="errors"),
                        function.metric_throttles(statistic="Sum", period=ONE_MINUTE, label="throttles"),
                        function.metric_invocations(statistic="Sum", period=ONE_MINUTE, label="invocations"),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Indexer duration (ms)",
                    left=[
                        function.metric_duration(statistic=statistic, period=ONE_MINUTE, label=statistic)
                        for statistic in ("p50", "p99", "Maximum")
                    ],
                    width=8,
                ),
            ],
            [
                cw.GraphWidget(
                    title="Stream: records put per minute",
                    left=[stream.metric_incoming_records(statistic="Sum", period=ONE_MINUTE, label="incoming")],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Stream: throttled requests per minute",
                    left=[
                        stream.metric_write_provisioned_throughput_exceeded(
                            statistic="Sum", period=ONE_MINUTE, label="writes throttled"),
                        stream.metric_read_provisioned_throughput_exceeded(
                            statistic="Sum", period=ONE_MINUTE, label="reads throttled"),
                    ],
                    width=12,
                ),
            ],
        ]
        table = version_table
        # DynamoDB publishes these per minute; a batch call counts in ThrottledRequests only when all of its items
        # were throttled, so the item-level throttle events are shown beside it.
        rows.append([
            cw.GraphWidget(
                title="Version ledger: throttled and failed requests per minute",
                left=[
                    *(_ledger_metric(table, metric, operation, "Sum", ONE_MINUTE, f"{label}: {operation}")
                      for metric, label in (("ThrottledRequests", "throttled"), ("SystemErrors", "system errors"))
                      for operation in LEDGER_OPERATIONS),
                    # Items throttled one by one come back unprocessed (the ledger retries them) and count here.
                    table.metric("ReadThrottleEvents", statistic="Sum", period=ONE_MINUTE,
                                 label="items throttled: reads"),
                    table.metric("WriteThrottleEvents", statistic="Sum", period=ONE_MINUTE,
                                 label="items throttled: writes"),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Version ledger: request latency (ms)",
                left=[
                    _ledger_metric(table, "SuccessfulRequestLatency", operation, statistic, ONE_MINUTE,
                                   f"{operation} {statistic.lower()}")
                    for operation in LEDGER_OPERATIONS for statistic in ("Average", "Maximum")
                ],
                width=12,
            ),
        ])
        if archive_delivery_stream_name is not None:
            name = archive_delivery_stream_name
            rows.append([
                # Firehose publishes its metrics in 5-minute batches; finer periods would only show gaps.
                cw.GraphWidget(
                    title="Archive: records read and delivered per 5 minutes",
                    left=[
                        _firehose_metric(name, "DataReadFromKinesisStream.Records", "Sum", FIVE_MINUTES, "read"),
                        _firehose_metric(name, "DeliveryToS3.Records", "Sum", FIVE_MINUTES, "delivered"),
                    ],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Archive: freshness (s) and delay behind the stream (ms)",
                    left=[_firehose_metric(name, "DeliveryToS3.DataFreshness", "Maximum", FIVE_MINUTES, "freshness")],
                    right=[_firehose_metric(name, "KinesisMillisBehindLatest", "Maximum", FIVE_MINUTES, "behind")],
                    left_annotations=[cw.HorizontalAnnotation(value=t.archive_freshness_seconds, label="alarm")],
                    width=12,
                ),
            ])
        return rows


def _firehose_metric(
    delivery_stream_name: str, name: str, statistic: str, period: Duration, label: str | None = None
) -> cw.Metric:
    return cw.Metric(
        namespace=FIREHOSE_NAMESPACE,
        metric_name=name,
        dimensions_map={"DeliveryStreamName": delivery_stream_name},
        statistic=statistic,
        period=period,
        label=label,
    )


def _ledger_metric(
    table: dynamodb.ITable, name: str, operation: str, statistic: str, period: Duration, label: str | None = None
) -> cw.Metric:
    return cw.Metric(
        namespace=DYNAMODB_NAMESPACE,
        metric_name=name,
        dimensions_map={"TableName": table.table_name, "Operation": operation},
        statistic=statistic,
        period=period,
        label=label,
    )
