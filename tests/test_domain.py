"""The domain rules on their own: the event contract, chunking, S3 Vectors limits and the indexer settings."""

from __future__ import annotations

import json
import math
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtrag.aws.s3vectors import S3VectorsIndex
from rtrag.core import limits
from rtrag.core.chunking import chunk_spans, chunk_text
from rtrag.core.config import ChunkSettings, IndexerSettings
from rtrag.core.contract import MAX_CHUNK_BYTES, MAX_CHUNK_CHARS
from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import ConfigError, InvalidEvent, LimitExceeded
from rtrag.core.events import DocumentEvent, decode_event, validate_event
from rtrag.core.vectors import check_vector, pack_puts
from rtrag.indexing.work import BatchResult


# the document event contract
def test_seed_event_shape_is_a_valid_upsert():
    event = validate_event({"doc_id": "d", "text": "t", "source": "s", "ts": 5}, default_ts=1)

    assert event == DocumentEvent(doc_id="d", op="upsert", text="t", source="s", ts=5, metadata={})


def test_float_ts_is_accepted_as_whole_epoch_seconds():
    assert validate_event({"doc_id": "d", "text": "t", "ts": 1767225600.75}, default_ts=1).ts == 1767225600


@pytest.mark.parametrize("payload, fragment", [
    ({"doc_id": "", "text": "t"}, "doc_id is required"),
    ({"doc_id": "x" * (limits.MAX_DOC_ID_CHARS + 1), "text": "t"}, "the limit is 512"),
    ({"doc_id": 7, "text": "t"}, "doc_id is required"),
    ({"doc_id": "d", "text": ""}, "text is required"),
    ({"doc_id": "d", "text": 5}, "text is required"),
    ({"doc_id": "d", "text": "t", "source": ""}, "source must be"),
    ({"doc_id": "d", "text": "t", "ts": True}, "ts must be an integer"),
    ({"doc_id": "d", "text": "t", "ts": 1_767_225_600_000}, "milliseconds"),
    ({"doc_id": "d", "text": "t", "ts": -1}, "not epoch seconds"),
    ({"doc_id": "d", "text": "t", "metadata": []}, "metadata must be a JSON object"),
    ({"doc_id": "d", "text": "t", "metadata": {"k": [1, 2]}}, "list of strings"),
    ({"doc_id": "d", "text": "t", "metadata": {"source_text": "x"}}, "reserved"),
    ({"doc_id": "d", "text": "t", "metadata": {f"k{i}": i for i in range(44)}}, "use at most 43"),
])
def test_contract_violations_are_rejected_with_a_reason_that_names_the_fix(payload, fragment):
    with pytest.raises(InvalidEvent) as caught:
        validate_event(payload, default_ts=1)

    assert fragment in caught.value.reason


def test_nan_in_json_is_rejected():
    with pytest.raises(InvalidEvent, match="not JSON"):
        decode_event(b'{"doc_id": "d", "text": "t", "metadata": {"x": NaN}}', default_ts=1)


def test_delete_needs_no_text_and_ignores_it():
    event = validate_event({"doc_id": "d", "op": "delete", "text": "ignored"}, default_ts=9)

    assert (event.op, event.text, event.ts) == ("delete", None, 9)


def test_event_round_trips_through_the_bytes_a_producer_sends():
    event = validate_event({"doc_id": "d", "text": "héllo", "metadata": {"tags": ["a"], "n": 2.5}}, default_ts=3)

    assert decode_event(event.to_bytes(), default_ts=0) == event


# chunking
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab AZ 09 .\n\r!é字。😀-\t"), min_size=1, max_size=3000),
       size=st.integers(200, 800), overlap=st.integers(0, 100), max_bytes=st.integers(400, 4000))
