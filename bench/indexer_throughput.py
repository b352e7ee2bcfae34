#!/usr/bin/env python3
"""Indexer throughput: the project's BatchIndexer against the naive design, on services with modelled latency.

Both sides drive the same fake Bedrock (Titan V2) and S3 Vectors clients, which sleep for each call (default
40 ms per embedding, 30 ms per PutVectors/GetVectors/DeleteVectors) and can throttle (see bench/fake_aws.py).
Every measured batch holds new documents (the fake index is emptied between runs), so every document is
embedded and written. The project side is the real code: the AWS composition root's indexer with the indexer's default
settings, with its clients swapped for the fakes (or, with ``--clients botocore``, the real boto3 clients it
builds, with only HTTP faked).

ideal = ceil(chunks / concurrency) x embed latency + write latency: the time of the embedding waves at the
configured concurrency plus one write; efficiency = ideal / measured. The project also reads the version ledger
(one DynamoDB round trip, default 10 ms) before it embeds and commits the new versions after it writes, which
the naive design does not.

examples:
  python bench/indexer_throughput.py                        # batches of 10, 100, 1,000; table + plot
  python bench/indexer_throughput.py --json                 # one JSON object per batch size
  python bench/indexer_throughput.py --batch-sizes 100 --concurrency 32 --throttle-rate 0.01
  python bench/indexer_throughput.py --clients botocore --batch-sizes 100 --baseline-budget 0
  python bench/indexer_throughput.py --sweep                # concurrency sweep at batch 100, with a quota
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import common
from common import median, note, percentile, table
from rtrag.cli.common import script_parser

BUCKET, INDEX, DEAD_LETTERS, VERSIONS = "bench-vectors", "bench-index", "bench-dead-letters", "bench-versions"
QUOTA_BURST_S = 0.25  # the fake quota's token bucket holds this many seconds of calls
SWEEP_QUOTA_RPS = 250.0
WORDS = ("river signal harbor lantern quartz meadow orbit cedar velvet summit ember glacier canyon violet "
         "falcon marble tundra copper willow prism beacon saffron delta nimbus cobalt juniper atlas ferry "
         "harvest lumen mosaic onyx pylon quiver raven sierra topaz umber vertex wander zephyr").split()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("indexer_throughput.py", __doc__)
    parser.add_argument("--batch-sizes", default="10,100,1000", help="comma-separated (default: 10,100,1000)")
    parser.add_argument("--repeats", type=int, default=5, help="measured runs per batch size (median reported)")
    parser.add_argument("--baseline-budget", type=float, default=45.0, metavar="SECONDS",
                        help="time budget per batch size for the baseline's repeats (at least one run; 0 skips "
                             "the baseline). Its time is the sum of its sleeps, so one run is already exact.")
    parser.add_argument("--embed-ms", type=float, default=40.0, help="latency of one Titan call (default 40)")
    parser.add_argument("--write-ms", type=float, default=30.0,
                        help="latency of one PutVectors/GetVectors/DeleteVectors call (default 30)")
    parser.add_argument("--ledger-ms", type=float, default=10.0,
                        help="latency of one DynamoDB BatchGetItem/BatchWriteItem call of the version ledger "
                             "(default 10: DynamoDB's documented single-digit milliseconds, at their upper end)")
    parser.add_argument("--concurrency", type=int, help="EMBED_CONCURRENCY (default: the indexer's default)")
    parser.add_argument("--dimensions", type=int, default=1024, choices=(256, 512, 1024))
    parser.add_argument("--chunks-per-doc", type=int, default=1, help="document length in chunks (default 1)")
    parser.add_argument("--throttle-rate", type=float, default=0.0,
                        help="fraction of Titan attempts throttled at random (default 0)")
    parser.add_argument("--quota-rps", type=float, help="Titan attempts per second the fake service admits "
                        "(a token bucket holding a quarter second of them); attempts beyond it are throttled "
                        "(default: none; the sweep uses 250)")
    parser.add_argument("--clients", choices=("fake", "botocore"), default="fake",
                        help="fake: plain fake clients (our code's CPU only); botocore: real boto3 clients with "
                             "the indexer's retry configuration, fake HTTP (adds botocore's CPU)")
    parser.add_argument("--sweep", action="store_true",
                        help="also sweep EMBED_CONCURRENCY at batch 100, free and under a Titan quota")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")
    parser.add_argument("--no-plot", action="store_true", help="do not write bench/results/throughput.png")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    return parser.parse_args(argv)


def document_text(rng: random.Random, doc: int, chunks: int, chunk_size: int) -> str:
    """A text of about ``chunks`` chunks: sentences of random words, unique per document."""
    target = 700 if chunks == 1 else (chunk_size - 250) * chunks
    sentences, length = [], 0
    while length < target:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + f" {doc}."
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)


def kinesis_records(docs: list[dict[str, Any]], *, first_sequence: int) -> list[dict[str, Any]]:
    """Lambda Kinesis event records, as the event source mapping delivers them."""
    now = time.time()
    records = []
    for i, doc in enumerate(docs):
        sequence = str(first_sequence + i)
        records.append({
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": doc["doc_id"], "sequenceNumber": sequence,
                        "data": base64.b64encode(json.dumps(doc).encode()).decode(),
                        "approximateArrivalTimestamp": now},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{sequence}", "eventName": "aws:kinesis:record",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/bench", "awsRegion": "us-east-1",
        })
    return records


class Bench:
    """The fake services, the project's indexer and the baseline, wired once; ``batch`` makes new documents."""

    def __init__(self, args: argparse.Namespace, *, concurrency: int | None = None,
                 quota_rps: float | None = None, throttle_rate: float | None = None):
        import boto3
        from baseline import NaiveIndexer
        from fake_aws import (
            FakeBedrockRuntime,
            FakeDynamoDB,
            FakeS3Vectors,
            ItemStore,
            Service,
            VectorStore,
            FakeCpu,
            install_http_fakes,
        )

        self.args = args
        self.fake_cpu = FakeCpu()
        throttle = args.throttle_rate if throttle_rate is None else throttle_rate
        quota = args.quota_rps if quota_rps is None else quota_rps
        self.bedrock = Service("bedrock-runtime", args.embed_ms / 1000, throttle_rate=throttle, quota_rps=quota,
                               burst=quota * QUOTA_BURST_S if quota else None)
        self.s3vectors = Service("s3vectors", args.write_ms / 1000)
        self.dynamodb = Service("dynamodb", args.ledger_ms / 1000)
        self.store = VectorStore()
        self.items = ItemStore()
        env = {"VECTOR_BUCKET": BUCKET, "VECTOR_INDEX": INDEX, "DEAD_LETTER_BUCKET": DEAD_LETTERS,
               "VERSION_TABLE": VERSIONS, "EMBED_DIMENSIONS": str(args.dimensions)}
        chosen = concurrency or args.concurrency
        if chosen:
            env["EMBED_CONCURRENCY"] = str(chosen)

        from rtrag.aws.compose import AwsBackend
        from rtrag.core.config import IndexerSettings
        from rtrag.functions.indexer import IO_SWITCH_INTERVAL_S

        self.settings = IndexerSettings.from_env(env)
        # Credentials and Region for the clients the AWS composition root creates; nothing leaves the machine (the
        # fakes replace the clients, or answer before botocore's HTTP layer).
        session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench",
                                aws_session_token="bench", region_name="us-east-1")
        if args.clients == "botocore":
            install_http_fakes(session.events, bedrock=self.bedrock, s3vectors=self.s3vectors, store=self.store,
                               cpu=self.fake_cpu,
                               dynamodb=self.dynamodb, items=self.items)
        # As the function does on its cold start (rtrag.functions.indexer).
        sys.setswitchinterval(IO_SWITCH_INTERVAL_S)
        self.project = AwsBackend(session).indexer(self.settings)
        self.project.dead_letters = MemoryDeadLetters()
        if args.clients == "fake":
            self.project.embedder.client = FakeBedrockRuntime(self.bedrock)
            self.project.index.client = FakeS3Vectors(self.s3vectors, self.store)
            self.project.ledger.client = FakeDynamoDB(self.dynamodb, self.items)
        bedrock_client, vectors_client = self.project.embedder.client, self.project.index.client
        self.baseline = NaiveIndexer(bedrock_client, vectors_client, bucket=BUCKET, index=INDEX,
                                     model_id=self.settings.embed_model_id, dimensions=self.settings.embed_dimensions,
                                     chunk_size=self.settings.chunking.size_chars,
                                     chunk_overlap=self.settings.chunking.overlap_chars)
        self.concurrency = self.settings.embed_concurrency
        self._rng = random.Random(42)
        self._docs = 0

    def batch(self, size: int) -> tuple[list[dict[str, Any]], int]:
        """Kinesis records of ``size`` new documents, and how many chunks they make."""
        from rtrag.core.chunking import chunk_text

        chunking = self.settings.chunking
        docs, chunks = [], 0
        for _ in range(size):
            self._docs += 1
            text = document_text(self._rng, self._docs, self.args.chunks_per_doc, chunking.size_chars)
            chunks += len(chunk_text(text, size=chunking.size_chars, overlap=chunking.overlap_chars))
            docs.append({"doc_id": f"doc-{self._docs:07d}", "text": text, "source": "bench", "ts": 1_767_225_600,
                         "metadata": {"team": "bench", "tier": 1}})
        return kinesis_records(docs, first_sequence=49_000_000_000_000_000_000 + self._docs * 10), chunks

    def reset(self, *, keep_quota: bool = False) -> None:
        self.store.reset()
        self.items.reset()
        if not keep_quota:
            self.bedrock.reset()
        self.s3vectors.reset()
        self.dynamodb.reset()

    def run_project(self, records: list[dict[str, Any]]) -> tuple[float, float, Any]:
        cpu, fake, start = time.process_time(), self.fake_cpu.seconds, time.perf_counter()
        result = self.project.process(records)
        # The process's CPU, less what the fake services spent answering (theirs, not the indexer's).
        return time.perf_counter() - start, time.process_time() - cpu - (self.fake_cpu.seconds - fake), result

    def run_baseline(self, records: list[dict[str, Any]]) -> float:
        start = time.perf_counter()
        self.baseline.process(records)
        return time.perf_counter() - start


