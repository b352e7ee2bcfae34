"""The offline embedder: WordLlama weights shipped in the wheel, Titan's interface, unit vectors, no network
(pytest-socket blocks it for every test, so a download attempt would fail these tests)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtrag.core.errors import UnindexableDocument
from rtrag.local.embedder import LOCAL_DIMENSIONS, LocalEmbedder

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
SEED = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."


def cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))  # both are unit vectors


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder()


def test_vectors_have_256_dimensions_like_the_index_takes(embedder):
    vector = embedder.embed(SEED)

    assert embedder.dimensions == LOCAL_DIMENSIONS == 256
    assert len(vector) == 256
    assert all(isinstance(x, float) and math.isfinite(x) for x in vector)


def test_vectors_are_l2_normalised(embedder):
    for text in (SEED, "a", "Ein kurzer deutscher Satz.", "x " * 3000):
        norm = math.sqrt(sum(x * x for x in embedder.embed(text)))

        assert norm == pytest.approx(1.0, abs=1e-9)


def test_same_text_gives_the_same_vector_alone_in_a_batch_and_in_another_instance(embedder):
    texts = ["short", SEED, "a much longer text " * 200, "another one"]

    alone = [embedder.embed(t) for t in texts]
    batch = embedder.embed_many(texts)
    reversed_batch = LocalEmbedder().embed_many(list(reversed(texts)))

    assert batch == alone
    assert list(reversed(reversed_batch)) == alone


def test_similar_texts_are_closer_than_unrelated_ones(embedder):
    question = embedder.embed("When does Project Nimbus v3 ship and what does it drop?")
    paraphrase = embedder.embed("How many days of paid vacation do staff get?")
    leave = embedder.embed("Employees receive 25 days of paid leave per year.")

    assert cosine(question, embedder.embed(SEED)) > cosine(question, embedder.embed("The capital of France is Paris."))
    assert cosine(paraphrase, leave) > cosine(paraphrase, embedder.embed(SEED))


def test_blank_text_is_unindexable_like_titan_and_does_not_count_as_a_call():
    embedder = LocalEmbedder()

    results = embedder.embed_many(["", "   \n", "fine text"])

    assert isinstance(results[0], UnindexableDocument) and isinstance(results[1], UnindexableDocument)
    assert len(results[2]) == 256
    assert embedder.calls == 1
    with pytest.raises(UnindexableDocument, match="empty or blank"):
        embedder.embed(" ")


def test_text_over_titans_input_limit_is_unindexable(embedder):
    from rtrag.core.limits import TITAN_MAX_INPUT_CHARS

    [result] = embedder.embed_many(["x" * (TITAN_MAX_INPUT_CHARS + 1)])

    assert isinstance(result, UnindexableDocument)


def test_calls_count_every_text_embedded():
    embedder = LocalEmbedder()

    embedder.embed_many(["one", "two", "three"])
    embedder.embed("four")

    assert embedder.calls == 4


def test_loading_does_not_reconfigure_the_host_programs_logging():
    # wordllama calls logging.basicConfig on import; the embedder must undo it.
    code = ("import logging; from rtrag.local.embedder import LocalEmbedder; LocalEmbedder().embed('hi'); "
            "root = logging.getLogger(); print(len(root.handlers), root.level)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(LAMBDA_SRC)},
                         capture_output=True, text=True, timeout=120, check=True).stdout

    assert out.split() == ["0", str(30)]  # no handler added, level still WARNING
