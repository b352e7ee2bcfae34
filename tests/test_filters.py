"""S3 Vectors' metadata filter language (rtrag.core.filters): every operator and combination against hand-computed
expectations on a fixed set of metadata, the validation errors S3 Vectors would return, and the CLI's key=value
shorthand. Source of the rules: Amazon S3 User Guide, "Metadata filtering"."""

from __future__ import annotations

import pytest

from rtrag.core.filters import (
    MAX_FILTER_CONSTRAINTS,
    MAX_FILTER_DEPTH,
    InvalidFilter,
    compile_filter,
    matches,
    validate_filter,
    where_to_filter,
)
from rtrag.core.values import parse_value

# Hand-made metadata covering the cases the rules distinguish: list values (one empty), a missing key, a number
# stored as a string, a number where a boolean is expected, an int-valued float, a list of numbers.
DOCS: dict[str, dict] = {
    "guide": {"source": "wiki", "tier": 1, "public": True, "tags": ["security", "keys"], "score": 2.0},
    "runbook": {"source": "runbook", "tier": 2, "public": False, "tags": ["ops"], "year": 2024, "versions": [1, 3]},
    "faq": {"source": "wiki", "tier": 3, "tags": [], "year": 2020},
    "notes": {"source": "notes", "tier": "1", "public": 1},
    "bare": {},
}
ALL = set(DOCS)


def selected(filter) -> set[str]:
    test = compile_filter(filter)
    return {name for name, metadata in DOCS.items() if test(metadata)}


CASES = [
    # implicit and explicit $eq; types never cross ("1" is not 1, 1 is not true)
    ({"source": "wiki"}, {"guide", "faq"}),
    ({"source": {"$eq": "wiki"}}, {"guide", "faq"}),
    ({"tier": 1}, {"guide"}),
    ({"tier": "1"}, {"notes"}),
    ({"public": True}, {"guide"}),
    ({"public": 1}, {"notes"}),
    ({"score": 2}, {"guide"}),  # 2 == 2.0: numbers compare as numbers
    # $eq on a list value matches any element; an empty list matches nothing
    ({"tags": "ops"}, {"runbook"}),
    ({"tags": {"$eq": "keys"}}, {"guide"}),
    ({"versions": 3}, {"runbook"}),
    # $ne is the negation of $eq: a missing key and a list without the value both match
    ({"source": {"$ne": "wiki"}}, {"runbook", "notes", "bare"}),
    ({"tags": {"$ne": "keys"}}, {"runbook", "faq", "notes", "bare"}),
    ({"public": {"$ne": True}}, {"runbook", "faq", "notes", "bare"}),
    # $in / $nin
    ({"tags": {"$in": ["ops", "keys"]}}, {"guide", "runbook"}),
    ({"tags": {"$nin": ["ops", "keys"]}}, {"faq", "notes", "bare"}),
    ({"tier": {"$in": [1, "1"]}}, {"guide", "notes"}),
    ({"public": {"$in": [True]}}, {"guide"}),
    ({"public": {"$in": [1]}}, {"notes"}),
    ({"tags": {"$in": ["absent"]}}, set()),
    ({"source": {"$nin": ["wiki", "notes"]}}, {"runbook", "bare"}),
    # range operators compare numbers only (the string "1" never matches), any element of a list
    ({"tier": {"$gt": 1}}, {"runbook", "faq"}),
    ({"tier": {"$gte": 1}}, {"guide", "runbook", "faq"}),
    ({"tier": {"$lt": 2}}, {"guide"}),
    ({"tier": {"$lte": 2}}, {"guide", "runbook"}),
    ({"tier": {"$gte": 2, "$lte": 2}}, {"runbook"}),  # several operators on one key: AND
    ({"year": {"$gt": 2019.5}}, {"runbook", "faq"}),
    ({"versions": {"$gt": 2}}, {"runbook"}),
    ({"versions": {"$lt": 2}}, {"runbook"}),
    ({"versions": {"$gt": 5}}, set()),
    ({"source": {"$gt": 0}}, set()),
    # $exists: an empty list exists
    ({"year": {"$exists": True}}, {"runbook", "faq"}),
    ({"year": {"$exists": False}}, {"guide", "notes", "bare"}),
    ({"tags": {"$exists": True}}, {"guide", "runbook", "faq"}),
    # $startsWith (ENHANCED indexes): strings and list elements
    ({"source": {"$startsWith": "run"}}, {"runbook"}),
    ({"tags": {"$startsWith": "sec"}}, {"guide"}),
    ({"tier": {"$startsWith": "1"}}, {"notes"}),
    # several top-level keys: AND
    ({"source": "wiki", "tier": 1}, {"guide"}),
    # $and / $or, nested
    ({"$and": [{"source": "wiki"}, {"tier": {"$gte": 2}}]}, {"faq"}),
    ({"$or": [{"source": "runbook"}, {"tags": "security"}]}, {"guide", "runbook"}),
    ({"$or": [{"$and": [{"source": "wiki"}, {"year": {"$lt": 2024}}]}, {"public": False}]}, {"faq", "runbook"}),
    ({"$and": [{"$or": [{"tier": 1}, {"tier": 3}]}, {"tags": {"$nin": ["security"]}}]}, {"faq"}),
    ({"$and": [{"$or": [{"tier": 1}, {"tier": 3}]}], "source": "wiki"}, {"guide", "faq"}),
    ({"$or": [{"missing": {"$exists": False}}]}, ALL),
    ({"$and": [{"tags": "ops"}, {"tags": {"$ne": "ops"}}]}, set()),
]