class MemoryDeadLetters:
    """Dead letters kept in memory (the benchmark's documents are all valid; this only stands by)."""

    def __init__(self) -> None:
        self.letters: list[Any] = []

    def write(self, letter: Any) -> str:
        self.letters.append(letter)
        return letter.key


def ideal_ms(chunks: int, concurrency: int, embed_ms: float, write_ms: float) -> float:
    return math.ceil(chunks / concurrency) * embed_ms + write_ms


def measure(bench: Bench, size: int, repeats: int, baseline_budget: float) -> dict[str, Any]:
    args = bench.args
    project_s, project_cpu_s, baseline_s = [], [], []
    calls: dict[str, Any] = {}
    expected_baseline = 0.0
    chunks = 0
    for rep in range(repeats):
        records, chunks = bench.batch(size)
        expected_baseline = (chunks * args.embed_ms + math.ceil(chunks / 500) * args.write_ms) / 1000
        want_baseline = baseline_budget > 0 and (not baseline_s or sum(baseline_s) + expected_baseline
                                                 <= baseline_budget)
        # Alternate which side runs first, so drift in the machine's load spreads over both.
        order = ("baseline", "project") if rep % 2 == 0 else ("project", "baseline")
        for side in order:
            bench.reset()
            if side == "baseline":
                if want_baseline:
                    baseline_s.append(bench.run_baseline(records))
                    assert len(bench.store.vectors) == chunks, "baseline did not write every chunk"
                continue
            elapsed, cpu, result = bench.run_project(records)
            if result.failures or result.upserted != size or len(bench.store.vectors) != chunks:
                note(f"  batch {size}: {len(result.failures)} documents failed, {result.upserted} upserted "
                     f"(throttling past the retries is reported for redelivery)")
            project_s.append(elapsed)
            project_cpu_s.append(cpu)
            calls = {**bench.bedrock.stats(), "vectors": bench.s3vectors.stats(), "ledger": bench.dynamodb.stats()}
    ideal = ideal_ms(chunks, bench.concurrency, args.embed_ms, args.write_ms)
    project_ms = median(project_s) * 1000
    row: dict[str, Any] = {
        "batch_size": size, "chunks": chunks, "concurrency": bench.concurrency,
        "project_ms": round(project_ms, 1), "project_ms_p10": round(percentile(project_s, 10) * 1000, 1),
        "project_ms_p90": round(percentile(project_s, 90) * 1000, 1),
        "project_cpu_ms": round(median(project_cpu_s) * 1000, 1),
        "project_docs_per_s": round(size / median(project_s), 1),
        "ideal_ms": ideal, "efficiency": round(ideal / project_ms, 3), "project_runs": len(project_s),
        "titan_calls": sum(calls.get("calls", {}).values()), "titan_attempts": calls.get("attempts"),
        "titan_throttled": calls.get("throttled"), "titan_peak_in_flight": calls.get("peak_in_flight"),
        "vectors_calls": calls.get("vectors", {}).get("calls"), "ledger_calls": calls.get("ledger", {}).get("calls"),
    }
    if baseline_s:
        baseline_ms = median(baseline_s) * 1000
        row.update({"baseline_ms": round(baseline_ms, 1), "baseline_docs_per_s": round(size / median(baseline_s), 1),
                    "baseline_runs": len(baseline_s), "baseline_expected_ms": round(expected_baseline * 1000, 1),
                    "ratio": round(baseline_ms / project_ms, 2)})
    return row


