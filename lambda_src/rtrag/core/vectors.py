"""S3 Vectors' documented limits as checks on one vector, and the packing of writes into calls within them.

Pure: both index adapters (``rtrag.aws.s3vectors`` and ``rtrag.local.index``) and the indexer run these same
checks, so a request that breaks a limit is refused in our code before any service sees it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from rtrag.core.errors import LimitExceeded
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.limits import (
    FLOAT32_MAX,
    MAX_FILTERABLE_METADATA_BYTES,
    MAX_KEYS_PER_DELETE,
    MAX_KEYS_PER_GET,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    MAX_PUT_PAYLOAD_BYTES,
    MAX_VECTOR_KEY_CHARS,
    MAX_VECTORS_PER_PUT,
)

T = TypeVar("T")


Vector = dict[str, Any]  # {"key": str, "data": {"float32": [...]}, "metadata": {...}}


# Room left in a PutVectors request for the envelope (bucket and index names, JSON punctuation).
_PAYLOAD_MARGIN = 64 * 1024


# A float in a JSON request takes at most 24 characters (sign, 17 significant digits, point, exponent "e-308")
# plus a separator: an upper bound that sizes a vector's data without serializing it, the indexer's hottest loop.
_FLOAT_JSON_BYTES = 25


_VECTOR_ENVELOPE_BYTES = 64  # {"key":"","data":{"float32":[]},"metadata":}


class JsonFloats(Sequence[float]):
    """A vector's values kept as the JSON array text a service returned them in (Titan's ``embedding``), so they go
    on to S3 Vectors as that text: never parsed into floats and printed back, which with ``json`` costs about
    0.75 ms of CPU per 1,024-dimension vector, the indexer's largest cost with real clients. Reading the values
    (indexing, iterating: the local index, a query, a test) parses them once.

    ``text`` is the array's inside, ASCII: ``b"0.5,-0.25,1e-05"``.
    """

    __slots__ = ("text", "_count", "_values", "_finite")

    # What a JSON array of numbers holds, and exponents big enough to leave float32's range.
    _NUMBER_BYTES = b"0123456789+-.eE, \t\r\n"

    def __init__(self, text: bytes):
        self.text = text
        self._count = text.count(b",") + 1 if text.strip() else 0
        self._values: list[float] | None = None
        self._finite: bool | None = None

    @classmethod
    def from_object(cls, body: bytes, name: str) -> JsonFloats | None:
        """The array of numbers that member ``name`` of the JSON object ``body`` holds, or None when it is not
        there as a flat array (then parse ``body`` with ``json``)."""
        at = body.find(b'"' + name.encode() + b'"')
        if at < 0:
            return None
        start = body.find(b"[", at)
        end = body.find(b"]", start)
        if start < 0 or end < 0 or body[at + len(name) + 2:start].strip() != b":":
            return None
        return cls(body[start + 1:end])

    def finite_float32(self) -> bool:
        """Every element is a JSON number, finite and within float32's range: checked on the text (no parse,
        unless an exponent is large enough to need one), once."""
        if self._finite is None:
            self._finite = self._check_finite()
        return self._finite

    def _check_finite(self) -> bool:
        if self.text.translate(None, self._NUMBER_BYTES):
            return False  # a letter (NaN, Infinity, true), a quote, a nested array or object
        if not self._big_exponent():
            return True
        try:
            return finite_float32(self.values)
        except ValueError:
            return False

    def _big_exponent(self) -> bool:
        """Whether an exponent of 38 or more is written (``1e39``, ``2.5E+38``): only then can a value leave
        float32's range. Exponents are few, and ``bytes.find`` skips to each (a regex would step through every
        byte: ten times slower on a 1,024-value vector)."""
        text = self.text
        for marker in (b"e", b"E"):
            at = text.find(marker)
            while at >= 0:
                digits = at + 1 + (text[at + 1:at + 2] == b"+")
                end = digits
                while text[end:end + 1].isdigit():
                    end += 1
                if end > digits and int(text[digits:end]) >= 38:
                    return True
                at = text.find(marker, at + 1)
        return False

    @property
    def values(self) -> list[float]:
        if self._values is None:
            self._values = [float(x) for x in json.loads(b"[" + self.text + b"]")]
        return self._values

    def json(self) -> str:
        """The array as JSON text."""
        return "[" + self.text.decode("ascii") + "]"

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: int | slice) -> float | list[float]:
        return self.values[index]

    def __iter__(self) -> Iterator[float]:
        return iter(self.values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonFloats):
            return self.values == other.values
        if isinstance(other, list):
            return self.values == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"JsonFloats({len(self)} values)"


def floats_json(data: Sequence[float]) -> str:
    """A vector's values as a JSON array: the text kept from the service, or ``json``'s encoding of the floats."""
    return data.json() if isinstance(data, JsonFloats) else json.dumps(list(data))


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_key(key: Any) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_VECTOR_KEY_CHARS:
        raise LimitExceeded(f"vector key must be 1..{MAX_VECTOR_KEY_CHARS} characters, got {key!r:.80}")


def check_vector(vector: Vector, *, dimension: int, non_filterable_keys: Iterable[str] = (SOURCE_TEXT_KEY,)) -> int:
    """Raise LimitExceeded if ``vector`` breaks a PutVectors limit; return an upper bound of its size in a
    PutVectors request, in bytes."""
    key = vector.get("key")
    check_key(key)
    size = check_data(key, vector.get("data", {}).get("float32"), dimension=dimension)
    return size + check_metadata(key, vector.get("metadata") or {}, non_filterable_keys=non_filterable_keys)


def check_data(key: str, data: Any, *, dimension: int) -> int:
    """The vector-data half of ``check_vector``: the index's dimension, finite float32 values (a list of numbers, or
    ``JsonFloats``)."""
    if not isinstance(data, (list, JsonFloats)) or len(data) != dimension:
        got = len(data) if isinstance(data, (list, JsonFloats)) else type(data).__name__
        raise LimitExceeded(f"vector {key!r} has dimension {got}; the index takes {dimension}")
    if not finite_float32(data):
        raise LimitExceeded(f"vector {key!r} holds a value that is not a finite float32")
    return _FLOAT_JSON_BYTES * len(data)


def check_metadata(key: str, metadata: dict[str, Any], *,
                   non_filterable_keys: Iterable[str] = (SOURCE_TEXT_KEY,)) -> int:
    """The key-and-metadata half of ``check_vector``, which can run before the vector's data exists."""
    check_key(key)
    if len(metadata) > MAX_METADATA_KEYS:
        raise LimitExceeded(f"vector {key!r} has {len(metadata)} metadata keys; the limit is {MAX_METADATA_KEYS}")
    total = _json_bytes(metadata)
    if total > MAX_METADATA_BYTES:
        raise LimitExceeded(f"vector {key!r} has {total} bytes of metadata; the limit is {MAX_METADATA_BYTES}")
    skip = set(non_filterable_keys)
    filterable = _json_bytes({k: v for k, v in metadata.items() if k not in skip})
    if filterable > MAX_FILTERABLE_METADATA_BYTES:
        raise LimitExceeded(
            f"vector {key!r} has {filterable} bytes of filterable metadata; the limit is "
            f"{MAX_FILTERABLE_METADATA_BYTES} (large text belongs in a non-filterable key)")
    return len(key.encode("utf-8")) + total + _VECTOR_ENVELOPE_BYTES


