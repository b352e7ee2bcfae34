"""What a batch's stages pass along: the result the handler reports, and one work item per document."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from rtrag.core.errors import LimitExceeded
from rtrag.core.events import DocumentEvent
from rtrag.core.kinesis import KinesisRecord
from rtrag.core.vectors import Vector
from rtrag.core.versions import Version, VersionEntry
from rtrag.indexing.plan import Action, Plan

# Both are plain classes with __slots__ rather than dataclasses: they are on the indexer's import path, where a
# dataclass costs about 0.6 ms to define at every cold start (``bench/cold_start.py``).
_COUNTS = ("records", "upserted", "retagged", "deleted", "skipped_unchanged", "skipped_stale", "superseded",
           "chunks_written", "chunks_deleted", "embedding_calls", "dead_letters", "failed_documents", "miskeyed")


class BatchResult:
    """What one batch did: a count per outcome (``_COUNTS``, each given by keyword or 0), ``failures`` (the
    sequence numbers to report as batchItemFailures) and ``lags_ms`` (per written document)."""

    __slots__ = _COUNTS + ("failures", "lags_ms")
    records: int
    upserted: int
    retagged: int
    deleted: int
    skipped_unchanged: int
    skipped_stale: int
    superseded: int
    chunks_written: int
    chunks_deleted: int
    embedding_calls: int
    dead_letters: int
    failed_documents: int
    miskeyed: int  # records put under a partition key other than their doc id's (``events.partition_key_of``)
    failures: set[str]
    lags_ms: list[float]

    def __init__(self, *, failures: set[str] | None = None, lags_ms: list[float] | None = None, **counts: int):
        unknown = counts.keys() - set(_COUNTS)
        if unknown:
            raise TypeError(f"BatchResult has no count {', '.join(sorted(unknown))}")
        for name in _COUNTS:
            setattr(self, name, counts.get(name, 0))
        self.failures = set() if failures is None else failures
        self.lags_ms = [] if lags_ms is None else lags_ms

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNTS}

    def __repr__(self) -> str:
        done = ", ".join(f"{name}={value}" for name, value in self.counts().items() if value)
        return f"BatchResult({done}, failures={sorted(self.failures, key=int)})"

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The handler's return value for an ESM with ReportBatchItemFailures."""
        ordered = sorted(self.failures, key=int)
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in ordered]}


class Document:
    """One document of a batch: its winning record and event, its plan, and what the stages add to it."""

    __slots__ = ("record", "event", "version", "entry", "plan", "chunks", "prepared", "unwritable", "vectors",
                 "intent", "done", "unindexable", "written", "replaced")

    def __init__(self, *, record: KinesisRecord, event: DocumentEvent, version: Version):
        self.record = record
        self.event = event
        self.version = version
        self.entry: VersionEntry | None = None
        self.plan = Plan(Action.STALE)
        self.chunks: list[str] = []
        self.prepared: list[tuple[dict[str, Any], int]] = []  # per chunk: metadata and its size
        self.unwritable: LimitExceeded | None = None  # the chunk metadata breaks an S3 Vectors limit
        self.vectors: list[tuple[Vector, int]] = []  # to write, with their request sizes
        self.intent: Future[None] | None = None  # the intent's ledger write, which must succeed before any index write
        self.done = False  # failed or dead-lettered: takes no further part
        self.unindexable = False  # dead-lettered because no attempt can index it: the batch's next version stands
        self.written = False  # handed to the writer: the index may have been touched
        self.replaced = False  # unindexable, and the batch's next version was looked for

    def __repr__(self) -> str:
        return f"Document({self.doc_id!r}, {self.version}, {self.action.name})"

    @property
    def doc_id(self) -> str:
        return self.event.doc_id

    @property
    def action(self) -> Action:
        return self.plan.action
