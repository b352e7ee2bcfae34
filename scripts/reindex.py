#!/usr/bin/env python3
"""Replay archived document events in order: back onto the stream, or straight into a (new) vector index.

Reads the archive bucket that Firehose fills from the stream (the default), a directory of archive files, a JSON
Lines file, or with --local the local stream. Resumable: a checkpoint records the last batch done, and the same
command run again continues after it (--restart replays from the start). Unchanged documents cost no Bedrock
calls: the indexer skips a document whose stored content hash matches.

Exit status: 0 when every record read was replayed (or had been dead-lettered by an earlier run); 1 when this run
dead-lettered a record that is not a valid event (`redrive.py list` shows them, with the reason) or stopped on an
error (run the same command again to resume); 130 when interrupted.

examples:
  python scripts/reindex.py --to-stream                            # the whole archive, back through the pipeline
  python scripts/reindex.py --to-stream --since 2026-03-01 --until 2026-03-02T12
  python scripts/reindex.py --to-index --vector-index chunks-512   # into a new index (its dimension is read)
  python scripts/reindex.py --to-index --from-dir ./archive-copy --vector-index chunks-512
  python scripts/reindex.py --to-stream --from-jsonl events.jsonl
  python scripts/reindex.py --local --to-index                     # rebuild the local index from the local stream
  python scripts/reindex.py --to-index --vector-index chunks-512 --restart   # ignore the checkpoint
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from rtrag.cli.common import (
    add_aws_arguments,
    current_region,
    explain,
    progress_printer,
    run_cli,
    script_parser,
)
from rtrag.cli.hints import pause_indexer
from rtrag.cli.resources import AwsResources, add_resource_arguments, named_by_flag
from rtrag.core import contract
from rtrag.core.errors import RagError, ResourceMissing, UserError
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.limits import MAX_RECORDS_PER_PUT_RECORDS, TITAN_V2_MODEL_ID
from rtrag.workflows.checkpoint import Checkpoint, job_lock, job_name, open_checkpoint
from rtrag.workflows.replay import Replay
from rtrag.workflows.sources import DirectoryArchive, HourWindow, JsonLinesFile, Source
from rtrag.workflows.targets import IndexTarget, ReplayCounts, ReplayStopped, StreamTarget

# The event source mapping's batch limits (Lambda: BatchSize 1..10,000, default 100).
DEFAULT_INDEX_BATCH = 100
MAX_BATCH = 10_000
CHECKPOINT_DIR = ".rag-reindex"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("reindex.py", __doc__)
    source = parser.add_argument_group("source (one of)").add_mutually_exclusive_group()
    source.add_argument("--from-archive", action="store_true",
                        help="the archive bucket (default without --local): events/YYYY/MM/DD/HH/*.gz")
    source.add_argument("--from-dir", metavar="PATH", help="a directory of archive files (Firehose's layout)")
    source.add_argument("--from-jsonl", metavar="PATH", help="a JSON Lines file of document events")
    source.add_argument("--from-stream", action="store_true",
                        help="with --local: the local stream, which keeps every record (default with --local)")
    parser.add_argument("--since", metavar="YYYY-MM-DD[THH]", help="archive hours from this one (UTC, included)")
    parser.add_argument("--until", metavar="YYYY-MM-DD[THH]", help="archive hours up to this one (UTC, included)")
    target = parser.add_argument_group("target (one of)").add_mutually_exclusive_group(required=True)
    target.add_argument("--to-stream", action="store_true", help="put the events back on the stream")
    target.add_argument("--to-index", action="store_true",
                        help="index the events directly into --vector-index (default: the pipeline's index)")
    add_resource_arguments(parser, contract.VECTOR_BUCKET, contract.EMBED_MODEL, contract.ARCHIVE_BUCKET,
                           contract.STREAM, contract.DEAD_LETTER_BUCKET)
    parser.add_argument(contract.VECTOR_INDEX.flag, help=f"the vector index (default: {contract.VECTOR_INDEX.env}, "
                        f"then the stack's {contract.VECTOR_INDEX.output}); with --local, a named index under "
                        "$RAG_LOCAL_DIR/indexes/")
    parser.add_argument("--batch-size", type=int, help=f"records per batch (default {DEFAULT_INDEX_BATCH} into "
                        f"an index, {MAX_RECORDS_PER_PUT_RECORDS} onto the stream; at most {MAX_BATCH})")
    parser.add_argument("--checkpoint", metavar="PATH", help=f"checkpoint file (default {CHECKPOINT_DIR}/<job>."
                        "json, or $RAG_LOCAL_DIR/reindex/<job>.json with --local)")
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint and replay from the start")
    parser.add_argument("--indexer-disabled", action="store_true",
                        help="with --to-index into the pipeline's own index: you have disabled the indexer's event "
                        "source mapping (otherwise refused: two writers of one document can leave chunks behind)")
    parser.add_argument("--json", action="store_true", help="print the final counts as JSON")
    parser.add_argument("--local", action="store_true", help="use the local pipeline under .rag-local/ (or "
                        "$RAG_LOCAL_DIR); events put back on the local stream are indexed before it returns")
    add_aws_arguments(parser)
    args = parser.parse_args(argv)
    if args.local and args.from_archive:
        parser.error("--local has no archive bucket: the local stream keeps every record (--from-stream, the "
                     "default with --local), or use --from-dir / --from-jsonl")
    if args.from_stream and not args.local:
        parser.error("--from-stream replays the local stream (with --local); a Kinesis stream keeps records only "
                     "for its retention period: replay the archive instead")
    if (args.since or args.until) and (args.from_jsonl or (args.local and not args.from_dir)):
        parser.error("--since/--until select archive hours: use them with --from-archive or --from-dir")
    if args.to_stream and (args.vector_index or args.vector_bucket or args.embed_model_id or args.indexer_disabled):
        parser.error("--vector-index, --vector-bucket, --embed-model-id and --indexer-disabled are for a --to-index "
                     "replay; --to-stream puts the events back on the stream, and the pipeline indexes them into its "
                     "own index")
    if args.batch_size is not None and not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"--batch-size must be 1..{MAX_BATCH}")
    return args


class Local:
    """The local pipeline's stream, index and dead letters."""

    def __init__(self, args: argparse.Namespace):
        from rtrag.local.compose import LocalBackend

        if named := named_by_flag(args, contract.VECTOR_BUCKET, contract.ARCHIVE_BUCKET, contract.EMBED_MODEL,
                                  contract.STREAM, contract.DEAD_LETTER_BUCKET):
            raise UserError(f"{named.flag} names an AWS resource; local mode has one of each (leave it out, "
                            "or drop --local)")
        self.backend = LocalBackend()
        self.args = args

    def archive(self) -> Source:
        return self.backend.archive()

    def stream_target(self) -> StreamTarget:
        return StreamTarget(self.backend.producer, dead_letters=self.backend.dead_letters,
                            description=f"local-stream:{self.backend.stream.directory.resolve()}", keep_receipts=True,
                            identity=self.backend.index.identity)  # the local runner indexes into it

    def index_target(self) -> IndexTarget:
        index = self.backend.vector_index(self.args.vector_index)
        return IndexTarget(self.backend.indexer(index), description=f"local-index:{Path(index.path).resolve()}",
                           identity=index.identity)

    def exclusive(self, target_kind: str) -> contextlib.AbstractContextManager[Any]:
        """One writer per document at a time, which the version guarantee relies on: into an index, be its sole
        writer (``LocalBackend.sole_writer``)."""
        if target_kind != "index":
            return contextlib.nullcontext()
        return self.backend.sole_writer(self.args.vector_index)

    def checkpoint_dir(self) -> Path:
        return self.backend.root / "reindex"

    def settle(self, target: Any) -> int:
        """Index what the replay put on the local stream (the local "event source mapping": before the command
        returns), and say which of those records the pipeline dead-lettered (whichever runner indexed them): 1 if
        any, else 0."""
        self.backend.drain()
        self.drained = True
        letters = self.backend.dead_lettered(target.receipts)
        if not letters:
            return 0
        print(f"the local pipeline dead-lettered {len(letters)} replayed record(s) (see the warnings above): "
              "`python scripts/redrive.py list --local --pending` shows them and why", file=sys.stderr)
        return 1

    def close(self, *, drain: bool) -> None:
        if drain and not getattr(self, "drained", False):
            self.backend.drain()  # an interrupted replay: what it put is still indexed before it returns
        self.backend.close()


