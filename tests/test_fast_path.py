"""The indexer's fast path with real botocore clients: Titan's embedding kept as its JSON text (JsonFloats), and
PutVectors' body written by FastPutVectors and the ledger's BatchWriteItem and BatchGetItem bodies by
FastBatchWrite and FastBatchGet, instead of botocore's value-by-value walk. What goes on the wire must be what
botocore itself would have sent: the same JSON value, the same method, URL and headers to sign."""

from __future__ import annotations

import json
import random

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from rtrag.aws.s3vectors import S3VectorsIndex
from rtrag.aws.titan import TitanEmbedder
from rtrag.core.errors import LimitExceeded, TransientError
from rtrag.core.vectors import JsonFloats, check_data

DIM = 1024


class Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body

    def read(self, *_):
        return self.body


def client(service: str, sent: list, reply: bytes = b"{}"):
    """A real botocore client whose requests are captured just before they would leave the machine."""
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1")
    made = session.client(service)

    def capture(request, **_):
        sent.append(request)
        return AWSResponse(request.url, 200, {"content-type": "application/json"}, Raw(reply))

    made.meta.events.register_last("before-send", capture)
    return made


def assert_same_request(fast, slow) -> None:
    """What a fast path sent is what botocore itself would have: the same JSON value, method, URL and signed
    headers (only the signature, its date, the invocation id and the length may differ)."""
    assert json.loads(fast.body) == json.loads(slow.body)
    assert (fast.method, fast.url) == (slow.method, slow.url)
    unsigned = {"authorization", "x-amz-date", "amz-sdk-invocation-id", "content-length"}
    assert ({k.lower(): v for k, v in fast.headers.items() if k.lower() not in unsigned} ==
            {k.lower(): v for k, v in slow.headers.items() if k.lower() not in unsigned})


def vectors(texts: list[str]) -> list[dict]:
    return [{"key": f"doc-{i}#0", "data": {"float32": JsonFloats(text.encode())},
             "metadata": {"doc_id": f"doc-{i}", "source_text": "Ünïcode \"quoted\" text", "tier": i}}
            for i, text in enumerate(texts)]


def as_plain(vectors: list[dict]) -> list[dict]:
    return [{**v, "data": {"float32": list(v["data"]["float32"])}} for v in vectors]


