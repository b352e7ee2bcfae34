"""The names and bounds that cross layers, in one place: the stack (``stacks/``), the Lambda code and the scripts
all import them from here, so a name changed here changes on every side at once.

- the environment of the indexer function (the stack sets it, ``core.config`` reads it);
- the deployed resources the scripts find by a flag, then an environment variable, then a stack output;
- the stack's other outputs;
- the indexer's metric names (its handler emits them, the stack's dashboard and alarms read them);
- the bounds of the settings that both the stack (at synth) and the indexer (at cold start) check;
- the key names of the version ledger's table.

Pure data: this module imports nothing but ``typing`` (and compiles nothing: the indexer imports it at cold
start, so a pattern is kept as text and compiled where it is used).
"""

from __future__ import annotations

from typing import NamedTuple

# The indexer function's environment (DESIGN: "the environment variable names of the indexer stay as documented").
ENV_VECTOR_BUCKET = "VECTOR_BUCKET"
ENV_VECTOR_INDEX = "VECTOR_INDEX"
ENV_DEAD_LETTER_BUCKET = "DEAD_LETTER_BUCKET"
ENV_VERSION_TABLE = "VERSION_TABLE"
ENV_VECTOR_INDEX_GENERATION = "VECTOR_INDEX_GENERATION"  # its creation time, epoch ms (the custom resource's)
ENV_TOMBSTONE_RETENTION_DAYS = "TOMBSTONE_RETENTION_DAYS"
ENV_MAX_TS_SKEW_SECONDS = "MAX_TS_SKEW_SECONDS"
ENV_EMBED_MODEL_ID = "EMBED_MODEL_ID"
ENV_EMBED_DIMENSIONS = "EMBED_DIMENSIONS"
ENV_EMBED_CONCURRENCY = "EMBED_CONCURRENCY"
ENV_EMBED_MAX_ATTEMPTS = "EMBED_MAX_ATTEMPTS"
ENV_CHUNK_SIZE_CHARS = "CHUNK_SIZE_CHARS"
ENV_CHUNK_OVERLAP_CHARS = "CHUNK_OVERLAP_CHARS"
ENV_POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
ENV_POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"


class Resource(NamedTuple):
    """A deployed resource a script needs: given by ``flag``, else ``$env``, else the stack output ``output``."""

    what: str
    flag: str
    env: str
    output: str


STREAM = Resource("the Kinesis stream", "--stream-name", "STREAM_NAME", "StreamName")
VECTOR_BUCKET = Resource("the vector bucket", "--vector-bucket", ENV_VECTOR_BUCKET, "VectorBucketName")
VECTOR_INDEX = Resource("the vector index", "--vector-index", ENV_VECTOR_INDEX, "VectorIndexName")
DEAD_LETTER_BUCKET = Resource("the dead-letter bucket", "--dead-letter-bucket", ENV_DEAD_LETTER_BUCKET,
                              "DeadLetterBucketName")
VERSION_TABLE = Resource("the version ledger's table", "--version-table", ENV_VERSION_TABLE, "VersionTableName")
ARCHIVE_BUCKET = Resource("the archive bucket", "--archive-bucket", "ARCHIVE_BUCKET", "ArchiveBucketName")
EMBED_MODEL = Resource("the embedding model", "--embed-model-id", ENV_EMBED_MODEL_ID, "EmbedModelId")
EMBED_DIMENSIONS = Resource("the embedding dimension", "--embed-dimensions", ENV_EMBED_DIMENSIONS,
                            "EmbedDimensions")
ANSWER_MODEL = Resource("the answering model", "--model-id", "ANSWER_MODEL_ID", "AnswerModelId")
RESOURCES = (STREAM, VECTOR_BUCKET, VECTOR_INDEX, DEAD_LETTER_BUCKET, VERSION_TABLE, ARCHIVE_BUCKET, EMBED_MODEL,
             EMBED_DIMENSIONS, ANSWER_MODEL)

# The stack's other outputs (README, "Deploy to AWS").
OUTPUT_STREAM_ARN = "StreamArn"
OUTPUT_VECTOR_INDEX_ARN = "VectorIndexArn"
OUTPUT_VECTOR_INDEX_GENERATION = "VectorIndexGeneration"  # the generation the indexer was given
OUTPUT_INDEXER_FUNCTION = "IndexerFunctionName"
OUTPUT_MAX_TS_SKEW = "MaxTsSkewSeconds"  # the indexer's MAX_TS_SKEW_SECONDS: the scripts hold re-put events to it
OUTPUT_PRODUCER_POLICY = "ProducerPolicyArn"
OUTPUT_ASKER_POLICY = "AskerPolicyArn"
OUTPUT_OPERATOR_POLICY = "OperatorPolicyArn"
OUTPUT_REGION = "Region"
OUTPUT_ALARM_TOPIC = "AlarmTopicArn"
OUTPUT_DASHBOARD_NAME = "DashboardName"
OUTPUT_DASHBOARD_URL = "DashboardUrl"

