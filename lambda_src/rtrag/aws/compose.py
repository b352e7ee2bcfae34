"""The AWS composition root: every AWS adapter the entry points use, built from one boto3 session, each client
configured once here (timeouts, retries, connection pool).

The indexer Lambda builds its ``BatchIndexer`` from the function's environment (``rtrag.functions.indexer``); the
scripts name their resources by flag, environment or stack output (``rtrag.cli``) and ask this for the adapters.
Local mode's root is ``rtrag.local.compose``: the same object graph on local adapters.

The indexer's four adapters are imported with this module; the stream, archive and answer adapters (which pull in
the replay and redrive workflows) only by the factory that builds them, so a Lambda cold start loads no more than
the indexer uses (``bench/cold_start.py`` measures it).
"""

from __future__ import annotations

import os
import platform
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rtrag.aws.ledger import DynamoDBVersionLedger, namespace
from rtrag.aws.s3 import S3DeadLetters
from rtrag.aws.s3vectors import S3VectorsIndex
from rtrag.aws.titan import TitanEmbedder
from rtrag.core import contract
from rtrag.core.config import IndexerSettings
from rtrag.core.errors import ConfigError, ResourceMissing
from rtrag.core.events import SOURCE_TEXT_KEY
from rtrag.core.limits import TITAN_V2_DIMENSIONS, TITAN_V2_MODEL_ID
from rtrag.indexing.batch import BatchIndexer

if TYPE_CHECKING:
    from rtrag.aws.archive import S3Archive
    from rtrag.aws.kinesis import KinesisRangeReader, KinesisStream
    from rtrag.aws.nova import NovaAnswerer
    from rtrag.workflows.answering import Asker
    from rtrag.workflows.sources import HourWindow

# Seconds to connect, and to wait for a response (a Nova answer streams for longer: see answerer()).
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
ANSWER_READ_TIMEOUT_S = 300
# botocore's standard retry mode (exponential backoff with jitter on throttling, 5xx and timeouts) for every
# client but Bedrock, whose throttling by tokens per minute wants the adaptive mode's client-side rate limiting.
STANDARD_ATTEMPTS = 5
APP_ID = "real-time-rag"


@lru_cache(maxsize=1)
def user_agent() -> str:
    """The User-Agent of every client: botocore's standard fields, built once.

    botocore otherwise rebuilds the header from about fifteen components twice per request (once to set it, once
    before signing), a quarter of the CPU of an InvokeModel call on a fake network: the indexer makes hundreds of
    calls per batch (README, Performance). A ``Config(user_agent=...)`` is botocore's public way to fix it; what it
    leaves out is only the per-request feature ids, which are telemetry.
    """
    import boto3
    import botocore

    env = os.environ.get("AWS_EXECUTION_ENV")
    return " ".join(part for part in (
        f"Boto3/{boto3.__version__}", f"md/Botocore#{botocore.__version__}", "ua/2.1",
        f"os/{platform.system().lower()}#{platform.release()}", f"lang/python#{platform.python_version()}",
        f"exec-env/{env}" if env else "", f"app/{APP_ID}") if part)


