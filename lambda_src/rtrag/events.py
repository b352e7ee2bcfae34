"""The document event contract (DESIGN.md, "Data contracts"): parsing and validation shared by the indexer
and the producer scripts, so a producer rejects exactly what the indexer would dead-letter."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidEvent
from .limits import MAX_DOC_ID_CHARS, MAX_FILTERABLE_METADATA_BYTES, MAX_METADATA_KEYS

UPSERT = "upsert"
DELETE = "delete"
OPS = (UPSERT, DELETE)
DEFAULT_SOURCE = "unknown"

# Metadata keys the indexer writes on every vector. SOURCE_TEXT_KEY is declared non-filterable on the index.
SYSTEM_KEYS = ("doc_id", "source", "ts", "chunk", "chunks", "content_hash")
SOURCE_TEXT_KEY = "source_text"
RESERVED_KEYS = frozenset(SYSTEM_KEYS + (SOURCE_TEXT_KEY,))
EVENT_FIELDS = ("doc_id", "op", "text", "source", "ts", "metadata")

# Upper bound for `ts` (year 9999): rejects milliseconds passed where seconds are expected.
MAX_TS = 253_402_300_799

MetadataValue = str | int | float | bool | list[str]


@dataclass(frozen=True)
class DocumentEvent:
    """One validated document event."""

    doc_id: str
    op: Literal["upsert", "delete"] = UPSERT
    text: str | None = None
    source: str = DEFAULT_SOURCE
    ts: int = 0
    metadata: dict[str, MetadataValue] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the document text: equal hashes mean the stored embeddings are still right."""
        return content_hash(self.text or "")

    def to_json(self) -> dict[str, Any]:
        """The event as a producer puts it on the stream (defaults left out)."""
        out: dict[str, Any] = {"doc_id": self.doc_id, "op": self.op}
        if self.op == UPSERT:
            out["text"] = self.text
            out["source"] = self.source
        out["ts"] = self.ts
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_event(data: bytes, *, default_ts: int) -> DocumentEvent:
    """Decode one record's bytes (UTF-8 JSON object) into a validated event, or raise InvalidEvent."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"record data is not UTF-8 ({exc.reason} at byte {exc.start}); send UTF-8 JSON") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"record data is not JSON ({exc}); send one JSON object per record") from None
    return validate_event(obj, default_ts=default_ts)


def validate_event(obj: Any, *, default_ts: int) -> DocumentEvent:
    """Validate a decoded JSON value against the document event contract."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("doc_id")
    doc_id = raw_id if isinstance(raw_id, str) else None
    unknown = sorted(set(obj) - set(EVENT_FIELDS))
    if unknown:
        raise InvalidEvent(
            f"unknown field(s) {', '.join(unknown)}; allowed fields are {', '.join(EVENT_FIELDS)}", doc_id=doc_id
        )
    _check_doc_id(raw_id)
    assert doc_id is not None

    op = obj.get("op", UPSERT)
    if op not in OPS:
        raise InvalidEvent(f"op must be 'upsert' or 'delete', got {op!r}", doc_id=doc_id)

    source = obj.get("source", DEFAULT_SOURCE)
    if not isinstance(source, str) or not source:
        raise InvalidEvent("source must be a non-empty string", doc_id=doc_id)

    ts = _check_ts(obj.get("ts"), default_ts, doc_id)

    text = obj.get("text")
    if op == UPSERT:
        if not isinstance(text, str) or not text.strip():
            raise InvalidEvent("text is required for an upsert and must be a non-empty string", doc_id=doc_id)
    else:
        text = None

    metadata = _check_metadata(obj.get("metadata"), doc_id)
    event = DocumentEvent(doc_id=doc_id, op=op, text=text, source=source, ts=ts, metadata=metadata)
    if op == UPSERT:
        check_metadata_budget(event)
    return event


def _check_doc_id(doc_id: Any) -> None:
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidEvent("doc_id is required and must be a non-empty string")
    if len(doc_id) > MAX_DOC_ID_CHARS:
        raise InvalidEvent(f"doc_id is {len(doc_id)} characters; the limit is {MAX_DOC_ID_CHARS}", doc_id=doc_id)
    if "#" in doc_id:
        raise InvalidEvent("doc_id must not contain '#' (it separates the document id from the chunk number)",
                           doc_id=doc_id)


def _check_ts(raw: Any, default_ts: int, doc_id: str) -> int:
    if raw is None:
        return int(default_ts)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise InvalidEvent(f"ts must be an integer of epoch seconds, got {raw!r}", doc_id=doc_id)
    ts = int(raw)
    if not 0 <= ts <= MAX_TS:
        raise InvalidEvent(f"ts={raw!r} is not epoch seconds (0..{MAX_TS}); milliseconds? divide by 1000",
                           doc_id=doc_id)
    return ts


def _check_metadata(raw: Any, doc_id: str) -> dict[str, MetadataValue]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidEvent("metadata must be a JSON object", doc_id=doc_id)
    if len(raw) + len(RESERVED_KEYS) > MAX_METADATA_KEYS:
        raise InvalidEvent(
            f"metadata has {len(raw)} keys; with the {len(RESERVED_KEYS)} system keys a vector may hold "
            f"at most {MAX_METADATA_KEYS}, so use at most {MAX_METADATA_KEYS - len(RESERVED_KEYS)}", doc_id=doc_id)
    out: dict[str, MetadataValue] = {}
    for key, value in raw.items():
        if not key:
            raise InvalidEvent("metadata keys must be non-empty", doc_id=doc_id)
        if key in RESERVED_KEYS:
            raise InvalidEvent(f"metadata key {key!r} is reserved for the indexer; rename it", doc_id=doc_id)
        if isinstance(value, bool) or isinstance(value, str):
            out[key] = value
        elif isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise InvalidEvent(f"metadata {key!r} must be a finite number", doc_id=doc_id)
            out[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            raise InvalidEvent(
                f"metadata {key!r} must be a string, number, boolean or list of strings, got {type(value).__name__}",
                doc_id=doc_id)
    return out


def filterable_metadata(event: DocumentEvent, *, chunk: int, chunks: int) -> dict[str, Any]:
    """System keys plus the user's metadata: everything on a vector except the non-filterable source text."""
    meta: dict[str, Any] = dict(event.metadata)
    meta.update(doc_id=event.doc_id, source=event.source, ts=event.ts, chunk=chunk, chunks=chunks,
                content_hash=event.content_hash)
    return meta


def metadata_bytes(meta: dict[str, Any]) -> int:
    """Size of metadata as S3 Vectors counts it, measured conservatively as compact UTF-8 JSON."""
    return len(json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_metadata_budget(event: DocumentEvent) -> None:
    """Reject an upsert whose filterable metadata could not fit S3 Vectors' per-vector budget."""
    # The chunk numbers are sized for the longest document a 10 MiB record can carry.
    worst = filterable_metadata(event, chunk=99_999, chunks=99_999)
    size = metadata_bytes(worst)
    if size > MAX_FILTERABLE_METADATA_BYTES:
        raise InvalidEvent(
            f"filterable metadata is {size} bytes with the system keys; S3 Vectors allows "
            f"{MAX_FILTERABLE_METADATA_BYTES}: shorten doc_id, source or metadata values", doc_id=event.doc_id)
