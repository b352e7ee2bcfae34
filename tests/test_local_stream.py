"""The local stream: durable, sharded like Kinesis, with Kinesis' limits, safe for concurrent producers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rtrag.core import limits
from rtrag.local.stream import (
    SEQUENCE_NUMBER_DIGITS,
    LocalStream,
    StreamError,
    StreamLimitExceeded,
)

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
# Kinesis CreateStream with 2 shards splits the hash-key space in halves: shard 1 starts at 2**127
# (ListShards output, HashKeyRange.StartingHashKey).
TWO_SHARD_BOUNDARY = "170141183460469231731687303715884105728"
# ... and with 3 shards the second and third start here (ListShards output of a 3-shard stream).
THREE_SHARD_STARTS = ["0", "113427455640312821154458202477256070485", "226854911280625642308916404954512140970"]


@pytest.fixture
def stream(tmp_path):
    with LocalStream(tmp_path / "stream") as s:
        yield s


def read_all(stream: LocalStream, shard_id: str):
    return stream.read(shard_id, None, limit=10_000)


# durability
def test_records_and_checkpoints_survive_closing_and_reopening(tmp_path):
    with LocalStream(tmp_path / "s", shard_count=3, name="docs") as first:
        put = [first.put_record(f"event {i}".encode(), f"doc-{i}") for i in range(10)]
        first.set_checkpoint("indexer", put[0].shard_id, put[0].sequence_number)

    with LocalStream(tmp_path / "s") as reopened:
        assert (reopened.name, reopened.shard_count) == ("docs", 3)
        found = {r.sequence_number: r for shard in reopened.shard_ids() for r in read_all(reopened, shard)}
        assert sorted(found) == sorted(p.sequence_number for p in put)
        for i, p in enumerate(put):
            assert (found[p.sequence_number].data, found[p.sequence_number].partition_key) == (
                f"event {i}".encode(), f"doc-{i}")
            assert found[p.sequence_number].shard_id == p.shard_id
        assert reopened.get_checkpoint("indexer", put[0].shard_id) == put[0].sequence_number


def test_shard_count_is_fixed_at_creation(tmp_path):
    LocalStream(tmp_path / "s", shard_count=2).close()

    with pytest.raises(StreamError, match="created with 2 shards"):
        LocalStream(tmp_path / "s", shard_count=4)


# sharding and ordering
def test_shards_split_the_hash_key_space_like_kinesis(tmp_path):
    with LocalStream(tmp_path / "two") as two, LocalStream(tmp_path / "three", shard_count=3) as three:
        assert [s["HashKeyRange"]["StartingHashKey"] for s in two.shards()] == ["0", TWO_SHARD_BOUNDARY]
        assert [s["HashKeyRange"]["StartingHashKey"] for s in three.shards()] == THREE_SHARD_STARTS
        assert three.shards()[-1]["HashKeyRange"]["EndingHashKey"] == str(2 ** 128 - 1)
        assert [s["ShardId"] for s in two.shards()] == ["shardId-000000000000", "shardId-000000000001"]


def test_partition_key_goes_to_the_shard_owning_its_md5_hash_key(stream):
    for key in ("nimbus-v3", "a", "doc-42", "ü-ключ", "x" * 256):
        md5 = int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")
        expected = "shardId-000000000000" if md5 < int(TWO_SHARD_BOUNDARY) else "shardId-000000000001"

        assert stream.put_record(b"{}", key).shard_id == expected == stream.shard_for(key)


def test_same_partition_key_always_lands_on_one_shard_in_put_order(stream):
    keys = [f"doc-{i}" for i in range(8)]
    for round_ in range(5):
        for key in keys:
            stream.put_record(f"{key}:{round_}".encode(), key)

    records = [r for shard in stream.shard_ids() for r in read_all(stream, shard)]
    assert {len({r.shard_id for r in records if r.partition_key == k}) for k in keys} == {1}
    for key in keys:
        assert [r.data for r in records if r.partition_key == key] == [f"{key}:{i}".encode() for i in range(5)]
    assert {r.shard_id for r in records} == set(stream.shard_ids()), "8 keys should use both shards"


def test_sequence_numbers_are_56_digit_decimals_increasing_per_shard(stream):
    put = [stream.put_record(b"x", f"k{i}") for i in range(30)]

    for shard in stream.shard_ids():
        numbers = [p.sequence_number for p in put if p.shard_id == shard]
        assert all(len(n) == SEQUENCE_NUMBER_DIGITS and n.isdigit() for n in numbers)
        assert [int(n) for n in numbers] == sorted({int(n) for n in numbers})
        assert [r.sequence_number for r in read_all(stream, shard)] == numbers
        assert stream.latest_sequence(shard) == numbers[-1]


def test_read_continues_after_a_sequence_number_and_honours_the_limit(stream):
    put = [stream.put_record(f"{i}".encode(), "one-key") for i in range(7)]
    shard = put[0].shard_id

    first = stream.read(shard, None, limit=3)
    rest = stream.read(shard, first[-1].sequence_number, limit=100)

    assert [r.data for r in first] == [b"0", b"1", b"2"]
    assert [r.data for r in rest] == [b"3", b"4", b"5", b"6"]
    assert stream.read(shard, put[-1].sequence_number) == []
    other = next(s for s in stream.shard_ids() if s != shard)
    with pytest.raises(StreamError, match="belongs to"):
        stream.read(other, put[0].sequence_number)


def test_arrival_timestamp_is_recorded(stream):
    import time

    before = time.time()
    put = stream.put_record(b"x", "k")
    after = time.time()

    [record] = read_all(stream, put.shard_id)
    assert before <= record.arrival <= after


def test_put_records_accepts_kinesis_entries_and_returns_one_result_per_entry_in_order(stream):
    entries = [{"Data": f"e{i}".encode(), "PartitionKey": f"doc-{i}"} for i in range(5)]

    results = stream.put_records(entries)

    assert len(results) == 5
    for i, (shard_id, seq) in enumerate(results):
        [record] = [r for r in read_all(stream, shard_id) if r.sequence_number == seq]
        assert (record.data, record.partition_key) == (f"e{i}".encode(), f"doc-{i}")


# limits
def test_record_of_exactly_one_mib_with_its_key_is_accepted(stream):
    key = "k" * 10
    stream.put_record(b"x" * (limits.MAX_RECORD_BYTES - len(key)), key)

    assert stream.count() == 1


def test_record_over_one_mib_is_refused_with_the_limit_named_and_nothing_written(stream):
    key = "k" * 10
    with pytest.raises(StreamLimitExceeded, match="at most 1048576"):
        stream.put_record(b"x" * (limits.MAX_RECORD_BYTES - len(key) + 1), key)

    assert stream.count() == 0


@pytest.mark.parametrize("key", ["", "k" * (limits.MAX_PARTITION_KEY_CHARS + 1)])
def test_partition_key_outside_1_to_256_characters_is_refused(stream, key):
    with pytest.raises(StreamLimitExceeded, match="partition key must be 1..256 characters"):
        stream.put_record(b"{}", key)


def test_partition_key_of_256_characters_is_accepted(stream):
    stream.put_record(b"{}", "k" * limits.MAX_PARTITION_KEY_CHARS)

    assert stream.count() == 1


def test_put_records_takes_at_most_500_records(stream):
    with pytest.raises(StreamLimitExceeded, match="1..500 records"):
        stream.put_records([(b"x", f"k{i}") for i in range(limits.MAX_RECORDS_PER_PUT_RECORDS + 1)])
    with pytest.raises(StreamLimitExceeded, match="1..500 records"):
        stream.put_records([])

    stream.put_records([(b"x", f"k{i}") for i in range(limits.MAX_RECORDS_PER_PUT_RECORDS)])
    assert stream.count() == limits.MAX_RECORDS_PER_PUT_RECORDS


def test_put_records_over_five_mib_is_refused_whole(stream):
    big = b"x" * (limits.MAX_RECORD_BYTES - 100)
    entries = [(big, f"k{i}") for i in range(limits.MAX_PUT_RECORDS_BYTES // len(big) + 1)]

    with pytest.raises(StreamLimitExceeded, match="5 MiB"):
        stream.put_records(entries)

    assert stream.count() == 0


def test_one_bad_entry_fails_the_whole_put_records_request(stream):
    with pytest.raises(StreamLimitExceeded, match="record 2"):
        stream.put_records([(b"a", "k1"), (b"b", "k2"), (b"c", "")])

    assert stream.count() == 0


def test_data_that_is_not_bytes_is_refused(stream):
    with pytest.raises(StreamError, match="data must be bytes"):
        stream.put_record("text", "k")  # type: ignore[arg-type]


# checkpoints
def test_checkpoints_are_per_consumer_and_only_move_forward(stream):
    put = [stream.put_record(b"x", "same") for _ in range(3)]
    shard = put[0].shard_id

    stream.set_checkpoint("indexer", shard, put[1].sequence_number)
    stream.set_checkpoint("archiver", shard, put[0].sequence_number)

    assert stream.get_checkpoint("indexer", shard) == put[1].sequence_number
    assert stream.get_checkpoint("archiver", shard) == put[0].sequence_number
    with pytest.raises(StreamError, match="cannot move back"):
        stream.set_checkpoint("indexer", shard, put[0].sequence_number)
    stream.reset_checkpoints("indexer")
    assert stream.get_checkpoint("indexer", shard) is None


# concurrency
PRODUCER = """
import sys
from rtrag.local.stream import LocalStream
directory, producer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with LocalStream(directory) as stream:
    for i in range(count):
        if i % 10 == 0:
            stream.put_records([(f"{producer}:{j}".encode(), producer) for j in range(i, i + 10)])
