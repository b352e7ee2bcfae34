"""The local composition root: the whole pipeline on one machine, the same indexer handler and domain code on
local adapters (``rtrag.aws.compose`` is the AWS one, with the same methods where both backends have the thing).

State lives under ``.rag-local/`` in the working directory, or ``$RAG_LOCAL_DIR``:

    stream/           the durable local stream (SQLite) and the runner's checkpoints
    index/            the durable local vector index and its version ledger (SQLite)
    indexes/<name>/   other named indexes (reindex.py --local --to-index --vector-index NAME)
    dead-letters/     the same layout as the dead-letter bucket: invalid/... and aws/lambda/...
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtrag.core import contract
from rtrag.core.config import ChunkSettings
from rtrag.core.errors import UserError
from rtrag.core.events import DELETE, DocumentEvent, partition_key_of
from rtrag.core.files import file_lock
from rtrag.core.names import InvalidName, validate_index_name
from rtrag.core.versions import LIVE, Version, event_version
from rtrag.indexing.batch import BatchIndexer
from rtrag.indexing.handler import IndexerHandler
from rtrag.local.answerer import ExtractiveAnswerer
from rtrag.local.archive import LocalRangeReader, LocalStreamArchive
from rtrag.local.deadletters import LocalDeadLetters
from rtrag.local.embedder import LocalEmbedder
from rtrag.local.index import LocalVectorIndex
from rtrag.local.ledger import LocalVersionLedger
from rtrag.local.runner import LocalEventSourceMapping, RunSummary
from rtrag.local.stream import LocalStream
from rtrag.workflows.answering import Answerer, Asker
from rtrag.workflows.produce import Receipt
from rtrag.workflows.retrieval import LOCAL_MAX_DISTANCE

DEFAULT_DIR = ".rag-local"


def local_dir() -> Path:
    return Path(os.environ.get("RAG_LOCAL_DIR") or DEFAULT_DIR)


def _quiet_lambda_environment() -> None:
    """The handler's Powertools logs and EMF metrics are for CloudWatch; in a terminal they would bury the
    scripts' output, which says what became of each record itself (a dead-lettered one included). Errors still
    show; an explicit setting in the environment still wins."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "rag-indexer-local")
    # With metrics disabled every batch's flush finds an empty set, which Powertools warns about.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _check_log_level() -> None:
    """Refuse a log level the handler's logger would fail on, before anything is put on the local stream."""
    level = os.environ.get("POWERTOOLS_LOG_LEVEL", "").strip()
    if level and not isinstance(logging.getLevelName(level.upper()), int):
        raise UserError(f"POWERTOOLS_LOG_LEVEL={level!r} is not a log level: set it to DEBUG, INFO, WARNING, ERROR "
                        "or CRITICAL, or unset it")


def _logs_to_stderr() -> None:
    """Lambda logs go to stdout (CloudWatch reads it); a terminal's stdout belongs to the scripts' output."""
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)


def _check_index_name(name: str) -> None:
    """S3 Vectors' naming rules, for a local index as for a deployed one (so a name is never a path either)."""
    try:
        validate_index_name(name)
    except InvalidName as exc:
        raise UserError(str(exc)) from None


class LocalIndexMissing(UserError):
    """A named local index that does not exist (a query cannot create one; a replay into it does)."""

    def __init__(self, name: str, under: Path):
        super().__init__(f"no local index named {name!r} under {under}")
        self.name = name


class LocalIndexEmpty(UserError):
    """A local index into which nothing was ever indexed; ``name`` is None for the pipeline's own index."""

    def __init__(self, name: str | None, path: Path):
        what = f"local index {name!r}" if name else "the local index"
        super().__init__(f"{what} ({path}) is empty: nothing has been indexed into it")
        self.name = name


@dataclass(frozen=True)
class PutOutcome:
    """What became of a put document: indexed, deleted, ignored (older than what is stored), dead-lettered or
    failed. ``message`` says why for the last three; ``dead_letter`` is the key of the letter that keeps it."""

    doc_id: str
    status: str
    message: str
    dead_letter: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("indexed", "deleted")


class LocalStreamProducer:
    """The local stream behind the producer's Stream interface (same as KinesisStream)."""

    def __init__(self, stream: LocalStream):
        self.stream = stream

    def put(self, event: DocumentEvent) -> Receipt:
        shard_id, sequence = self.stream.put_record(event.to_bytes(), partition_key_of(event.doc_id))
        return Receipt(event.doc_id, shard_id, sequence)

    def put_batch(self, events: Sequence[DocumentEvent]) -> list[Receipt | str]:
        results = self.stream.put_records([(e.to_bytes(), partition_key_of(e.doc_id)) for e in events])
        return [Receipt(e.doc_id, r.shard_id, r.sequence_number) for e, r in zip(events, results)]


# Smaller chunks than on AWS (2,000 characters): the offline embedder averages its tokens, so a long chunk blurs,
# and the extractive answerer picks sentences from few, focused chunks. Set on the tuning questions
# (eval/tuning_questions.jsonl): 600/200 answered more of them than 400/150, as many as 800/250.
LOCAL_CHUNKING = ChunkSettings(size_chars=600, overlap_chars=200)


