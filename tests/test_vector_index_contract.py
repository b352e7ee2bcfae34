"""One contract for both vector indexes: the local index (rtrag.local.index.LocalVectorIndex) must behave like the
S3 Vectors adapter (rtrag.vectors.S3VectorsIndex, here on moto) for every operation moto supports: put, get,
delete, overwrite, limits and error types. Query is not in moto, so query, filters, durability and sharing between
processes are proved on the local index alone, at the end of this file."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtrag.core import limits
from rtrag.core.errors import ConfigError, LimitExceeded
from rtrag.core.filters import InvalidFilter, matches
from rtrag.local.index import LocalVectorIndex
from rtrag.aws.s3vectors import S3VectorsIndex

BUCKET, INDEX = "contract-vectors", "contract-index"
DIM = 4
NON_FILTERABLE = ("source_text",)
LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"


def vec(key: str, data=(0.5, -0.25, 1.0, 0.0), **metadata) -> dict:
    # Values exactly representable in float32, so both implementations return them unchanged.
    vector = {"key": key, "data": {"float32": list(data)}}
    if metadata:
        vector["metadata"] = metadata
    return vector


@pytest.fixture(params=["local", "s3vectors"])
def impl(request, tmp_path):
    """The index under test, and what AWS received (for the S3 Vectors adapter)."""
    if request.param == "local":
        index = LocalVectorIndex.open(tmp_path / "index", dimension=DIM, non_filterable_keys=NON_FILTERABLE)
        yield SimpleNamespace(name="local", index=index, aws=None)
        index.close()
        return
    aws = request.getfixturevalue("aws")
    client = boto3.client("s3vectors")
    client.create_vector_bucket(vectorBucketName=BUCKET)
    client.create_index(vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=DIM,
                        distanceMetric="cosine",
                        metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE)})
    aws.s3vectors.calls.clear()
    yield SimpleNamespace(name="s3vectors", aws=aws,
                          index=S3VectorsIndex(client, bucket=BUCKET, index=INDEX, dimension=DIM,
                                               non_filterable_keys=NON_FILTERABLE))


def assert_nothing_sent(impl) -> None:
    if impl.aws is not None:
        assert impl.aws.s3vectors.calls == []


# put / get / delete
def test_put_then_get_returns_data_and_metadata_of_every_type(impl):
    metadata = {"doc_id": "d", "tier": 2, "score": 0.5, "public": False, "tags": ["a", "b"], "source_text": "Text."}

    impl.index.put([vec("d#0", **metadata), vec("d#1", (1.0, 0.0, 0.0, 0.0))])

    got = impl.index.get(["d#0", "d#1"], data=True, metadata=True)
    assert got == {
        "d#0": {"key": "d#0", "data": {"float32": [0.5, -0.25, 1.0, 0.0]}, "metadata": metadata},
        "d#1": {"key": "d#1", "data": {"float32": [1.0, 0.0, 0.0, 0.0]}, "metadata": {}},
    }


def test_get_returns_only_what_was_asked_for(impl):
    impl.index.put([vec("k", tier=1)])

    assert impl.index.get(["k"]) == {"k": {"key": "k", "metadata": {"tier": 1}}}
    assert impl.index.get(["k"], data=False, metadata=False) == {"k": {"key": "k"}}


def test_get_of_missing_keys_leaves_them_out(impl):
    impl.index.put([vec("present")])

    assert set(impl.index.get(["missing", "present", "also-missing"])) == {"present"}
    assert impl.index.get(["missing"]) == {}


def test_put_of_an_existing_key_replaces_data_and_all_metadata(impl):
    impl.index.put([vec("k", (1.0, 0.0, 0.0, 0.0), old="x", tier=1)])

    impl.index.put([vec("k", (0.0, 1.0, 0.0, 0.0), tier=2)])

    assert impl.index.get(["k"], data=True) == {
        "k": {"key": "k", "data": {"float32": [0.0, 1.0, 0.0, 0.0]}, "metadata": {"tier": 2}}}


def test_delete_removes_and_deleting_a_missing_key_is_not_an_error(impl):
    impl.index.put([vec("a"), vec("b")])

    assert impl.index.delete(["a", "never-there"]) == 1

    assert set(impl.index.get(["a", "b"])) == {"b"}


def test_keys_are_case_sensitive_and_may_be_1024_characters(impl):
    long_key = "é" * limits.MAX_VECTOR_KEY_CHARS

    impl.index.put([vec("Doc#0", tier=1), vec("doc#0", tier=2), vec(long_key)])

    got = impl.index.get(["Doc#0", "doc#0", long_key])
    assert (got["Doc#0"]["metadata"], got["doc#0"]["metadata"]) == ({"tier": 1}, {"tier": 2})
    assert long_key in got


def test_many_vectors_are_split_into_calls_within_the_limits(impl):
    vectors = [vec(f"doc#{i}", tier=i) for i in range(2 * limits.MAX_VECTORS_PER_PUT + 1)]
    keys = [v["key"] for v in vectors]

    assert impl.index.put(vectors) == 3
    got = impl.index.get(keys)
    assert impl.index.delete(keys[:limits.MAX_KEYS_PER_DELETE + 1]) == 2

    assert len(got) == len(vectors) and got["doc#1000"]["metadata"] == {"tier": 1000}
    assert set(impl.index.get(keys)) == set(keys[limits.MAX_KEYS_PER_DELETE + 1:])
    if impl.aws is not None:
        assert impl.aws.s3vectors.sizes("PutVectors") == [500, 500, 1]
        assert max(impl.aws.s3vectors.sizes("GetVectors")) == limits.MAX_KEYS_PER_GET


# limits and error types: refused before anything is sent, and nothing of a refused call is written
def test_more_than_500_vectors_in_one_call_is_refused_before_any_call(impl):
    with pytest.raises(LimitExceeded, match="1..500 vectors"):
        impl.index.put_call([vec(f"k{i}") for i in range(limits.MAX_VECTORS_PER_PUT + 1)])

    assert_nothing_sent(impl)
    assert impl.index.get(["k0"]) == {}


def test_empty_put_and_delete_calls_are_refused(impl):
    with pytest.raises(LimitExceeded):
        impl.index.put_call([])
    with pytest.raises(LimitExceeded):
        impl.index.delete_call([])

    assert_nothing_sent(impl)


def test_more_than_500_keys_in_one_delete_call_is_refused(impl):
    with pytest.raises(LimitExceeded, match="1..500 keys"):
        impl.index.delete_call([f"k{i}" for i in range(limits.MAX_KEYS_PER_DELETE + 1)])

    assert_nothing_sent(impl)


def test_wrong_dimension_fails_the_whole_call(impl):
    with pytest.raises(LimitExceeded, match="dimension 3; the index takes 4"):
        impl.index.put_call([vec("good"), vec("short", (1.0, 0.0, 0.0))])

    assert_nothing_sent(impl)
    assert impl.index.get(["good"]) == {}


@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.5", True])
def test_a_value_that_is_not_a_finite_number_is_refused(impl, bad):
    with pytest.raises(LimitExceeded, match="not a finite float32"):
        impl.index.put_call([vec("k", (0.5, bad, 0.0, 0.0))])

    assert_nothing_sent(impl)


def test_filterable_metadata_over_2_kb_is_refused_but_the_same_text_fits_as_source_text(impl):
    text = "x" * (limits.MAX_FILTERABLE_METADATA_BYTES + 1)

    with pytest.raises(LimitExceeded, match="filterable metadata"):
        impl.index.put_call([vec("filterable", note=text)])
    impl.index.put_call([vec("non-filterable", source_text=text)])

    got = impl.index.get(["filterable", "non-filterable"])
    assert list(got) == ["non-filterable"] and got["non-filterable"]["metadata"]["source_text"] == text
    if impl.aws is not None:
        assert impl.aws.s3vectors.count("PutVectors") == 1


def test_filterable_budget_counts_utf8_bytes_not_characters(impl):
    # 700 three-byte characters: 700 characters, 2,100 bytes.
    with pytest.raises(LimitExceeded, match="filterable metadata"):
        impl.index.put_call([vec("k", note="€" * 700)])

    assert_nothing_sent(impl)


def test_metadata_over_40_kb_or_50_keys_is_refused(impl):
    with pytest.raises(LimitExceeded, match="bytes of metadata"):
        impl.index.put_call([vec("big", source_text="x" * limits.MAX_METADATA_BYTES)])
    with pytest.raises(LimitExceeded, match="metadata keys"):
        impl.index.put_call([vec("wide", **{f"k{i}": i for i in range(limits.MAX_METADATA_KEYS + 1)})])

    assert_nothing_sent(impl)


@pytest.mark.parametrize("key", ["", "k" * (limits.MAX_VECTOR_KEY_CHARS + 1), 17, None])
def test_bad_keys_are_refused_by_put_get_and_delete(impl, key):
    with pytest.raises(LimitExceeded, match="vector key"):
        impl.index.put_call([{"key": key, "data": {"float32": [0.5, 0.5, 0.5, 0.5]}}])
    with pytest.raises(LimitExceeded, match="vector key"):
        impl.index.get([key])
    with pytest.raises(LimitExceeded, match="vector key"):
        impl.index.delete_call([key])

    assert_nothing_sent(impl)


def test_check_reports_the_same_request_size_bound_on_both_indexes(impl):
    vector = vec("d#0", doc_id="d", source_text="Some text.")
    reference = S3VectorsIndex(None, bucket=BUCKET, index=INDEX, dimension=DIM, non_filterable_keys=NON_FILTERABLE)

    size = impl.index.check(vector)

    # Both report the same upper bound of the vector's JSON in a PutVectors request (rtrag.vectors.check_vector).
    assert size == reference.check(vector) >= len(json.dumps(vector, separators=(",", ":")))


# Query and what only the local index does (moto has no QueryVectors)
@pytest.fixture
def local(tmp_path):
    index = LocalVectorIndex.open(tmp_path / "index", dimension=DIM)
    yield index
    index.close()


# Cosine distances worked out by hand for the query (1, 0, 0, 0): 1 - cos(angle).
GEOMETRY = {
    "same": ((2.0, 0.0, 0.0, 0.0), 0.0),
    "diagonal": ((1.0, 1.0, 0.0, 0.0), 1 - 1 / math.sqrt(2)),  # 0.29289
    "three-four": ((3.0, 4.0, 0.0, 0.0), 1 - 3 / 5),  # 0.4
    "orthogonal": ((0.0, 0.0, 5.0, 0.0), 1.0),
    "opposite": ((-1.0, 0.0, 0.0, 0.0), 2.0),
}


def put_geometry(index, **metadata_by_key):
    index.put([vec(key, data, **metadata_by_key.get(key, {"name": key})) for key, (data, _) in GEOMETRY.items()])


def test_query_ranks_by_cosine_distance_computed_by_hand(local):
    put_geometry(local)

    hits = local.query([1.0, 0.0, 0.0, 0.0], top_k=10)

    assert [h["key"] for h in hits] == ["same", "diagonal", "three-four", "orthogonal", "opposite"]
    for hit in hits:
        assert hit["distance"] == pytest.approx(GEOMETRY[hit["key"]][1], abs=1e-6)
        assert hit["metadata"] == {"name": hit["key"]}


def test_query_distance_ignores_the_length_of_the_query_vector(local):
    put_geometry(local)

    short = local.query([0.5, 0.0, 0.0, 0.0], top_k=5)
    long = local.query([40.0, 0.0, 0.0, 0.0], top_k=5)

    assert [(h["key"], round(h["distance"], 6)) for h in short] == [(h["key"], round(h["distance"], 6)) for h in long]


def test_top_k_keeps_the_nearest_and_must_be_1_to_100(local):
    put_geometry(local)

    assert [h["key"] for h in local.query([1.0, 0.0, 0.0, 0.0], top_k=2)] == ["same", "diagonal"]
    assert len(local.query([1.0, 0.0, 0.0, 0.0], top_k=limits.MAX_TOP_K)) == len(GEOMETRY)
    for bad in (0, limits.MAX_TOP_K + 1, -1, True, 2.0):
        with pytest.raises(LimitExceeded, match="topK must be 1..100"):
            local.query([1.0, 0.0, 0.0, 0.0], top_k=bad)


def test_query_vector_must_have_the_index_dimension_and_finite_values(local):
    with pytest.raises(LimitExceeded, match="dimension 3; the index takes 4"):
        local.query([1.0, 0.0, 0.0], top_k=1)
    with pytest.raises(LimitExceeded, match="finite"):
        local.query([1.0, math.nan, 0.0, 0.0], top_k=1)
    with pytest.raises(LimitExceeded, match="not a finite float32"):
        local.query([1e39, 0.0, 0.0, 0.0], top_k=1)


def test_query_of_an_empty_index_finds_nothing(local):
    assert local.query([1.0, 0.0, 0.0, 0.0], top_k=5) == []


def test_filter_is_applied_before_ranking_so_a_far_match_is_still_found(local):
    put_geometry(local, opposite={"team": "blue"})

    hits = local.query([1.0, 0.0, 0.0, 0.0], top_k=1, filter={"team": "blue"})

    assert [(h["key"], h["distance"]) for h in hits] == [("opposite", pytest.approx(2.0))]


def test_query_filters_with_the_full_language(local):
    local.put([vec("a", tier=1, tags=["x", "y"], public=True), vec("b", tier=2, tags=["y"]),
               vec("c", tier="1", public=1), vec("d")])

    def keys(filter):
        return {h["key"] for h in local.query([0.5, 0.5, 0.5, 0.5], top_k=10, filter=filter)}

    assert keys({"tier": 1}) == {"a"}
    assert keys({"tags": "y"}) == {"a", "b"}
    assert keys({"tags": {"$ne": "x"}}) == {"b", "c", "d"}
    assert keys({"tier": {"$gte": 1, "$lt": 2}}) == {"a"}
    assert keys({"public": True}) == {"a"}
    assert keys({"tags": {"$nin": ["x"]}, "tier": {"$exists": True}}) == {"b", "c"}
    assert keys({"$or": [{"tier": 2}, {"$and": [{"public": 1}, {"tier": {"$in": ["1"]}}]}]}) == {"b", "c"}
    assert keys({"tier": {"$exists": False}}) == {"d"}


def test_a_bad_filter_or_a_filter_on_source_text_is_refused(local):
    local.put([vec("a", source_text="hello")])

    with pytest.raises(InvalidFilter, match="non-filterable"):
        local.query([1.0, 0.0, 0.0, 0.0], top_k=1, filter={"source_text": "hello"})
    with pytest.raises(InvalidFilter, match="unknown operator"):
        local.query([1.0, 0.0, 0.0, 0.0], top_k=1, filter={"tier": {"$like": 1}})


def test_query_returns_full_metadata_including_source_text_or_only_what_is_asked(local):
    local.put([vec("a", doc_id="a", source_text="The full chunk text.")])

    [full] = local.query([1.0, 0.0, 0.0, 0.0], top_k=1)
    [bare] = local.query([1.0, 0.0, 0.0, 0.0], top_k=1, return_metadata=False, return_distance=False)

    assert full["metadata"] == {"doc_id": "a", "source_text": "The full chunk text."}
    assert bare == {"key": "a", "distance": None, "metadata": {}}


def test_query_sees_this_index_s_own_overwrites_and_deletes(local):
    put_geometry(local)
    local.query([1.0, 0.0, 0.0, 0.0], top_k=1)

    local.put([vec("opposite", (1.0, 0.0, 0.0, 0.0), name="moved")])
    local.delete(["same"])

    hits = local.query([1.0, 0.0, 0.0, 0.0], top_k=2)
    assert [(h["key"], h["metadata"]) for h in hits] == [("opposite", {"name": "moved"}),
                                                        ("diagonal", {"name": "diagonal"})]
    assert local.count() == len(GEOMETRY) - 1


def test_list_keys_count_and_describe(local):
    local.put([vec("b"), vec("a"), vec("c")])
    local.delete(["c"])

    assert local.list_keys() == ["a", "b"]
    assert local.count() == 2
    assert local.describe() == {"indexName": "index", "dataType": "float32", "dimension": DIM,
                                "distanceMetric": "cosine",
                                "metadataConfiguration": {"nonFilterableMetadataKeys": ["source_text"]}}


# Durability and the immutable index parameters
def test_index_survives_a_restart_and_reopens_with_its_stored_parameters(tmp_path):
    with LocalVectorIndex.open(tmp_path / "idx", dimension=DIM, non_filterable_keys=("source_text", "body")) as index:
        put_geometry(index)

    with LocalVectorIndex.open(tmp_path / "idx") as reopened:
        assert (reopened.dimension, set(reopened.non_filterable_keys)) == (DIM, {"source_text", "body"})
        assert reopened.list_keys() == sorted(GEOMETRY)
        assert reopened.query([1.0, 0.0, 0.0, 0.0], top_k=1)[0]["key"] == "same"


def test_reopening_with_other_parameters_fails_clearly(tmp_path):
    LocalVectorIndex.open(tmp_path / "idx", dimension=DIM).close()

    with pytest.raises(ConfigError, match=r"has dimension 4, not 8 .*delete"):
        LocalVectorIndex.open(tmp_path / "idx", dimension=8)
    with pytest.raises(ConfigError, match="non-filterable keys"):
        LocalVectorIndex.open(tmp_path / "idx", non_filterable_keys=("body",))
    with pytest.raises(ConfigError, match="metric"):
        LocalVectorIndex.open(tmp_path / "idx", distance_metric="euclidean")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({}, "pass its dimension"),
    ({"dimension": 0}, "dimension must be an integer 1..4096"),
    ({"dimension": limits.MAX_DIMENSION + 1}, "dimension must be an integer 1..4096"),
    ({"dimension": 4, "distance_metric": "dot"}, "cosine"),
    ({"dimension": 4, "non_filterable_keys": [f"k{i}" for i in range(11)]}, "at most 10 non-filterable"),
    ({"dimension": 4, "non_filterable_keys": ["k" * 64]}, "1..63 characters"),
])
def test_creating_an_index_checks_its_parameters_as_create_index_does(tmp_path, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        LocalVectorIndex.open(tmp_path / "idx", **kwargs)


def test_a_second_connection_sees_writes_and_deletes_after_its_cache_was_filled(tmp_path):
    with LocalVectorIndex.open(tmp_path / "idx", dimension=DIM) as writer, \
            LocalVectorIndex.open(tmp_path / "idx") as reader:
        writer.put([vec("old", (0.0, 1.0, 0.0, 0.0))])
        assert [h["key"] for h in reader.query([1.0, 0.0, 0.0, 0.0], top_k=5)] == ["old"]

        writer.put([vec("new", (1.0, 0.0, 0.0, 0.0), fresh=True)])
        writer.delete(["old"])

        assert [(h["key"], h["metadata"]) for h in reader.query([1.0, 0.0, 0.0, 0.0], top_k=5)] == [
            ("new", {"fresh": True})]


CHILD_ENV = {"PYTHONPATH": str(LAMBDA_SRC), "PATH": "/usr/bin:/bin"}


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=CHILD_ENV, check=True)


def test_another_process_sees_what_this_one_wrote_and_the_other_way_round(tmp_path):
    path = tmp_path / "idx"
    with LocalVectorIndex.open(path, dimension=DIM) as index:
        index.put([vec("from-parent", (1.0, 0.0, 0.0, 0.0), by="parent")])
        index.query([1.0, 0.0, 0.0, 0.0], top_k=1)

        child = run_python(f"""
            import json
            from rtrag.local.index import LocalVectorIndex
            with LocalVectorIndex.open({str(path)!r}) as index:
                seen = index.query([1.0, 0.0, 0.0, 0.0], top_k=5)
                index.put([{{"key": "from-child", "data": {{"float32": [0.0, 1.0, 0.0, 0.0]}},
                             "metadata": {{"by": "child"}}}}])
                index.delete(["from-parent"])
            print(json.dumps(seen))
        """)

        assert [(h["key"], h["metadata"]) for h in json.loads(child.stdout)] == [("from-parent", {"by": "parent"})]
        hits = index.query([1.0, 0.0, 0.0, 0.0], top_k=5)
        assert [(h["key"], h["metadata"]) for h in hits] == [("from-child", {"by": "child"})]


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    path = tmp_path / "idx"
    LocalVectorIndex.open(path, dimension=DIM).close()
    script = textwrap.dedent("""
        import sys
        from rtrag.local.index import LocalVectorIndex
        path, tag = sys.argv[1], sys.argv[2]
        with LocalVectorIndex.open(path) as index:
            for call in range(40):
                index.put_call([{"key": f"{tag}-{call}-{i}", "data": {"float32": [1.0, 0.5, 0.25, 0.125]}}
                                for i in range(25)])
    """)

    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), tag], env=CHILD_ENV)
               for tag in ("p", "q", "r")]

    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    with LocalVectorIndex.open(path) as index:
        assert index.count() == 3 * 40 * 25
        assert len(index.query([1.0, 0.5, 0.25, 0.125], top_k=100)) == 100


# The vectorised filter evaluation of the local index agrees with rtrag.filters.matches on random data.
VALUES = st.one_of(st.sampled_from(["a", "b", "ab", ""]), st.integers(-2, 2), st.sampled_from([0.5, 1.0]),
                   st.booleans())
METADATA = st.dictionaries(st.sampled_from(["k", "n", "t"]),
                           st.one_of(VALUES, st.lists(st.one_of(st.sampled_from(["a", "b"]), st.integers(0, 2)),
                                                      max_size=3)),
                           max_size=3)
FIELD = st.sampled_from(["k", "n", "t"])
CONDITION = st.one_of(
    VALUES,  # implicit $eq
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne"]), VALUES),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
              st.one_of(st.integers(-2, 2), st.just(0.5))),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(VALUES, min_size=1, max_size=3)),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
    st.builds(lambda v: {"$startsWith": v}, st.sampled_from(["a", "b", ""])),
    st.builds(lambda low, high: {"$gte": low, "$ne": high}, st.integers(-2, 2), VALUES),  # several on one key
)
FILTERS = st.recursive(
    st.dictionaries(FIELD, CONDITION, min_size=1, max_size=2),
    lambda inner: st.builds(lambda op, subs: {op: subs}, st.sampled_from(["$and", "$or"]),
                            st.lists(inner, min_size=1, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(METADATA, st.booleans()), min_size=1, max_size=12),
       added=st.lists(METADATA, max_size=2), filter=FILTERS)
def test_local_query_selects_exactly_the_vectors_matches_accepts(rows, added, filter):
    def vectors(metadata_by_key):
        return [{"key": key, "data": {"float32": [1.0, 0.5, 0.0, 0.0]}, "metadata": m}
                for key, m in metadata_by_key.items()]

    def found():
        return {h["key"] for h in index.query([1.0, 0.0, 0.0, 0.0], top_k=limits.MAX_TOP_K, filter=filter)}

    with tempfile.TemporaryDirectory() as directory, LocalVectorIndex.open(directory, dimension=DIM) as index:
        alive = {f"v{i}": m for i, (m, _) in enumerate(rows)}
        index.put(vectors(alive))
        assert found() == {key for key, m in alive.items() if matches(filter, m)}

        # Deletes leave holes in the warm cache; later puts reuse some of the keys and holes.
        gone = [f"v{i}" for i, (_, deleted) in enumerate(rows) if deleted]
        if gone:
            index.delete(gone)
        later = {f"v{i}": m for i, m in enumerate(added)}
        if later:
            index.put(vectors(later))
        alive = {key: m for key, m in alive.items() if key not in gone} | later

        assert found() == {key for key, m in alive.items() if matches(filter, m)}


def test_deleted_vectors_never_match_negative_filters(local):
    local.put([vec("kept", tier=1), vec("dropped", tier=2)])
    local.query([1.0, 0.0, 0.0, 0.0], top_k=5)

    local.delete(["dropped"])

    def keys(filter):
        return [h["key"] for h in local.query([1.0, 0.0, 0.0, 0.0], top_k=5, filter=filter)]

    assert keys({"tier": {"$ne": 1}}) == []
    assert keys({"tier": {"$nin": [1]}}) == []
    assert keys({"other": {"$exists": False}}) == ["kept"]


def test_filtered_query_sees_metadata_written_after_the_previous_filtered_query(local):
    local.put([vec("a", tier=1), vec("b", tier=2)])
    assert [h["key"] for h in local.query([1.0, 0.0, 0.0, 0.0], top_k=5, filter={"tier": 1})] == ["a"]

    local.put([vec("b", tier=1)])

    assert {h["key"] for h in local.query([1.0, 0.0, 0.0, 0.0], top_k=5, filter={"tier": 1})} == {"a", "b"}
