"""What only the local index does, proved on rtrag.local.index.LocalVectorIndex alone (moto has no QueryVectors):
query ranking and the filter language, durability, reopening with the stored parameters and sharing between
processes. Put/get/delete/limits, common to both indexes, are in test_vector_index_contract.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtrag.core import limits
from rtrag.core.errors import ConfigError, LimitExceeded
from rtrag.core.filters import InvalidFilter, matches
from rtrag.local.index import LocalVectorIndex
from test_vector_index_contract import DIM, vec

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"


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


def test_an_index_keeps_its_identity_and_one_created_again_at_its_path_has_another(tmp_path):
    import shutil
    import sqlite3

    with LocalVectorIndex.open(tmp_path / "idx", dimension=DIM) as first:
        identity = first.identity
    with LocalVectorIndex.open(tmp_path / "idx") as reopened:
        assert reopened.identity == identity and identity.startswith(f"{(tmp_path / 'idx').resolve()}#")
    shutil.rmtree(tmp_path / "idx")
    with LocalVectorIndex.open(tmp_path / "idx", dimension=DIM) as again:
        assert again.identity != identity

    # An index created before indexes had an identity gets one when it is opened, and keeps it.
    with sqlite3.connect(tmp_path / "idx" / "vectors.sqlite3") as conn:
        conn.execute("DELETE FROM params WHERE name IN ('index_id', 'created_at')")
    conn.close()
    with LocalVectorIndex.open(tmp_path / "idx") as old:
        given = old.identity
    with LocalVectorIndex.open(tmp_path / "idx") as old:
        assert old.identity == given != again.identity


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


# The vectorised filter evaluation of the local index agrees with rtrag.core.filters.matches on random data.
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


def test_integers_beyond_float64_are_compared_exactly_as_the_filter_language_does(local):
    # 2**53 + 1 is not a double: the local index must not round it to 2**53 and call it equal, and it must agree
    # with the one evaluator (rtrag.core.filters.matches) on every comparison.
    stored = {"big": {"id": 2**53 + 1}, "edge": {"id": 2**53}, "small": {"id": 1}}
    local.put([vec(key, **metadata) for key, metadata in stored.items()])

    for filter, expected in [({"id": 2**53}, {"edge"}), ({"id": {"$gte": 2**53}}, {"edge"}),
                             ({"id": {"$lt": 2**53}}, {"small"}), ({"id": {"$ne": 2**53}}, {"big", "small"})]:
        found = {h["key"] for h in local.query([1.0, 0.0, 0.0, 0.0], top_k=5, filter=filter)}
        assert found == expected == {key for key, m in stored.items() if matches(filter, m)}, filter
