"""One contract for both vector indexes: the local index (rtrag.local.index.LocalVectorIndex) must behave like the
S3 Vectors adapter (rtrag.aws.s3vectors.S3VectorsIndex, here on moto) for every operation moto supports: put, get,
delete, overwrite, limits, filter validation and error types. Query is not in moto, so ranking, the filter
language, durability and sharing between processes are proved on the local index alone, in test_local_index.py."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import boto3
import pytest

from rtrag.aws.s3vectors import S3VectorsIndex
from rtrag.core import limits
from rtrag.core.errors import LimitExceeded
from rtrag.core.filters import InvalidFilter
from rtrag.local.index import LocalVectorIndex

BUCKET, INDEX = "contract-vectors", "contract-index"
DIM = 4
NON_FILTERABLE = ("source_text",)


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
        assert impl.aws.query.requests == [], "QueryVectors is answered by its own fake, ahead of StrictS3Vectors"


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

    # Both report the same upper bound of the vector's JSON in a PutVectors request (rtrag.core.vectors.check_vector).
    assert size == reference.check(vector) >= len(json.dumps(vector, separators=(",", ":")))



# One filter validation on both indexes (rtrag.core.filters.validate_filter), before anything is sent.
@pytest.mark.parametrize("bad, fragment", [
    ({}, "empty"),
    ({"id": 2**53 + 1}, r"2\*\*53"),
    ({"id": {"$gt": -(2**53) - 1}}, r"2\*\*53"),
    ({"source_text": "x"}, "source_text"),
])
def test_the_same_filters_are_refused_by_both_indexes(impl, bad, fragment):
    with pytest.raises(InvalidFilter, match=fragment):
        impl.index.query([1.0, 0.0, 0.0, 0.0], top_k=3, filter=bad)
    assert_nothing_sent(impl)


# The S3 Vectors fakes are as strict as the service where these tests depend on them: an index keeps the
# non-filterable keys it was created with, GetIndex returns them, chunk text in filterable metadata breaks the 2 KB
# limit, and a filter on a non-filterable key is refused.
def test_the_s3_vectors_fakes_hold_each_index_to_its_own_non_filterable_keys(aws):
    from botocore.exceptions import ClientError

    client = boto3.client("s3vectors")
    client.create_vector_bucket(vectorBucketName=BUCKET)
    for name, keys in (("declared", ["source_text"]), ("undeclared", None)):
        extra = {"metadataConfiguration": {"nonFilterableMetadataKeys": keys}} if keys else {}
        client.create_index(vectorBucketName=BUCKET, indexName=name, dataType="float32", dimension=DIM,
                            distanceMetric="cosine", **extra)
    long_text = {"key": "d#0", "data": {"float32": [0.5] * DIM}, "metadata": {"source_text": "x" * 5_000}}

    assert client.get_index(vectorBucketName=BUCKET, indexName="declared")["index"]["metadataConfiguration"] == {
        "nonFilterableMetadataKeys": ["source_text"]}
    assert "metadataConfiguration" not in client.get_index(vectorBucketName=BUCKET, indexName="undeclared")["index"]
    client.put_vectors(vectorBucketName=BUCKET, indexName="declared", vectors=[long_text])
    with pytest.raises(ClientError, match="Filterable metadata must have at most 2048 bytes"):
        client.put_vectors(vectorBucketName=BUCKET, indexName="undeclared", vectors=[long_text])
    with pytest.raises(ClientError, match="non-filterable metadata in filter"):
        client.query_vectors(vectorBucketName=BUCKET, indexName="declared", topK=1, queryVector={"float32": [0.5] * DIM},
                             filter={"$and": [{"doc_id": "d"}, {"source_text": "x"}]})


# An index whose chunk text would be filterable metadata is refused before anything is written or asked.
def test_an_index_that_does_not_declare_source_text_non_filterable_is_refused_with_the_fix(aws):
    from rtrag.aws.compose import AwsBackend, check_embedding_fits
    from rtrag.core.errors import ConfigError

    client = boto3.client("s3vectors")
    client.create_vector_bucket(vectorBucketName=BUCKET)
    client.create_index(vectorBucketName=BUCKET, indexName="plain", dataType="float32", dimension=256,
                        distanceMetric="cosine")

    index = AwsBackend().vector_index(BUCKET, "plain")

    with pytest.raises(ConfigError, match="does not declare source_text non-filterable.*nonFilterableMetadataKeys="):
        check_embedding_fits(index, model_id="amazon.titan-embed-text-v2:0")