class AwsBackend:
    """The adapters of one AWS account and Region (those of ``session``; boto3's default session when None, as a
    Lambda function uses)."""

    def __init__(self, session: Any = None):
        if session is None:
            import boto3

            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            session = boto3.DEFAULT_SESSION
        self.session = session
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str, *, read_timeout: int = READ_TIMEOUT_S, attempts: int | None = None,
               pool: int | None = None) -> Any:
        """The one client of ``service`` with this configuration (made on first use)."""
        from botocore.config import Config

        key = (service, read_timeout, attempts, pool)
        with self._lock:
            if key not in self._clients:
                adaptive = service.startswith("bedrock")
                config: dict[str, Any] = {
                    "retries": {"mode": "adaptive" if adaptive else "standard",
                                "max_attempts": attempts or (contract.DEFAULT_EMBED_MAX_ATTEMPTS if adaptive
                                                             else STANDARD_ATTEMPTS)},
                    "connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": read_timeout,
                    "user_agent": user_agent()}
                if pool:
                    config["max_pool_connections"] = pool
                self._clients[key] = self.session.client(service, config=Config(**config))
            return self._clients[key]

    # the indexer
    def indexer(self, settings: IndexerSettings) -> BatchIndexer:
        """The indexer of ``settings``' index, as the Lambda runs it."""
        return BatchIndexer(
            embedder=self.embedder(settings.embed_model_id, settings.embed_dimensions,
                                   concurrency=settings.embed_concurrency, attempts=settings.embed_max_attempts),
            index=self.vector_index(settings.vector_bucket, settings.vector_index,
                                    dimension=settings.embed_dimensions),
            ledger=self.ledger(settings.version_table, settings.vector_bucket, settings.vector_index,
                               generation=settings.index_generation),
            dead_letters=self.dead_letters(settings.dead_letter_bucket),
            chunking=settings.chunking,
            tombstone_seconds=settings.tombstone_seconds,
            max_ts_skew_seconds=settings.max_ts_skew_seconds,
        )

    def embedder(self, model_id: str, dimensions: int, *, concurrency: int = contract.DEFAULT_EMBED_CONCURRENCY,
                 attempts: int = contract.DEFAULT_EMBED_MAX_ATTEMPTS) -> TitanEmbedder:
        bedrock = self.client("bedrock-runtime", attempts=attempts, pool=max(10, concurrency))
        return TitanEmbedder(bedrock, model_id=model_id, dimensions=dimensions, concurrency=concurrency)

    def vector_index(self, bucket: str, name: str, *, dimension: int | None = None) -> S3VectorsIndex:
        """The index; with no ``dimension`` it is read from the index (GetIndex), which must then exist."""
        index = S3VectorsIndex(self.client("s3vectors"), bucket=bucket, index=name, dimension=dimension or 0)
        if dimension is None:
            index.described = self.describe_index(index)
            index.dimension = int(index.described["dimension"])
        return index

    def describe_index(self, index: S3VectorsIndex) -> dict[str, Any]:
        try:
            return index.describe()
        except ResourceMissing:
            raise
        except Exception as exc:
            if getattr(exc, "code", None) == "NotFoundException":
                raise ResourceMissing(f"vector index {index.index} was not found in bucket {index.bucket}",
                                      resource=contract.VECTOR_INDEX) from None
            raise

    def ledger(self, table: str, bucket: str, index: str, *, generation: str | None = None) -> DynamoDBVersionLedger:
        return DynamoDBVersionLedger(self.client("dynamodb"), table=table, namespace=namespace(bucket, index),
                                     generation=generation)

    def dead_letters(self, bucket: str) -> S3DeadLetters:
        return S3DeadLetters(self.client("s3"), bucket=bucket)

    # the stream
    def stream(self, name: str) -> KinesisStream:
        from rtrag.aws.kinesis import KinesisStream

        return KinesisStream(self.client("kinesis"), stream_name=name)

    def range_reader(self) -> KinesisRangeReader:
        from rtrag.aws.kinesis import KinesisRangeReader

        return KinesisRangeReader(self.client("kinesis"))

    def archive(self, bucket: str, window: HourWindow) -> S3Archive:
        from rtrag.aws.archive import S3Archive

        return S3Archive(self.client("s3"), bucket=bucket, window=window)

    # questions
    def asker(self, bucket: str, index: str, *, embed_model_id: str | None = None,
              wanted_dimensions: int | None = None, answer_model_id: str | None = None,
              generate: bool = True) -> Asker:
        """Questions on the deployed index: Titan embeds them with the index's dimension (checked to fit), S3
        Vectors' nearest chunks are re-ranked with BM25 on the question's words, and Nova answers (by default
        through Nova Lite's inference profile for this Region: ``UnsupportedRegion`` where none serves it).
        ``generate=False`` retrieves only, so it needs no answering model and works in any Region."""
        from rtrag.core.regions import NOVA_LITE_MODEL_ID, nova_lite_profile
        from rtrag.workflows.answering import Asker

        if answer_model_id is None:
            # Checked before any call, so that a Region without Nova Lite fails before it costs anything. Retrieval
            # only never calls the answerer: the bare model id stands in for the profile there.
            answer_model_id = nova_lite_profile(self.region) if generate else NOVA_LITE_MODEL_ID
        vector_index = self.vector_index(bucket, index)
        model_id = embed_model_id or TITAN_V2_MODEL_ID
        check_embedding_fits(vector_index, model_id=model_id, wanted_dimensions=wanted_dimensions)
        return Asker(embedder=self.embedder(model_id, vector_index.dimension), index=vector_index,
                     answerer=self.answerer(answer_model_id))

    def answerer(self, model_id: str) -> NovaAnswerer:
        from rtrag.aws.nova import NovaAnswerer

        return NovaAnswerer(self.client("bedrock-runtime", read_timeout=ANSWER_READ_TIMEOUT_S), model_id=model_id)


def check_embedding_fits(index: S3VectorsIndex, *, model_id: str, wanted_dimensions: int | None = None) -> None:
    """Refuse, with the fix, an index that the embedding model cannot fill or query: another dimension than the
    configured one, one Titan V2 cannot produce, or chunk text that would be filterable metadata."""
    if wanted_dimensions is not None and wanted_dimensions != index.dimension:
        raise ConfigError(f"index {index.index} has dimension {index.dimension} but the embeddings are configured "
                          f"for {wanted_dimensions}: set {contract.ENV_EMBED_DIMENSIONS}={index.dimension}, or "
                          "reindex into an index of that dimension")
    if model_id.startswith("amazon.titan-embed-text-v2") and index.dimension not in TITAN_V2_DIMENSIONS:
        raise ConfigError(f"index {index.index} has dimension {index.dimension}; Titan V2 embeds in "
                          f"{', '.join(map(str, TITAN_V2_DIMENSIONS))} only: use an index of one of those")
    described = index.described
    declared = ((described or {}).get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or []
    if described is not None and SOURCE_TEXT_KEY not in declared:
        raise ConfigError(f"index {index.index} does not declare {SOURCE_TEXT_KEY} non-filterable, so chunk text "
                          "would break the 2 KB filterable metadata limit: create the index with "
                          f"--metadata-configuration nonFilterableMetadataKeys={SOURCE_TEXT_KEY}")



