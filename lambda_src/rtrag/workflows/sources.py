"""Where replayed document events come from (``scripts/reindex.py``): each source is a sorted list of *units*
read in order, line by line or record by record, from a position a checkpoint can name.

- the archive bucket that Firehose fills from the stream (``rtrag.aws.archive``): ``events/YYYY/MM/DD/HH/<name>.gz``,
  GZIP-compressed JSON Lines, one document event per line exactly as it was put; key order is time order, line
  order is arrival order (``errors/...`` holds Firehose's delivery errors, which are not events);
- a local directory of such files (``DirectoryArchive``: a copy of the bucket, or of part of it);
- one JSON Lines file (``JsonLinesFile``);
- the local stream, which keeps every record (``rtrag.local.archive``).

An event without ``ts`` is pinned to the start of its archive hour (or the job's start for a JSON Lines file) and
to its ordinal in the replay (``SourceRecord.pinned``), so replaying it never overwrites a newer version.
May import ``rtrag.core`` only.
"""

from __future__ import annotations

import calendar
import gzip
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rtrag.core.errors import UserError
from rtrag.core.events import pin_version

ARCHIVE_PREFIX = "events/"


ERRORS_DIR = "errors"


GZIP_MAGIC = b"\x1f\x8b"


# Firehose's date partition in a key or path: .../YYYY/MM/DD/HH/...
_HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/")


_WHEN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}))?$")


Hour = tuple[int, int, int, int]


# where the events come from
@dataclass(frozen=True)
class Position:
    """A place in a source: a unit (object key, file path, shard id) and the line number or sequence number of
    a record in it."""

    unit: str
    offset: int | str

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "offset": self.offset}

    @classmethod
    def from_json(cls, raw: Any) -> Position | None:
        if not raw:
            return None
        return cls(unit=str(raw["unit"]), offset=raw["offset"])


@dataclass(frozen=True)
class SourceRecord:
    """One archived record: its bytes exactly as they were put, where it is, and the time that stands for its
    arrival (the version of an event that has no ``ts``, unless ``default_ts`` says otherwise: where nothing
    bounds the arrival from below, 0, the oldest version, which never overwrites a stored one or a delete)."""

    position: Position
    data: bytes
    arrival: float
    where: str
    partition_key: str | None = None
    sequence_number: str | None = None  # the record's original one, where the source knows it
    default_ts: float | None = None

    @property
    def version_ts(self) -> int:
        """The ``ts`` of its event when the event has none."""
        return int(self.arrival if self.default_ts is None else self.default_ts)

    def pinned(self, ordinal: int) -> bytes:
        """The record's event with its version pinned (``events.pin_version``): its original sequence number, or
        where the source does not keep one, the replay's ordinal, which is below every Kinesis sequence number:
        a replayed event never wins a tie of ``ts`` against one the stream delivered."""
        return pin_version(self.data, default_ts=self.version_ts, seq=self.sequence_number or str(ordinal))


class Source(Protocol):
    description: str  # identifies the source in a job's name and checkpoint
    unit_label: str  # what a unit is, for progress: "objects", "files", "records"

    def units(self, start: str | None) -> list[str]: ...
    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]: ...
    def count(self) -> int | None: ...


class InvalidWindow(UserError):
    """``since``/``until`` do not make a window of archive hours: ``bound`` names the one at fault ("since" or
    "until"), or is None when both are valid but the window starts after it ends."""

    def __init__(self, message: str, *, bound: str | None):
        super().__init__(message)
        self.bound = bound


class SourceNotFound(UserError):
    """The directory (``kind`` "directory") or JSON Lines file (``kind`` "file") to replay from does not exist;
    ``exists_as`` names what is there instead (the other kind), if anything."""

    def __init__(self, path: str | Path, *, kind: str):
        other = "directory" if kind == "file" else "file"
        exists_as = other if (Path(path).is_dir() if kind == "file" else Path(path).is_file()) else None
        super().__init__(f"{path}: a {other}, not a {kind}" if exists_as else f"{path}: no such {kind}")
        self.path = Path(path)
        self.kind = kind
        self.exists_as = exists_as


def parse_when(text: str, *, bound: str) -> tuple[int, int, int, int | None]:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH`` (UTC, as Firehose names its partitions)."""
    match = _WHEN.match(text or "")
    if match:
        year, month, day, hour = (int(g) if g is not None else None for g in match.groups())
        try:
            time.strptime(f"{year:04d}-{month:02d}-{day:02d}T{hour or 0:02d}", "%Y-%m-%dT%H")
            return year, month, day, hour  # type: ignore[return-value]
        except ValueError:
            pass
    raise InvalidWindow(f"{text!r} is not a UTC date or hour: use YYYY-MM-DD or YYYY-MM-DDTHH "
                        "(for example 2026-01-31 or 2026-01-31T09)", bound=bound)


@dataclass(frozen=True)
class HourWindow:
    """The archive hours to replay: from ``since`` to ``until``, both included (a date alone covers its day)."""

    since: Hour | None = None
    until: Hour | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> HourWindow:
        low = high = None
        if since:
            y, m, d, h = parse_when(since, bound="since")
            low = (y, m, d, h or 0)
        if until:
            y, m, d, h = parse_when(until, bound="until")
            high = (y, m, d, 23 if h is None else h)
        if low and high and low > high:
            raise InvalidWindow(f"the window starts at {since}, after it ends at {until}", bound=None)
        return cls(low, high)

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def describe(self) -> str:
        show = lambda h: f"{h[0]:04d}-{h[1]:02d}-{h[2]:02d}T{h[3]:02d}" if h else ""  # noqa: E731
        return f"[{show(self.since)}..{show(self.until)}]" if self.bounded else ""

    def admits(self, hour: Hour | None) -> bool:
        if not self.bounded:
            return True
        if hour is None:
            return False  # a file outside Firehose's date layout cannot be placed in the window
        return (self.since is None or hour >= self.since) and (self.until is None or hour <= self.until)

    def past(self, hour: Hour | None) -> bool:
        return hour is not None and self.until is not None and hour > self.until


def archive_hour(key: str) -> Hour | None:
    """The hour of Firehose's date partition in a key or path, if it has one."""
    match = _HOUR_PATH.search(key)
    if not match:
        return None
    hour = tuple(int(g) for g in match.groups())
    return hour if 1 <= hour[1] <= 12 and 1 <= hour[2] <= 31 and hour[3] <= 23 else None  # type: ignore[return-value]


