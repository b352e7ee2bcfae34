"""The archive bucket that Firehose fills from the stream, as a replay source (``reindex.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify, error_code
from rtrag.core.contract import ARCHIVE_BUCKET
from rtrag.core.errors import ResourceMissing
from rtrag.workflows.sources import (
    ARCHIVE_PREFIX,
    HourWindow,
    SourceRecord,
    archive_hour,
    archive_lines,
    archive_times,
)


class S3Archive:
    """The archive bucket: objects under ``events/`` in key order, optionally within an hour window."""

    unit_label = "objects"

    def __init__(self, client: Any, *, bucket: str, window: HourWindow = HourWindow()):
        self.client = client
        self.bucket = bucket
        self.window = window
        self.description = f"s3://{bucket}/{ARCHIVE_PREFIX}{window.describe()}"

    def units(self, start: str | None) -> list[str]:
        start_after = ARCHIVE_PREFIX
        if self.window.since:
            y, m, d, h = self.window.since
            start_after = f"{ARCHIVE_PREFIX}{y:04d}/{m:02d}/{d:02d}/{h:02d}"
        if start:
            start_after = max(start_after, start[:-1])  # just before the checkpoint's object, which is read again
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=ARCHIVE_PREFIX, StartAfter=start_after)
            for page in pages:
                for item in page.get("Contents", []):
                    key, hour = item["Key"], archive_hour(item["Key"])
                    if self.window.past(hour):
                        return keys
                    if (start is None or key >= start) and self.window.admits(hour):
                        keys.append(key)
        except AWS_ERRORS as exc:
            raise self._error(exc, "ListObjectsV2") from exc
        return keys

    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=unit)
            body = obj["Body"].read()
        except AWS_ERRORS as exc:
            raise self._error(exc, "GetObject") from exc
        arrival, default_ts = archive_times(unit, obj["LastModified"].timestamp())
        yield from archive_lines(body, after=after, unit=unit, where=f"s3://{self.bucket}/{unit}", arrival=arrival,
                                 default_ts=default_ts)

    def count(self) -> int | None:
        return None

    def _error(self, exc: Exception, action: str) -> Exception:
        if error_code(exc) == "NoSuchBucket":
            return ResourceMissing(f"archive bucket {self.bucket} does not exist (the archive is off unless "
                                   "archive_enabled is true in cdk.json)", resource=ARCHIVE_BUCKET)
        return classify(exc, action=f"S3 {action} on archive bucket {self.bucket}")
