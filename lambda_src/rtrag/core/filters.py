"""Amazon S3 Vectors' metadata filter language: validation, evaluation (for the local index) and the CLI's
``key=value`` shorthand.

Source: Amazon S3 User Guide, "Metadata filtering" (s3-vectors-metadata-filtering), checked November 2026:

| operator | operand | |
|---|---|---|
| ``$eq`` ``$ne`` | string, number, boolean | ``{"k": v}`` means ``{"k": {"$eq": v}}`` |
| ``$gt`` ``$gte`` ``$lt`` ``$lte`` | number | |
| ``$startsWith`` | string | only on ``ENHANCED`` indexes (every index of a bucket created since 2026-09-30) |
| ``$in`` ``$nin`` | non-empty array of primitives | |
| ``$exists`` | boolean | |
| ``$and`` ``$or`` | non-empty array of filters | |

Several operators on one field (``{"price": {"$gte": 10, "$lte": 50}}``) and several keys in one object are a
logical AND. A filter may use at most 100 constraints (each value it evaluates counts once; an ``$in`` list counts
its length) on an ``ENHANCED`` index; we enforce it everywhere so a filter that works locally works on AWS.
Filtering on a key declared non-filterable is rejected by the service ("Invalid use of non-filterable metadata in
filter", a ValidationException); ``validate_filter`` rejects it first when told the index's non-filterable keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rtrag.core.errors import InvalidFilter, RagError  # noqa: F401 - InvalidFilter is part of this module's API
from rtrag.core.events import MAX_EXACT_INT
from rtrag.core.limits import MAX_FILTER_CONSTRAINTS
from rtrag.core.values import parse_pairs

# Our own guard against runaway recursion, not a documented AWS limit: far deeper than any real filter.
MAX_FILTER_DEPTH = 32

CLASSIC = "CLASSIC"  # an index mode (GetIndex's indexMode): CLASSIC or ENHANCED

LOGICAL_OPERATORS = ("$and", "$or")
EQUALITY_OPERATORS = ("$eq", "$ne")
RANGE_OPERATORS = ("$gt", "$gte", "$lt", "$lte")
LIST_OPERATORS = ("$in", "$nin")
FIELD_OPERATORS = EQUALITY_OPERATORS + RANGE_OPERATORS + LIST_OPERATORS + ("$exists", "$startsWith")

Predicate = Callable[[Mapping[str, Any]], bool]


def is_number(value: Any) -> bool:
    """Whether a filter operand or metadata value is a number to S3 Vectors: finite, in double range, not a bool."""
    # JSON has no int/bool overlap: true is not 1, so a bool is never a number here (Python says otherwise).
    if isinstance(value, bool):
        return False
    # Numbers are JSON doubles: an integer a double cannot hold exactly is not one. Events refuse such metadata
    # (rtrag.core.events), and a filter refuses such an operand, so no evaluator ever compares one.
    if isinstance(value, int):
        return -MAX_EXACT_INT <= value <= MAX_EXACT_INT
    return isinstance(value, float) and math.isfinite(value)


def _is_primitive(value: Any) -> bool:
    return isinstance(value, (str, bool)) or is_number(value)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Validator:
    def __init__(self, non_filterable_keys: Iterable[str], index_mode: str | None = None):
        self.non_filterable = frozenset(non_filterable_keys)
        self.index_mode = index_mode
        self.constraints = 0

    def fail(self, where: str, problem: str, fix: str) -> InvalidFilter:
        return InvalidFilter(f"invalid metadata filter at {where}: {problem}; {fix}")

    def count(self, n: int, where: str) -> None:
        self.constraints += n
        if self.constraints > MAX_FILTER_CONSTRAINTS:
            raise self.fail(where, f"the filter uses more than {MAX_FILTER_CONSTRAINTS} constraints (each value "
                                   "it evaluates counts, an $in list counts its length)",
                            "narrow it, or split the question into several queries")

    def node(self, node: Any, where: str, depth: int) -> None:
        if depth > MAX_FILTER_DEPTH:
            raise self.fail(where, f"filters nest more than {MAX_FILTER_DEPTH} levels deep", "flatten the filter")
        if not isinstance(node, Mapping):
            raise self.fail(where, f"a filter must be a JSON object, got {_show(node)}",
                            'write it as {"key": value} or {"$and": [...]}')
        if not node:
            raise self.fail(where, "the filter object is empty",
                            "omit the filter to match every vector, or name a metadata key")
        for key, value in node.items():
            if not isinstance(key, str) or not key:
                raise self.fail(where, f"metadata key {_show(key)} is not a non-empty string", "name a metadata key")
            if key in LOGICAL_OPERATORS:
                self.logical(key, value, f"{where}.{key}", depth)
            elif key.startswith("$"):
                hint = (f'{key} applies to a metadata key: {{"key": {{"{key}": ...}}}}' if key in FIELD_OPERATORS
                        else f"use one of {', '.join(LOGICAL_OPERATORS + FIELD_OPERATORS)}")
                raise self.fail(where, f"{key} is not a logical operator", hint)
            else:
                self.field(key, value, f"{where}.{key}")

    def logical(self, operator: str, value: Any, where: str, depth: int) -> None:
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"{operator} takes a non-empty array of filters, got {_show(value)}",
                            f'write {{"{operator}": [{{"a": 1}}, {{"b": 2}}]}}')
        for i, sub in enumerate(value):
            self.node(sub, f"{where}[{i}]", depth + 1)

    def field(self, key: str, condition: Any, where: str) -> None:
        if key in self.non_filterable:
            raise self.fail(where, f"{key!r} is a non-filterable metadata key of this index",
                            "filter on another key: non-filterable metadata is only returned, never matched")
        if isinstance(condition, Mapping):
            if not condition:
                raise self.fail(where, "the condition object is empty", 'give an operator, e.g. {"$eq": "value"}')
            for operator, operand in condition.items():
                self.operator(operator, operand, f"{where}.{operator}")
        elif isinstance(condition, int) and not isinstance(condition, bool) and not is_number(condition):
            self.operator("$eq", condition, where)
        elif _is_primitive(condition):
            self.count(1, where)
        elif isinstance(condition, list):
            raise self.fail(where, f"a bare array {_show(condition)} is not a condition",
                            f'to match any of these values write {{"{key}": {{"$in": {_show(condition)}}}}}')
        else:
            raise self.fail(where, f"{_show(condition)} is not a string, number or boolean",
                            "metadata filters compare strings, finite numbers and booleans only")

    def operator(self, operator: Any, operand: Any, where: str) -> None:
        for value in operand if isinstance(operand, list) else [operand]:
            if isinstance(value, int) and not isinstance(value, bool) and not is_number(value):
                raise self.fail(where, f"the integer {_show(value)} is beyond 2**53, where doubles stop being exact",
                                'write it as a string, e.g. "9007199254740993" (metadata holds such ids as strings)')
        if operator in EQUALITY_OPERATORS:
            if not _is_primitive(operand):
                raise self.fail(where, f"{operator} takes a string, number or boolean, got {_show(operand)}",
                                "use $in/$nin to compare with several values")
            self.count(1, where)
        elif operator in RANGE_OPERATORS:
            if not is_number(operand):
                raise self.fail(where, f"{operator} takes a finite number, got {_show(operand)}",
                                "range operators compare numbers only (write 2020, not \"2020\")")
            self.count(1, where)
        elif operator in LIST_OPERATORS:
            if not isinstance(operand, list) or not operand:
                raise self.fail(where, f"{operator} takes a non-empty array, got {_show(operand)}",
                                f'write {{"{operator}": ["a", "b"]}}')
            bad = [v for v in operand if not _is_primitive(v)]
            if bad:
                raise self.fail(where, f"{operator} values must be strings, numbers or booleans, got {_show(bad[0])}",
                                "list only primitive values")
            self.count(len(operand), where)
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise self.fail(where, f"$exists takes true or false, got {_show(operand)}",
                                'write {"$exists": true}')
            self.count(1, where)
        elif operator == "$startsWith":
            if self.index_mode == CLASSIC:
                raise self.fail(where, "$startsWith works on ENHANCED indexes only, and this index is CLASSIC (its "
                                "bucket was created before they existed)",
                                'match whole values instead ({"$eq": ...} or {"$in": [...]})')
            if not isinstance(operand, str):
                raise self.fail(where, f"$startsWith takes a string, got {_show(operand)}",
                                'write {"$startsWith": "prefix"}')
            self.count(1, where)
        elif operator in LOGICAL_OPERATORS:
            raise self.fail(where, f"{operator} combines whole filters, not conditions on one key",
                            f'write {{"{operator}": [{{"key": ...}}, {{"key": ...}}]}} at the filter level')
        else:
            raise self.fail(where, f"unknown operator {_show(operator)}",
                            f"use one of {', '.join(FIELD_OPERATORS)} (a nested object is not a metadata value)")


def validate_filter(filter: Any, *, non_filterable_keys: Iterable[str] = (),
                    index_mode: str | None = None) -> dict[str, Any]:
    """Return ``filter`` as a dict if S3 Vectors would accept it, else raise InvalidFilter naming the bad part and
    the fix. A JSON string is parsed first (for ``--filter`` options). Pass the index's non-filterable keys to reject
    filters on them as the service does, and its ``indexMode`` (GetIndex; None when unknown) to reject
    ``$startsWith`` on a ``CLASSIC`` index."""
    if isinstance(filter, (str, bytes)):
        try:
            filter = json.loads(filter)
        except ValueError as exc:
            raise InvalidFilter(f"invalid metadata filter: not JSON ({exc}); write it as a JSON object, "
                                'e.g. \'{"source": "wiki"}\'') from exc
    _Validator(non_filterable_keys, index_mode).node(filter, "filter", 0)
    return dict(filter)


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    # Strings equal strings, numbers equal numbers (1 == 1.0), booleans equal booleans; nothing crosses types.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return is_number(a) and is_number(b) and a == b


def _elements(value: Any) -> Sequence[Any]:
    # An array metadata value matches when any of its elements does: the documented rule for $eq ("returns true if
    # the input value matches any element in the array"), applied alike to $in, the range operators and
    # $startsWith, as in the MongoDB-style language the service's filters follow.
    if value is _MISSING:
        return ()
    return value if isinstance(value, list) else (value,)


def _eq(operand: Any) -> Callable[[Any], bool]:
    return lambda value: any(_same(e, operand) for e in _elements(value))


def _in(operands: list[Any]) -> Callable[[Any], bool]:
    strings = {v for v in operands if isinstance(v, str)}
    booleans = {v for v in operands if isinstance(v, bool)}
    numbers = {v for v in operands if is_number(v)}

    def test(value: Any) -> bool:
        for e in _elements(value):
            if isinstance(e, bool):
                if e in booleans:
                    return True
            elif isinstance(e, str):
                if e in strings:
                    return True
            elif is_number(e) and e in numbers:
                return True
        return False

    return test


def _negate(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    # $ne and $nin are the exact negations of $eq and $in. So a vector without the key matches them, and an array
    # value matches $ne only if no element equals the operand. The service's guide is silent on both cases; this
    # follows the MongoDB semantics its operators are named after (use {"$exists": true} too to exclude missing keys).
    return lambda value: not test(value)


def _range(operator: str, operand: float) -> Callable[[Any], bool]:
    compare: Callable[[Any], bool] = {
        "$gt": lambda e: e > operand, "$gte": lambda e: e >= operand,
        "$lt": lambda e: e < operand, "$lte": lambda e: e <= operand,
    }[operator]
    # Range operators compare numbers only: a string or boolean value never matches (no "2020" > 2019 coercion).
    return lambda value: any(is_number(e) and compare(e) for e in _elements(value))


def _exists(operand: bool) -> Callable[[Any], bool]:
    # "matches vectors that have the metadata key, regardless of the value stored": an empty array still exists.
    return lambda value: (value is not _MISSING) is operand


def _starts_with(operand: str) -> Callable[[Any], bool]:
    return lambda value: any(isinstance(e, str) and e.startswith(operand) for e in _elements(value))


def _condition(operator: str, operand: Any) -> Callable[[Any], bool]:
    if operator == "$eq":
        return _eq(operand)
    if operator == "$ne":
        return _negate(_eq(operand))
    if operator == "$in":
        return _in(operand)
    if operator == "$nin":
        return _negate(_in(operand))
    if operator == "$exists":
        return _exists(operand)
    if operator == "$startsWith":
        return _starts_with(operand)
    return _range(operator, operand)


def _field(key: str, condition: Any) -> Predicate:
    if not isinstance(condition, Mapping):
        condition = {"$eq": condition}
    tests = [_condition(op, operand) for op, operand in condition.items()]
    if len(tests) == 1:
        test = tests[0]
        return lambda metadata: test(metadata.get(key, _MISSING))
    return lambda metadata: all(t(metadata.get(key, _MISSING)) for t in tests)


def _compile(node: Mapping[str, Any]) -> Predicate:
    parts: list[Predicate] = []
    for key, value in node.items():
        if key == "$and":
            subs = [_compile(f) for f in value]
            parts.append(lambda metadata, subs=subs: all(p(metadata) for p in subs))
        elif key == "$or":
            subs = [_compile(f) for f in value]
            parts.append(lambda metadata, subs=subs: any(p(metadata) for p in subs))
        else:
            parts.append(_field(key, value))
    if len(parts) == 1:
        return parts[0]
    return lambda metadata: all(p(metadata) for p in parts)


def compile_filter(filter: Any, *, non_filterable_keys: Iterable[str] = ()) -> Predicate:
    """Validate ``filter`` and return a function telling whether a vector's metadata matches it (S3 Vectors
    semantics). Compile once, apply to many vectors."""
    return _compile(validate_filter(filter, non_filterable_keys=non_filterable_keys))


def matches(filter: Any, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``filter`` as S3 Vectors evaluates it; raises InvalidFilter for a bad filter."""
    return compile_filter(filter)(metadata)


def where_to_filter(pairs: Sequence[str]) -> dict[str, Any] | None:
    """Turn CLI ``key=value`` pairs into a filter: one pair -> ``{"key": {"$eq": value}}``, several ->
    ``{"$and": [...]}`` (an explicit $and rather than several top-level keys, so a repeated key, e.g.
    ``tags=a tags=b`` for a vector tagged with both, keeps both conditions). Values are typed by
    ``rtrag.core.values.parse_value``, as ``put_event.py --metadata`` types them. No pairs -> None (no filter)."""
    try:
        typed = parse_pairs(pairs)
    except ValueError as exc:
        raise InvalidFilter(f"invalid condition {exc}: expected key=value, e.g. source=wiki or tier=1") from None
    conditions: list[dict[str, Any]] = [{key: {"$eq": value}} for key, value in typed]
    if not conditions:
        return None
    result = conditions[0] if len(conditions) == 1 else {"$and": conditions}
    return validate_filter(result)
