"""The indexer Lambda end to end: Kinesis-shaped events in, vectors in (moto) S3 Vectors and dead letters in
(moto) S3 out, Titan faked at the boto3 level. Each test names the behaviour it proves."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from conftest import BUCKET, CHUNK, DEAD_LETTERS, DIMENSIONS, INDEX, OVERLAP, VERSIONS, run
from fakes import listed_vectors
from kinesis import ARRIVAL, STREAM_ARN, batch, load_event, record, seq

import indexer
from rtrag.core import limits
from rtrag.core.events import content_hash


def vectors(env) -> dict[str, dict]:
    listed = listed_vectors(env.s3vectors, BUCKET, INDEX, returnMetadata=True, returnData=True)
    return {v["key"]: v for v in listed}


def dead_letters(env) -> list[dict]:
    listed = env.s3.list_objects_v2(Bucket=DEAD_LETTERS).get("Contents", [])
    return [json.loads(env.s3.get_object(Bucket=DEAD_LETTERS, Key=o["Key"])["Body"].read()) | {"_key": o["Key"]}
            for o in listed]


def doc(doc_id: str, text: str, **fields) -> dict:
    return {"doc_id": doc_id, "text": text, **fields}


def long_text(words: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}." if i % 17 == 16 else f"{tag}{i}" for i in range(words))


# 1. event shapes
def test_seed_event_becomes_one_vector_with_the_full_metadata_scheme(env):
    response = run(load_event("seed_upsert.json"))

    assert response == {"batchItemFailures": []}
    stored = vectors(env)
    assert list(stored) == ["nimbus-v3#0"]
    text = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
    assert stored["nimbus-v3#0"]["metadata"] == {
        "doc_id": "nimbus-v3", "source": "release-notes", "ts": 1767225600, "chunk": 0, "chunks": 1,
        "content_hash": content_hash(text), "source_text": text}
    assert len(stored["nimbus-v3#0"]["data"]["float32"]) == DIMENSIONS
    assert env.aws.titan.calls == 1
    # Titan V2 asked for unit vectors of the index's dimension (cosine needs no more, and it is Titan's contract).
    assert env.aws.titan.bodies == [{"inputText": text, "dimensions": DIMENSIONS, "normalize": True}]
    assert abs(sum(x * x for x in stored["nimbus-v3#0"]["data"]["float32"]) - 1.0) < 1e-5


def test_full_event_keeps_user_metadata_and_delete_event_is_accepted(env):
    run(batch(doc("old-faq", "Old answer.")))

    response = run(load_event("full_events.json"))

    assert response == {"batchItemFailures": []}
    stored = vectors(env)
    assert list(stored) == ["runbook-42#0"]
    meta = stored["runbook-42#0"]["metadata"]
    assert {k: meta[k] for k in ("team", "tier", "public", "tags", "source")} == {
        "team": "platform", "tier": 1, "public": False, "tags": ["security", "keys"], "source": "wiki"}


def test_missing_ts_defaults_to_the_record_arrival_time(env):
    run(batch(doc("no-ts", "Document without a timestamp.")))

    assert vectors(env)["no-ts#0"]["metadata"]["ts"] == int(ARRIVAL)


# 2. bad records
def test_aws_documentation_sample_event_is_dead_lettered_whole_and_not_retried(env):
    event = load_event("aws_docs_sample.json")

    response = run(event)

    assert response == {"batchItemFailures": []}
    assert vectors(env) == {}
    letters = sorted(dead_letters(env), key=lambda l: l["sequence_number"])
    assert [l["data"] for l in letters] == [r["kinesis"]["data"] for r in event["Records"]]
    for letter, rec in zip(letters, event["Records"]):
        assert letter["_key"].startswith("invalid/2018/12/17/shardId-000000000006/")
        assert letter["sequence_number"] == rec["kinesis"]["sequenceNumber"]
        assert letter["partition_key"] == "1"
        assert letter["event_source_arn"] == rec["eventSourceARN"]
        assert "not JSON" in letter["reason"]


EXPECTED_REASONS = {
    1: "not valid base64", 2: "not UTF-8", 3: "not JSON", 4: "must be a JSON object", 5: "doc_id is required",
    6: "text is required", 7: "op must be", 8: "must not contain '#'", 9: "ts must be an integer",
    10: "metadata 'nested' must be", 11: "reserved", 12: "unknown field(s) 'metdata'",
}


def test_mixed_batch_indexes_the_good_records_and_dead_letters_each_bad_one_with_its_reason(env):
    event = load_event("mixed_batch.json")

    response = run(event)

    assert response == {"batchItemFailures": []}
    assert list(vectors(env)) == ["good-1#0"]
    letters = {l["sequence_number"]: l for l in dead_letters(env)}
    assert set(letters) == {seq(i) for i in EXPECTED_REASONS}
    for i, fragment in EXPECTED_REASONS.items():
        letter = letters[seq(i)]
        assert fragment in letter["reason"], (i, letter["reason"])
        assert letter["data"] == event["Records"][i]["kinesis"]["data"]
        assert letter["partition_key"] == f"pk-{i}"
        assert letter["event_source_arn"] == STREAM_ARN
        assert letter["kind"] == "invalid-event"


def test_dead_letter_that_cannot_be_written_is_reported_for_retry_not_dropped(env):
    env.s3.delete_bucket(Bucket=DEAD_LETTERS)

    response = run(batch(doc("fine", "Good document."), b"not json at all"))

    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    assert list(vectors(env)) == ["fine#0"]


def test_text_that_titan_rejects_is_dead_lettered_as_unindexable(env):
    env.aws.titan.reject = lambda text: "poison" in text

    response = run(batch(doc("ok", "Fine text."), doc("bad", "This contains poison.")))

    assert response == {"batchItemFailures": []}
    assert list(vectors(env)) == ["ok#0"]
    [letter] = dead_letters(env)
    assert (letter["doc_id"], letter["kind"], letter["error_code"]) == ("bad", "unindexable", "ValidationException")
    assert letter["sequence_number"] == seq(1)


def test_metadata_over_the_filterable_budget_is_dead_lettered_before_any_aws_call(env):
    big = {"note": "x" * (limits.MAX_FILTERABLE_METADATA_BYTES - 100)}

    response = run(batch(doc("meta-heavy", "Some text.", metadata=big)))

    assert response == {"batchItemFailures": []}
    assert vectors(env) == {}
    assert env.aws.titan.calls == 0
    [letter] = dead_letters(env)
    assert "filterable metadata" in letter["reason"]


# 3. chunking
def test_sixty_thousand_character_document_is_chunked_within_every_limit_and_loses_no_text(env):
    text = long_text(10_200)
    assert len(text) >= 60_000

    response = run(batch(doc("big", text)))

    assert response == {"batchItemFailures": []}
    stored = vectors(env)
    n = len(stored)
    assert n > 60_000 // CHUNK
    assert set(stored) == {f"big#{i}" for i in range(n)}
    parts = [stored[f"big#{i}"]["metadata"]["source_text"] for i in range(n)]
    assert all(len(p) <= CHUNK for p in parts)
    assert all(stored[f"big#{i}"]["metadata"]["chunks"] == n for i in range(n))
    # every word of the text is in some chunk, and chunks follow the text's order
    position = 0
    for part in parts:
        found = text.find(part, max(0, position - OVERLAP - 1))
        assert found != -1 and found <= position, "chunks must cover the text with no gap"
        position = found + len(part)
    assert position == len(text)


# 4. concurrency and write batching
def test_batch_of_six_hundred_chunks_is_written_in_putvectors_calls_of_at_most_500(env):
    from rtrag.core.chunking import chunk_text

    docs = [doc(f"d{i}", long_text(520, tag=f"d{i:03d}w")) for i in range(100)]
    assert sum(len(chunk_text(d["text"], size=CHUNK, overlap=OVERLAP)) for d in docs) == 600

    response = run(batch(*docs))

    assert response == {"batchItemFailures": []}
    stored = vectors(env)
    assert len(stored) == 600 == env.aws.titan.calls
    sizes = env.aws.s3vectors.sizes("PutVectors")
    assert sum(sizes) == 600 and max(sizes) <= limits.MAX_VECTORS_PER_PUT
    # The stored versions come from the ledger, 100 keys per BatchGetItem, and no vector is read back.
    reads = [params for service, operation, params in env.aws.recorder.calls if operation == "BatchGetItem"]
    assert reads and all(len(p["RequestItems"][VERSIONS]["Keys"]) <= 100 for p in reads)
    assert env.aws.s3vectors.sizes("GetVectors") == []


def test_embedding_runs_concurrently_within_the_configured_pool(env, monkeypatch):
    import threading
    import time

    active, peak, lock = 0, 0, threading.Lock()
    titan = env.aws.titan

    def slow_titan(params, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return titan(params, **kwargs)

    boto3.DEFAULT_SESSION.events.unregister("before-call.bedrock-runtime.InvokeModel", titan)
    boto3.DEFAULT_SESSION.events.register("before-call.bedrock-runtime.InvokeModel", slow_titan)

    run(batch(*[doc(f"c{i}", f"Concurrent document number {i}.") for i in range(24)]))

    assert len(vectors(env)) == 24
    assert 1 < peak <= 8


# 5. upsert semantics
def test_update_that_shrinks_a_document_deletes_its_stale_chunks(env):
    run(batch(doc("shrink", long_text(500))))
    assert len(vectors(env)) >= 3

    response = run(batch(doc("shrink", "Now it is one short chunk."), start=1))

    assert response == {"batchItemFailures": []}
    stored = vectors(env)
    assert list(stored) == ["shrink#0"]
    assert stored["shrink#0"]["metadata"]["chunks"] == 1
    assert stored["shrink#0"]["metadata"]["source_text"] == "Now it is one short chunk."


def test_delete_removes_every_chunk_and_deleting_an_absent_document_changes_no_vector(env):
    run(batch(doc("gone", long_text(400)), doc("stays", "Keep me.")))

    response = run(batch({"doc_id": "gone", "op": "delete"}, {"doc_id": "never-was", "op": "delete"}, start=2))

    assert response == {"batchItemFailures": []}
    assert list(vectors(env)) == ["stays#0"]


def test_same_document_twice_in_one_batch_with_one_ts_the_later_record_wins_and_only_it_is_embedded(env):
    response = run(batch(doc("twice", "First version.", ts=5), doc("twice", "Second version.", ts=5)))

    assert response == {"batchItemFailures": []}
    assert vectors(env)["twice#0"]["metadata"]["source_text"] == "Second version."
    assert env.aws.titan.texts == ["Second version."]


def test_in_one_batch_the_greatest_ts_wins_whatever_the_record_order(env):
    response = run(batch(doc("order", "Newest by ts.", ts=300), doc("order", "Older by ts.", ts=200)))

    assert response == {"batchItemFailures": []}
    assert vectors(env)["order#0"]["metadata"]["source_text"] == "Newest by ts."
    assert env.aws.titan.texts == ["Newest by ts."]


def test_replayed_batch_makes_zero_embedding_calls_and_changes_nothing(env):
    event = batch(doc("a", long_text(300)), doc("b", "Short b."), {"doc_id": "c", "op": "delete"})
    run(event)
    before, calls = vectors(env), env.aws.titan.calls

    response = run(event)

    assert response == {"batchItemFailures": []}
    assert env.aws.titan.calls == calls
    assert vectors(env) == before


def test_redelivered_batch_writes_nothing_anywhere(env):
    event = batch(doc("a", long_text(300)), doc("b", "Short b.", metadata={"k": 1}), {"doc_id": "c", "op": "delete"})
    run(event)
    calls = len(env.aws.recorder.calls)

    response = run(event)

    assert response == {"batchItemFailures": []}
    # At-least-once delivery costs one ledger read: no embedding, no vector write, no ledger write.
    assert [(s, op) for s, op, _ in env.aws.recorder.calls[calls:]] == [("dynamodb", "BatchGetItem")]


def test_event_older_than_the_stored_version_does_not_overwrite_it(env):
    run(batch(doc("v", "Newer text.", ts=2000)))

    response = run(batch(doc("v", "Older text.", ts=1000), {"doc_id": "v", "op": "delete", "ts": 999}, start=1))

    assert response == {"batchItemFailures": []}
    assert vectors(env)["v#0"]["metadata"]["source_text"] == "Newer text."


def test_metadata_only_change_updates_metadata_without_calling_bedrock(env):
    run(batch(doc("m", long_text(250), source="wiki", metadata={"team": "a"})))
    before, calls = vectors(env), env.aws.titan.calls

    response = run(batch(doc("m", long_text(250), source="wiki", metadata={"team": "b"}), start=1))

    assert response == {"batchItemFailures": []}
    assert env.aws.titan.calls == calls
    after = vectors(env)
    assert set(after) == set(before)
    for key in after:
        assert after[key]["metadata"]["team"] == "b"
        assert after[key]["data"] == before[key]["data"]
        assert after[key]["metadata"]["source_text"] == before[key]["metadata"]["source_text"]


# A version no attempt can index (here: the model refuses its text) is dead-lettered, and the document ends at the
# greatest version that can be indexed, whether that came in the same batch or an earlier one.
@pytest.mark.parametrize("batches", [[[0], [1], [2]], [[0], [1, 2]], [[0, 1, 2]], [[0], [2, 1]]],
                         ids=["one-by-one", "last-two-together", "all-together", "refused-first"])
def test_an_unindexable_version_leaves_the_greatest_indexable_one_whatever_the_batching(env, batches):
    env.aws.titan.reject = lambda text: "poison" in text
    versions = [doc("d", "The first version.", ts=100), doc("d", "The second version.", ts=200),
                doc("d", "A poison third version.", ts=300)]

    for n, numbers in enumerate(batches):
        assert run({"Records": [record(versions[i], seq=10 * n + i) for i in numbers]}) == {"batchItemFailures": []}

    assert [v["metadata"]["source_text"] for v in vectors(env).values()] == ["The second version."]
    assert len(dead_letters(env)) == 1 and dead_letters(env)[0]["kind"] == "unindexable"
    item = env.dynamodb.get_item(TableName=VERSIONS, Key={"pk": {"S": f"{BUCKET}/{INDEX}#d"}})["Item"]
    assert item["dirty"] == {"BOOL": False}, "the refused version's intent was undone"
    assert item["ts"] == {"N": "200"}


# The undo of a refused version's intent must not undo what another version of the batch committed: here the next
# version is unchanged and raises the stored version, and the refused one's intent write failed.
def test_a_refused_versions_undo_never_lowers_a_version_the_batch_raised(env):
    from fakes import error_response

    assert run(batch(doc("d", "Same text.", ts=100))) == {"batchItemFailures": []}
    env.aws.titan.reject = lambda text: "poison" in text
    env.aws.dynamodb.fail = lambda operation, params: (
        error_response(500, "InternalServerError", "intent lost")
        if operation == "BatchWriteItem" and any(i["PutRequest"]["Item"]["dirty"]["BOOL"]
                                                 for i in params["RequestItems"][VERSIONS]) else None)

    assert run({"Records": [record(doc("d", "Same text.", ts=200), seq=10),
                            record(doc("d", "A poison text.", ts=300), seq=11)]}) == {"batchItemFailures": []}
    env.aws.dynamodb.fail = lambda operation, params: None
    item = env.dynamodb.get_item(TableName=VERSIONS, Key={"pk": {"S": f"{BUCKET}/{INDEX}#d"}})["Item"]
    assert item["ts"] == {"N": "200"}, "the unchanged version's raise stands"

    assert run({"Records": [record(doc("d", "Older text.", ts=150), seq=20)]}) == {"batchItemFailures": []}
    assert [v["metadata"]["source_text"] for v in vectors(env).values()] == ["Same text."], "an older event changed it"


# 6. transient failures
def test_throttled_document_is_reported_and_redelivery_indexes_it_without_reembedding_the_rest(env):
    env.aws.titan.throttle = lambda text: "throttle-me" in text
    docs = [doc("d0", "Zero."), doc("d1", "Please throttle-me now."), doc("d2", "Two."), doc("d3", "Three.")]
    event = batch(*docs)

    response = run(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    assert set(vectors(env)) == {"d0#0", "d2#0", "d3#0"}

    # The event source mapping checkpoints before the lowest failure and redelivers from it.
    env.aws.titan.throttle = lambda text: False
    env.aws.titan.texts.clear()
    redelivered = {"Records": event["Records"][1:]}
    response = run(redelivered)

    assert response == {"batchItemFailures": []}
    assert set(vectors(env)) == {"d0#0", "d1#0", "d2#0", "d3#0"}
    assert env.aws.titan.texts == ["Please throttle-me now."]


def test_failure_after_the_chunks_are_written_is_retried_and_leaves_exactly_the_new_version(env):
    from fakes import error_response

    run(batch(doc("crash", long_text(500, tag="old"))))
    old_n = len(vectors(env))
    commits_failed = []

    def fail_commit(operation, params):
        items = params.get("RequestItems", {}).get(VERSIONS, [])
        if operation == "BatchWriteItem" and any(not i["PutRequest"]["Item"]["dirty"]["BOOL"] for i in items):
            commits_failed.append(1)
            return error_response(500, "InternalServerError", "try again")
        return None

    env.aws.dynamodb.fail = fail_commit
    event = batch(doc("crash", long_text(200, tag="new")), start=1)

    response = run(event)

    # The new chunks are in the index, but the version was not committed: the record is retried.
    assert commits_failed and response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}

    env.aws.dynamodb.fail = lambda operation, params: None
    response = run(event)

    assert response == {"batchItemFailures": []}
    stored = vectors(env)
    n = stored["crash#0"]["metadata"]["chunks"]
    assert n < old_n and set(stored) == {f"crash#{i}" for i in range(n)}
    assert all(v["metadata"]["content_hash"] == content_hash(long_text(200, tag="new")) for v in stored.values())


# No write of an invocation may land after it returns: the records it reports failed come again, and in Lambda a
# thread left running resumes in a later invocation, over whatever the redelivery wrote.
def test_a_document_that_fails_while_its_intent_is_being_written_returns_only_once_the_intent_landed(env):
    import threading
    import time

    landed = threading.Event()

    def slow_intent(operation, params):
        items = params.get("RequestItems", {}).get(VERSIONS, [])
        if operation == "BatchWriteItem" and any(i["PutRequest"]["Item"]["dirty"]["BOOL"] for i in items):
            time.sleep(0.3)  # a slow round trip: Titan's refusal comes back first
            landed.set()
        return None

    def throttled_after_a_while(text):
        time.sleep(0.1)  # the intent write has started meanwhile
        return True

    assert run(batch(doc("slow", "The first version."))) == {"batchItemFailures": []}
    env.aws.dynamodb.fail = slow_intent  # a clean entry: the next version writes its intent first
    env.aws.titan.throttle = throttled_after_a_while

    response = run(batch(doc("slow", "Please throttle-me now."), start=1))

    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    assert landed.is_set(), "the handler returned with its intent write still in flight"


# A crashed invocation publishes no metrics: Powertools warns that the set is empty.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_an_invocation_that_crashes_while_an_intent_is_being_written_raises_only_once_it_landed(env):
    import threading
    import time

    landed = threading.Event()

    def slow_intent(operation, params):
        items = params.get("RequestItems", {}).get(VERSIONS, [])
        if operation == "BatchWriteItem" and any(i["PutRequest"]["Item"]["dirty"]["BOOL"] for i in items):
            time.sleep(0.3)
            landed.set()
        return None

    def crash_after_a_while(text):
        time.sleep(0.1)  # the intent write has started meanwhile
        raise RuntimeError("an unexpected error in the embedding call")

    assert run(batch(doc("crash", "The first version."))) == {"batchItemFailures": []}
    env.aws.dynamodb.fail = slow_intent
    env.aws.titan.throttle = crash_after_a_while

    with pytest.raises(RuntimeError, match="unexpected error"):
        run(batch(doc("crash", "The second version."), start=1))

    assert landed.is_set(), "the invocation failed with its intent write still in flight"


def test_a_failed_part_of_a_ledger_write_returns_only_once_every_other_part_is_done_so_a_delete_stays(env):
    import threading
    import time

    from fakes import error_response

    v1 = [record({"doc_id": f"d{i}", "text": f"Document number {i}, first."}, seq=i, arrival=1000.0)
          for i in range(26)]
    assert run({"Records": v1}) == {"batchItemFailures": []}
    armed, landed = threading.Event(), threading.Event()

    def split_intent(operation, params):  # 26 intents: parts of 25 and 1 (BatchWriteItem's limit)
        items = params.get("RequestItems", {}).get(VERSIONS, [])
        if not armed.is_set() or operation != "BatchWriteItem":
            return None
        if not all(i["PutRequest"]["Item"]["dirty"]["BOOL"] for i in items):
            return None
        if len(items) == 25:
            return error_response(400, "AccessDeniedException", "denied (the first part)")
        time.sleep(0.3)  # the other part is slow
        armed.clear()
        landed.set()
        return None

    env.aws.dynamodb.fail = split_intent
    armed.set()
    v2 = [record({"doc_id": f"d{i}", "text": f"Document number {i}, second."}, seq=100 + i, arrival=1001.0)
          for i in range(26)]

    assert len(run({"Records": v2})["batchItemFailures"]) == 26
    assert landed.is_set(), "the handler returned with a part of its intent write still in flight"

    # The redelivery with a delete of d25, then an older version of d25 redriven: d25 stays deleted.
    delete = record({"doc_id": "d25", "op": "delete"}, seq=200, arrival=1002.0)
    assert run({"Records": v2 + [delete]}) == {"batchItemFailures": []}
    redriven = record({"doc_id": "d25", "text": "Document number 25, second.", "ts": 1001,
                       "seq": v2[25]["kinesis"]["sequenceNumber"]}, seq=300, arrival=1003.0)
    assert run({"Records": [redriven]}) == {"batchItemFailures": []}
    assert not any(key.startswith("d25#") for key in vectors(env)), "a deleted document came back"


# A doc id too long for DynamoDB's 2,048-byte key is keyed by its hash, in a form no doc id's key can take: a doc id
# spelt like that hash ("sha256:<hex>" is a valid doc id) keeps its own entry.
def test_a_long_doc_ids_hashed_ledger_key_is_no_other_documents_key(env):
    from rtrag.aws.ledger import item_key

    long_id = "\U0001F600" * 512  # 2,048 bytes of UTF-8: hashed
    lookalike = "sha256:" + content_hash(long_id)
    assert item_key(f"{BUCKET}/{INDEX}", long_id) != item_key(f"{BUCKET}/{INDEX}", lookalike)

    assert run(batch(doc(lookalike, long_text(600)))) == {"batchItemFailures": []}
    assert len([k for k in vectors(env) if k.startswith(lookalike)]) > 1
    assert run(batch({"doc_id": long_id, "op": "delete"}, start=1)) == {"batchItemFailures": []}
    assert run(batch({"doc_id": lookalike, "op": "delete"}, start=2)) == {"batchItemFailures": []}

    assert not [k for k in vectors(env) if k.startswith(lookalike)], "a deleted document still has vectors"


def test_unreadable_ledger_fails_every_document_lowest_sequence_number_first(env):
    from fakes import error_response

    env.aws.dynamodb.fail = lambda operation, params: (
        error_response(500, "InternalServerError", "boom") if operation == "BatchGetItem" else None)

    response = run(batch(b"not json", doc("x", "X."), doc("y", "Y.")))

    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}, {"itemIdentifier": seq(2)}]}
    assert vectors(env) == {}
    assert len(dead_letters(env)) == 1
    assert env.aws.titan.calls == 0


# 8. observability
def test_handler_emits_emf_metrics_including_index_lag(env, capsys):
    run(batch(doc("m1", "Metric one."), doc("m2", "Metric two."), b"bad"))

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert blobs, "no EMF output"
    values = {}
    for blob in blobs:
        for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = blob[definition["Name"]]
            values[definition["Name"]] = value if isinstance(value, list) else [value]
    assert values["DocumentsUpserted"] == [2]
    assert values["DeadLetters"] == [1]
    assert values["EmbeddingCalls"] == [2]
    assert values["ChunksWritten"] == [2]
    assert len(values["IndexLag"]) == 2 and all(lag > 0 for lag in values["IndexLag"])


def emf_values(out: str) -> dict[str, list[float]]:
    """Every metric the handler's EMF blobs on stdout hold, by name (all of one invocation)."""
    values: dict[str, list[float]] = {}
    for blob in (json.loads(line) for line in out.splitlines() if '"_aws"' in line):
        for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = blob[definition["Name"]]
            values.setdefault(definition["Name"], []).extend(value if isinstance(value, list) else [value])
    return values


