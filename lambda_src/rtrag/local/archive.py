"""The local stream as redrive's and replay's source: a failed batch's records read again, and the whole stream
replayed (it keeps every record, so it is local mode's archive)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtrag.local.stream import StreamError
from rtrag.workflows.redrive import OriginalRecord, check_range, records_expired
from rtrag.workflows.sources import Position, SourceRecord


class LocalRangeReader:
    """Reads a batch's records again from the local stream (which keeps every record)."""

    def __init__(self, stream: Any):
        self.stream = stream

    def read_range(self, stream_arn: str, shard_id: str, start: str, end: str) -> list[OriginalRecord]:

        records: list[OriginalRecord] = []
        # The local stream reads AFTER a sequence number; its sequence numbers are ordered integers, so "at
        # start" is "after start - 1".
        after = str(int(start) - 1)
        try:
            while True:
                page = self.stream.read(shard_id, after_sequence=after, limit=500)
                for record in page:
                    if int(record.sequence_number) > int(end):
                        return check_range(records, stream_arn, shard_id, start, end)
                    records.append(OriginalRecord(record.partition_key, record.data, shard_id,
                                                  record.sequence_number, record.arrival))
                if len(page) < 500:
                    break
                after = page[-1].sequence_number
        except StreamError as exc:
            raise records_expired(stream_arn, shard_id, start, end, str(exc)) from None
        return check_range(records, stream_arn, shard_id, start, end)


class LocalStreamArchive:
    """The local stream as an archive: every shard from its oldest record up to the newest one when the replay
    started (records put later, including the replay's own, are not part of it)."""

    unit_label = "records"
    page = 500

    def __init__(self, stream: Any):
        self.stream = stream
        self.description = f"local-stream:{Path(stream.directory).resolve()}"
        self.ends = {shard: stream.latest_sequence(shard) for shard in stream.shard_ids()}
        self._count = sum(stream.count(shard) for shard, end in self.ends.items() if end is not None)

    def pin_ends(self, ends: dict[str, str] | None) -> dict[str, str]:
        """Cover the stream as it was when a job started: ``ends`` (from its checkpoint), or, for a new job, where
        each shard ends now. Returns the ends to save in the job's checkpoint."""
        if ends is not None:
            self.ends = {shard: ends.get(shard) for shard in self.ends}
            self._count = sum(self.stream.count(shard, until_sequence=end) for shard, end in self.ends.items()
                              if end is not None)
        return {shard: end for shard, end in self.ends.items() if end is not None}

    def units(self, start: str | None) -> list[str]:
        return [s for s, end in sorted(self.ends.items()) if end is not None and (start is None or s >= start)]

    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]:
        end = int(self.ends[unit])
        position = None if after is None else str(after)
        while True:
            records = self.stream.read(unit, after_sequence=position, limit=self.page)
            for record in records:
                if int(record.sequence_number) > end:
                    return
                yield SourceRecord(Position(unit, record.sequence_number), record.data, record.arrival,
                                   f"{self.stream.arn()}/{unit}/{record.sequence_number}", record.partition_key,
                                   record.sequence_number)
            if len(records) < self.page:
                return
            position = records[-1].sequence_number

    def count(self) -> int | None:
        return self._count
