"""The version ledger in Amazon DynamoDB (``versions.VersionLedger``): one item per (vector index, document).

Table: partition key ``pk`` (string) = ``<vector bucket>/<vector index>#<doc_id>`` (a doc id never holds ``#``), so
every index has its own ledger in one table, and a new index (a reindex target, or one the stack replaced) starts with
an empty one. An index deleted and created again under its name (the stack's settings changed and changed back, or a
replay target made again) is told apart by its **generation**, its creation time (``index_generation``): each item is
stamped with the generation it was written for, and an item of another generation keeps only its reach
(``_as_of_another_index``): no version, so the new, empty index is filled again instead of every document being
skipped as unchanged, but every key an earlier attempt may have written is still deleted when it must be. (An item
written before items were stamped counts as another generation's when it was last updated before the index was
created.) The indexer learns its index's generation from the stack (``VECTOR_INDEX_GENERATION``, set when the vector
index resource runs), so the pipeline's own index must not be deleted and made again by hand. A key that would pass
DynamoDB's 2,048-byte limit (a doc id of 512 four-byte characters does) ends in ``sha256:<hex digest of the doc id>``
instead. Attributes: ``doc_id``, ``ts`` (N) and ``seq`` (S) of the committed version, ``state``, ``chunks``,
``content_hash``, ``attributes``, ``dirty`` (BOOL), ``reach``, ``updated_at``, ``generation`` and, on a clean
tombstone only, ``expires_at``: the table's TTL attribute, so DynamoDB removes tombstones after their retention
(``plan`` ignores an expired one that TTL has not removed yet).

Reads are BatchGetItem (100 keys a call, strongly consistent), writes BatchWriteItem (25 puts a call), the calls
of one request all at once. Both APIs may leave part of a request unprocessed under throttling; those parts are
retried with backoff, and what is still unprocessed after the last attempt fails the request (TransientError).

The ledger's own requests skip botocore's parameter walk (``FastBatchWrite`` and ``FastBatchGet``, on
``rtrag.aws.fastbody``): botocore would validate and serialize them value by value, about 9 ms of CPU for a
BatchWriteItem of 100 items and 1 ms for a BatchGetItem of 100 keys, and the indexer waits for the read before its
first embedding and for the final commit. The items ``to_item`` makes and the keys the ledger makes
(``LedgerItem``: strings, numbers as strings, booleans, from a typed ``VersionEntry``) are handed to botocore as
one placeholder and written into the body as JSON. Any other request on the client (an UnprocessedItems or
UnprocessedKeys retry, parsed back from a response, included) goes through botocore as usual.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify
from rtrag.aws.fastbody import FastBody
from rtrag.core.backoff import backoff_delay
from rtrag.core.contract import LEDGER_PARTITION_KEY, LEDGER_TTL_ATTRIBUTE
from rtrag.core.errors import TransientError
from rtrag.core.events import content_hash
from rtrag.core.versions import STATES, Version, VersionEntry

# BatchGetItem: at most 100 keys; BatchWriteItem: at most 25 put or delete requests (DynamoDB API reference).
MAX_KEYS_PER_BATCH_GET = 100
MAX_ITEMS_PER_BATCH_WRITE = 25
TTL_ATTRIBUTE = LEDGER_TTL_ATTRIBUTE
PARTITION_KEY = LEDGER_PARTITION_KEY
MAX_PARTITION_KEY_BYTES = 2048  # DynamoDB: a partition key value is at most 2,048 bytes
# Unprocessed keys and items: retried this many times in all, with full-jitter backoff from 50 ms up to 1 s.
UNPROCESSED_ATTEMPTS = 8
_BACKOFF_BASE_S, _BACKOFF_CAP_S = 0.05, 1.0
_CONCURRENCY = 8


GENERATION_ATTRIBUTE = "generation"
# An unstamped item last updated this long before the index's creation time was written for an earlier index
# (``updated_at`` is in whole seconds; clocks agree far better than this).
_UNSTAMPED_SLACK_MS = 2_000


def namespace(bucket: str, index: str) -> str:
    """The ledger's name for one vector index (its entries' key prefix)."""
    return f"{bucket}/{index}"


def item_key(ns: str, doc_id: str) -> str:
    """The partition key of ``doc_id``'s entry in the ledger ``ns``: ``ns#doc_id``, or for a doc id too long for
    DynamoDB's key ``ns#sha256#<hex>``, which no doc id's key can be (a doc id holds no ``#``)."""
    key = f"{ns}#{doc_id}"
    if len(key.encode("utf-8")) <= MAX_PARTITION_KEY_BYTES:
        return key
    return f"{ns}#sha256#{content_hash(doc_id)}"


class LedgerItem(dict):  # type: ignore[type-arg]
    """An item ``to_item`` made, or a key the ledger made: their request bodies are written by ``FastBatchWrite``
    and ``FastBatchGet``."""

    __slots__ = ()


class FastBatchWrite(FastBody):
    """BatchWriteItem's body when it puts ledger items only (module docstring)."""

    operation = "dynamodb.BatchWriteItem"

    @classmethod
    def take(cls, params: dict[str, Any]) -> dict[str, Any] | None:
        tables = params.get("RequestItems")
        if not isinstance(tables, dict) or not tables or not all(
                isinstance(requests, list) and 1 <= len(requests) <= MAX_ITEMS_PER_BATCH_WRITE
                and all(isinstance(r, dict) and r.keys() == {"PutRequest"} and isinstance(r["PutRequest"], dict)
                        and type(r["PutRequest"].get("Item")) is LedgerItem for r in requests)
                for requests in tables.values()):
            return None  # not only ledger items: botocore validates it as it is
        params["RequestItems"] = {table: [{"PutRequest": {"Item": {PARTITION_KEY: {"S": "-"}}}}] for table in tables}
        return tables

    @classmethod
    def body(cls, envelope: dict[str, Any], taken: dict[str, Any]) -> str:
        envelope["RequestItems"] = taken
        return json.dumps(envelope)


class FastBatchGet(FastBody):
    """BatchGetItem's body when it reads ledger keys only (module docstring)."""

    operation = "dynamodb.BatchGetItem"

    @classmethod
    def take(cls, params: dict[str, Any]) -> dict[str, Any] | None:
        tables = params.get("RequestItems")
        if not isinstance(tables, dict) or not tables or not all(
                isinstance(request, dict) and isinstance(request.get("Keys"), list)
                and 1 <= len(request["Keys"]) <= MAX_KEYS_PER_BATCH_GET
                and all(type(key) is LedgerItem for key in request["Keys"]) for request in tables.values()):
            return None  # not only ledger keys: botocore validates it as it is
        taken = {table: request["Keys"] for table, request in tables.items()}
        params["RequestItems"] = {table: {**request, "Keys": [{PARTITION_KEY: {"S": "-"}}]}
                                  for table, request in tables.items()}
        return taken

    @classmethod
    def body(cls, envelope: dict[str, Any], taken: dict[str, Any]) -> str:
        for table, keys in taken.items():
            envelope["RequestItems"][table]["Keys"] = keys
        return json.dumps(envelope)


def _as_of_another_index(entry: VersionEntry) -> VersionEntry:
    """What an entry written for another generation of the index still says: no version (the document is written
    again, whatever was committed there), but its reach, marked dirty. On a new, empty index that costs a few
    deletes of keys that are not there; where two writers disagree on the generation (one still configured with
    an earlier one), it keeps every chunk either may have written within reach of the next write or delete."""
    return VersionEntry(entry.doc_id, dirty=True, reach=max(entry.reach, entry.chunks), updated_at=entry.updated_at)


def to_item(ns: str, entry: VersionEntry, *, generation: str | None = None) -> LedgerItem:
    """A ledger entry as a DynamoDB item (attribute-value form), stamped with the index's ``generation``."""
    item = LedgerItem({PARTITION_KEY: {"S": item_key(ns, entry.doc_id)}, "doc_id": {"S": entry.doc_id},
                       "dirty": {"BOOL": entry.dirty},
                       "reach": {"N": str(entry.reach)}, "updated_at": {"N": str(entry.updated_at)}})
    if generation is not None:
        item[GENERATION_ATTRIBUTE] = {"S": generation}
    if entry.version is not None:
        item["ts"] = {"N": str(entry.version.ts)}
        item["seq"] = {"S": str(entry.version.seq)}
    if entry.state is not None:
        item["state"] = {"S": entry.state}
        item["chunks"] = {"N": str(entry.chunks)}
    if entry.content_hash is not None:
        item["content_hash"] = {"S": entry.content_hash}
    if entry.attributes is not None:
        item["attributes"] = {"S": entry.attributes}
    if entry.expires_at is not None:
        item[TTL_ATTRIBUTE] = {"N": str(entry.expires_at)}
    return item


def from_item(item: dict[str, Any]) -> VersionEntry:
    """The entry a DynamoDB item holds; raises TransientError for an item this code did not write."""
    try:
        doc_id = item["doc_id"]["S"]
        version = Version(int(item["ts"]["N"]), int(item["seq"]["S"])) if "ts" in item else None
        state = item["state"]["S"] if "state" in item else None
        if state is not None and state not in STATES:
            raise ValueError(f"state {state!r}")
        return VersionEntry(
            doc_id, version, state, chunks=int(item.get("chunks", {"N": "0"})["N"]),
            content_hash=item.get("content_hash", {}).get("S"), attributes=item.get("attributes", {}).get("S"),
            dirty=bool(item.get("dirty", {}).get("BOOL", False)), reach=int(item.get("reach", {"N": "0"})["N"]),
            expires_at=int(item[TTL_ATTRIBUTE]["N"]) if TTL_ATTRIBUTE in item else None,
            updated_at=int(item.get("updated_at", {"N": "0"})["N"]))
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise TransientError(f"version ledger item {str(item.get(PARTITION_KEY))[:200]} is malformed ({exc}); "
                             "was it written by another program?") from None


class DynamoDBVersionLedger:
    """The ledger of one vector index in a DynamoDB table."""

    def __init__(self, client: Any, *, table: str, namespace: str, generation: str | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        """``generation``: the index's (``index_generation``); None trusts every item of the namespace."""
        if generation is not None and not generation.isdigit():
            raise ValueError(f"an index generation is its creation time in epoch milliseconds, not {generation!r}")
        self.client = client
        self.generation = generation
        # An unstamped item updated before this (epoch ms) was written for an earlier index: computed once.
        self._unstamped_before_ms = None if generation is None else int(generation) - _UNSTAMPED_SLACK_MS
        FastBatchWrite.install(client)
        FastBatchGet.install(client)
        self.table = table
        self.namespace = namespace
        self.sleep = sleep
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _key(self, doc_id: str) -> str:
        return item_key(self.namespace, doc_id)

    def _map(self, function: Callable[[Any], Any], parts: list[Any]) -> list[Any]:
        if len(parts) <= 1:
            return [function(p) for p in parts]
        with self._lock:
            if self._pool is None:
                # Kept across warm invocations, like the indexer's other pools.
                self._pool = ThreadPoolExecutor(max_workers=_CONCURRENCY, thread_name_prefix="ledger")
        # Every part runs to its end before this returns or raises: a part still in flight after a failed call
        # could land after the retry's newer entries.
        futures = [self._pool.submit(function, part) for part in parts]
        wait(futures)
        return [future.result() for future in futures]

    def get(self, doc_ids: Sequence[str]) -> dict[str, VersionEntry]:
        unique = list(dict.fromkeys(doc_ids))
        parts = [unique[i:i + MAX_KEYS_PER_BATCH_GET] for i in range(0, len(unique), MAX_KEYS_PER_BATCH_GET)]
        found: dict[str, VersionEntry] = {}
        for entries in self._map(self._get_part, parts):
            found.update(entries)
        return found

    def _get_part(self, doc_ids: list[str]) -> dict[str, VersionEntry]:
        request = {self.table: {"Keys": [LedgerItem({PARTITION_KEY: {"S": self._key(d)}}) for d in doc_ids],
                                "ConsistentRead": True}}
        found: dict[str, VersionEntry] = {}
        for attempt in range(1, UNPROCESSED_ATTEMPTS + 1):
            try:
                response = self.client.batch_get_item(RequestItems=request)
            except AWS_ERRORS as exc:
                raise classify(exc, action=f"DynamoDB BatchGetItem on {self.table}") from exc
            for item in response.get("Responses", {}).get(self.table, []):
                entry = from_item(item)
                if self._of_another_generation(item, entry):
                    entry = _as_of_another_index(entry)
                found[entry.doc_id] = entry
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            if attempt < UNPROCESSED_ATTEMPTS:
                self.sleep(backoff_delay(attempt, base=_BACKOFF_BASE_S, cap=_BACKOFF_CAP_S))
        left = len(request.get(self.table, {}).get("Keys", []))
        raise TransientError(f"DynamoDB BatchGetItem on {self.table} left {left} key(s) unprocessed after "
                             f"{UNPROCESSED_ATTEMPTS} attempts (throttled)", code="UnprocessedKeys")

    def _of_another_generation(self, item: dict[str, Any], entry: VersionEntry) -> bool:
        """Whether ``item`` (read as ``entry``) was written for an earlier index of this name (module docstring)."""
        if self._unstamped_before_ms is None:
            return False
        stamped = item.get(GENERATION_ATTRIBUTE)
        if isinstance(stamped, dict) and "S" in stamped:
            return stamped["S"] != self.generation
        # An item without updated_at (which from_item reads as 0) is not dated: trusted, as before generations.
        return "updated_at" in item and entry.updated_at * 1000 < self._unstamped_before_ms

    def put(self, entries: Sequence[VersionEntry]) -> None:
        # One item per document: BatchWriteItem refuses two requests for the same key in one call.
        latest = {e.doc_id: e for e in entries}
        items = [{"PutRequest": {"Item": to_item(self.namespace, e, generation=self.generation)}}
                 for e in latest.values()]
        parts = [items[i:i + MAX_ITEMS_PER_BATCH_WRITE] for i in range(0, len(items), MAX_ITEMS_PER_BATCH_WRITE)]
        self._map(self._put_part, parts)

    def _put_part(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table: requests}
        for attempt in range(1, UNPROCESSED_ATTEMPTS + 1):
            try:
                response = self.client.batch_write_item(RequestItems=pending)
            except AWS_ERRORS as exc:
                raise classify(exc, action=f"DynamoDB BatchWriteItem on {self.table}") from exc
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            if attempt < UNPROCESSED_ATTEMPTS:
                self.sleep(backoff_delay(attempt, base=_BACKOFF_BASE_S, cap=_BACKOFF_CAP_S))
        left = len(pending.get(self.table, []))
        raise TransientError(f"DynamoDB BatchWriteItem on {self.table} left {left} item(s) unprocessed after "
                             f"{UNPROCESSED_ATTEMPTS} attempts (throttled)", code="UnprocessedItems")