@pytest.mark.parametrize(("filter", "expected"), CASES, ids=[str(f) for f, _ in CASES])
def test_filter_selects_exactly_the_hand_computed_documents(filter, expected):
    assert selected(filter) == expected


def test_matches_evaluates_one_metadata_dict():
    assert matches({"tags": "keys"}, DOCS["guide"]) is True
    assert matches({"tags": "keys"}, DOCS["bare"]) is False


def test_repeated_where_keys_require_every_value_of_a_list():
    tagged_both = where_to_filter(["tags=security", "tags=keys"])

    assert matches(tagged_both, {"tags": ["keys", "security"]})
    assert not matches(tagged_both, {"tags": ["keys"]})


# Validation: what S3 Vectors rejects, each with the part of the message that names the problem.
INVALID = [
    ("not json", "not JSON"),
    ([{"a": 1}], "must be a JSON object"),
    ({}, "empty"),
    ({"$and": []}, "non-empty array of filters"),
    ({"$and": {"a": 1}}, "non-empty array of filters"),
    ({"$or": [1]}, "must be a JSON object"),
    ({"$or": [{}]}, "empty"),
    ({"$not": {"a": 1}}, "not a logical operator"),
    ({"$eq": 1}, "applies to a metadata key"),
    ({"": 1}, "non-empty string"),
    ({"k": {"$regex": "x"}}, "unknown operator"),
    ({"k": {"nested": 1}}, "unknown operator"),
    ({"k": {}}, "condition object is empty"),
    ({"k": {"$and": [{"a": 1}]}}, "combines whole filters"),
    ({"k": None}, "not a string, number or boolean"),
    ({"k": float("nan")}, "not a string, number or boolean"),
    ({"k": ["a", "b"]}, '"$in"'),
    ({"k": {"$eq": ["a"]}}, "$eq takes a string, number or boolean"),
    ({"k": {"$ne": {"a": 1}}}, "$ne takes a string, number or boolean"),
    ({"k": {"$gt": "2020"}}, "$gt takes a finite number"),
    ({"k": {"$lte": True}}, "$lte takes a finite number"),
    ({"k": {"$gte": float("inf")}}, "$gte takes a finite number"),
    ({"k": {"$in": []}}, "$in takes a non-empty array"),
    ({"k": {"$nin": "a"}}, "$nin takes a non-empty array"),
    ({"k": {"$in": [["a"]]}}, "strings, numbers or booleans"),
    ({"k": {"$exists": "yes"}}, "$exists takes true or false"),
    ({"k": {"$exists": 1}}, "$exists takes true or false"),
    ({"k": {"$startsWith": 1}}, "$startsWith takes a string"),
]


@pytest.mark.parametrize(("filter", "fragment"), INVALID, ids=[repr(f) for f, _ in INVALID])
def test_invalid_filter_is_rejected_with_a_message_naming_the_problem(filter, fragment):
    with pytest.raises(InvalidFilter) as caught:
        validate_filter(filter)

    assert fragment in str(caught.value)


def test_error_message_gives_the_path_to_the_bad_part():
    with pytest.raises(InvalidFilter, match=r"filter\.\$and\[1\]\.year\.\$gt: \$gt takes a finite number"):
        validate_filter({"$and": [{"source": "wiki"}, {"year": {"$gt": "2020"}}]})


def test_filter_on_a_non_filterable_key_is_rejected_as_s3_vectors_does():
    with pytest.raises(InvalidFilter, match="non-filterable"):
        validate_filter({"$or": [{"source": "x"}, {"source_text": "x"}]}, non_filterable_keys=["source_text"])