def finite_float32(data: Sequence[Any]) -> bool:
    """Every element is an int or a float (not a bool), finite and within float32's range (``JsonFloats``: checked
    on its text, once)."""
    if isinstance(data, JsonFloats):
        return data.finite_float32()
    if set(map(type, data)) <= {float, int}:
        # The usual case (JSON numbers parse to float, or int without a fraction): the same test in C-level loops,
        # several times faster (a NaN fails isnan, an infinity or a huge int fails the range).
        return not any(map(math.isnan, data)) and max(map(abs, data), default=0.0) <= FLOAT32_MAX
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
               and abs(x) <= FLOAT32_MAX for x in data)


def pack_puts(sized: Sequence[tuple[T, int]]) -> Iterator[list[T]]:
    """Group items (a vector, or anything standing for one) with their request sizes into PutVectors calls
    within the per-call count and payload limits, keeping order."""
    call: list[T] = []
    size = 0
    for vector, vector_bytes in sized:
        if call and (len(call) == MAX_VECTORS_PER_PUT or size + vector_bytes > MAX_PUT_PAYLOAD_BYTES - _PAYLOAD_MARGIN):
            yield call
            call, size = [], 0
        call.append(vector)
        size += vector_bytes + 1
    if call:
        yield call


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class CheckedVectorIndex:
    """What both index adapters share: every request checked against S3 Vectors' limits, and the plural helpers
    that split any number of vectors or keys into calls within them. A subclass makes the calls: ``_put_vectors``,
    ``_delete_vectors`` and ``_get_vectors``, each one request that has passed the checks.

    The indexer sees only ``dimension``, ``non_filterable_keys``, ``put_call``, ``delete_call`` and ``get``
    (``rtrag.indexing.ports.VectorIndex``) and runs the per-vector checks itself, once.
    """

    def __init__(self, *, dimension: int, non_filterable_keys: Sequence[str] = (SOURCE_TEXT_KEY,)):
        self.dimension = dimension
        self.non_filterable_keys = tuple(non_filterable_keys)

    # one request each, checked
    def _put_vectors(self, vectors: list[Vector]) -> None:
        raise NotImplementedError

    def _delete_vectors(self, keys: list[str]) -> None:
        raise NotImplementedError

    def _get_vectors(self, keys: list[str], *, data: bool, metadata: bool) -> list[Vector]:
        raise NotImplementedError

    def check(self, vector: Vector) -> int:
        """Raise LimitExceeded if ``vector`` breaks a PutVectors limit; return its size in a request in bytes."""
        return check_vector(vector, dimension=self.dimension, non_filterable_keys=self.non_filterable_keys)

    def put_call(self, vectors: Sequence[Vector], *, sizes: Sequence[int] | None = None) -> None:
        """One PutVectors call (at most 500 vectors, 20 MiB); a key that exists is overwritten. ``sizes``: what
        ``check`` returned for these vectors, when the caller has just checked them (they are not checked again)."""
        if not 1 <= len(vectors) <= MAX_VECTORS_PER_PUT:
            raise LimitExceeded(f"PutVectors takes 1..{MAX_VECTORS_PER_PUT} vectors per call, got {len(vectors)}")
        if sizes is None or len(sizes) != len(vectors):
            sizes = [self.check(v) for v in vectors]
        payload = sum(sizes)
        if payload > MAX_PUT_PAYLOAD_BYTES - _PAYLOAD_MARGIN:
            raise LimitExceeded(f"PutVectors payload of {payload} bytes is over {MAX_PUT_PAYLOAD_BYTES - _PAYLOAD_MARGIN}"
                                f" (the {MAX_PUT_PAYLOAD_BYTES}-byte limit less {_PAYLOAD_MARGIN} for the envelope)")
        self._put_vectors(list(vectors))

    def put(self, vectors: Sequence[Vector]) -> int:
        """Write any number of vectors in as few calls as the limits allow; returns the number of calls."""
        calls = 0
        for call in pack_puts([((v, size), size) for v in vectors for size in (self.check(v),)]):
            self.put_call([v for v, _ in call], sizes=[size for _, size in call])  # checked once, above
            calls += 1
        return calls

    def delete_call(self, keys: Sequence[str]) -> None:
        """One DeleteVectors call (at most 500 keys). Deleting a key that does not exist is not an error."""
        if not 1 <= len(keys) <= MAX_KEYS_PER_DELETE:
            raise LimitExceeded(f"DeleteVectors takes 1..{MAX_KEYS_PER_DELETE} keys per call, got {len(keys)}")
        for key in keys:
            check_key(key)
        self._delete_vectors(list(keys))

    def delete(self, keys: Sequence[str]) -> int:
        """Delete any number of keys; returns the number of calls."""
        calls = 0
        for call in batched(list(keys), MAX_KEYS_PER_DELETE):
            self.delete_call(call)
            calls += 1
        return calls

    def get(self, keys: Sequence[str], *, data: bool = False, metadata: bool = True) -> dict[str, Vector]:
        """The vectors that exist among ``keys`` (GetVectors, 100 keys per call), by key."""
        found: dict[str, Vector] = {}
        for call in batched(list(dict.fromkeys(keys)), MAX_KEYS_PER_GET):
            for key in call:
                check_key(key)
            for vector in self._get_vectors(list(call), data=data, metadata=metadata):
                found[vector["key"]] = vector
        return found