class Aws:
    """The deployed pipeline's archive bucket, stream, index and dead-letter bucket."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.res = AwsResources(args)

    def archive(self) -> Source:
        bucket = self.res.name(contract.ARCHIVE_BUCKET, hint="is the archive disabled (archive_enabled in "
                               "cdk.json)? Enable it and deploy, or replay with --from-dir / --from-jsonl")
        return self.res.backend.archive(bucket, HourWindow.parse(self.args.since, self.args.until))

    def stream_target(self) -> StreamTarget:
        stream = self.res.stream()
        return StreamTarget(stream, dead_letters=self.res.dead_letters(), description=f"stream:{stream.stream_name}",
                            identity=self.pipeline_index_identity(),
                            max_ts_skew_seconds=self.res.max_ts_skew_seconds())

    def pipeline_index_identity(self) -> str | None:
        """The identity of the index the pipeline's indexer writes (GetIndex), when the stack names it. Without it
        the replay still runs, but cannot tell a replaced index from the checkpoint's: a note says so."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            bucket, name = self.res.deployed(contract.VECTOR_BUCKET), self.res.deployed(contract.VECTOR_INDEX)
            if not bucket or not name:
                return None
            return self.res.backend.vector_index(bucket, name).identity
        except (RagError, BotoCoreError, ClientError) as exc:
            why = explain(exc, region=self.res.backend.region)
            print(f"note: the pipeline's vector index could not be read ({why}), so a checkpoint cannot tell "
                  "whether it was replaced since", file=sys.stderr)
            return None

    def index_target(self) -> IndexTarget:
        from rtrag.aws.compose import check_embedding_fits
        from rtrag.core.config import IndexerSettings

        backend = self.res.backend
        bucket, name = self.res.name(contract.VECTOR_BUCKET), self.res.name(contract.VECTOR_INDEX)
        try:
            index = backend.vector_index(bucket, name)
        except ResourceMissing:
            raise UserError(
                f"vector index {name} not found in bucket {bucket}: create it first, e.g. `aws s3vectors create-index "
                f"--vector-bucket-name {bucket} --index-name {name} --data-type float32 --dimension 1024 "
                f"--distance-metric cosine --metadata-configuration nonFilterableMetadataKeys={SOURCE_TEXT_KEY}`"
            ) from None
        model_id = self.res.optional(contract.EMBED_MODEL) or TITAN_V2_MODEL_ID
        check_embedding_fits(index, model_id=model_id)
        # The indexer's own settings (chunking, concurrency, retries from the environment, validated), aimed at
        # this index.
        settings = IndexerSettings.from_env(os.environ | {
            contract.ENV_VECTOR_BUCKET: bucket, contract.ENV_VECTOR_INDEX: name,
            contract.ENV_DEAD_LETTER_BUCKET: self.res.name(contract.DEAD_LETTER_BUCKET),
            contract.ENV_VERSION_TABLE: self.res.name(contract.VERSION_TABLE),
            contract.ENV_EMBED_MODEL_ID: model_id, contract.ENV_EMBED_DIMENSIONS: str(index.dimension),
            contract.ENV_VECTOR_INDEX_GENERATION: index.generation or ""})
        if (bucket, name) == (self.res.deployed(contract.VECTOR_BUCKET), self.res.deployed(contract.VECTOR_INDEX)):
            self.check_generation(index)
            if not self.args.indexer_disabled:
                raise UserError(
                    f"vector index {name} is the one the pipeline's indexer writes: a document that both the "
                    "indexer and this replay write at once can keep chunks of the older version for good. Replay "
                    f"--to-stream (through the indexer), or {pause_indexer(self.res.indexer_function())}")
        return IndexTarget(backend.indexer(settings), description=f"index:{bucket}/{name}",
                           identity=index.identity)

    def exclusive(self, target_kind: str) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def check_generation(self, index: Any) -> None:
        """Refuse to replay into the pipeline's own index when it is not the one the stack gave the indexer (it
        was deleted and made again outside the stack): the indexer would go on trusting the earlier index's
        version ledger entries, so its next events for documents written here would be skipped as unchanged or
        older, against an index that no longer holds what those entries say."""
        try:
            known = self.res.outputs.get(contract.OUTPUT_VECTOR_INDEX_GENERATION)
        except UserError:
            return  # no stack to ask (names given by flags or the environment)
        if known and index.generation and known != index.generation:
            raise UserError(
                f"vector index {index.index} is the pipeline's, and it was created again outside the stack (the "
                f"stack gave its indexer generation {known}; the index's is {index.generation}), so the indexer would "
                "trust the earlier index's version ledger: give the pipeline a new index, `make deploy "
                "CDK_FLAGS=\"-c vector_index_name=NEW\"`, then replay into it (see Reindex)")

    def checkpoint_dir(self) -> Path:
        return Path(CHECKPOINT_DIR)

    def settle(self, target: Any) -> int:
        return 0  # the deployed indexer reads the stream on its own; its dead letters are redrive.py's to list

    def close(self, *, drain: bool) -> None:
        pass


