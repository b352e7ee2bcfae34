"""The document event contract (README, "Document events"): parsing and validation shared by the indexer
and the producer scripts, so a producer rejects exactly what the indexer would dead-letter."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Literal

from rtrag.core.errors import InvalidEvent
from rtrag.core.limits import (
    MAX_DOC_ID_CHARS,
    MAX_FILTERABLE_METADATA_BYTES,
    MAX_METADATA_KEYS,
    MAX_PARTITION_KEY_CHARS,
    MAX_SEQUENCE_NUMBER_DIGITS,
)
from rtrag.core.shown import clipped, shown

UPSERT = "upsert"
DELETE = "delete"
OPS = (UPSERT, DELETE)
DEFAULT_SOURCE = "unknown"

# Metadata keys the indexer writes on every vector. SOURCE_TEXT_KEY is declared non-filterable on the index.
SYSTEM_KEYS = ("doc_id", "source", "ts", "chunk", "chunks", "content_hash")
SOURCE_TEXT_KEY = "source_text"
RESERVED_KEYS = frozenset(SYSTEM_KEYS + (SOURCE_TEXT_KEY,))
EVENT_FIELDS = ("doc_id", "op", "text", "source", "ts", "seq", "metadata")

# Upper bound for `ts` (year 9999): rejects milliseconds passed where seconds are expected.
MAX_TS = 253_402_300_799
# Metadata numbers travel as JSON numbers and are compared as IEEE doubles by filters: an integer beyond 2**53 would
# silently become another number, so it is refused (send it as a string).
MAX_EXACT_INT = 2 ** 53
# A Kinesis sequence number (PutRecord API reference: pattern 0|([1-9]\d{0,128})).
_SEQUENCE_RE = re.compile(r"0|[1-9][0-9]{0,%d}" % (MAX_SEQUENCE_NUMBER_DIGITS - 1))
# C0 and C1 control characters and DEL: they have no place in an identifier, and printed they drive the terminal.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Unpaired UTF-16 surrogates: valid in JSON text ("\ud800"), but no UTF-8 encoding exists for them.
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")

MetadataValue = str | int | float | bool | list[str]


class DocumentEvent:
    """One validated document event (``validate_event`` makes them). Immutable: ``replace`` makes a changed copy.

    A plain class with ``__slots__``, not a dataclass: it is on the indexer's import path, where a dataclass costs
    about 0.6 ms to define at every cold start (``bench/cold_start.py``), and the two hashes are kept once computed.
    """

    __slots__ = EVENT_FIELDS + ("_content_hash", "_attributes_hash")
    doc_id: str
    op: Literal["upsert", "delete"]
    text: str | None
    source: str
    ts: int
    metadata: dict[str, MetadataValue]
    # The sequence number that orders this event among events of the same ts; None: the record's own. Redrive and
    # replay set it so that an event put on the stream again keeps its original version.
    seq: str | None

    def __init__(self, doc_id: str, op: Literal["upsert", "delete"] = UPSERT, text: str | None = None,
                 source: str = DEFAULT_SOURCE, ts: int = 0, metadata: dict[str, MetadataValue] | None = None,
                 seq: str | None = None):
        init = object.__setattr__
        init(self, "doc_id", doc_id)
        init(self, "op", op)
        init(self, "text", text)
        init(self, "source", source)
        init(self, "ts", ts)
        init(self, "metadata", {} if metadata is None else metadata)
        init(self, "seq", seq)
        init(self, "_content_hash", None)
        init(self, "_attributes_hash", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"DocumentEvent is immutable; use event.replace({name}=...)")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def replace(self, **changes: Any) -> DocumentEvent:
        return DocumentEvent(**{**{name: getattr(self, name) for name in EVENT_FIELDS}, **changes})

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in EVENT_FIELDS)

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if isinstance(other, DocumentEvent) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # the metadata is a dict

    def __repr__(self) -> str:
        return "DocumentEvent(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in EVENT_FIELDS) + ")"

    @property
    def content_hash(self) -> str:
        """SHA-256 of the document text: equal hashes mean the stored embeddings are still right."""
        if self._content_hash is None:
            object.__setattr__(self, "_content_hash", content_hash(self.text or ""))
        return self._content_hash  # type: ignore[return-value]

    @property
    def attributes_hash(self) -> str:
        """SHA-256 of what a vector carries besides the text and its embedding: the source and the user's
        metadata. Numbers compare by value (1 and 1.0 are one number, as in a filter); booleans stay booleans."""
        if self._attributes_hash is None:
            canonical = json.dumps([self.source, _canonical(self.metadata)], sort_keys=True, ensure_ascii=False,
                                   separators=(",", ":"))
            object.__setattr__(self, "_attributes_hash", hashlib.sha256(canonical.encode("utf-8")).hexdigest())
        return self._attributes_hash  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        """The event as a producer puts it on the stream (defaults left out)."""
        out: dict[str, Any] = {"doc_id": self.doc_id, "op": self.op}
        if self.op == UPSERT:
            out["text"] = self.text
            out["source"] = self.source
        out["ts"] = self.ts
        if self.seq is not None:
            out["seq"] = self.seq
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return value
    if isinstance(value, (int, float)):
        return ["n", float(value)]
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return repr(value)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_event(data: bytes, *, default_ts: int, max_skew_seconds: int | None = None) -> DocumentEvent:
    """Decode one record's bytes (UTF-8 JSON object) into a validated event, or raise InvalidEvent (see
    ``validate_event``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"record data is not UTF-8 ({exc.reason} at byte {exc.start}); send UTF-8 JSON") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"record data is not JSON ({exc}); send one JSON object per record") from None
    return validate_event(obj, default_ts=default_ts, max_skew_seconds=max_skew_seconds)


