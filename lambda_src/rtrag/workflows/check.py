"""Checking a vector index against its version ledger (``scripts/check_index.py``): the version guarantee says the
index holds exactly ``doc#0..doc#n-1`` of each document's stored version and nothing else under its doc id. A
vector that no ledger entry accounts for (beyond a live document's chunk count, of a deleted document, of a document
the ledger does not know) is an orphan, which a query could return; a live document some of whose chunks are not
there is missing them. Entries an attempt left dirty are being (or will be) finished by a redelivery: not judged.

The index is read key by key (ListVectors), then the ledger for the doc ids found: a document with no vector at all
is not seen (the ledger is not scanned).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtrag.core.limits import MAX_LIST_PAGE
from rtrag.core.versions import DELETED, LIVE, VersionEntry

LEDGER_READ = 1_000  # doc ids per ledger read (the ledger splits them into its own calls)
LIST_PAGE = MAX_LIST_PAGE  # progress is reported once a page


class ListedIndex(Protocol):
    def list_keys(self) -> Iterable[str]: ...
    def delete(self, keys: Sequence[str]) -> int: ...


class Ledger(Protocol):
    def get(self, doc_ids: Sequence[str]) -> dict[str, VersionEntry]: ...
    def put(self, entries: Sequence[VersionEntry]) -> None: ...


@dataclass
class Finding:
    doc_id: str
    kind: str  # "orphan" (vectors to delete) or "missing" (chunks the index lacks)
    keys: list[str]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "kind": self.kind, "keys": self.keys, "reason": self.reason}


@dataclass
class CheckReport:
    vectors: int = 0
    documents: int = 0
    unfinished: int = 0  # documents whose entry an attempt left dirty
    findings: list[Finding] = field(default_factory=list)
    deleted: int = 0  # orphan vectors deleted (with fix)
    marked: int = 0  # documents missing chunks whose entry was marked dirty (with fix): the next put rewrites them

    @property
    def orphans(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "orphan"]

    @property
    def missing(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "missing"]

    def to_json(self) -> dict[str, Any]:
        return {"vectors": self.vectors, "documents": self.documents, "unfinished": self.unfinished,
                "orphan_vectors": sum(len(f.keys) for f in self.orphans),
                "missing_chunks": sum(len(f.keys) for f in self.missing), "deleted": self.deleted,
                "marked": self.marked,
                "findings": [f.to_json() for f in self.findings]}


def split_key(key: str) -> tuple[str, int] | None:
    """``doc#i`` -> (doc, i); None for a key the pipeline does not write (no ``#``, or no chunk number)."""
    doc_id, sep, chunk = key.rpartition("#")
    if not sep or not doc_id or not (chunk.isascii() and chunk.isdigit()) or (len(chunk) > 1 and chunk[0] == "0"):
        return None
    return doc_id, int(chunk)


def check_index(index: ListedIndex, ledger: Ledger, *, fix: bool = False, now: Callable[[], float] = time.time,
                progress: Callable[[int], None] = lambda vectors: None) -> CheckReport:
    """Judge every vector of ``index`` against ``ledger``. With ``fix`` (only while nothing else writes the index: a
    document being written looks like one the ledger does not account for yet), delete the orphans that its ledger,
    read again just before, still does not account for, and mark the entry of each document missing chunks dirty, so
    that its next put embeds and writes it whole (a put of the same text would otherwise be skipped as unchanged)."""
    report = CheckReport()
    chunks: dict[str, set[int]] = {}
    foreign: list[str] = []
    for key in index.list_keys():
        report.vectors += 1
        parsed = split_key(key)
        if parsed is None:
            foreign.append(key)
        else:
            chunks.setdefault(parsed[0], set()).add(parsed[1])
        if report.vectors % LIST_PAGE == 0:
            progress(report.vectors)
    progress(report.vectors)
    report.documents = len(chunks)
    if foreign:
        report.findings.append(Finding("", "orphan", sorted(foreign), "not a chunk key (doc_id#n) of the pipeline"))
    doc_ids = sorted(chunks)
    stamp = now()
    for start in range(0, len(doc_ids), LEDGER_READ):
        part = doc_ids[start:start + LEDGER_READ]
        entries = ledger.get(part)
        for doc_id in part:
            finding = judge(doc_id, chunks[doc_id], entries.get(doc_id), now=stamp)
            if finding == "unfinished":
                report.unfinished += 1
            elif finding is not None:
                report.findings.extend(finding)
    if fix:
        _repair(index, ledger, report, chunks, now=now())
    return report


def _repair(index: ListedIndex, ledger: Ledger, report: CheckReport, chunks: dict[str, set[int]], *,
            now: float) -> None:
    doc_ids = sorted({f.doc_id for f in report.findings if f.doc_id})
    fresh: dict[str, VersionEntry] = {}
    for start in range(0, len(doc_ids), LEDGER_READ):
        fresh.update(ledger.get(doc_ids[start:start + LEDGER_READ]))
    doomed = [key for f in report.orphans if not f.doc_id for key in f.keys]  # not chunk keys at all
    said: dict[str, set[str]] = {}  # the orphans the first read found, by document
    for f in report.orphans:
        said.setdefault(f.doc_id, set()).update(f.keys)
    marked = []
    for doc_id in doc_ids:
        now_found = judge(doc_id, chunks[doc_id], fresh.get(doc_id), now=now)
        if not isinstance(now_found, list):
            continue  # its entry changed meanwhile (a writer ran after all): left alone
        doomed += [key for f in now_found if f.kind == "orphan" for key in f.keys if key in said.get(doc_id, ())]
        if any(f.kind == "missing" for f in now_found):
            marked.append(fresh[doc_id]._replace(dirty=True))
    if doomed:
        index.delete(doomed)
    if marked:
        ledger.put(marked)
    report.deleted, report.marked = len(doomed), len(marked)


def judge(doc_id: str, present: set[int], entry: VersionEntry | None, *, now: float) -> list[Finding] | str | None:
    """What is wrong with one document's vectors (``present``: their chunk numbers), given its ledger entry."""
    def keys(numbers: Iterable[int]) -> list[str]:
        return [f"{doc_id}#{i}" for i in sorted(numbers)]

    if entry is not None and entry.forgotten(now):
        entry = None
    if entry is not None and entry.dirty:
        return "unfinished"
    if entry is None or entry.version is None:  # no entry, or one that never committed a version (an undone intent)
        return [Finding(doc_id, "orphan", keys(present), "the version ledger has no entry for this document")]
    if entry.state == DELETED:
        return [Finding(doc_id, "orphan", keys(present), "the document was deleted")]
    if entry.state != LIVE:
        return None
    out = []
    beyond = {i for i in present if i >= entry.chunks}
    if beyond:
        out.append(Finding(doc_id, "orphan", keys(beyond), f"beyond its stored version's {entry.chunks} chunk(s)"))
    lacking = set(range(entry.chunks)) - present
    if lacking:
        out.append(Finding(doc_id, "missing", keys(lacking), f"its stored version has {entry.chunks} chunk(s)"))
    return out or None