def test_at_most_100_constraints_each_in_value_counting_once():
    at_limit = {"$and": [{"k": {"$in": list(range(MAX_FILTER_CONSTRAINTS - 1))}}, {"j": 1}]}
    over = {"$and": [{"k": {"$in": list(range(MAX_FILTER_CONSTRAINTS - 1))}}, {"j": 1}, {"i": {"$exists": True}}]}

    assert validate_filter(at_limit) == at_limit
    with pytest.raises(InvalidFilter, match=f"more than {MAX_FILTER_CONSTRAINTS} constraints"):
        validate_filter(over)


def test_runaway_nesting_is_refused_before_python_recursion_fails():
    deep: dict = {"k": 1}
    for _ in range(MAX_FILTER_DEPTH + 1):
        deep = {"$and": [deep]}

    with pytest.raises(InvalidFilter, match="nest"):
        validate_filter(deep)


def test_valid_filter_is_returned_unchanged_and_json_text_is_parsed():
    document = {"$and": [{"tier": {"$gte": 1, "$lt": 3}}, {"tags": {"$in": ["ops", "keys"]}}]}

    assert validate_filter(document) == document
    assert validate_filter('{"source": "wiki"}') == {"source": "wiki"}


def test_matches_rejects_an_invalid_filter_rather_than_guessing():
    with pytest.raises(InvalidFilter):
        matches({"tier": {"$gt": "1"}}, {"tier": 2})


# The CLI shorthand
def test_one_where_pair_is_a_plain_equality():
    assert where_to_filter(["source=wiki"]) == {"source": {"$eq": "wiki"}}


def test_several_where_pairs_are_an_explicit_and_with_typed_values():
    result = where_to_filter(["tier=2", "public=true", "score=0.5", "name=Ada Lovelace", 'year="2024"',
                              "draft=FALSE", "expr=a=b"])

    assert result == {"$and": [{"tier": {"$eq": 2}}, {"public": {"$eq": True}}, {"score": {"$eq": 0.5}},
                               {"name": {"$eq": "Ada Lovelace"}}, {"year": {"$eq": "2024"}},
                               {"draft": {"$eq": False}}, {"expr": {"$eq": "a=b"}}]}


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("-3", -3), ("+7", 7), ("2.5", 2.5), ("1e3", 1000.0), (".5", 0.5), ("true", True),
    ("False", False), ("'quoted'", "quoted"), ('"007"', "007"), ("nan", "nan"), ("inf", "inf"), ("", ""),
    ("v1.2", "v1.2"), ("1_000", "1_000"),
])
def test_cli_values_are_typed_as_written(text, value):
    parsed = parse_value(text)

    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["1_000", '"2024"', "2024", "true", "1e3", "-0", "v1.2", "'x'", "007"])
def test_metadata_put_with_put_event_is_matched_by_the_same_text_in_ask_where(text):
    from rtrag.workflows.produce import parse_pairs

    metadata = parse_pairs([f"k={text}"], option="--metadata")
    condition = where_to_filter([f"k={text}"])

    assert matches(condition, metadata)


def test_no_where_pairs_means_no_filter():
    assert where_to_filter([]) is None


@pytest.mark.parametrize("pair", ["novalue", "=v", " =v"])
def test_where_pair_without_key_or_equals_sign_is_refused(pair):
    with pytest.raises(InvalidFilter, match="expected key=value"):
        where_to_filter([pair])


# $startsWith works on ENHANCED indexes only: on a CLASSIC one (GetIndex says so) it is refused before the call.
@pytest.mark.parametrize(("mode", "refused"), [("CLASSIC", True), ("ENHANCED", False), (None, False)])
def test_starts_with_on_a_classic_index_is_refused_before_the_query(mode, refused):
    from rtrag.aws.s3vectors import S3VectorsIndex

    class Client:
        requests: list = []

        def query_vectors(self, **request):
            self.requests.append(request)
            return {"vectors": []}

    index = S3VectorsIndex(client := Client(), bucket="b", index="i", dimension=2)
    index.described = {"dimension": 2, **({"indexMode": mode} if mode else {})}
    query = {"source": {"$startsWith": "run"}}

    if refused:
        with pytest.raises(InvalidFilter, match=r"\$startsWith works on ENHANCED indexes only, and this index is "
                                                r"CLASSIC.*match whole values instead"):
            index.query([0.1, 0.2], top_k=3, filter=query)
        assert client.requests == []
    else:
        index.query([0.1, 0.2], top_k=3, filter=query)
        assert client.requests[-1]["filter"] == query
