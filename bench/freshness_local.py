#!/usr/bin/env python3
"""Local-mode freshness and query latency.

Freshness: events are put one at a time the way ``put_event.py --local`` does it (the local producer's ``put``,
then ``drain()``, the local event source mapping handing the batch to the same ``indexer.handler`` as Lambda),
and the clock runs from the start of the put until a query for the event's text, made the way ``ask.py
--local`` makes it (``retrieve``: embed the question, query the index) through a second index connection as a
separate asker would, returns the event's vector. One pipeline stays open for the whole run, as in a
long-running producer; the one-off cost of a CLI process (interpreter start, model load) is shown apart.

Query latency: ``LocalVectorIndex.query`` (top 3, with metadata, as ask.py asks) on indexes of random unit
256-dimension vectors. The vectors are loaded through the index's storage layer in large transactions (the
adapter's per-vector validation would only slow the set-up); the first query, which loads the index into the
process's memory, is reported apart from the steady state.

examples:
  python bench/freshness_local.py
  python bench/freshness_local.py --events 500 --sizes 10000,100000,300000 --json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
from common import note, percentile, table
from rtrag.cli.common import script_parser

WORDS = ("orbit lantern harbor quartz meadow cedar velvet summit ember glacier canyon violet falcon marble "
         "tundra copper willow prism beacon saffron nimbus cobalt juniper atlas ferry harvest lumen mosaic onyx "
         "pylon raven sierra topaz vertex zephyr release invoice outage rotation policy budget roadmap").split()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("freshness_local.py", __doc__)
    parser.add_argument("--events", type=int, default=250, help="events put one at a time (default 250)")
    parser.add_argument("--sizes", default="10000,100000", help="index sizes for the query latency")
    parser.add_argument("--queries", type=int, default=300, help="queries per index size (default 300)")
    parser.add_argument("--cli-runs", type=int, default=3,
                        help="runs of the put_event.py --local command itself (0 skips it)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/freshness_local.json")
    return parser.parse_args(argv)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))) + f" (event {n})."


def freshness(events: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from rtrag.workflows.retrieval import retrieve
    from rtrag.local.index import LocalVectorIndex
    from rtrag.local.compose import LocalBackend
    from rtrag.workflows.produce import build_event, read_jsonl

    rng = random.Random(3)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        pipeline = LocalBackend(Path(tmp))
        reader = LocalVectorIndex.open(Path(tmp) / "index")
        # A realistic starting index: the demo's corpus.
        with open(common.ROOT / "scripts" / "sample_corpus.jsonl", encoding="utf-8") as lines:
            corpus = read_jsonl(lines)
        pipeline.producer.put_batch(corpus)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):
            pipeline.drain()  # also loads the model and the handler, once per process, like the first put
            retrieve("warm up", embedder=pipeline.embedder, index=reader)
        totals, puts, drains, queries, polls = [], [], [], [], 0
        for n in range(events):
            text = sentence(rng, n)
            event = build_event(doc_id=f"fresh-{n:05d}", text=text, source="bench")
            key = f"{event.doc_id}#0"
            start = time.perf_counter()
            pipeline.producer.put(event)
            put_done = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                pipeline.drain()
            drained = time.perf_counter()
            while True:
                polls += 1
                found = retrieve(text, embedder=pipeline.embedder, index=reader)
                if any(hit.key == key for hit in found.hits + found.dropped):
                    break
                if time.perf_counter() - start > 10:
                    raise RuntimeError(f"{key} was not returned by a query within 10 s")
            done = time.perf_counter()
            totals.append((done - start) * 1000)
            puts.append((put_done - start) * 1000)
            drains.append((drained - put_done) * 1000)
            queries.append((done - drained) * 1000)
        vectors = reader.count()
        reader.close()
        pipeline.close()
    emf_lines = sum(1 for line in sink.getvalue().splitlines() if '"_aws"' in line)
    row = {"events": events, "p50_ms": round(percentile(totals, 50), 2), "p90_ms": round(percentile(totals, 90), 2),
           "p99_ms": round(percentile(totals, 99), 2), "max_ms": round(max(totals), 2),
           "put_p50_ms": round(percentile(puts, 50), 2), "drain_p50_ms": round(percentile(drains, 50), 2),
           "drain_p99_ms": round(percentile(drains, 99), 2), "query_p50_ms": round(percentile(queries, 50), 2),
           "query_p99_ms": round(percentile(queries, 99), 2), "queries_per_event": round(polls / events, 2),
           "index_vectors_at_end": vectors}
    return row, {"emf_lines_on_stdout": emf_lines}


def cli_put(runs: int) -> dict[str, Any] | None:
    """Wall time of the ``put_event.py --local`` command itself, from process start to exit."""
    if runs <= 0:
        return None
    times = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-cli-") as tmp:
        env = {**os.environ, "RAG_LOCAL_DIR": tmp}
        for n in range(runs + 1):
            start = time.perf_counter()
            subprocess.run([sys.executable, str(common.ROOT / "scripts" / "put_event.py"), "--local",
                            f"The cli benchmark fact number {n}.", f"cli-{n}"], env=env, check=True,
                           capture_output=True)
            if n:  # the first run creates the stream and index files
                times.append((time.perf_counter() - start) * 1000)
    return {"runs": runs, "p50_ms": round(percentile(times, 50), 1), "max_ms": round(max(times), 1)}


def query_latency(size: int, queries: int) -> dict[str, Any]:
    import numpy as np
    from rtrag.local.index import LocalVectorIndex

    rng = np.random.default_rng(size)
    dimension = 256
    with tempfile.TemporaryDirectory(prefix="rag-bench-q-") as tmp:
        index = LocalVectorIndex.open(Path(tmp) / "index", dimension=dimension)
        started = time.perf_counter()
        matrix = rng.standard_normal((size, dimension), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        step = 500  # PutVectors' limit, which the local index enforces as S3 Vectors does
        for first in range(0, size, step):
            index.put([
                {"key": f"doc-{i}#0", "data": {"float32": matrix[i].tolist()},
                 "metadata": {"doc_id": f"doc-{i}", "source": f"source-{i % 10}", "chunk": 0, "chunks": 1,
                              "source_text": f"Random passage number {i}."}}
                for i in range(first, min(size, first + step))])
        load_s = time.perf_counter() - started
        asker = LocalVectorIndex.open(Path(tmp) / "index")  # a fresh connection, like ask.py's process
        picks = rng.integers(0, size, queries + 1)
        noise = rng.standard_normal((queries + 1, dimension), dtype=np.float32) * 0.02
        probes = [(matrix[p] + noise[k]).tolist() for k, p in enumerate(picks)]
        start = time.perf_counter()
        first_hits = asker.query(probes[0], top_k=3)
        first_ms = (time.perf_counter() - start) * 1000
        times, correct = [], 0
        for k, probe in enumerate(probes[1:], start=1):
            start = time.perf_counter()
            hits = asker.query(probe, top_k=3)
            times.append((time.perf_counter() - start) * 1000)
            correct += bool(hits) and hits[0]["key"] == f"doc-{picks[k]}#0"
        assert first_hits, "the index returned nothing"
        asker.close()
        index.close()
    return {"vectors": size, "dimension": dimension, "queries": queries, "top_k": 3,
            "p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2),
            "first_query_ms": round(first_ms, 1), "load_s": round(load_s, 1),
            "nearest_correct": round(correct / queries, 3)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    note(f"local freshness: {args.events} events put one at a time")
    fresh, extra = freshness(args.events)
    if extra["emf_lines_on_stdout"]:
        note(f"  note: Powertools printed {extra['emf_lines_on_stdout']} EMF line(s) to stdout although "
             "POWERTOOLS_METRICS_DISABLED is set (its automatic flush at 100 values ignores the setting)")
    note("  put_event.py --local as a command")
    cli = cli_put(args.cli_runs)
    query_rows = []
    for size in sizes:
        note(f"  query latency at {size:,} vectors")
        query_rows.append(query_latency(size, args.queries))
    if args.json:
        cli_figure = {"cli_put_p50_ms": cli["p50_ms"]} if cli else {}
        common.emit_json([{"benchmark": "freshness_local", **fresh, **cli_figure}])
        common.emit_json({"benchmark": "local_query_latency", **row} for row in query_rows)
    else:
        print(table([("events", "events"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"),
                     ("max_ms", "max ms"), ("put_p50_ms", "put p50"), ("drain_p50_ms", "drain p50"),
                     ("query_p50_ms", "query p50")], [fresh],
                    title="Local freshness: start of put -> returned by a query (one event at a time)"))
        if cli:
            print(f"\nput_event.py --local as a command (interpreter start, model load, put, drain): "
                  f"p50 {cli['p50_ms']:.0f} ms over {cli['runs']} runs")
        print()
        print(table([("vectors", "vectors"), ("p50_ms", "query p50 ms"), ("p99_ms", "query p99 ms"),
                     ("first_query_ms", "first query ms"), ("load_s", "load s"),
                     ("nearest_correct", "nearest found")], query_rows,
                    title="Local query latency (LocalVectorIndex, 256 dimensions, top 3 with metadata)"))
    if not args.no_save:
        path = common.save_results("freshness_local", {"freshness": fresh, "cli_put": cli, "queries": query_rows,
                                                       "notes": extra})
        note(f"results: {path.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