def hour_start(hour: Hour | None, fallback: float) -> float:
    """The first second of an archive hour: what stands for the arrival time of an archived event without ``ts``.
    Firehose names its partition by its own arrival time, which is a little later than the stream's, so the
    hour's start is the best lower bound there is: a replayed event may lose to another version from the same
    hour, but it never overwrites a newer one. (Give events a ``ts`` and their replay is exact.)"""
    if hour is None:
        return fallback
    y, m, d, h = hour
    return float(calendar.timegm((y, m, d, h, 0, 0, 0, 0, 0)))


def archive_times(unit: str, written: float) -> tuple[float, float | None]:
    """``(arrival, default_ts)`` of the records of archive file ``unit``, last written at ``written``: in an hour
    folder, the hour's start (``hour_start``); elsewhere the file's time, which bounds their arrival only from
    above (a copied file is new), so an event without ``ts`` gets the oldest version, 0, instead."""
    hour = archive_hour(unit)
    return (hour_start(hour, written), None) if hour is not None else (written, 0.0)


def archive_lines(body: bytes, *, after: int | str | None, unit: str, where: str,
                  arrival: float, default_ts: float | None = None) -> Iterator[SourceRecord]:
    """The records of one archive file (GZIP or plain JSON Lines), after line number ``after``; blank lines are
    not records."""
    if body[:2] == GZIP_MAGIC:
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise UserError(f"{where} is not a readable GZIP file ({exc}); move it out of the archive or "
                            "restore it, then rerun (the replay resumes here)") from None
    skip = int(after or 0)
    for number, line in enumerate(body.split(b"\n"), start=1):
        if number <= skip or not line.strip():
            continue
        yield SourceRecord(Position(unit, number), line, arrival, f"{where}#L{number}", default_ts=default_ts)


class DirectoryArchive:
    """A local copy of archive files: every file under ``root`` in path order, except Firehose's ``errors/``."""

    unit_label = "files"

    def __init__(self, root: str | Path, *, window: HourWindow = HourWindow()):
        self.root = Path(root)
        if not self.root.is_dir():
            raise SourceNotFound(root, kind="directory")
        self.window = window
        self.description = f"dir:{self.root.resolve()}{window.describe()}"
        self.outside_window = 0

    def units(self, start: str | None) -> list[str]:
        found = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts))
        found = [u for u in found if u.split("/", 1)[0] != ERRORS_DIR]
        admitted = [u for u in found if self.window.admits(archive_hour(u))]
        self.outside_window = len(found) - len(admitted)
        return [u for u in admitted if start is None or u >= start]

    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]:
        path = self.root / unit
        try:
            body, mtime = path.read_bytes(), path.stat().st_mtime
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        arrival, default_ts = archive_times(unit, mtime)
        yield from archive_lines(body, after=after, unit=unit, where=path.resolve().as_uri(), arrival=arrival,
                                 default_ts=default_ts)

    def count(self) -> int | None:
        return None


class JsonLinesFile:
    """One JSON Lines file of document events (plain or GZIP). Nothing tells when its events without ``ts`` were
    made, so they get the oldest version, 0: they fill documents the index does not hold and never overwrite a
    stored version or bring back a deleted document. (Their arrival, which a ``ts`` may not run ahead of, is the
    time the job started.)"""

    unit_label = "records"

    def __init__(self, path: str | Path, *, started: float):
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceNotFound(path, kind="file")
        self.description = f"jsonl:{self.path.resolve()}"
        self.started = started
        self._body: bytes | None = None

    def _read(self) -> bytes:
        if self._body is None:
            try:
                self._body = self.path.read_bytes()
            except OSError as exc:
                raise UserError(f"cannot read {self.path}: {exc.strerror}") from None
        return self._body

    def units(self, start: str | None) -> list[str]:
        return [self.path.name]

    def read(self, unit: str, after: int | str | None) -> Iterator[SourceRecord]:
        yield from archive_lines(self._read(), after=after, unit=unit, where=self.path.resolve().as_uri(),
                                 arrival=self.started, default_ts=0.0)

    def count(self) -> int | None:
        return sum(1 for _ in archive_lines(self._read(), after=None, unit="", where="", arrival=0))