def test_chunks_are_non_blank_ordered_within_the_size_and_cover_every_letter(text, size, overlap, max_bytes):
    spans = chunk_spans(text, size=size, overlap=overlap, max_bytes=max_bytes)
    chunks = [text[a:b] for a, b in spans]

    assert chunks == chunk_text(text, size=size, overlap=overlap, max_bytes=max_bytes)
    assert bool(chunks) == bool(text.strip())
    assert all(1 <= len(c) <= size and len(c.encode()) <= max_bytes and c == c.strip() for c in chunks)
    assert [a for a, _ in spans] == sorted(a for a, _ in spans)
    assert all(end - start <= overlap for (_, end), (start, _) in zip(spans, spans[1:])), "shared at most overlap"
    letters = [i for i, ch in enumerate(text) if re.match(r"\w", ch)]
    if letters:
        assert all(re.search(r"\w", c) for c in chunks)
        assert all(any(a <= i < b for a, b in spans) for i in letters)


# Titan V2 takes 8,192 tokens; a byte-level tokenizer spends up to 4 on one character (an emoji). At the largest
# chunk_size_chars, chunks of wide characters are cut by bytes, and still move on by about half a chunk.
@pytest.mark.parametrize("char", ["😀", "字", "é", "a"])
def test_chunks_of_wide_characters_stay_within_titans_tokens_at_one_token_a_byte(char):
    text = (char * 9 + " ") * 2000

    chunks = chunk_text(text, size=MAX_CHUNK_CHARS, overlap=MAX_CHUNK_CHARS // 2 - 1)

    assert all(len(c.encode()) <= MAX_CHUNK_BYTES < limits.TITAN_MAX_INPUT_TOKENS for c in chunks)
    assert len(chunks) <= 2 * len(text.encode()) // MAX_CHUNK_BYTES + 2, "each chunk moves on by about half a chunk"
    assert "".join(c.replace(" ", "") for c in chunks).count(char) >= 9 * 2000, "every character is in a chunk"


@pytest.mark.parametrize("filler", [" " * 3000, "\n" * 3000, "-" * 3000, " . " * 1000, "\t \n" * 1000])
def test_a_long_run_of_spaces_or_punctuation_never_becomes_a_chunk_of_its_own(filler):
    text = "The start of the document." + filler + "The end of it."

    chunks = chunk_text(text, size=2000, overlap=200)

    assert chunks and all(re.search(r"\w", c) and c == c.strip() for c in chunks)
    assert chunks[0].startswith("The start") and chunks[-1].endswith("The end of it.")


def test_short_text_is_one_chunk_and_long_text_breaks_on_sentences():
    assert chunk_text("short", size=200, overlap=20) == ["short"]
    text = " ".join(f"Sentence number {i} ends here." for i in range(40))

    chunks = chunk_text(text, size=300, overlap=30)

    assert all(c.rstrip().endswith(".") for c in chunks[:-1])


# S3 Vectors limits, enforced before a request is sent
def vector(key="k#0", dims=4, **metadata):
    return {"key": key, "data": {"float32": [0.5] * dims}, "metadata": metadata}


@pytest.mark.parametrize("bad, fragment", [
    (vector(key=""), "1..1024 characters"),
    (vector(key="k" * (limits.MAX_VECTOR_KEY_CHARS + 1)), "1..1024 characters"),
    (vector(dims=3), "dimension 3"),
    ({"key": "k", "data": {"float32": [0.1, math.nan, 0.1, 0.1]}, "metadata": {}}, "finite"),
    (vector(note="x" * limits.MAX_FILTERABLE_METADATA_BYTES), "filterable metadata"),
    (vector(source_text="x" * limits.MAX_METADATA_BYTES), "bytes of metadata"),
    (vector(**{f"k{i}": i for i in range(limits.MAX_METADATA_KEYS + 1)}), "metadata keys"),
])
def test_vector_that_breaks_a_putvectors_limit_is_refused(bad, fragment):
    with pytest.raises(LimitExceeded, match=fragment):
        check_vector(bad, dimension=4)


def test_filterable_budget_counts_utf8_bytes_not_characters():
    fits = vector(note="x" * 1900)
    multibyte = vector(note="字" * 700)  # 700 characters, 2,100 bytes

    check_vector(fits, dimension=4)
    with pytest.raises(LimitExceeded, match="filterable"):
        check_vector(multibyte, dimension=4)


def test_large_source_text_is_allowed_because_it_is_non_filterable():
    assert check_vector(vector(source_text="x" * 30_000), dimension=4) > 30_000


class NoCalls:
    def __getattr__(self, name):
        raise AssertionError(f"{name} must not be called")


def test_oversized_single_calls_are_refused_before_reaching_aws():
    index = S3VectorsIndex(NoCalls(), bucket="b", index="i", dimension=4)

    with pytest.raises(LimitExceeded, match="1..500 vectors"):
        index.put_call([vector(key=f"k{i}") for i in range(501)])
    with pytest.raises(LimitExceeded, match="1..500 keys"):
        index.delete_call([f"k{i}" for i in range(501)])


def test_pack_puts_splits_on_count_and_on_payload_size():
    by_count = list(pack_puts([(i, 10) for i in range(1201)]))
    by_bytes = list(pack_puts([(i, 8 * 1024 * 1024) for i in range(5)]))

    assert [len(c) for c in by_count] == [500, 500, 201]
    assert [len(c) for c in by_bytes] == [2, 2, 1]


# settings
BASE_ENV = {"VECTOR_BUCKET": "b", "VECTOR_INDEX": "i", "DEAD_LETTER_BUCKET": "d", "VERSION_TABLE": "v"}


def test_settings_defaults_match_titan_v2():
    s = IndexerSettings.from_env(BASE_ENV)

    assert (s.embed_model_id, s.embed_dimensions, s.chunking.size_chars) == (limits.TITAN_V2_MODEL_ID, 1024, 2000)


@pytest.mark.parametrize("overrides, fragment", [
    ({"VECTOR_BUCKET": ""}, "VECTOR_BUCKET is not set"),
    ({"EMBED_DIMENSIONS": "300"}, "use one of 256, 512, 1024"),
    ({"EMBED_CONCURRENCY": "lots"}, "not a whole number"),
    ({"CHUNK_SIZE_CHARS": "9000"}, "CHUNK_SIZE_CHARS=9000 is out of range"),
    ({"CHUNK_OVERLAP_CHARS": "1500"}, "less than half the chunk size"),
])
def test_bad_settings_fail_with_the_variable_and_the_allowed_values(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        IndexerSettings.from_env(BASE_ENV | overrides)


def test_chunk_settings_built_directly_are_checked_like_the_environment():
    with pytest.raises(ConfigError, match="CHUNK_OVERLAP_CHARS=100 is out of range; set it to 0..99"):
        ChunkSettings(size_chars=200, overlap_chars=100)
    with pytest.raises(TypeError):
        ChunkSettings(200, 20)  # keywords only: the two numbers are too easy to swap
    assert ChunkSettings(size_chars=200, overlap_chars=99) == (200, 99)


# the records the indexer passes along (hand-written or NamedTuples, off the cold start's dataclass cost)
def test_an_event_is_immutable_and_replace_makes_a_changed_copy():
    event = validate_event({"doc_id": "d", "text": "t", "metadata": {"k": 1}}, default_ts=5)
    with pytest.raises(AttributeError, match="immutable"):
        event.text = "other"  # type: ignore[misc]
    changed = event.replace(seq="7")

    assert (event.seq, changed.seq, changed.text, changed.metadata) == (None, "7", "t", {"k": 1})
    assert changed != event and changed.replace(seq=None) == event
    assert (changed.content_hash, changed.attributes_hash) == (event.content_hash, event.attributes_hash)
    assert event.replace(metadata={"k": 1.0}).attributes_hash == event.attributes_hash  # numbers by value
    assert event.replace(source="elsewhere").attributes_hash != event.attributes_hash


def test_a_dead_letter_is_stamped_when_written_unless_it_carries_its_time():
    fields = {"reason": "r", "kind": "invalid-event", "sequence_number": "1", "partition_key": "k",
              "event_source_arn": "arn", "shard_id": "shard-0", "approximate_arrival_timestamp": 0.0, "data": ""}
    before = time.time()
    stamped = DeadLetter(**fields).to_json()["dead_lettered_at"]

    assert before <= stamped <= time.time()
    assert DeadLetter(**fields, dead_lettered_at=12.5).to_json()["dead_lettered_at"] == 12.5


def test_a_batch_result_refuses_a_count_it_does_not_have():
    assert BatchResult(upserted=2).upserted == 2 and BatchResult().failures == set()
    with pytest.raises(TypeError, match="no count upsertd"):
        BatchResult(upsertd=2)


def test_vector_size_is_an_upper_bound_of_its_json_in_a_request():
    import json
    import random

    rng = random.Random(7)
    for values in ([rng.uniform(-1, 1) for _ in range(1024)], [-1.2345678901234567e-308] * 16, [0.0] * 8):
        v = {"key": "doc#12", "data": {"float32": values}, "metadata": {"doc_id": "doc", "source_text": "é" * 50}}
        exact = len(json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode())

        assert exact <= check_vector(v, dimension=len(values)) <= exact + 25 * len(values) + 64


# no record can fail a batch: validation accepts it or raises the one invalid-event error
_ANY_CHAR = st.characters(exclude_categories=())  # surrogates and control characters included
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(_ANY_CHAR, max_size=20), st.sampled_from(["upsert", "delete", "\ud800", "a\nb"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(_ANY_CHAR, max_size=8), inner, max_size=4)), max_leaves=12)
_FIELDS = st.sampled_from(["doc_id", "op", "text", "source", "ts", "seq", "metadata"])
_EVENTS = st.dictionaries(st.one_of(_FIELDS, st.text(_ANY_CHAR, max_size=6)), _JSON, max_size=8)


def _valid_or_invalid_event(data: bytes) -> None:
    try:
        event = decode_event(data, default_ts=1_767_225_600)
    except InvalidEvent as exc:
        assert isinstance(exc.reason, str) and exc.reason
        assert exc.doc_id is None or not re.search(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]", exc.doc_id)
        return
    # What is accepted can be encoded, indexed and put again as it is.
    assert decode_event(event.to_bytes(), default_ts=0) == event


@settings(max_examples=400, deadline=None)
@given(obj=st.one_of(_EVENTS, _JSON))
def test_any_json_value_is_a_valid_event_or_the_invalid_event_error(obj):
    # json.dumps escapes lone surrogates ("\ud800"): valid UTF-8 JSON whose string has no UTF-8 encoding.
    _valid_or_invalid_event(json.dumps(obj).encode("ascii"))


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.binary(max_size=200), st.builds(
    lambda doc_id, text, n: json.dumps({"doc_id": doc_id, "text": text, "ts": n, "metadata": {"n": n}}).encode(),
    st.text(_ANY_CHAR, min_size=1, max_size=10), st.text(_ANY_CHAR, max_size=30),
    st.integers(min_value=-(10 ** 300), max_value=10 ** 300))))
def test_any_bytes_are_a_valid_event_or_the_invalid_event_error(data):
    _valid_or_invalid_event(data)


@pytest.mark.parametrize("data, fragment", [
    (b'{"doc_id": "d", "text": "\\ud800"}', "unpaired UTF-16 surrogate"),
    (b'{"doc_id": "d", "text": "t", "ts": ' + b"9" * 400 + b"}", "not epoch seconds"),
    (b'{"doc_id": "d", "text": "t", "metadata": {"n": ' + b"9" * 400 + b"}}", "beyond 2**53"),
    (b'{"doc_id": "d\\n", "text": "t"}', "control character"),
    (b'{"doc_id": "d", "text": "t", "source": "wiki\\u001b[2J"}', "control character"),
    (b'{"doc_id": "d", "text": "t", "seq": "0042"}', "seq must be"),
    (b"[" * 100_000, "not JSON"),
])
def test_poison_records_are_invalid_events_with_a_reason(data, fragment):
    with pytest.raises(InvalidEvent, match=re.escape(fragment)):
        decode_event(data, default_ts=1)