def titan_like(n: int, seed: int) -> str:
    """An embedding as Titan writes it: numbers in several notations."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = rng.gauss(0, 0.03)
        out.append(f"{x:.7E}" if i % 7 == 0 else repr(x))
    return ",".join(out)


def test_put_vectors_sends_the_json_value_and_signing_inputs_botocore_would_have():
    fast_sent, plain_sent = [], []
    data = vectors([titan_like(DIM, seed) for seed in range(3)])
    index = S3VectorsIndex(client("s3vectors", fast_sent), bucket="rag-vectors", index="documents", dimension=DIM)
    plain = client("s3vectors", plain_sent)  # no fast path: botocore validates and serializes every value

    index.put_call(data)
    plain.put_vectors(vectorBucketName="rag-vectors", indexName="documents", vectors=as_plain(data))

    [fast], [slow] = fast_sent, plain_sent
    assert_same_request(fast, slow)
    assert int(fast.headers["Content-Length"]) == len(fast.body), "signed and sent: the body we wrote"
    # Titan's own text goes on the wire as it came, never printed back from floats.
    assert titan_like(DIM, 0).encode() in fast.body


# The 20 MiB PutVectors limit is on the request body: what check_vector counted must bound what is sent, for
# text in any script (botocore's own JSON writes a Cyrillic letter as 6 bytes, an emoji as 12).
@pytest.mark.parametrize("char", ["ж", "中", "😀", "a", '"', "\\"])
def test_put_vectors_body_is_no_larger_than_the_size_our_checks_counted(char):
    sent = []
    index = S3VectorsIndex(client("s3vectors", sent), bucket="rag-vectors", index="documents", dimension=DIM)
    data = [{**v, "metadata": {**v["metadata"], "source_text": char * 8000, "title": char * 100}}
            for v in vectors([titan_like(DIM, seed) for seed in range(3)])]
    counted = sum(index.check(v) for v in data)

    index.put_call(data)

    [request] = sent
    envelope = len('{"vectorBucketName":"rag-vectors","indexName":"documents","vectors":[]}')
    assert len(request.body) <= counted + envelope, (len(request.body), counted)
    assert json.loads(request.body)["vectors"][0]["metadata"]["source_text"] == char * 8000


def test_put_vectors_with_plain_lists_is_the_same_value_too():
    fast_sent, plain_sent = [], []
    data = as_plain(vectors([titan_like(8, 5)]))
    S3VectorsIndex(client("s3vectors", fast_sent), bucket="rag-vectors", index="documents", dimension=8).put_call(data)
    client("s3vectors", plain_sent).put_vectors(vectorBucketName="rag-vectors", indexName="documents", vectors=data)

    assert json.loads(fast_sent[0].body) == json.loads(plain_sent[0].body)


def test_a_retried_put_vectors_sends_the_real_values_again():
    sent: list = []
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1")
    made = session.client("s3vectors")

    def throttle_once(request, **_):
        sent.append(request)
        status = 503 if len(sent) == 1 else 200
        return AWSResponse(request.url, status, {"content-type": "application/json"}, Raw(b"{}"))

    made.meta.events.register("before-send", throttle_once)
    data = vectors([titan_like(8, 1)])
    S3VectorsIndex(made, bucket="rag-vectors", index="documents", dimension=8).put_call(data)

    assert len(sent) == 2, "botocore retried the 503"
    for request in sent:
        assert json.loads(request.body)["vectors"][0]["data"]["float32"] == list(data[0]["data"]["float32"])


def test_titan_s_embedding_is_kept_as_its_text_and_checked_like_a_list():
    text = titan_like(DIM, 9)
    reply = json.dumps({"embedding": "PLACEHOLDER", "inputTextTokenCount": 4}).replace('"PLACEHOLDER"',
                                                                                       f"[{text}]").encode()
    embedder = TitanEmbedder(client("bedrock-runtime", [], reply), model_id="amazon.titan-embed-text-v2:0",
                             dimensions=DIM)

    embedding = embedder.embed("Some text.")

    assert isinstance(embedding, JsonFloats) and embedding.text == text.encode()
    assert embedding == json.loads(f"[{text}]") and len(embedding) == DIM
    assert check_data("k#0", embedding, dimension=DIM) == check_data("k#0", list(embedding), dimension=DIM)


@pytest.mark.parametrize("text, why", [
    ("NaN," + titan_like(DIM - 1, 2), "not a finite float32"),
    ("1e39," + titan_like(DIM - 1, 2), "not a finite float32"),
    (titan_like(DIM - 1, 2), "dimension 1023"),
])
def test_our_checks_refuse_what_botocore_s_validation_or_the_service_would(text, why):
    with pytest.raises(LimitExceeded, match=why):
        check_data("k#0", JsonFloats(text.encode()), dimension=DIM)


@pytest.mark.parametrize("reply", [
    b'{"embedding": [1, 2, "x"], "inputTextTokenCount": 1}',
    b'{"inputTextTokenCount": 1}',
    b'not json',
])
def test_a_titan_body_the_text_path_cannot_take_is_parsed_and_refused_with_the_reason(reply):
    embedder = TitanEmbedder(client("bedrock-runtime", [], reply), model_id="amazon.titan-embed-text-v2:0",
                             dimensions=3)

    with pytest.raises(TransientError, match="returned (no valid 3-dimension embedding|a body that is not JSON)"):
        embedder.embed("Some text.")


def test_every_client_sends_one_standard_user_agent_built_once_and_kept_through_retries():
    import botocore

    from rtrag.aws.compose import AwsBackend, user_agent

    # given the backend's Bedrock client (adaptive retries) and a service that throttles the first call
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1")
    bedrock = AwsBackend(session).client("bedrock-runtime", attempts=3)
    sent: list = []

    def reply(request, **_):
        sent.append(request.headers["User-Agent"])
        if len(sent) == 1:
            return AWSResponse(request.url, 429, {"x-amzn-ErrorType": "ThrottlingException:"},
                               Raw(b'{"message": "slow down"}'))
        return AWSResponse(request.url, 200, {"content-type": "application/json"}, Raw(b'{"embedding": [0.5]}'))

    bedrock.meta.events.register_last("before-send", reply)

    # when it makes two calls, the first retried
    for _ in range(2):
        bedrock.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=b"{}")

    # then every request carried the same User-Agent: botocore's standard fields (SDK versions, ua/2.1, language)
    # and this application's id (then the session's own extra, which botocore appends)
    assert len(sent) == 3
    agents = {a.decode() if isinstance(a, bytes) else a for a in sent}
    assert len(agents) == 1 and agents.pop().startswith(user_agent())
    standard = user_agent()
    assert f"Boto3/{boto3.__version__}" in standard and f"md/Botocore#{botocore.__version__}" in standard
    assert " ua/2.1 " in standard and "lang/python#" in standard and standard.endswith(" app/real-time-rag")


def ledger_entries(n: int) -> list:
    from rtrag.core.versions import DELETED, LIVE, Version, VersionEntry

    return [VersionEntry(f"doc-{i} é\"", Version(1_767_225_600 + i, 49_650_000_000_000_000_000 + i),
                         LIVE if i % 3 else DELETED, chunks=i % 5, content_hash="a" * 64 if i % 3 else None,
                         attributes="b" * 64 if i % 3 else None, dirty=bool(i % 2), reach=i % 7,
                         expires_at=1_800_000_000 if not i % 3 else None, updated_at=1_767_225_600)
            for i in range(n)]


def test_the_ledger_s_batch_write_sends_the_json_value_and_signing_inputs_botocore_would_have(monkeypatch):
    from botocore.validate import ParamValidator

    from rtrag.aws.ledger import DynamoDBVersionLedger, to_item

    walked = []  # how many items botocore's parameter walk saw, per request
    validate = ParamValidator.validate
    monkeypatch.setattr(ParamValidator, "validate", lambda self, params, shape: (
        walked.append(len(params["RequestItems"]["versions"])), validate(self, params, shape))[1])
    fast_sent, plain_sent = [], []
    entries = ledger_entries(25)
    DynamoDBVersionLedger(client("dynamodb", fast_sent), table="versions", namespace="b/i").put(entries)
    plain = client("dynamodb", plain_sent)  # no fast path: botocore validates and serializes every value
    plain.batch_write_item(RequestItems={"versions": [{"PutRequest": {"Item": dict(to_item("b/i", e))}}
                                                      for e in entries]})

    assert walked == [1, 25]  # the ledger's request went through as one placeholder item

    [fast], [slow] = fast_sent, plain_sent
    assert_same_request(fast, slow)
    assert len(json.loads(fast.body)["RequestItems"]["versions"]) == 25


def test_a_batch_write_of_other_items_on_the_ledger_s_client_is_validated_by_botocore():
    from botocore.exceptions import ParamValidationError

    from rtrag.aws.ledger import DynamoDBVersionLedger

    sent: list = []
    ledger = DynamoDBVersionLedger(client("dynamodb", sent), table="versions", namespace="b/i")
    with pytest.raises(ParamValidationError):  # a plain dict is not ours: botocore's walk checks it
        ledger.client.batch_write_item(RequestItems={"versions": [{"PutRequest": {"Item": {"pk": {"S": 5}}}}]})
    assert sent == []


def test_unprocessed_ledger_items_are_sent_again_whole():
    from rtrag.aws.ledger import DynamoDBVersionLedger

    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1")
    made, bodies = session.client("dynamodb"), []

    def first_leaves_all_but_one(request, **_):
        bodies.append(json.loads(request.body)["RequestItems"]["versions"])
        unprocessed = {"versions": bodies[-1][1:]} if len(bodies) == 1 else {}
        return AWSResponse(request.url, 200, {"content-type": "application/x-amz-json-1.0"},
                           Raw(json.dumps({"UnprocessedItems": unprocessed}).encode()))

    made.meta.events.register_last("before-send", first_leaves_all_but_one)
    DynamoDBVersionLedger(made, table="versions", namespace="b/i", sleep=lambda _: None).put(ledger_entries(3))

    assert [len(b) for b in bodies] == [3, 2]
    assert bodies[1] == bodies[0][1:]  # the retry (botocore's own parse of the response) holds the real items


def test_the_ledger_s_batch_get_sends_the_json_value_and_signing_inputs_botocore_would_have(monkeypatch):
    from botocore.validate import ParamValidator

    from rtrag.aws.ledger import DynamoDBVersionLedger, item_key

    walked = []  # how many keys botocore's parameter walk saw, per request
    validate = ParamValidator.validate
    monkeypatch.setattr(ParamValidator, "validate", lambda self, params, shape: (
        walked.append(len(params["RequestItems"]["versions"]["Keys"])), validate(self, params, shape))[1])
    fast_sent, plain_sent = [], []
    doc_ids = [e.doc_id for e in ledger_entries(100)]
    reply = json.dumps({"Responses": {"versions": []}, "UnprocessedKeys": {}}).encode()
    DynamoDBVersionLedger(client("dynamodb", fast_sent, reply), table="versions", namespace="b/i").get(doc_ids)
    plain = client("dynamodb", plain_sent, reply)  # no fast path: botocore validates and serializes every key
    plain.batch_get_item(RequestItems={"versions": {"Keys": [{"pk": {"S": item_key("b/i", d)}} for d in doc_ids],
                                                    "ConsistentRead": True}})

    assert walked == [1, 100]  # the ledger's request went through as one placeholder key
    [fast], [slow] = fast_sent, plain_sent
    assert_same_request(fast, slow)