def open_source(args: argparse.Namespace, backend: Local | Aws, started: float):
    window = HourWindow.parse(args.since, args.until)
    if args.from_dir:
        return "dir", DirectoryArchive(args.from_dir, window=window)
    if args.from_jsonl:
        return "jsonl", JsonLinesFile(args.from_jsonl, started=started)
    if isinstance(backend, Local):
        return "stream", backend.archive()
    return "archive", backend.archive()


def describe(counts: ReplayCounts, *, to_index: bool) -> str:
    letters = f"dead-lettered {counts.dead_lettered}"
    if counts.already_dead_lettered:
        letters += f" ({counts.already_dead_lettered} already dead-lettered)"
    if to_index:
        return (f"read {counts.read}, indexed {counts.indexed}, skipped unchanged {counts.unchanged}, "
                f"skipped stale or superseded {counts.stale}, {letters}, "
                f"failed {counts.failed}; {counts.embedding_calls} embedding call(s)")
    return f"read {counts.read}, sent {counts.sent}, {letters}, failed {counts.failed}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    def body() -> int:
        started = time.time()
        backend = Local(args) if args.local else Aws(args)
        try:
            code, target = replay(args, backend, started)
            if args.to_stream:
                code = max(code, backend.settle(target))
            return code
        finally:
            backend.close(drain=args.to_stream)

    return run_cli(body, region=lambda: current_region(args))


