"""The indexer's algorithm for one Kinesis batch (README, "How the indexer works" and "Guarantees").

decode and validate each record -> bad ones to dead letters -> the greatest version per doc_id -> read each
document's ledger entry -> plan (``versions.plan``): stale, unchanged (raise the version), re-tag, embed or
delete -> write the intents -> embed every chunk concurrently -> per group of documents: put the chunks and
delete the stale keys (concurrently: the two key sets are disjoint) -> commit the new entries to the ledger.

The ledger, not the index, says which version a document is at; an entry is committed only after its index
writes succeeded, and an intent recorded before a write lets any later writer find every key it may have left.
So a batch that dies anywhere leaves the index either at the committed version or marked dirty with a reach
that covers the debris, and its redelivery (or the next event for the document) finishes the job.

Writing overlaps embedding: with an embedder that yields results as they come (Titan), documents are written in
groups while the rest of the batch is still being embedded, one group write in flight at a time (the documents
that become ready meanwhile form the next group, so the calls stay few and full); only the last group's write
and commit remain after the last embedding. Documents that could not be written are reported in
``batchItemFailures``; the event source mapping redelivers from the lowest one, and the ledger makes the
redelivered documents that were written cost nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from rtrag.core.chunking import chunk_text
from rtrag.core.config import ChunkSettings
from rtrag.core.contract import DEFAULT_MAX_TS_SKEW_SECONDS
from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import (
    InvalidEvent,
    LimitExceeded,
    RagError,
    TransientError,
    UnindexableDocument,
)
from rtrag.core.events import (
    DELETE,
    SOURCE_TEXT_KEY,
    could_be_doc_id,
    decode_event,
    filterable_metadata,
    partition_key_of,
)
from rtrag.core.kinesis import KinesisRecord
from rtrag.core.limits import MAX_KEYS_PER_GET
from rtrag.core.shown import clipped
from rtrag.core.vectors import Vector, batched, check_data, check_metadata, check_vector
from rtrag.core.versions import VersionEntry, event_version, vector_key
from rtrag.indexing.plan import Action, plan
from rtrag.indexing.ports import DeadLetterSink, Embedder, VectorIndex, VersionLedger
from rtrag.indexing.work import BatchResult, Document
from rtrag.indexing.writer import Writer

log = logging.getLogger(__name__)

# Vector index and ledger calls the indexer makes at once: the GetVectors calls of a batch of 1,000 documents (10
# calls of 100 keys) in one round trip, and a group's writes while the next group is being embedded. Far below S3
# Vectors' request rate limit (1,000 write requests/s per index), and each write call still carries up to 500
# vectors.
IO_CONCURRENCY = 10

class BatchIndexer:
    """Indexes Kinesis batches into one vector index, keeping each document's version in ``ledger``. Holds its
    collaborators, which tests replace with fakes.

    ``tombstone_seconds``: how long a delete's tombstone holds older upserts back (None: for ever).
    """

    def __init__(self, *, embedder: Embedder, index: VectorIndex, ledger: VersionLedger,
                 dead_letters: DeadLetterSink, chunking: ChunkSettings, clock: Callable[[], float] = time.time,
                 tombstone_seconds: int | None = None, max_ts_skew_seconds: int = DEFAULT_MAX_TS_SKEW_SECONDS):
        self.embedder = embedder
        self.index = index
        self.ledger = ledger
        self.dead_letters = dead_letters
        self.chunking = chunking
        self.clock = clock
        self.tombstone_seconds = tombstone_seconds
        self.max_ts_skew_seconds = max_ts_skew_seconds
        self._io: ThreadPoolExecutor | None = None
        self._side: ThreadPoolExecutor | None = None
        self._started: list[Future[Any]] = []  # every call this batch started on a pool
        self._superseded: dict[str, list[Document]] = {}  # per document, its other versions in the batch
        self.writer = Writer(index, ledger, lambda function, *args: self._submit(self._side_pool(), function, *args))

    def _submit(self, pool: ThreadPoolExecutor, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future = pool.submit(function, *args, **kwargs)
        self._started.append(future)
        return future

    def process(self, raw_records: Iterable[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        records = sorted((KinesisRecord.from_event(r) for r in raw_records), key=lambda r: r.order)
        result.records = len(records)
        self._started = []
        # Producers key records by doc id: the ledger read starts now, on the partition keys, while the records
        # are decoded (a record whose doc id is another is read after).
        early = list(dict.fromkeys(r.partition_key for r in records if could_be_doc_id(r.partition_key)))
        entries = self._submit(self._io_pool(), self.ledger.get, early) if early else None
        if entries is not None:
            # Yield the interpreter: the read's thread then builds and sends its request at once (about 1 ms, up to
            # the socket), instead of taking turns with the decoding below and going out 3-4 ms later.
            time.sleep(0)
        docs = self._decode(records, result)
        if not docs and entries is not None:
            wait([entries])
        if docs:
            calls_before = self.embedder.calls
            try:
                self._index(docs, result, entries, set(early))
                # A winner no attempt can index (dead-lettered) leaves its document to the batch's next version, as
                # if that version had come in a batch of its own: the outcome does not depend on the batching. Each
                # pass starts once every write of the one before has landed (its intents, say).
                while True:
                    wait(self._started)
                    fallbacks = self._runners_up(docs, result)
                    if not fallbacks:
                        break
                    self._index(fallbacks, result, None, set())
                    docs.extend(fallbacks)
                self._restore_entries(docs)  # every write has landed (just waited for): none can come after it
            finally:
                # No write of this attempt may land after it returns or raises: the records it reports failed come
                # again, and in Lambda a thread left running would resume in a later invocation, after them (a
                # document that failed while its intent was still being written, say, must not have that intent
                # land over a newer entry).
                wait(self._started)
                result.embedding_calls = self.embedder.calls - calls_before
        now = self.clock()
        for doc in docs:
            if doc.plan.touches_index and not doc.done:
                result.lags_ms.append(max(0.0, (now - doc.record.arrival) * 1000.0))
        return result

    # decode -> the winning event per document
    def _decode(self, records: list[KinesisRecord], result: BatchResult) -> list[Document]:
        winners: dict[str, Document] = {}
        self._superseded = {}
        for record in records:
            try:
                try:
                    data = base64.b64decode(record.data, validate=True)
                except (binascii.Error, ValueError, TypeError):  # TypeError: data that is not a string at all
                    raise InvalidEvent("record data is not valid base64") from None
                event = decode_event(data, default_ts=int(record.arrival), max_skew_seconds=self.max_ts_skew_seconds)
            except InvalidEvent as exc:
                self._dead_letter(record, result, reason=exc.reason, kind="invalid-event", doc_id=exc.doc_id)
                continue
            if record.partition_key != partition_key_of(event.doc_id):
                result.miskeyed += 1
            doc = Document(record=record, event=event, version=event_version(event, record.sequence_number))
            current = winners.get(event.doc_id)
            if current is not None:
                result.superseded += 1
                # Equal versions are one event delivered twice: the first one stands, as across batches.
                if doc.version <= current.version:
                    self._superseded.setdefault(event.doc_id, []).append(doc)
                    continue
                self._superseded.setdefault(event.doc_id, []).append(current)
            winners[event.doc_id] = doc
        if result.miskeyed:
            # Indexed all the same (the versions decide), but the order per document that the ledger's one
            # writer per document rests on holds only when a document's events share one partition key.
            log.warning("records put under a partition key other than their doc id", extra={
                "records": result.miskeyed, "fix": "put each event with its doc_id as the partition key (one "
                "longer than 256 characters: rtrag.core.events.partition_key_of(doc_id)), as put_event.py does; "
                "otherwise two versions of a document can be indexed at once, and the older one can end in the "
                "index"})
        return list(winners.values())

    def _runners_up(self, docs: list[Document], result: BatchResult) -> list[Document]:
        """For each document whose version was dead-lettered as unindexable, the greatest of its other versions in
        the batch that is below it (a copy of an equal version is the same event), to index in its place."""
        out = []
        for doc in docs:
            if not doc.unindexable or doc.replaced:
                continue
            doc.replaced = True
            others = self._superseded.get(doc.doc_id, [])
            below = [d for d in others if d.version < doc.version]
            if below:
                best = max(below, key=lambda d: d.version)
                others.remove(best)
                result.superseded -= 1
                out.append(Document(record=best.record, event=best.event, version=best.version))
        return out

    def _restore_entries(self, docs: list[Document]) -> None:
        """A version dead-lettered as unindexable before the index was touched leaves its document as it was: its
        intent is undone (the entry read before it is written back, or an empty one), so the entry is not left
        dirty when no other version of the batch took its place. If that write fails the entry stays dirty, which
        is safe (the next writer of the document trusts it less: it embeds again and deletes the whole reach)."""
        if not any(doc.unindexable for doc in docs):
            return
        versions: dict[str, list[Document]] = {}
        for doc in docs:  # the batch's first version of each document first, then those that took its place
            versions.setdefault(doc.doc_id, []).append(doc)
        restore = []
        for doc_id, tried in versions.items():
            # An intent was started for a refused version (``intent``: its write, not only its plan).
            refused = any(d.unindexable and d.intent is not None for d in tried)
            # Not when a version wrote to the index, committed a raised version (unchanged), or failed with its
            # intent written (its redelivery finishes it).
            if refused and all(not d.written and d.action != Action.UNCHANGED and (d.unindexable or d.intent is None)
                               for d in tried):
                restore.append(tried[0].entry if tried[0].entry is not None else VersionEntry(doc_id))
        if not restore:
            return
        try:
            self.ledger.put(restore)
        except RagError as exc:
            log.warning("the intent of a version that cannot be indexed was not undone; the entry stays dirty (safe)",
                        extra={"doc_ids": [entry.doc_id for entry in restore][:10], "error": clipped(exc)})

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
                      extra={"sequence_number": record.sequence_number, "error": clipped(exc)})
            result.failures.add(record.sequence_number)
            return
        result.dead_letters += 1
        # The doc id of an invalid event is whatever the producer sent (a 100 KB one is invalid): bounded.
        log.warning("record dead-lettered", extra={"sequence_number": record.sequence_number,
                                                   "doc_id": clipped(doc_id), "reason": clipped(reason),
                                                   "kind": kind, "dead_letter_key": key})

    def _fail(self, doc: Document, result: BatchResult, exc: RagError) -> None:
        if isinstance(exc, (UnindexableDocument, LimitExceeded)):
            self._dead_letter(doc.record, result, reason=str(exc), kind="unindexable", doc_id=doc.doc_id,
                              error_code=getattr(exc, "code", None) or type(exc).__name__)
            doc.unindexable = doc.record.sequence_number not in result.failures  # kept as a letter: it is done
        else:
            result.failures.add(doc.record.sequence_number)
            result.failed_documents += 1
            log.warning("document not written; batch item failure reported",
                        extra={"doc_id": doc.doc_id, "sequence_number": doc.record.sequence_number,
                               "error": clipped(exc)})
        doc.done = True

    # the ledger -> a plan per document
    def _index(self, docs: list[Document], result: BatchResult, early: Future[dict[str, VersionEntry]] | None,
               requested: set[str]) -> None:
        late = [d.doc_id for d in docs if d.doc_id not in requested]
        reads = [r for r in (early, self._submit(self._io_pool(), self.ledger.get, late) if late else None) if r]
        # While the ledger is read, chunk every upsert and check its metadata: CPU work that would otherwise sit
        # between the read and the first embedding. Only documents that turn out to need embedding use it.
        for doc in docs:
            if doc.event.op != DELETE:
                self._chunk_and_prepare(doc)
        try:
            stored = {k: v for read in reads for k, v in read.result().items()}
        except RagError as exc:
            for doc in docs:
                self._fail(doc, result, TransientError(f"reading stored versions failed: {exc}"))
            return
        now = self.clock()
        for doc in docs:
            doc.entry = stored.get(doc.doc_id)
            doc.plan = plan(doc.event, doc.version, doc.entry, chunks=len(doc.chunks), now=now,
                            tombstone_seconds=self.tombstone_seconds)
            if doc.action == Action.EMBED and doc.unwritable is not None:
                self._fail(doc, result, doc.unwritable)
        result.skipped_stale += sum(d.action == Action.STALE for d in docs)
        ledger_write = self._start_intents(docs)
        self._write(docs, result)
        unchanged = [d for d in docs if d.action == Action.UNCHANGED and not d.done]
        if unchanged and ledger_write is not None:
            try:
                ledger_write.result()
            except RagError as exc:
                for doc in unchanged:
                    self._fail(doc, result, TransientError(f"raising the stored version failed: {exc}"))
                return
            result.skipped_unchanged += len(unchanged)

    def _start_intents(self, docs: list[Document]) -> Future[None] | None:
        """One ledger write for the intents and the raised versions of unchanged documents, started at once so
        that it overlaps the embedding; each document with an intent waits for it before it touches the index."""
        live = [d for d in docs if not d.done]
        with_intent = [d for d in live if d.plan.intent is not None]
        entries = [d.plan.intent for d in with_intent] + [d.plan.commit for d in live if d.action == Action.UNCHANGED]
        if not entries:
            return None
        future = self._submit(self._io_pool(), self.ledger.put, entries)
        for doc in with_intent:
            doc.intent = future
        return future

    def _chunk_and_prepare(self, doc: Document) -> None:
        """Chunk the document and build and check each chunk's metadata before any embedding: a document whose
        metadata breaks a limit costs no Bedrock call, and after each embedding only its data is left to check."""
        doc.chunks = chunk_text(doc.event.text or "", size=self.chunking.size_chars,
                                overlap=self.chunking.overlap_chars)
        n = len(doc.chunks)
        doc.event.attributes_hash  # noqa: B018 - computed (and kept) now, while the ledger is read
        try:
            for i, text in enumerate(doc.chunks):
                metadata = filterable_metadata(doc.event, chunk=i, chunks=n)
                metadata[SOURCE_TEXT_KEY] = text
                size = check_metadata(vector_key(doc.doc_id, i), metadata,
                                      non_filterable_keys=self.index.non_filterable_keys)
                doc.prepared.append((metadata, size))
        except LimitExceeded as exc:
            doc.unwritable = exc

    def _io_pool(self) -> ThreadPoolExecutor:
        if self._io is None:
            # Kept across warm invocations, like the embedder's pool.
            self._io = ThreadPoolExecutor(max_workers=IO_CONCURRENCY, thread_name_prefix="vectors")
        return self._io

    def _side_pool(self) -> ThreadPoolExecutor:
        if self._side is None:
            # Separate from the I/O pool, whose threads may be the group writers waiting on these calls.
            self._side = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deletes")
        return self._side

    def _read(self, keys: list[str], *, data: bool) -> Callable[[], dict[str, Vector]]:
        """Start GetVectors (with metadata) for any number of keys, the calls of up to 100 keys all at once;
        the function returned waits for them and returns the vectors found, by key."""
        reads = [self._submit(self._io_pool(), self.index.get, group, data=data, metadata=True)
                 for group in batched(keys, MAX_KEYS_PER_GET)]

        def wait() -> dict[str, Vector]:
            found: dict[str, Vector] = {}
            for read in reads:
                found.update(read.result())
            return found

        return wait

    # re-tag: the stored embeddings with the new source and metadata
    def _load_for_retag(self, docs: list[Document], result: BatchResult) -> list[Document]:
        """Stage each re-tagged document from its stored vectors; returns the ones that must be embedded after all
        (their stored chunks are incomplete, which a clean ledger entry should never allow)."""
        keys = [vector_key(d.doc_id, i) for d in docs for i in range(d.plan.write_chunks)]
        try:
            stored = self._read(keys, data=True)()
        except RagError as exc:
            for doc in docs:
                self._fail(doc, result, TransientError(f"reading stored vectors failed: {exc}"))
            return []
        rebuild = []
        for doc in docs:
            n = doc.plan.write_chunks
            parts = [stored.get(vector_key(doc.doc_id, i)) for i in range(n)]
            if any(p is None or "data" not in p for p in parts):
                log.warning("stored chunks missing; embedding the document again", extra={"doc_id": doc.doc_id})
                doc.entry = _distrust(doc.entry)  # what an undo of its intent writes back, should it be refused
                doc.plan = plan(doc.event, doc.version, doc.entry, chunks=len(doc.chunks),
                                now=self.clock(), tombstone_seconds=self.tombstone_seconds)
                rebuild.append(doc)
                continue
            vectors = []
            for i, part in enumerate(parts):
                metadata = filterable_metadata(doc.event, chunk=i, chunks=n)
                metadata[SOURCE_TEXT_KEY] = (part.get("metadata") or {}).get(SOURCE_TEXT_KEY, "")
                vectors.append({"key": vector_key(doc.doc_id, i), "data": {"float32": list(part["data"]["float32"])},
                                "metadata": metadata})
            try:
                doc.vectors = [(v, check_vector(v, dimension=self.index.dimension,
                                                non_filterable_keys=self.index.non_filterable_keys))
                               for v in vectors]
            except LimitExceeded as exc:
                self._fail(doc, result, exc)
        return rebuild

    # embed every chunk of the batch at once; write each document once all its chunks are embedded
    def _write(self, docs: list[Document], result: BatchResult) -> None:
        retag = [d for d in docs if d.action == Action.RETAG and not d.done]
        rebuild = self._load_for_retag(retag, result) if retag else []
        todo = [d for d in docs if d.action == Action.EMBED and not d.done]
        if rebuild:
            # Their re-planned intents (a larger reach, perhaps) are written before they touch the index.
            self._restart_intents(rebuild)
            todo += [d for d in rebuild if not d.done]
        # Re-tagged and deleted documents need no embedding: their writes start while the others embed.
        ready = [d for d in docs if d.action in (Action.RETAG, Action.DELETE) and not d.done]
        writes: list[tuple[list[Document], Future[list[tuple[Document, RagError]]]]] = []

        def start(group: list[Document]) -> None:
            for doc in group:
                doc.written = True
            writes.append((group, self._submit(self._io_pool(), self.writer.write, group)))

        texts = [c for d in todo for c in d.chunks]
        embeddings = self.embedder.embed_iter(texts)
        if ready:
            start(ready)
            ready = []
        # A group starts as soon as the one before it is done, in the last wave too: what waited for the group in
        # flight is written while the last embeddings are still coming, so the final group (the batch's critical
        # path) is only what the last wave brings, and its PutVectors is small and quick to build (README,
        # "What bounds the figures").
        owners = [(doc, i) for doc in todo for i in range(len(doc.chunks))]
        parts: dict[int, list[list[float] | RagError | None]] = {id(d): [None] * len(d.chunks) for d in todo}
        missing = {id(d): len(d.chunks) for d in todo}
        for at, embedding in embeddings:
            doc, i = owners[at]
            parts[id(doc)][i] = embedding
            missing[id(doc)] -= 1
            if missing[id(doc)]:
                continue
            self._stage_embedded(doc, parts.pop(id(doc)), result)
            if not doc.done:
                ready.append(doc)
            if ready and (not writes or writes[-1][1].done()):
                start(ready)
                ready = []
        if ready:
            if writes:
                start(ready)  # alongside the group in flight: different documents, no order between them
            else:
                for doc in ready:
                    doc.written = True
                self._settle(ready, self.writer.write(ready), result)
        for group, future in writes:
            self._settle(group, future.result(), result)
        log.info("batch indexed", extra={"records": result.records, "upserted": result.upserted,
                                         "deleted": result.deleted, "chunks_written": result.chunks_written})

    def _restart_intents(self, docs: list[Document]) -> None:
        intents = [d.plan.intent for d in docs if d.plan.intent is not None]
        if not intents:
            return
        future = self._submit(self._io_pool(), self.ledger.put, intents)
        for doc in docs:
            if doc.plan.intent is not None:
                doc.intent = future

    def _stage_embedded(self, doc: Document, embeddings: list[list[float] | RagError | None],
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
                size = metadata_size + check_data(key, embedding, dimension=self.index.dimension)
                sized.append(({"key": key, "data": {"float32": embedding}, "metadata": metadata}, size))
        except LimitExceeded as exc:
            self._fail(doc, result, exc)
            return
        doc.vectors = sized

    def _settle(self, docs: list[Document], failures: list[tuple[Document, RagError]], result: BatchResult) -> None:
        """Record a written group in the batch's result."""
        for doc, exc in failures:
            self._fail(doc, result, exc)
        for doc in docs:
            if doc.done:
                continue
            result.upserted += doc.action == Action.EMBED
            result.retagged += doc.action == Action.RETAG
            result.deleted += doc.action == Action.DELETE
            result.chunks_written += len(doc.vectors)
            result.chunks_deleted += len(doc.plan.stale_keys)


def _distrust(entry: VersionEntry | None) -> VersionEntry | None:
    """``entry`` seen as dirty: the stored chunks do not match it, so no shortcut may rely on them."""
    return entry._replace(dirty=True) if entry is not None else None