def pin_version(data: bytes, *, default_ts: int, seq: str) -> bytes:
    """The record's bytes with its event's version written into the event: ``ts`` (``default_ts``, the original
    arrival time, when it has none) and ``seq`` (``seq``, the original sequence number, when it has none). Redrive
    and replay put events on a stream again, where they get a new arrival time and sequence number; pinned, they
    keep their place in the version order and can never overwrite what is newer. Data that is not a valid event
    is returned as it is (the indexer dead-letters it again)."""
    try:
        event = decode_event(data, default_ts=default_ts)
    except InvalidEvent:
        return data
    if event.seq is None and seq.isascii() and seq.isdigit():
        event = event.replace(seq=str(int(seq)))  # a synthetic sequence number may be zero-padded
    return event.to_bytes()


def validate_event(obj: Any, *, default_ts: int, max_skew_seconds: int | None = None) -> DocumentEvent:
    """Validate a decoded JSON value against the document event contract. ``default_ts`` is the record's arrival
    (the ts of an event without one); with ``max_skew_seconds``, a ts further ahead of it is refused too
    (``check_not_ahead``: the indexer's rule, which producers apply before they send).

    Whatever ``obj`` holds, this returns an event or raises InvalidEvent: every rule below is checked explicitly,
    and a value that still trips the standard library (a type or size no rule foresaw) is reported as invalid,
    never as another exception, so one record can never fail the batch it came in.
    """
    try:
        event = _validate(obj, default_ts=default_ts)
    except InvalidEvent:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, UnicodeError, AttributeError) as exc:
        doc_id = obj.get("doc_id") if isinstance(obj, dict) else None
        raise InvalidEvent(f"event could not be validated ({type(exc).__name__}: {clipped(exc, 200)}); check its "
                           "field types against the event contract",
                           doc_id=doc_id if isinstance(doc_id, str) and _printable_id(doc_id) else None) from None
    if max_skew_seconds is not None:
        check_not_ahead(event, arrival=default_ts, max_skew_seconds=max_skew_seconds)
    return event


