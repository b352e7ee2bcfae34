"""What a batch's stages pass along: the result the handler reports, and one work item per document."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rtrag.core.errors import LimitExceeded
from rtrag.core.events import DocumentEvent
from rtrag.core.kinesis import KinesisRecord
from rtrag.core.vectors import Vector
from rtrag.core.versions import Version, VersionEntry
from rtrag.indexing.plan import Action, Plan


@dataclass
class BatchResult:
    """What one batch did. ``failures`` are the sequence numbers to report as batchItemFailures."""

    records: int = 0
    upserted: int = 0
    retagged: int = 0
    deleted: int = 0
    skipped_unchanged: int = 0
    skipped_stale: int = 0
    superseded: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    embedding_calls: int = 0
    dead_letters: int = 0
    failed_documents: int = 0
    failures: set[str] = field(default_factory=set)
    lags_ms: list[float] = field(default_factory=list)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The handler's return value for an ESM with ReportBatchItemFailures."""
        ordered = sorted(self.failures, key=int)
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in ordered]}


@dataclass
class Document:
    """One document of a batch: its winning record and event, its plan, and what the stages add to it."""

    record: KinesisRecord
    event: DocumentEvent
    version: Version
    entry: VersionEntry | None = None
    plan: Plan = field(default_factory=lambda: Plan(Action.STALE))
    chunks: list[str] = field(default_factory=list)
    prepared: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # per chunk: metadata and its size
    unwritable: LimitExceeded | None = None  # the chunk metadata breaks an S3 Vectors limit
    vectors: list[tuple[Vector, int]] = field(default_factory=list)  # to write, with their request sizes
    intent: Future[None] | None = None  # the intent's ledger write, which must succeed before any index write
    done: bool = False  # failed or dead-lettered: takes no further part

    @property
    def doc_id(self) -> str:
        return self.event.doc_id

    @property
    def action(self) -> Action:
        return self.plan.action