# Each counter the dashboard and the alarms read, from one batch that does one of everything.
def test_every_counter_the_alarms_read_counts_what_happened_and_index_lag_is_in_milliseconds(env, capsys):
    import time

    run(batch(doc("keep", "Kept as it is.", metadata={"tag": "a"}), doc("retag", "Same text.", metadata={"tag": "a"}),
              doc("gone", "To be deleted."), doc("old", "Newer text.", ts=500)))
    capsys.readouterr()
    env.aws.titan.throttle = lambda text: "throttle-me" in text
    records = [record(doc("keep", "Kept as it is.", metadata={"tag": "a"}), seq=10),  # unchanged
               record(doc("retag", "Same text.", metadata={"tag": "b"}), seq=11),  # re-tagged
               record({"doc_id": "gone", "op": "delete"}, seq=12),  # deleted: its one chunk
               record(doc("old", "Older text.", ts=400), seq=13),  # older than the stored ts 500: stale
               record(doc("dup", "First."), seq=14), record(doc("dup", "Second."), seq=15),  # one superseded
               record(doc("slow", "Please throttle-me now."), seq=16),  # fails, retried by the mapping
               record(doc("keyed", "Put under another key."), seq=17, partition_key="other"),  # mis-keyed
               record(b"not json", seq=18)]  # dead-lettered
    before = time.time()

    response = run({"Records": records})

    after = time.time()
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(16)}]}
    values = emf_values(capsys.readouterr().out)
    counts = {name: sum(v) for name, v in values.items() if name != "IndexLag"}
    assert counts == {
        "RecordsReceived": 9, "DocumentsUpserted": 2, "DocumentsRetagged": 1, "DocumentsDeleted": 1,
        "DocumentsSkippedUnchanged": 1, "DocumentsSkippedStale": 1, "EventsSuperseded": 1, "ChunksWritten": 3,
        "ChunksDeleted": 1, "EmbeddingCalls": counts["EmbeddingCalls"], "DeadLetters": 1, "DocumentsFailed": 1,
        "RecordsMisKeyed": 1}
    assert counts["EmbeddingCalls"] >= 3  # dup, keyed, and slow's attempts
    # One value per document written (upserted, re-tagged, deleted), in milliseconds since its record arrived.
    assert len(values["IndexLag"]) == 4
    assert all((before - ARRIVAL) * 1000 <= lag <= (after - ARRIVAL) * 1000 for lag in values["IndexLag"])