def _printable_id(value: str) -> bool:
    return not _SURROGATE_RE.search(value) and not _CONTROL_RE.search(value)


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate, which UTF-8 cannot encode (bytes of another encoding on a
    command line arrive as such, and JSON's ``\\udcff`` escapes make them too)."""
    return _SURROGATE_RE.search(text) is not None


def partition_key_of(doc_id: str) -> str:
    """The partition key of a document's records: its doc id, or, for a doc id longer than Kinesis allows a key
    (256 characters; a doc id may have 512), ``sha256:`` and the hex digest of it. Every event of a document
    shares it, so they reach one shard in order, and the event source mapping processes them one batch at a time."""
    if len(doc_id) <= MAX_PARTITION_KEY_CHARS:
        return doc_id
    return "sha256:" + content_hash(doc_id)


def could_be_doc_id(value: str) -> bool:
    """Whether ``value`` is a doc id the contract allows (a record's partition key usually is its doc id)."""
    return 0 < len(value) <= MAX_DOC_ID_CHARS and "#" not in value and _printable_id(value)


def _validate(obj: Any, *, default_ts: int) -> DocumentEvent:
    if not isinstance(obj, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("doc_id")
    doc_id = raw_id if isinstance(raw_id, str) and _printable_id(raw_id) else None
    unknown = sorted(set(obj) - set(EVENT_FIELDS))
    if unknown:
        names = ", ".join(shown(name) for name in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InvalidEvent(f"unknown field(s) {names}; allowed fields are {', '.join(EVENT_FIELDS)}", doc_id=doc_id)
    _check_doc_id(raw_id)
    assert isinstance(raw_id, str)
    doc_id = raw_id

    op = obj.get("op", UPSERT)
    if op not in OPS:
        raise InvalidEvent(f"op must be 'upsert' or 'delete', got {shown(op, 40)}", doc_id=doc_id)

    source = obj.get("source", DEFAULT_SOURCE)
    if not isinstance(source, str) or not source:
        raise InvalidEvent("source must be a non-empty string", doc_id=doc_id)
    _check_identifier("source", source, doc_id)

    ts = _check_ts(obj.get("ts"), default_ts, doc_id)
    seq = _check_seq(obj.get("seq"), doc_id)

    text = obj.get("text")
    if op == UPSERT:
        if not isinstance(text, str) or not text.strip():
            raise InvalidEvent("text is required for an upsert and must be a non-empty string", doc_id=doc_id)
        _check_unicode("text", text, doc_id)
    else:
        text = None

    metadata = _check_metadata(obj.get("metadata"), doc_id)
    event = DocumentEvent(doc_id=doc_id, op=op, text=text, source=source, ts=ts, metadata=metadata, seq=seq)
    if op == UPSERT:
        check_metadata_budget(event)
    return event


def _check_unicode(name: str, value: str, doc_id: str | None) -> None:
    found = _SURROGATE_RE.search(value)
    if found:
        raise InvalidEvent(f"{name} holds an unpaired UTF-16 surrogate ({found.group()!r} at character "
                           f"{found.start()}), which no UTF-8 text can carry; fix the producer's text encoding",
                           doc_id=doc_id)


def _check_identifier(name: str, value: str, doc_id: str | None) -> None:
    _check_unicode(name, value, doc_id)
    found = _CONTROL_RE.search(value)
    if found:
        raise InvalidEvent(f"{name} holds the control character {found.group()!r} at character {found.start()}; "
                           "identifiers are printed and logged, so they may hold no control characters "
                           "(newline, tab, escape, ...)", doc_id=doc_id)


def _check_doc_id(doc_id: Any) -> None:
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidEvent("doc_id is required and must be a non-empty string")
    printable = doc_id if _printable_id(doc_id) else None
    if len(doc_id) > MAX_DOC_ID_CHARS:
        raise InvalidEvent(f"doc_id is {len(doc_id)} characters; the limit is {MAX_DOC_ID_CHARS}", doc_id=printable)
    _check_identifier("doc_id", doc_id, None)
    if "#" in doc_id:
        raise InvalidEvent("doc_id must not contain '#' (it separates the document id from the chunk number)",
                           doc_id=doc_id)


def _check_ts(raw: Any, default_ts: int, doc_id: str) -> int:
    if raw is None:
        return int(default_ts)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidEvent(f"ts must be an integer of epoch seconds, got {shown(raw)}", doc_id=doc_id)
    # An int is range-checked as it is: a 400-digit integer has no float (math.isfinite would raise).
    if isinstance(raw, float) and not math.isfinite(raw):
        raise InvalidEvent(f"ts must be an integer of epoch seconds, got {raw!r}", doc_id=doc_id)
    if not 0 <= raw <= MAX_TS:
        hint = ": it looks like milliseconds: send seconds since the epoch (divide by 1000)" if raw > MAX_TS else ""
        raise InvalidEvent(f"ts={shown(raw, 40)} is not epoch seconds (0..{MAX_TS}){hint}", doc_id=doc_id)
    return int(raw)


def check_not_ahead(event: DocumentEvent, *, arrival: float, max_skew_seconds: int) -> None:
    """Refuse an event whose ``ts`` is more than ``max_skew_seconds`` after it ``arrival``: the greatest version
    wins, so a version from the future (a clock set wrong, milliseconds sent as seconds) would freeze its document,
    no later update or delete could ever win over it. Raises InvalidEvent naming the cause and the fix."""
    ahead = event.ts - arrival
    if ahead <= max_skew_seconds:
        return
    hint = ("it looks like milliseconds: send seconds since the epoch (divide by 1000)"
            if abs(event.ts / 1000 - arrival) <= max_skew_seconds
            else "check the producer's clock, or leave ts out to use the arrival time")
    raise InvalidEvent(f"ts={event.ts} is {_duration(ahead)} ahead of the record's arrival ({int(arrival)}), more "
                       f"than the {_duration(max_skew_seconds)} allowed: a version from the future would freeze the "
                       f"document (no later update or delete could win over it); {hint}", doc_id=event.doc_id)


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86_400), ("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} seconds"


def _check_seq(raw: Any, doc_id: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not _SEQUENCE_RE.fullmatch(raw):
        raise InvalidEvent(f"seq must be a string of at most {MAX_SEQUENCE_NUMBER_DIGITS} decimal digits without "
                           f"leading zeros (a Kinesis sequence number), got {shown(raw, 60)}; producers leave it "
                           "out (redrive and replay set it)", doc_id=doc_id)
    return raw


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
        _check_identifier("a metadata key", key, doc_id)
        if key in RESERVED_KEYS:
            raise InvalidEvent(f"metadata key {shown(key)} is reserved for the indexer; rename it", doc_id=doc_id)
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, str):
            _check_unicode(f"metadata {shown(key)}", value, doc_id)
            out[key] = value
        elif isinstance(value, int):
            if not -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
                raise InvalidEvent(f"metadata {shown(key)} is an integer beyond 2**53 ({shown(value, 40)}), which "
                                   "filters compare as a rounded double: send it as a string", doc_id=doc_id)
            out[key] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidEvent(f"metadata {shown(key)} must be a finite number", doc_id=doc_id)
            out[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            for item in value:
                _check_unicode(f"metadata {shown(key)}", item, doc_id)
            out[key] = list(value)
        else:
            raise InvalidEvent(f"metadata {shown(key)} must be a string, number, boolean or list of strings, got "
                               f"{type(value).__name__}", doc_id=doc_id)
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