class LocalBackend:
    """Opens (creating on first use) the local stream, the default index and its ledger, and the dead letters
    under ``root``; builds the indexer, the runner and the other adapters on them."""

    def __init__(self, root: Path | None = None, *, chunking: ChunkSettings | None = None):
        _check_log_level()
        self.root = Path(root or local_dir())
        self.chunking = chunking or LOCAL_CHUNKING
        self.stream = LocalStream(self.root / "stream")
        self.embedder = LocalEmbedder()
        self.index = LocalVectorIndex.open(self.root / "index", dimension=self.embedder.dimensions)
        self.ledger = LocalVersionLedger(self.index)
        self.dead_letters = LocalDeadLetters(self.root / "dead-letters")
        self._runner: LocalEventSourceMapping | None = None
        self._opened: list[LocalVectorIndex] = []

    def vector_index(self, name: str | None = None) -> LocalVectorIndex:
        """The default index, or the index named ``name`` (S3 Vectors' naming rules) under ``indexes/``."""
        if name is None:
            return self.index
        _check_index_name(name)
        index = LocalVectorIndex.open(self.root / "indexes" / name, dimension=self.embedder.dimensions)
        self._opened.append(index)
        return index

    def named_index(self, name: str) -> LocalVectorIndex:
        """An index named ``name`` that must exist already (a query cannot create one)."""
        _check_index_name(name)  # before the message that says how to create it names a name that cannot be
        if not (self.root / "indexes" / name).is_dir():
            raise LocalIndexMissing(name, self.root / "indexes")
        return self.vector_index(name)

    def index_to_ask(self, name: str | None = None) -> LocalVectorIndex:
        """The index a question reads (the pipeline's own, or the named one). One into which nothing was ever
        indexed (no vector, no version in its ledger) is refused: it could only answer "not in the indexed
        documents", which would hide that nothing was indexed. (One whose documents were all deleted answers.)"""
        index = self.named_index(name) if name else self.index
        if index.count() == 0:
            ledger = self.ledger_of(index)
            if not ledger.entries():
                raise LocalIndexEmpty(name, index.path)
        return index

    def ledger_of(self, index: LocalVectorIndex) -> LocalVersionLedger:
        """The version ledger of ``index`` (the pipeline's own is kept open)."""
        return self.ledger if index is self.index else LocalVersionLedger(index)

    def indexer(self, index: LocalVectorIndex | None = None) -> BatchIndexer:
        """The indexer of ``index`` (default: the pipeline's own), with that index's ledger."""
        index = index or self.index
        ledger = self.ledger_of(index)
        return BatchIndexer(embedder=self.embedder, index=index, ledger=ledger, dead_letters=self.dead_letters,
                            chunking=self.chunking)

    @property
    def producer(self) -> LocalStreamProducer:
        return LocalStreamProducer(self.stream)

    def range_reader(self) -> LocalRangeReader:
        return LocalRangeReader(self.stream)

    def archive(self) -> LocalStreamArchive:
        return LocalStreamArchive(self.stream)

    def answerer(self, index: LocalVectorIndex | None = None) -> ExtractiveAnswerer:
        """The extractive answerer, weighing the question's words by their rarity in ``index`` (default: the
        pipeline's own)."""
        return ExtractiveAnswerer(self.embedder, vocabulary=index or self.index)

    def asker(self, index: LocalVectorIndex | None = None, *, answerer: Answerer | None = None) -> Asker:
        """Questions on ``index`` (default: the pipeline's own): hybrid retrieval (dense, the index's BM25 and
        sentence scores, all free locally) and the extractive answerer unless another ``answerer`` is given."""
        index = index or self.index
        return Asker(embedder=self.embedder, index=index, answerer=answerer or self.answerer(index),
                     max_distance=LOCAL_MAX_DISTANCE, sentence_embedder=self.embedder)

    @contextmanager
    def sole_writer(self, name: str | None = None) -> Iterator[None]:
        """Be the one writer of an index, which the version guarantee relies on: of the pipeline's own (``name``
        None), by holding the local runner's shard locks (waiting for a runner that holds one); of a named index, by
        its writer lock (another process writing it, a replay say, is refused)."""
        if name is None:
            with self.runner.exclusive():
                yield
            return
        with file_lock(self.root / "indexes" / name / contract.LOCAL_INDEX_WRITER_LOCK) as held:
            if not held:
                raise UserError(f"another process (a reindex.py or check_index.py --fix) is writing local index "
                                f"{name!r}: wait for it to finish; two writers could leave an older version of a "
                                "document in it")
            yield

    @property
    def runner(self) -> LocalEventSourceMapping:
        """The local event source mapping, delivering to the same indexer handler as the Lambda's."""
        if self._runner is None:
            _quiet_lambda_environment()
            handler = IndexerHandler(self.indexer, service=os.environ["POWERTOOLS_SERVICE_NAME"])
            _logs_to_stderr()
            self._runner = LocalEventSourceMapping(self.stream, handler, on_failure=self.dead_letters)
        return self._runner

    def live(self, doc_ids: Sequence[str]) -> set[str]:
        """Which of ``doc_ids`` the pipeline's index holds now (a live entry in its ledger)."""
        return {doc_id for doc_id, entry in self.ledger.get(list(doc_ids)).items() if entry.state == LIVE}

    def outcomes(self, sent: Sequence[tuple[Receipt, DocumentEvent]], *,
                 live_before: set[str] | None = None) -> list[PutOutcome]:
        """What became of events put on the local stream and drained since: one outcome per document, for its
        greatest version among ``sent`` (an event superseded by a newer one of the same ``sent`` is no failure).
        Read from what the pipeline kept: the dead letters and the version ledger. With ``live_before`` (``live``
        before the put), a delete of a document that was not indexed says so: a mistyped doc id removes nothing."""
        latest: dict[str, tuple[Version, Receipt, DocumentEvent]] = {}
        for receipt, event in sent:
            version = event_version(event, receipt.sequence_number)
            if event.doc_id not in latest or version > latest[event.doc_id][0]:
                latest[event.doc_id] = (version, receipt, event)
        letters = self._letters_by_record()
        entries = self.ledger.get(list(latest))
        out = []
        for doc_id, (version, receipt, event) in latest.items():
            key = letters(receipt.shard_id, receipt.sequence_number)
            entry = entries.get(doc_id)
            if key is not None:
                reason = self.dead_letters.read(key).get("reason") or self._batch_reason(key)
                out.append(PutOutcome(doc_id, "dead-lettered", f"not indexed: {reason} (kept as {key})",
                                      dead_letter=key))
            elif entry is not None and entry.version == version:
                note = ""
                if event.op == DELETE and live_before is not None and doc_id not in live_before:
                    note = (f"no document {doc_id} was indexed, so nothing was removed (the delete is kept as a "
                            "tombstone); check the doc id")
                out.append(PutOutcome(doc_id, "deleted" if event.op == DELETE else "indexed", note))
            elif entry is not None and entry.version is not None and entry.version > version:
                what = "a delete" if entry.state == "deleted" else "a version"
                stored = entry.version
                out.append(PutOutcome(doc_id, "ignored", f"ignored: {doc_id} already holds {what} newer than this "
                                      f"event (stored ts {stored.ts}, seq {stored.seq}; this event's ts {version.ts}, "
                                      f"seq {version.seq}: the greater ts wins, then the greater seq)"))
            else:
                out.append(PutOutcome(doc_id, "failed", "not indexed, and no dead letter says why: see the runner's "
                                      "warnings above, then run `python scripts/local_indexer.py` to retry"))
        return out

    def dead_lettered(self, receipts: Sequence[Receipt]) -> list[tuple[Receipt, str, str]]:
        """Which of these records, put and drained since, the pipeline dead-lettered: (receipt, letter key,
        reason) for each."""
        letters = self._letters_by_record()
        out = []
        for receipt in receipts:
            key = letters(receipt.shard_id, receipt.sequence_number)
            if key is not None:
                out.append((receipt, key, self.dead_letters.read(key).get("reason") or self._batch_reason(key)))
        return out

    def _letters_by_record(self) -> Callable[[str, str], str | None]:
        """A lookup (shard id, sequence number) -> the dead letter that holds that record, if any."""
        invalid: dict[tuple[str, str], str] = {}
        for key in self.dead_letters.list("invalid/"):
            shard, name = key.rsplit("/", 2)[-2:]
            invalid[(shard, name.removesuffix(".json"))] = key
        batches = []
        for key in self.dead_letters.list("aws/lambda/"):
            info = self.dead_letters.read(key).get("KinesisBatchInfo") or {}
            batches.append((info.get("shardId"), int(info.get("startSequenceNumber", 0)),
                            int(info.get("endSequenceNumber", -1)), key))

        def find(shard_id: str, sequence_number: str) -> str | None:
            if (shard_id, sequence_number) in invalid:
                return invalid[(shard_id, sequence_number)]
            seq = int(sequence_number)
            return next((key for shard, start, end, key in batches if shard == shard_id and start <= seq <= end),
                        None)

        return find

    def _batch_reason(self, key: str) -> str:
        body = self.dead_letters.read(key)
        error = (body.get("localDiagnostics") or {}).get("error") or "the indexer kept failing"
        tries = body.get("requestContext", {}).get("approximateInvokeCount", "?")
        return f"its delivery failed {tries} time(s): {error}"

    def drain(self) -> RunSummary:
        """Index everything on the stream now; when it returns, every event put before it is searchable."""
        return self.runner.run_once()

    def follow(self, *, poll_interval: float, stop_event: Any = None,
               on_pass: Callable[[RunSummary], None] | None = None) -> RunSummary:
        return self.runner.follow(poll_interval, stop_event, on_pass)

    def close(self) -> None:
        for index in self._opened:
            index.close()
        self.index.close()
        self.stream.close()

