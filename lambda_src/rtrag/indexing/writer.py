"""The write scheduler: carries out the plans of a group of documents over the narrow index port.

For each group: wait for the documents' intents -> put their chunks, and beside the puts delete their stale keys
(the two key sets never overlap: the chunks are ``doc#0..n-1``, the stale keys ``doc#n`` and beyond, or every key
of a deleted document) -> commit the new ledger entries of the documents whose writes all succeeded. PutVectors
calls are packed to S3 Vectors' limits (500 vectors, 20 MiB); when the service refuses a call as a whole, each of
its documents is sent alone, so only the one it refused fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from rtrag.core.errors import RagError, TransientError, UnindexableDocument
from rtrag.core.limits import MAX_KEYS_PER_DELETE
from rtrag.core.vectors import Vector, batched, pack_puts
from rtrag.indexing.ports import VectorIndex, VersionLedger
from rtrag.indexing.work import Document

Failures = list[tuple[Document, RagError]]


class Writer:
    """Writes groups of planned, staged documents into ``index`` and commits them to ``ledger``.

    ``run_beside(function, *args)`` starts a call on another thread and returns its future (the indexer's pool,
    which waits for every call it started before a failed batch returns).
    """

    def __init__(self, index: VectorIndex, ledger: VersionLedger,
                 run_beside: Callable[..., Future[Any]]):
        self.index = index
        self.ledger = ledger
        self.run_beside = run_beside

    def write(self, docs: list[Document]) -> Failures:
        """Write ``docs`` and return the documents that failed with their errors. May run on a worker thread
        while the batch embeds: it touches only its own documents, and the caller records the failures."""
        failures: Failures = []

        def fail(doc: Document, exc: RagError) -> None:
            doc.done = True  # takes no part in the group's later phases
            failures.append((doc, exc))

        for doc in docs:
            if doc.intent is not None and not doc.done:
                try:
                    doc.intent.result()
                except RagError as exc:
                    fail(doc, TransientError(f"recording the write intent failed: {exc}"))
        writing = [d for d in docs if not d.done]
        deletes = [(d, k) for d in writing for k in d.plan.stale_keys]
        deleting = self.run_beside(self._delete, deletes) if deletes else None
        try:
            put_failures = self._put([(d, v) for d in writing for v in d.vectors])
        finally:
            delete_failures = deleting.result() if deleting is not None else []
        for doc, exc in put_failures + delete_failures:
            if not doc.done:
                fail(doc, exc)
        committing = [d for d in writing if not d.done]
        if committing:
            try:
                self.ledger.put([d.plan.commit for d in committing])  # type: ignore[misc]
            except RagError as exc:
                for doc in committing:
                    fail(doc, TransientError(f"committing the new version failed: {exc}"))
        return failures

    def _put(self, items: list[tuple[Document, tuple[Vector, int]]]) -> Failures:
        # The vectors were checked when they were staged: each call passes their sizes instead of checking again.
        calls = pack_puts([((doc, sized), sized[1]) for doc, sized in items])
        return _run_calls(calls, self._put_call, self._put_one)

    def _put_call(self, call: list[tuple[Document, tuple[Vector, int]]]) -> None:
        self.index.put_call([v for _, (v, _) in call], sizes=[n for _, (_, n) in call])

    def _put_one(self, doc: Document, call: list[tuple[Document, tuple[Vector, int]]]) -> None:
        mine = [((d, sized), sized[1]) for d, sized in call if d is doc]
        for part in pack_puts(mine):
            self._put_call(part)

    def _delete(self, items: list[tuple[Document, str]]) -> Failures:
        calls = [list(c) for c in batched(items, MAX_KEYS_PER_DELETE)]
        return _run_calls(calls, lambda call: self.index.delete_call([k for _, k in call]),
                          lambda doc, call: self.index.delete_call([k for d, k in call if d is doc]))


def _run_calls(calls: Iterable[list[tuple[Document, Any]]], send: Callable[[list], None],
               send_one_doc: Callable[[Document, list], Any]) -> Failures:
    failed: dict[int, tuple[Document, RagError]] = {}
    for call in calls:
        call = [(d, item) for d, item in call if id(d) not in failed]
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
                    failed[id(doc)] = (doc, exc)
        except RagError as exc:
            for doc in members:
                failed[id(doc)] = (doc, exc)
    return list(failed.values())