def replay(args: argparse.Namespace, backend: Local | Aws, started: float) -> tuple[int, Any]:
    """Run the replay job; its exit status, and the target it delivered to."""
    source_kind, source = open_source(args, backend, started)
    target_kind = "index" if args.to_index else "stream"
    target = backend.index_target() if args.to_index else backend.stream_target()
    job = job_name(source.description, target.description, source_kind=source_kind, target_kind=target_kind)
    target.shard_id = f"reindex-{job}"  # the shard of the job's synthetic records (letters are keyed by record)
    path = Path(args.checkpoint) if args.checkpoint else backend.checkpoint_dir() / f"{job}.json"
    with job_lock(path):
        return _replay(args, backend, source, source_kind, target, target_kind, job, path), target


def _replay(args: argparse.Namespace, backend: Local | Aws, source: Any, source_kind: str, target: Any,
            target_kind: str, job: str, path: Path) -> int:
    checkpoint = open_checkpoint(path, job=job, source=source.description, target=target.description,
                                 restart=args.restart, target_id=target.identity)
    if checkpoint.superseded:
        # Its version ledger starts empty too: the local one lives in the index's file, and the DynamoDB one reads
        # entries written for an earlier index of the same name as absent (their generation).
        print(f"job {job}: checkpoint {path} is of an index deleted since (another was created in its place): "
              "replaying from the start", file=sys.stderr)
    resumed = checkpoint.position is not None
    pin_ends = getattr(source, "pin_ends", None)  # a source that grows as it is replayed (the local stream)
    if pin_ends is not None:
        checkpoint.source_ends = pin_ends(checkpoint.source_ends if resumed else None)
    if resumed:
        print(f"job {job}: resuming after {checkpoint.position.unit} #{checkpoint.position.offset} "
              f"({checkpoint.ordinal} record(s) done); checkpoint {path}", file=sys.stderr)
    else:
        print(f"job {job}: {source.description} -> {target.description}; checkpoint {path}", file=sys.stderr)
    batch_size = args.batch_size or (DEFAULT_INDEX_BATCH if args.to_index else MAX_RECORDS_PER_PUT_RECORDS)
    run = Replay(source, target, checkpoint, path, batch_size=batch_size,
                 progress=progress_printer(f"replaying {source.unit_label}"))
    try:
        with backend.exclusive(target_kind):
            counts = run.run()
    except ReplayStopped:
        print(f"stopped: {describe(run.run_counts, to_index=args.to_index)}", file=sys.stderr)
        raise
    except KeyboardInterrupt:
        try:  # what the checkpoint file says (an interrupt while it was being saved leaves the previous one)
            saved = Checkpoint.load(path)
        except RagError:
            saved = None
        done = saved.ordinal if saved is not None and saved.job == job else 0
        print(f"\nstopped after {done} record(s); run the same command again to resume (checkpoint {path})",
              file=sys.stderr)
        raise
    if isinstance(source, DirectoryArchive) and source.outside_window:
        print(f"{source.outside_window} file(s) outside --since/--until or Firehose's date layout were not read",
              file=sys.stderr)
    if args.json:
        print(json.dumps({"job": job, "checkpoint": str(path), "source": source.description,
                          "target": target.description, "resumed": resumed, "run": counts.to_json(),
                          "total": checkpoint.totals.to_json()}))
    else:
        print(describe(counts, to_index=args.to_index))
        if resumed:
            print(f"job total: {describe(checkpoint.totals, to_index=args.to_index)}")
    if not counts.read:  # a command that did nothing says so
        why = ("this job replays it as it was when the job started, and has done so (--restart replays it as it is "
               "now)" if resumed and pin_ends is not None
               else "nothing was added to it since this job's last run (--restart replays it all again)" if resumed
               else "it holds no events in the window given" if args.since or args.until else "it holds no events")
        if not resumed and source_kind == "stream":
            why += " (put some with `python scripts/put_event.py --local`)"
        print(f"note: nothing was replayed from {source.description}: {why}", file=sys.stderr)
    if counts.dead_lettered:
        local = " --local" if isinstance(backend, Local) else ""
        print(f"{counts.dead_lettered} record(s) were not valid events and were dead-lettered, not replayed: "
              f"`python scripts/redrive.py list --kind invalid{local}` shows them and why; fix the source (or the "
              "events) and redrive them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