def test_importing_the_handler_creates_no_clients(env):
    import importlib

    import rtrag.functions.indexer

    before = len(env.aws.recorder.calls)
    reloaded = importlib.reload(rtrag.functions.indexer)

    assert reloaded.handler._indexer is None
    assert env.aws.recorder.calls[before:] == []


def test_base64_with_stray_characters_is_not_silently_repaired(env):
    data = base64.b64encode(json.dumps(doc("b64", "text")).encode()).decode()

    response = run({"Records": [record(None, seq=0, raw_data=data[:10] + "!" + data[10:], partition_key="b64")]})

    assert response == {"batchItemFailures": []}
    assert vectors(env) == {}
    assert "base64" in dead_letters(env)[0]["reason"]


# With nothing added, Powertools' flush warns that the metric set is empty: expected when metrics are disabled.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_disabled_metrics_print_nothing_and_do_not_accumulate(env, monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    for start in (0, 150):  # more than Powertools' auto-flush threshold of 100 values in all
        run(batch(*[doc(f"quiet-{start + i}", f"Quiet document {start + i}.") for i in range(150)], start=start))

    assert '"_aws"' not in capsys.readouterr().out
    assert len(vectors(env)) == 300
    assert indexer.handler.metrics.metric_set == {}


# The stack's settings changed and changed back: its index is deleted and created again under the same name (the
# name is a hash of the settings), and the custom resource hands the indexer the new index's generation.
def recreate_index(env, monkeypatch, generation: str) -> None:
    env.s3vectors.delete_index(vectorBucketName=BUCKET, indexName=INDEX)
    env.s3vectors.create_index(vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=DIMENSIONS,
                               distanceMetric="cosine",
                               metadataConfiguration={"nonFilterableMetadataKeys": ["source_text"]})
    monkeypatch.setenv("VECTOR_INDEX_GENERATION", generation)
    indexer.handler.reset()


