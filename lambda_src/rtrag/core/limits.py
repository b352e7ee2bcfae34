"""Documented service limits the pipeline enforces itself, before AWS would reject a request.

Sources: Amazon S3 Vectors "Limitations and restrictions" and API reference (PutVectors, GetVectors,
DeleteVectors, QueryVectors, CreateIndex, CreateVectorBucket); Amazon Titan Text Embeddings V2 model
parameters; Amazon Kinesis Data Streams quotas. Checked November 2026 (see shared/aws-facts.md).
"""

# S3 Vectors
MAX_VECTORS_PER_PUT = 500  # PutVectors: vectors per call
MAX_KEYS_PER_DELETE = 500  # DeleteVectors: keys per call
MAX_KEYS_PER_GET = 100  # GetVectors: keys per call
MAX_LIST_PAGE = 1_000  # ListVectors: vectors per page (maxResults)
MAX_PUT_PAYLOAD_BYTES = 20 * 1024 * 1024  # PutVectors request payload
MAX_TOP_K = 100  # QueryVectors topK
MAX_DIMENSION = 4096
MAX_METADATA_BYTES = 40 * 1024  # total metadata per vector
MAX_FILTERABLE_METADATA_BYTES = 2 * 1024  # filterable metadata per vector
MAX_METADATA_KEYS = 50  # metadata keys per vector
MAX_NON_FILTERABLE_KEYS = 10  # declared per index at creation
MAX_VECTOR_KEY_CHARS = 1024
MAX_METADATA_KEY_NAME_CHARS = 63  # metadata key names (botocore s3vectors model, shape MetadataKey)
MAX_FILTER_CONSTRAINTS = 100  # QueryVectors filter constraints (an $in list counts its length)
FLOAT32_MAX = 3.4028234663852886e38  # vectors are float32: larger magnitudes overflow
NAME_MIN_CHARS = 3  # vector bucket and index names
NAME_MAX_CHARS = 63

# Titan Text Embeddings V2
TITAN_V2_MODEL_ID = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_MAX_INPUT_CHARS = 50_000
TITAN_MAX_INPUT_TOKENS = 8_192

# Nova Lite (Amazon Nova user guide: model specifications)
NOVA_LITE_CONTEXT_TOKENS = 300_000  # input and output together
NOVA_LITE_MAX_OUTPUT_TOKENS = 5_000

# Document events (README, "Document events")
MAX_DOC_ID_CHARS = 512

# Kinesis Data Streams
MAX_RECORD_BYTES = 1024 * 1024  # default maximum record size (data + partition key)
MAX_PARTITION_KEY_CHARS = 256
MAX_RECORDS_PER_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024
MAX_SEQUENCE_NUMBER_DIGITS = 129  # SequenceNumber: pattern 0|([1-9]\d{0,128}) (Kinesis API reference)