def sustained(bench: Bench, size: int, batches: int) -> dict[str, Any]:
    """Back-to-back batches without resetting the service's quota: sustained documents per second."""
    bench.reset()
    records = [bench.batch(size)[0] for _ in range(batches)]
    start, failed = time.perf_counter(), 0
    for batch in records:
        bench.store.reset()
        bench.items.reset()
        result = bench.project.process(batch)
        failed += len(result.failures)
    elapsed = time.perf_counter() - start
    stats = bench.bedrock.stats()
    return {"docs_per_s": round((size * batches - failed) / elapsed, 1), "throttled": stats["throttled"],
            "attempts": stats["attempts"], "failed": failed, "batch_ms": round(elapsed / batches * 1000, 1)}


def run_sweep(args: argparse.Namespace, baseline_ms: float | None) -> list[dict[str, Any]]:
    """EMBED_CONCURRENCY against batch time (free) and sustained throughput under a Titan quota."""
    quota = args.quota_rps or SWEEP_QUOTA_RPS
    rows = []
    for concurrency in (8, 16, 20, 24, 32, 48):
        free = Bench(args, concurrency=concurrency, quota_rps=0.0, throttle_rate=0.0)
        row = measure(free, 100, args.repeats, 0)
        capped = Bench(args, concurrency=concurrency, quota_rps=quota, throttle_rate=0.0)
        under = sustained(capped, 100, 6)
        out = {"concurrency": concurrency, "project_ms": row["project_ms"], "ideal_ms": row["ideal_ms"],
               "efficiency": row["efficiency"], "project_docs_per_s": row["project_docs_per_s"],
               "project_cpu_ms": row["project_cpu_ms"],
               "ratio": round(baseline_ms / row["project_ms"], 2) if baseline_ms else None,
               "quota_rps": quota, "quota_docs_per_s": under["docs_per_s"], "quota_batch_ms": under["batch_ms"],
               "quota_throttled_share": round(under["throttled"] / max(1, under["attempts"]), 3),
               "quota_failed": under["failed"]}
        for bench in (free, capped):
            pool = getattr(bench.project.embedder, "_pool", None)
            if pool is not None:
                pool.shutdown(wait=True)
        note(f"  concurrency {concurrency}: {out['project_ms']} ms per batch of 100; under a quota of "
             f"{quota:.0f}/s: {out['quota_docs_per_s']} docs/s")
        rows.append(out)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, subtitle: str,
         real_rows: list[dict[str, Any]] | None = None) -> Path | None:
    """Docs/s against batch size: the project with fake clients (``rows``), the baseline, the ideal, and the project
    with real boto3 clients (``real_rows``, only HTTP faked) when there are some."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        note("matplotlib is not installed (pip install -r requirements-dev.txt); no plot written")
        return None
    sizes = [r["batch_size"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(sizes, [r["project_docs_per_s"] for r in rows], "o-", color="#1f77b4",
            label="project (BatchIndexer), fake clients")
    if all("baseline_docs_per_s" in r for r in rows):
        ax.plot(sizes, [r["baseline_docs_per_s"] for r in rows], "s--", color="#d62728",
                label="baseline (sequential Titan calls)")
        for r in rows:
            ax.annotate(f"{r['ratio']:.1f}x", (r["batch_size"], r["project_docs_per_s"]),
                        textcoords="offset points", xytext=(0, 7), ha="center", fontsize=9, color="#1f77b4")
    if real_rows:
        ax.plot([r["batch_size"] for r in real_rows], [r["project_docs_per_s"] for r in real_rows], "^-",
                color="#2ca02c", label="project, real boto3 clients (HTTP faked)")
        for r in real_rows:
            if "ratio" in r:
                ax.annotate(f"{r['ratio']:.1f}x", (r["batch_size"], r["project_docs_per_s"]),
                            textcoords="offset points", xytext=(0, -15), ha="center", fontsize=9,
                            color="#2ca02c")
    ideal = [r["batch_size"] / (r["ideal_ms"] / 1000) for r in rows]
    ax.plot(sizes, ideal, ":", color="gray", label="ideal at the configured concurrency")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=max(ideal) * 1.3)  # room for the labels above the top points
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda value, _: f"{value:,.0f}" if f"{value:.0f}"[0] in "235" else ""))
    ax.set_xlabel("documents per Kinesis batch")
    ax.set_ylabel("documents per second (one invocation)")
    ax.set_title("Indexer throughput against batch size\n" + subtitle, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The indexer logs one INFO line per batch; keep stdout for the figures.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    bench = Bench(args)
    setting = (f"Titan {args.embed_ms:g} ms/call, S3 Vectors {args.write_ms:g} ms/call, EMBED_CONCURRENCY "
               f"{bench.concurrency}")  # the plot's subtitle: it shows both kinds of client
    subtitle = f"{setting}, {args.clients} clients"
    note(f"indexer throughput: {subtitle}; {args.repeats} runs per batch size")
    warm, _ = bench.batch(min(sizes))
    bench.run_project(warm)  # the thread pool is kept across warm invocations, as in Lambda
    bench.reset()
    bench.run_baseline(warm)
    rows = []
    for size in sizes:
        row = measure(bench, size, args.repeats, args.baseline_budget)
        note(f"  batch {size}: project {row['project_ms']} ms, baseline {row.get('baseline_ms', '-')} ms")
        rows.append(row)
    sweep = []
    if args.sweep:
        at_100 = next((r.get("baseline_ms") for r in rows if r["batch_size"] == 100), None)
        sweep = run_sweep(args, at_100)
    config = {"embed_ms": args.embed_ms, "write_ms": args.write_ms, "ledger_ms": args.ledger_ms,
              "concurrency": bench.concurrency,
              "dimensions": args.dimensions, "chunks_per_doc": args.chunks_per_doc,
              "throttle_rate": args.throttle_rate, "quota_rps": args.quota_rps, "clients": args.clients,
              "repeats": args.repeats}
    if args.json:
        common.emit_json({"benchmark": "indexer_throughput", **config, **row} for row in rows)
        common.emit_json({"benchmark": "indexer_concurrency_sweep", **config, **row} for row in sweep)
    else:
        print(table([("batch_size", "batch"), ("chunks", "chunks"), ("baseline_ms", "baseline ms"),
                     ("project_ms", "project ms"), ("baseline_docs_per_s", "baseline docs/s"),
                     ("project_docs_per_s", "project docs/s"), ("ratio", "ratio"), ("ideal_ms", "ideal ms"),
                     ("efficiency", "efficiency"), ("project_cpu_ms", "project CPU ms")], rows,
                    title=f"Indexer throughput ({subtitle})"))
        if sweep:
            print()
            print(table([("concurrency", "EMBED_CONCURRENCY"), ("project_ms", "batch-100 ms"),
                         ("ideal_ms", "ideal ms"), ("efficiency", "efficiency"), ("ratio", "ratio"),
                         ("project_cpu_ms", "CPU ms"), ("quota_docs_per_s", "docs/s under quota"),
                         ("quota_batch_ms", "batch ms under quota"), ("quota_throttled_share", "throttled share")],
                        sweep, title=f"EMBED_CONCURRENCY sweep at batch 100 (quota: "
                                     f"{sweep[0]['quota_rps']:.0f} Titan calls/s, 6 batches back to back)"))
    if not args.no_save:
        name = "indexer_throughput" if args.clients == "fake" else f"indexer_throughput_{args.clients}"
        path = common.save_results(name, {"config": config, "rows": rows, "sweep": sweep})
        note(f"results: {path.relative_to(common.ROOT)}")
    if not args.no_plot:
        # One plot for both kinds of client, drawn by whichever run comes last from the other's saved rows.
        other = common.load_results("indexer_throughput_botocore" if args.clients == "fake" else "indexer_throughput")
        fake, real = (rows, other["rows"] if other else None) if args.clients == "fake" else (
            other["rows"] if other else None, rows)
        if fake:
            written = plot(fake, common.RESULTS_DIR / "throughput.png", setting, real_rows=real)
            if written:
                note(f"plot: {written.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