"""


def test_concurrent_producer_processes_lose_nothing_and_keep_each_key_in_order(tmp_path):
    directory = tmp_path / "shared"
    LocalStream(directory).close()
    env = {**os.environ, "PYTHONPATH": str(LAMBDA_SRC)}
    producers = [f"producer-{n}" for n in range(4)]

    procs = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(directory), p, "200"], env=env,
                              stderr=subprocess.PIPE) for p in producers]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]

    assert [proc.returncode for proc in procs] == [0] * 4, errors
    with LocalStream(directory) as stream:
        records = [r for shard in stream.shard_ids() for r in read_all(stream, shard)]
    assert len(records) == 800
    for producer in producers:
        assert [r.data for r in records if r.partition_key == producer] == [
            f"{producer}:{i}".encode() for i in range(200)]


def test_concurrent_producer_threads_lose_nothing(stream):
    def produce(n: int) -> None:
        for i in range(100):
            stream.put_record(f"{n}:{i}".encode(), f"t{n}")

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    records = [r for shard in stream.shard_ids() for r in read_all(stream, shard)]
    assert sorted(r.data for r in records) == sorted(f"{n}:{i}".encode() for n in range(4) for i in range(100))
    for n in range(4):
        assert [r.data for r in records if r.partition_key == f"t{n}"] == [f"{n}:{i}".encode() for i in range(100)]


def test_a_file_that_is_not_a_stream_database_gets_a_clear_error(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "stream.sqlite3").write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StreamError, match="not a readable local stream"):
        LocalStream(tmp_path / "s")