def test_an_index_created_again_under_its_name_is_filled_again_by_the_same_events(env, monkeypatch):
    monkeypatch.setenv("VECTOR_INDEX_GENERATION", "1767225600000")
    indexer.handler.reset()
    event = batch(doc("a", long_text(300)), doc("b", "Short b."), {"doc_id": "gone", "op": "delete"})
    run(event)
    first = {k: v["metadata"]["source_text"] for k, v in vectors(env).items()}
    recreate_index(env, monkeypatch, "1767229200000")

    # The same events again (a replay from the stream or the archive): not skipped as unchanged.
    assert run(event) == {"batchItemFailures": []}

    assert {k: v["metadata"]["source_text"] for k, v in vectors(env).items()} == first
    items = env.dynamodb.scan(TableName=VERSIONS)["Items"]
    assert {i["generation"]["S"] for i in items} == {"1767229200000"}


def test_ledger_entries_written_before_generations_count_only_when_written_after_the_index_was_made(env, monkeypatch):
    run(batch(doc("old", "Written for an earlier index.")))  # no generation: as the indexer wrote before it had one
    entry = env.dynamodb.scan(TableName=VERSIONS)["Items"][0]
    assert "generation" not in entry
    updated_ms = int(entry["updated_at"]["N"]) * 1000
    recreate_index(env, monkeypatch, str(updated_ms + 60_000))  # created a minute after the entry was written

    run(batch(doc("old", "Written for an earlier index."), start=1))

    assert [v["metadata"]["source_text"] for v in vectors(env).values()] == ["Written for an earlier index."]
    # An unstamped entry written after the index was created describes it: trusted (unchanged, nothing embedded).
    calls = env.aws.titan.calls
    env.dynamodb.delete_item(TableName=VERSIONS, Key={"pk": entry["pk"]})
    env.dynamodb.put_item(TableName=VERSIONS, Item={**entry, "updated_at": {"N": str(updated_ms // 1000 + 120)}})
    run(batch(doc("old", "Written for an earlier index."), start=2))
    assert env.aws.titan.calls == calls


def test_a_malformed_index_generation_is_refused_at_cold_start_naming_the_variable():
    from rtrag.core.config import IndexerSettings
    from rtrag.core.errors import ConfigError

    env = {"VECTOR_BUCKET": BUCKET, "VECTOR_INDEX": INDEX, "DEAD_LETTER_BUCKET": DEAD_LETTERS,
           "VERSION_TABLE": VERSIONS}
    assert IndexerSettings.from_env(env).index_generation is None
    assert IndexerSettings.from_env({**env, "VECTOR_INDEX_GENERATION": " 1767225600000 "}).index_generation \
        == "1767225600000"
    with pytest.raises(ConfigError, match="VECTOR_INDEX_GENERATION='2026-01-01' is not the index's creation time"):
        IndexerSettings.from_env({**env, "VECTOR_INDEX_GENERATION": "2026-01-01"})


@pytest.mark.parametrize("data", [None, 5, ["x"]])
def test_record_data_that_is_not_a_string_is_dead_lettered_and_the_rest_indexed(env, data):
    bad = record({"doc_id": "x"}, seq=2, raw_data="placeholder")
    bad["kinesis"]["data"] = data

    response = run({"Records": [record(doc("good", "A good one."), seq=1), bad]})

    assert response == {"batchItemFailures": []}
    assert sorted(vectors(env)) == ["good#0"]
    assert [x["reason"] for x in dead_letters(env)] == ["record data is not valid base64"]


def test_a_writer_with_another_generation_still_deletes_every_chunk_within_the_reach(env, monkeypatch):
    # One writer configured with the index's generation, another still with an earlier one (an indexer whose
    # environment is not updated yet): each reads the other's entries as another index's, but keeps their reach.
    monkeypatch.setenv("VECTOR_INDEX_GENERATION", "1767229200000")
    indexer.handler.reset()
    run(batch(doc("a", long_text(300))))
    assert len([k for k in vectors(env) if k.startswith("a#")]) > 1
    monkeypatch.setenv("VECTOR_INDEX_GENERATION", "1767225600000")
    indexer.handler.reset()

    assert run(batch({"doc_id": "a", "op": "delete"}, start=5)) == {"batchItemFailures": []}

    assert [k for k in vectors(env) if k.startswith("a#")] == []