# The indexer's EMF metrics (namespace "<prefix>/<stack name>"; dimension "service").
METRICS_NAMESPACE_PREFIX = "RealtimeRag"
DEFAULT_METRICS_NAMESPACE = METRICS_NAMESPACE_PREFIX
INDEXER_SERVICE = "indexer"
METRIC_INDEX_LAG = "IndexLag"  # milliseconds from a record's arrival to its document being searchable
METRIC_RECORDS = "RecordsReceived"
METRIC_UPSERTED = "DocumentsUpserted"
METRIC_RETAGGED = "DocumentsRetagged"
METRIC_DELETED = "DocumentsDeleted"
METRIC_UNCHANGED = "DocumentsSkippedUnchanged"
METRIC_STALE = "DocumentsSkippedStale"
METRIC_SUPERSEDED = "EventsSuperseded"
METRIC_CHUNKS_WRITTEN = "ChunksWritten"
METRIC_CHUNKS_DELETED = "ChunksDeleted"
METRIC_EMBEDDING_CALLS = "EmbeddingCalls"
METRIC_DEAD_LETTERS = "DeadLetters"
METRIC_FAILED = "DocumentsFailed"
METRIC_MISKEYED = "RecordsMisKeyed"  # put under a partition key other than their doc id's: per-document order at risk

# Bounds that the stack checks at synth and the indexer at cold start.
MIN_CHUNK_CHARS = 200
# A chunk must stay under Titan V2's 8,192-token input even at one token per character (with a margin).
MAX_CHUNK_CHARS = 8000
# ... and at one token per byte of UTF-8, which bounds a byte-level tokenizer (4 tokens for an emoji): the chunker
# cuts a chunk of wide characters shorter than chunk_size_chars.
MAX_CHUNK_BYTES = 8000
DEFAULT_CHUNK_CHARS = 2000
DEFAULT_CHUNK_OVERLAP_CHARS = 200
MIN_EMBED_CONCURRENCY, MAX_EMBED_CONCURRENCY, DEFAULT_EMBED_CONCURRENCY = 1, 64, 16
MIN_EMBED_MAX_ATTEMPTS, MAX_EMBED_MAX_ATTEMPTS, DEFAULT_EMBED_MAX_ATTEMPTS = 1, 20, 6
MAX_TOMBSTONE_RETENTION_DAYS = 36_500  # 0 keeps tombstones for ever
DEFAULT_TOMBSTONE_RETENTION_DAYS = 400
# How far ahead of its arrival an event's ts may be (producers' clocks drift; beyond this it is a wrong clock or
# milliseconds, and would freeze the document): one day by default, at most a year.
DEFAULT_MAX_TS_SKEW_SECONDS = 86_400
MIN_MAX_TS_SKEW_SECONDS = 60
MAX_MAX_TS_SKEW_SECONDS = 365 * 86_400


def max_chunk_overlap(size: int) -> int:
    """The largest overlap allowed for chunks of ``size`` characters: less than half a chunk, so every chunk
    moves the window forward by more than it repeats."""
    return (size - 1) // 2


# A full KMS key ARN (S3 Vectors rejects aliases and bare key ids); multi-Region keys start with "mrk-".
KMS_KEY_ARN_PATTERN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-)?[0-9a-f-]{32,36}$"

# The version ledger's table (stacks/version_table.py defines it, rtrag.aws.ledger reads and writes it).
LEDGER_PARTITION_KEY = "pk"
LEDGER_TTL_ATTRIBUTE = "expires_at"

# The tag the vector index custom resource puts on every vector bucket and index it makes, valued with the
# CloudFormation stack id (stacks/vector_index.py, rtrag.aws.index_lifecycle): the handler's role may delete an
# EARLIER bucket or index of this stack (after a rename) by this tag, since its names are no longer the stack's.
VECTOR_OWNER_TAG_KEY = "rtrag:stack-id"

# The Data the vector index custom resource returns, by version: 2 added IndexGeneration. The template passes it as
# the DataVersion property, so that a new Data key reaches a stack made before it (rtrag.aws.index_resource, "Data").
VECTOR_INDEX_DATA_VERSION = "2"

# In a named local index's directory: the lock a replay into it (reindex.py) or a repair (check_index.py --fix)
# holds, so that it is the index's one writer.
LOCAL_INDEX_WRITER_LOCK = "writer.lock"
