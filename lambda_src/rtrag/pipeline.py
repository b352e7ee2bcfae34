"""The indexer's algorithm for one Kinesis batch (DESIGN.md, "The indexer").

decode and validate each record -> bad ones to dead letters -> last event per doc_id -> read each document's
stored head vector (``doc#0``) -> skip stale and unchanged -> chunk -> embed all chunks concurrently -> write:
body chunks, then stale-chunk deletes, then the head. The head carries the document's version (``ts``,
``content_hash``, ``chunks``) and is written last, so it is a commit marker: a batch that dies half-way leaves
the old head, and the redelivered event redoes the work.

Writing overlaps embedding: with an embedder that yields results as they come (Titan), documents are written
in groups while the rest of the batch is still being embedded, one group write in flight at a time (the
documents that become ready meanwhile form the next group, so the calls stay few and full); only the last
group's write remains after the last embedding. The order body -> stale deletes -> head holds per document,
which is what makes the head a commit marker. Documents that could not be written are reported in
``batchItemFailures``; the event source mapping redelivers from the lowest one and the content hash makes the
redelivered documents that did get written cost nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from .chunking import chunk_text
from .config import ChunkSettings
from .deadletters import DeadLetter
from .errors import InvalidEvent, LimitExceeded, RagError, TransientError, UnindexableDocument
from .events import DELETE, SOURCE_TEXT_KEY, SYSTEM_KEYS, DocumentEvent, decode_event, filterable_metadata
from .limits import MAX_KEYS_PER_DELETE, MAX_KEYS_PER_GET
from .vectors import Vector, batched, pack_puts

log = logging.getLogger(__name__)

# Vector index calls the indexer makes at once: the GetVectors calls of a batch of 1,000 documents (10 calls of
# 100 keys) in one round trip, and a group's writes while the next group is being embedded. Far below S3 Vectors'
# request rate limit (1,000 write requests/s per index), and each write call still carries up to 500 vectors.
IO_CONCURRENCY = 10


def vector_key(doc_id: str, chunk: int) -> str:
    return f"{doc_id}#{chunk}"


class Embedder(Protocol):
    """``embed_many`` returns every text's vector (or error) in order. An embedder may also offer
    ``embed_iter(texts)``, yielding ``(index, vector or error)`` as each text is done; the indexer then writes
    documents while the others are still being embedded."""

    calls: int

    def embed_many(self, texts: Sequence[str]) -> list[list[float] | RagError]: ...


class VectorIndex(Protocol):
    def check(self, vector: Vector) -> int: ...
    def check_metadata(self, key: str, metadata: dict[str, Any]) -> int: ...
    def check_data(self, key: str, data: list[float]) -> int: ...
    def put_call(self, vectors: Sequence[Vector], *, sizes: Sequence[int] | None = None) -> None: ...
    def put(self, vectors: Sequence[Vector]) -> int: ...
    def delete_call(self, keys: Sequence[str]) -> None: ...
    def delete(self, keys: Sequence[str]) -> int: ...
    def get(self, keys: Sequence[str], *, data: bool = False, metadata: bool = True) -> dict[str, Vector]: ...


class DeadLetterSink(Protocol):
    def write(self, letter: DeadLetter) -> str: ...


@dataclass(frozen=True)
class KinesisRecord:
    """The parts of a Lambda Kinesis event record the indexer uses."""

    sequence_number: str
    partition_key: str
    data: str
    arrival: float
    event_source_arn: str
    event_id: str

    @classmethod
    def from_event(cls, raw: dict[str, Any]) -> KinesisRecord:
        kinesis = raw["kinesis"]
        return cls(
            sequence_number=kinesis["sequenceNumber"],
            partition_key=kinesis.get("partitionKey", ""),
            data=kinesis.get("data", ""),
            arrival=float(kinesis.get("approximateArrivalTimestamp", 0)),
            event_source_arn=raw.get("eventSourceARN", ""),
            event_id=raw.get("eventID", ""),
        )

    @property
    def order(self) -> int:
        return int(self.sequence_number)

    @property
    def shard_id(self) -> str:
        # eventID is "shardId-000000000000:<sequence number>"
        return self.event_id.split(":", 1)[0] if ":" in self.event_id else "unknown-shard"


@dataclass
class BatchResult:
    """What one batch did. ``failures`` are the sequence numbers to report as batchItemFailures."""

    records: int = 0
    upserted: int = 0
    retagged: int = 0
    deleted: int = 0
    skipped_unchanged: int = 0
    skipped_stale: int = 0
    skipped_absent: int = 0
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
class _Doc:
    record: KinesisRecord
    event: DocumentEvent
    stored: dict[str, Any] | None = None
    action: str = ""  # embed | retag | delete, or "" when nothing is to be written
    chunks: list[str] = field(default_factory=list)
    prepared: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # per chunk: metadata and its size
    unwritable: LimitExceeded | None = None  # the chunk metadata breaks an S3 Vectors limit
    body: list[tuple[Vector, int]] = field(default_factory=list)  # chunks 1..n-1 with their request sizes
    head: tuple[Vector, int] | None = None
    stale_keys: list[str] = field(default_factory=list)
    done: bool = False  # failed or dead-lettered: takes no further part

    @property
    def doc_id(self) -> str:
        return self.event.doc_id

    @property
    def stored_chunks(self) -> int:
        return int((self.stored or {}).get("chunks", 1)) if self.stored is not None else 0


def _canonical(value: Any) -> Any:
    """A comparable form of a metadata value that ignores int/float spelling but not bool vs number."""
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return value
    if isinstance(value, (int, float)):
        return ("n", float(value))
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return repr(value)


def _same_attributes(event: DocumentEvent, stored: dict[str, Any]) -> bool:
    user = {k: v for k, v in stored.items() if k not in SYSTEM_KEYS and k != SOURCE_TEXT_KEY}
    return stored.get("source") == event.source and _canonical(user) == _canonical(event.metadata)


class BatchIndexer:
    """Indexes Kinesis batches into one vector index. Holds its collaborators, which tests replace with fakes."""

    def __init__(self, *, embedder: Embedder, index: VectorIndex, dead_letters: DeadLetterSink,
                 chunking: ChunkSettings, clock: Callable[[], float] = time.time):
        self.embedder = embedder
        self.index = index
        self.dead_letters = dead_letters
        self.chunking = chunking
        self.clock = clock
        self._io: ThreadPoolExecutor | None = None

    def process(self, raw_records: Iterable[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        records = sorted((KinesisRecord.from_event(r) for r in raw_records), key=lambda r: r.order)
        result.records = len(records)
        docs = self._decode(records, result)
        if docs:
            calls_before = self.embedder.calls
            try:
                self._plan(docs, result)
                self._embed_and_write(docs, result)
            finally:
                result.embedding_calls = self.embedder.calls - calls_before
        now = self.clock()
        for doc in docs:
            if doc.action and not doc.done:
                result.lags_ms.append(max(0.0, (now - doc.record.arrival) * 1000.0))
        return result

    # decode -> latest event per document
    def _decode(self, records: list[KinesisRecord], result: BatchResult) -> list[_Doc]:
        latest: dict[str, _Doc] = {}
        for record in records:
            try:
                try:
                    data = base64.b64decode(record.data, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidEvent("record data is not valid base64") from None
                event = decode_event(data, default_ts=int(record.arrival))
            except InvalidEvent as exc:
                self._dead_letter(record, result, reason=exc.reason, kind="invalid-event", doc_id=exc.doc_id)
                continue
            if event.doc_id in latest:
                result.superseded += 1
            latest[event.doc_id] = _Doc(record=record, event=event)
        return list(latest.values())

    def _dead_letter(self, record: KinesisRecord, result: BatchResult, *, reason: str, kind: str,
                     doc_id: str | None, error_code: str | None = None) -> None:
        letter = DeadLetter(
            reason=reason, kind=kind, sequence_number=record.sequence_number, partition_key=record.partition_key,
            event_source_arn=record.event_source_arn, shard_id=record.shard_id,
            approximate_arrival_timestamp=record.arrival, data=record.data, doc_id=doc_id, error_code=error_code,
            event_id=record.event_id)
        try:
            key = self.dead_letters.write(letter)
        except RagError as exc:
            # The letter could not be kept: retry the record rather than lose it.
            log.error("dead letter not written; record will be retried",
                      extra={"sequence_number": record.sequence_number, "error": str(exc)})
            result.failures.add(record.sequence_number)
            return
        result.dead_letters += 1
        log.warning("record dead-lettered", extra={"sequence_number": record.sequence_number, "doc_id": doc_id,
                                                   "reason": reason, "kind": kind, "dead_letter_key": key})

    def _fail(self, doc: _Doc, result: BatchResult, exc: RagError) -> None:
        if isinstance(exc, (UnindexableDocument, LimitExceeded)):
            self._dead_letter(doc.record, result, reason=str(exc), kind="unindexable", doc_id=doc.doc_id,
                              error_code=getattr(exc, "code", None) or type(exc).__name__)
        else:
            result.failures.add(doc.record.sequence_number)
            result.failed_documents += 1
            log.warning("document not written; batch item failure reported",
                        extra={"doc_id": doc.doc_id, "sequence_number": doc.record.sequence_number,
                               "error": str(exc)})
        doc.done = True

    # stored state -> what to do with each document
    def _plan(self, docs: list[_Doc], result: BatchResult) -> None:
        read_heads = self._read([vector_key(d.doc_id, 0) for d in docs], data=False)
        # While the stored versions are read, chunk every upsert and check its metadata: CPU work that would
        # otherwise sit between the read and the first embedding. Only documents that turn out to need
        # embedding use it (or are dead-lettered by it).
        for doc in docs:
            if doc.event.op != DELETE:
                self._chunk_and_prepare(doc)
        try:
            heads = read_heads()
        except RagError as exc:
            for doc in docs:
                self._fail(doc, result, TransientError(f"reading stored versions failed: {exc}"))
            return
        retag: list[_Doc] = []
        for doc in docs:
            head = heads.get(vector_key(doc.doc_id, 0))
            doc.stored = (head.get("metadata") or {}) if head is not None else None
            event, stored = doc.event, doc.stored
            if stored is not None and event.ts < int(stored.get("ts", 0)):
                result.skipped_stale += 1
            elif event.op == DELETE:
                if stored is None:
                    result.skipped_absent += 1
                else:
                    doc.action = "delete"
                    doc.stale_keys = [vector_key(doc.doc_id, i) for i in range(1, doc.stored_chunks)]
            elif stored is not None and stored.get("content_hash") == event.content_hash:
                if _same_attributes(event, stored):
                    result.skipped_unchanged += 1
                else:
                    doc.action = "retag"
                    retag.append(doc)
            else:
                self._embed_later(doc, result)
        if retag:
            self._load_for_retag(retag, result)

    def _load_for_retag(self, docs: list[_Doc], result: BatchResult) -> None:
        """Same text, new source or metadata: reuse the stored embeddings instead of calling Bedrock."""
        keys = [vector_key(d.doc_id, i) for d in docs for i in range(d.stored_chunks)]
        try:
            stored = self._read(keys, data=True)()
        except RagError as exc:
            for doc in docs:
                self._fail(doc, result, TransientError(f"reading stored vectors failed: {exc}"))
            return
        for doc in docs:
            n = doc.stored_chunks
            parts = [stored.get(vector_key(doc.doc_id, i)) for i in range(n)]
            if any(p is None or "data" not in p for p in parts):
                # Chunks missing (an earlier write died half-way): rebuild the document from its text.
                self._embed_later(doc, result)
                continue
            vectors = [self._vector(doc, i, n, list(p["data"]["float32"]),
                                    (p.get("metadata") or {}).get(SOURCE_TEXT_KEY, "")) for i, p in enumerate(parts)]
            self._stage(doc, vectors, result)

    def _chunk_and_prepare(self, doc: _Doc) -> None:
        """Chunk the document and build and check each chunk's metadata before any embedding: a document whose
        metadata breaks a limit costs no Bedrock call, and after each embedding only its data is left to check."""
        doc.chunks = chunk_text(doc.event.text or "", size=self.chunking.size_chars,
                                overlap=self.chunking.overlap_chars)
        n = len(doc.chunks)
        try:
            for i, text in enumerate(doc.chunks):
                metadata = filterable_metadata(doc.event, chunk=i, chunks=n)
                metadata[SOURCE_TEXT_KEY] = text
                doc.prepared.append((metadata, self.index.check_metadata(vector_key(doc.doc_id, i), metadata)))
        except LimitExceeded as exc:
            doc.unwritable = exc

    def _embed_later(self, doc: _Doc, result: BatchResult) -> None:
        doc.action = "embed"
        if doc.unwritable is not None:
            self._fail(doc, result, doc.unwritable)

    def _vector(self, doc: _Doc, i: int, n: int, embedding: list[float], text: str) -> Vector:
        metadata = filterable_metadata(doc.event, chunk=i, chunks=n)
        metadata[SOURCE_TEXT_KEY] = text
        return {"key": vector_key(doc.doc_id, i), "data": {"float32": embedding}, "metadata": metadata}

    def _stage(self, doc: _Doc, vectors: list[Vector], result: BatchResult) -> None:
        try:
            sized = [(v, self.index.check(v)) for v in vectors]
        except LimitExceeded as exc:
            self._fail(doc, result, exc)
            return
        self._staged(doc, sized)

    def _staged(self, doc: _Doc, sized: list[tuple[Vector, int]]) -> None:
        doc.head, doc.body = sized[0], sized[1:]
        doc.stale_keys = [vector_key(doc.doc_id, i) for i in range(len(sized), doc.stored_chunks)]

    def _io_pool(self) -> ThreadPoolExecutor:
        if self._io is None:
            # Kept across warm invocations, like the embedder's pool.
            self._io = ThreadPoolExecutor(max_workers=IO_CONCURRENCY, thread_name_prefix="vectors")
        return self._io

    def _read(self, keys: list[str], *, data: bool) -> Callable[[], dict[str, Vector]]:
        """Start GetVectors (with metadata) for any number of keys, the calls of up to 100 keys all at once;
        the function returned waits for them and returns the vectors found, by key."""
        reads = [self._io_pool().submit(self.index.get, group, data=data, metadata=True)
                 for group in batched(keys, MAX_KEYS_PER_GET)]

        def wait() -> dict[str, Vector]:
            found: dict[str, Vector] = {}
            for read in reads:
                found.update(read.result())
            return found

        return wait

    # embed every chunk of the batch at once; write each document once all its chunks are embedded
    def _embed_and_write(self, docs: list[_Doc], result: BatchResult) -> None:
        todo = [d for d in docs if d.action == "embed" and not d.done]
        # Retagged and deleted documents need no embedding: their writes start while the others embed.
        ready = [d for d in docs if d.action in ("retag", "delete") and not d.done]
        writes: list[tuple[list[_Doc], Future[list[tuple[_Doc, RagError]]]]] = []

        def start(group: list[_Doc]) -> None:
            writes.append((group, self._io_pool().submit(self._write_group, group)))

        texts = [c for d in todo for c in d.chunks]
        embeddings, streaming = self._embeddings(texts)
        if ready and streaming:
            start(ready)
            ready = []
        # In the last wave of embeddings (no more texts waiting than calls in flight) everything left finishes at
        # about the same time: its documents are written together at the end rather than one call early.
        last_wave = max(1, getattr(self.embedder, "concurrency", 1))
        outstanding = len(texts)
        owners = [(doc, i) for doc in todo for i in range(len(doc.chunks))]
        parts: dict[int, list[list[float] | RagError | None]] = {id(d): [None] * len(d.chunks) for d in todo}
        missing = {id(d): len(d.chunks) for d in todo}
        for doc in todo:
            if not doc.chunks:
                self._stage_embedded(doc, [], result)
        for at, embedding in embeddings:
            outstanding -= 1
            doc, i = owners[at]
            parts[id(doc)][i] = embedding
            missing[id(doc)] -= 1
            if missing[id(doc)]:
                continue
            self._stage_embedded(doc, parts.pop(id(doc)), result)
            if not doc.done:
                ready.append(doc)
            if streaming and ready and outstanding > last_wave and (not writes or writes[-1][1].done()):
                start(ready)
                ready = []
        if ready:
            if writes:
                start(ready)  # alongside the group in flight: different documents, no order between them
            else:
                self._settle(ready, self._write_group(ready), result)
        for group, future in writes:
            self._settle(group, future.result(), result)
        log.info("batch indexed", extra={"records": result.records, "upserted": result.upserted,
                                         "deleted": result.deleted, "chunks_written": result.chunks_written})

    def _embeddings(self, texts: list[str]) -> tuple[Iterator[tuple[int, list[float] | RagError]], bool]:
        """(index, vector or error) per text, and whether they come as each is done (else all at the end)."""
        stream = getattr(self.embedder, "embed_iter", None)
        if stream is None:
            return enumerate(self.embedder.embed_many(texts) if texts else []), False
        return stream(texts), True

    def _stage_embedded(self, doc: _Doc, embeddings: list[list[float] | RagError | None],
                        result: BatchResult) -> None:
        errors = [e for e in embeddings if isinstance(e, RagError)]
        if errors:
            permanent = [e for e in errors if isinstance(e, UnindexableDocument)]
            self._fail(doc, result, permanent[0] if permanent else errors[0])
            return
        sized: list[tuple[Vector, int]] = []
        try:
            for i, (embedding, (metadata, metadata_size)) in enumerate(zip(embeddings, doc.prepared)):
                key = vector_key(doc.doc_id, i)
                size = metadata_size + self.index.check_data(key, embedding)  # type: ignore[arg-type]
                sized.append(({"key": key, "data": {"float32": embedding}, "metadata": metadata}, size))
        except LimitExceeded as exc:
            self._fail(doc, result, exc)
            return
        self._staged(doc, sized)

    # write a group of documents: body chunks, stale deletes, heads, deleted heads
    def _write_group(self, docs: list[_Doc]) -> list[tuple[_Doc, RagError]]:
        """Write ``docs`` and return the documents that failed with their errors. Runs on a worker thread while
        the caller embeds: it touches only its own documents, and the caller records the failures."""
        failures: list[tuple[_Doc, RagError]] = []

        def fail(doc: _Doc, exc: RagError) -> None:
            doc.done = True  # takes no part in the group's later phases
            failures.append((doc, exc))

        writing = [d for d in docs if d.action in ("embed", "retag") and not d.done]
        deleting = [d for d in docs if d.action == "delete" and not d.done]
        self._put_phase([(d, v) for d in writing for v in d.body], fail)
        self._delete_phase([(d, k) for d in writing + deleting if not d.done for k in d.stale_keys], fail)
        self._put_phase([(d, d.head) for d in writing if not d.done and d.head is not None], fail)
        self._delete_phase([(d, vector_key(d.doc_id, 0)) for d in deleting if not d.done], fail)
        return failures

    def _settle(self, docs: list[_Doc], failures: list[tuple[_Doc, RagError]], result: BatchResult) -> None:
        """Record a written group in the batch's result."""
        for doc, exc in failures:
            self._fail(doc, result, exc)
        for doc in docs:
            if doc.done:
                continue
            if doc.action == "delete":
                result.deleted += 1
                result.chunks_deleted += 1 + len(doc.stale_keys)
            else:
                result.upserted += doc.action == "embed"
                result.retagged += doc.action == "retag"
                result.chunks_written += 1 + len(doc.body)
                result.chunks_deleted += len(doc.stale_keys)

    def _put_phase(self, items: list[tuple[_Doc, tuple[Vector, int]]],
                   fail: Callable[[_Doc, RagError], None]) -> None:
        # The vectors were checked when they were staged: the call passes their sizes instead of checking again.
        calls = pack_puts([((doc, sized), sized[1]) for doc, sized in items])
        self._run_calls(calls, lambda call: self.index.put_call([v for _, (v, _) in call],
                                                                sizes=[n for _, (_, n) in call]),
                        lambda doc, call: self.index.put([v for d, (v, _) in call if d is doc]), fail)

    def _delete_phase(self, items: list[tuple[_Doc, str]], fail: Callable[[_Doc, RagError], None]) -> None:
        calls = [list(c) for c in batched(items, MAX_KEYS_PER_DELETE)]
        self._run_calls(calls, lambda call: self.index.delete_call([k for _, k in call]),
                        lambda doc, call: self.index.delete([k for d, k in call if d is doc]), fail)

    def _run_calls(self, calls: Iterable[list[tuple[_Doc, Any]]], send: Callable[[list], None],
                   send_one_doc: Callable[[_Doc, list], Any], fail: Callable[[_Doc, RagError], None]) -> None:
        for call in calls:
            call = [(d, item) for d, item in call if not d.done]
            if not call:
                continue
            members = list({id(d): d for d, _ in call}.values())
            try:
                send(call)
            except UnindexableDocument:
                # The service refused the call as a whole: find the document it refused, write the others.
                for doc in members:
                    try:
                        send_one_doc(doc, call)
                    except RagError as exc:
                        fail(doc, exc)
            except RagError as exc:
                for doc in members:
                    fail(doc, exc)
