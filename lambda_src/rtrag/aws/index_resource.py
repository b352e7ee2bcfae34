"""The custom resource that owns one Amazon S3 Vectors vector bucket and one index in it: its properties and the
names it derives (its create, update and delete are in ``rtrag.aws.index_lifecycle``).

``rtrag.functions.vector_index_resource.on_event`` is the ``onEvent`` handler of a CDK Provider framework (no
``isComplete``: every S3 Vectors call here completes synchronously). It returns
``{"PhysicalResourceId": <index ARN>, "Data": {...}}``; raising fails the CloudFormation operation and the
framework shows the exception's message as the status reason, so every error names its cause and its fix.

ResourceProperties (CloudFormation passes scalars as strings):

==============================  ========  ===============================================================
property                        default   rule
==============================  ========  ===============================================================
``VectorBucketName``            required  base name: 3..54 chars, lowercase letters, digits, ``-``
``IndexName``                   required  base name: 3..54 chars, lowercase letters, digits, ``-``, ``.``
``Dimension``                   required  whole number 1..4096
``DistanceMetric``              cosine    ``cosine`` or ``euclidean``
``DataType``                    float32   ``float32``
``NonFilterableMetadataKeys``   []        list of up to 10 distinct keys, 1..63 chars each
``SseType``                     AES256    ``AES256`` or ``aws:kms``
``KmsKeyArn``                   (none)    required with ``aws:kms`` (a full KMS key ARN), else absent
``RetainOnDelete``              false     ``true`` or ``false``
``OwnerTagKey``                 (none)    a tag key (1..128 chars, not ``aws:*``), see "Ownership"
``DataVersion``                 (none)    any text; the template's is ``contract.VECTOR_INDEX_DATA_VERSION``, see "Data"
==============================  ========  ===============================================================

Data: ``VectorBucketName``, ``VectorBucketArn``, ``IndexName``, ``IndexArn`` -- the actual names and ARNs, which
the stack must reference (``get_att``) instead of the base names -- and ``IndexGeneration``, the index's creation
time in epoch milliseconds (the indexer stamps its version ledger with it). CloudFormation keeps the Data of the
last response and asks the handler again only when a property changes, so a stack made before a Data key existed
would fail its ``get_att`` of that key; the template therefore passes ``DataVersion``, and a new Data key comes
with a new ``contract.VECTOR_INDEX_DATA_VERSION``: the property change makes CloudFormation send an Update, which
answers with the whole Data.

Naming. S3 Vectors cannot change an index's parameters or a bucket's encryption, and two indexes in one
bucket cannot share a name, so a change must create a new index (CloudFormation then deletes the old one,
see ``update_vector_index``). Each actual name is therefore ``f"{base}-{hash8}"``, where ``hash8`` is the
first 8 hex digits of the SHA-256 of the resource's immutable parameters in canonical JSON: the index's data
type, dimension, distance metric and sorted non-filterable keys; the bucket's sseType (and kmsKeyArn). A base
name may thus be at most ``MAX_BUCKET_BASE_NAME_CHARS`` / ``MAX_INDEX_BASE_NAME_CHARS`` (54) characters.
A replacement starts with an EMPTY index: the vectors of the old one are deleted with it.

Ownership. With ``OwnerTagKey`` set, every bucket and index the resource makes or keeps carries the tag
``OwnerTagKey = <the event's StackId>``. After a rename (another base name), CloudFormation's cleanup Delete names
the EARLIER bucket and index, which the role's name patterns no longer cover; the role may delete them by this tag
instead (stacks/vector_index.py), so a rename never orphans the old index. An Update that keeps the names tags
what exists, so resources made before the tag was introduced are adopted on the next deploy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtrag.core import contract, limits, names

NAME_HASH_CHARS = 8
_NAME_SUFFIX_CHARS = 1 + NAME_HASH_CHARS  # "-" + hash
MAX_BUCKET_BASE_NAME_CHARS = limits.NAME_MAX_CHARS - _NAME_SUFFIX_CHARS
MAX_INDEX_BASE_NAME_CHARS = limits.NAME_MAX_CHARS - _NAME_SUFFIX_CHARS

DATA_TYPES = ("float32",)
DISTANCE_METRICS = ("cosine", "euclidean")
DEFAULT_DISTANCE_METRIC = "cosine"
SSE_AES256 = "AES256"
SSE_KMS = "aws:kms"
SSE_TYPES = (SSE_AES256, SSE_KMS)
MAX_METADATA_KEY_CHARS = limits.MAX_METADATA_KEY_NAME_CHARS

# The key ARN form only: S3 Vectors rejects key ids and aliases (botocore s3vectors model, shape KmsKeyArn); the
# same pattern the stack's settings check at synth.
_KMS_KEY_ARN_RE = re.compile(contract.KMS_KEY_ARN_PATTERN)
_INDEX_ARN_RE = re.compile(
    r"^(?P<bucket_arn>arn:aws[-a-z0-9]*:s3vectors:[a-z0-9-]+:[0-9]{12}:bucket/"
    r"(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9]))"
    r"/index/(?P<index>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$"
)

_PROPERTY_NAMES = (
    "VectorBucketName",
    "IndexName",
    "Dimension",
    "DistanceMetric",
    "DataType",
    "NonFilterableMetadataKeys",
    "SseType",
    "KmsKeyArn",
    "RetainOnDelete",
    "OwnerTagKey",
    "DataVersion",
)
_FRAMEWORK_PROPERTIES = ("ServiceToken",)  # CloudFormation adds it to every custom resource's properties


class VectorIndexResourceError(Exception):
    """The custom resource could not do what CloudFormation asked; the message names the cause and the fix."""


class InvalidProperties(VectorIndexResourceError, ValueError):
    """The custom resource's properties break a rule; nothing was created or changed."""


class ResourceConflict(VectorIndexResourceError):
    """A bucket or index with the derived name exists with other immutable parameters."""


class S3VectorsError(VectorIndexResourceError):
    """An S3 Vectors call failed; ``code`` is the AWS error code (or the botocore error class)."""

    def __init__(self, message: str, *, operation: str, code: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


@dataclass(frozen=True)
class IndexParams:
    """The parameters S3 Vectors fixes when it creates an index."""

    data_type: str
    dimension: int
    distance_metric: str
    non_filterable_metadata_keys: tuple[str, ...]  # sorted: a set, its order means nothing

    def canonical(self) -> dict[str, Any]:
        # Part of the deployed contract: whatever goes in here names the index, so adding a key renames
        # (replaces and empties) every deployed index. A future parameter must join only when not default.
        return {
            "dataType": self.data_type,
            "dimension": self.dimension,
            "distanceMetric": self.distance_metric,
            "nonFilterableMetadataKeys": list(self.non_filterable_metadata_keys),
        }


@dataclass(frozen=True)
class Encryption:
    """A vector bucket's encryption, fixed at creation."""

    sse_type: str = SSE_AES256
    kms_key_arn: str | None = None

    def canonical(self) -> dict[str, str]:
        """The API's ``encryptionConfiguration``; also what the bucket name's hash is taken of."""
        config = {"sseType": self.sse_type}
        if self.kms_key_arn:
            config["kmsKeyArn"] = self.kms_key_arn
        return config

    @classmethod
    def from_api(cls, config: Mapping[str, Any] | None) -> Encryption:
        config = config or {}  # not reported: SSE-S3, the service default
        return cls(sse_type=config.get("sseType", SSE_AES256), kms_key_arn=config.get("kmsKeyArn"))


@dataclass(frozen=True)
class VectorIndexProperties:
    """Validated ResourceProperties."""

    bucket_base_name: str
    index_base_name: str
    index: IndexParams
    encryption: Encryption
    retain_on_delete: bool
    owner_tag_key: str | None = None

    @property
    def bucket_name(self) -> str:
        return bucket_name_for(self.bucket_base_name, self.encryption)

    @property
    def index_name(self) -> str:
        return index_name_for(self.index_base_name, self.index)


@dataclass(frozen=True)
class IndexRef:
    """A bucket and index named by an index ARN (this resource's physical id)."""

    arn: str
    bucket_arn: str
    bucket_name: str
    index_name: str

    def data(self) -> dict[str, str]:
        return {
            "VectorBucketName": self.bucket_name,
            "VectorBucketArn": self.bucket_arn,
            "IndexName": self.index_name,
            "IndexArn": self.arn,
        }


def _short_hash(params: Mapping[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:NAME_HASH_CHARS]


def bucket_name_for(base_name: str, encryption: Encryption) -> str:
    """The actual vector bucket name: ``base_name`` plus a hash of the bucket's encryption."""
    return f"{base_name}-{_short_hash(encryption.canonical())}"


def index_name_for(base_name: str, params: IndexParams) -> str:
    """The actual index name: ``base_name`` plus a hash of the index's immutable parameters."""
    return f"{base_name}-{_short_hash(params.canonical())}"


def parse_index_arn(physical_id: str | None) -> IndexRef | None:
    """The bucket and index an index ARN names, or None when ``physical_id`` is not an index ARN."""
    match = _INDEX_ARN_RE.match(physical_id or "")
    if not match:
        return None
    return IndexRef(
        arn=physical_id,
        bucket_arn=match["bucket_arn"],
        bucket_name=match["bucket"],
        index_name=match["index"],
    )


def parse_retain_on_delete(props: Mapping[str, Any]) -> bool:
    """``RetainOnDelete`` as a bool (absent: False)."""
    value = props.get("RetainOnDelete", "false")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidProperties(f"RetainOnDelete must be 'true' or 'false', got {value!r}")


def parse_properties(props: Mapping[str, Any] | None) -> VectorIndexProperties:
    """Validate the ResourceProperties; raise InvalidProperties listing every problem found."""
    props = props or {}
    problems: list[str] = []

    unknown = sorted(set(props) - set(_PROPERTY_NAMES) - set(_FRAMEWORK_PROPERTIES))
    if unknown:
        problems.append(f"unknown properties {unknown}; the known ones are {list(_PROPERTY_NAMES)}")

    bucket_base = _base_name(
        props, "VectorBucketName", names.validate_bucket_name, MAX_BUCKET_BASE_NAME_CHARS, problems
    )
    index_base = _base_name(props, "IndexName", names.validate_index_name, MAX_INDEX_BASE_NAME_CHARS, problems)
    dimension = _dimension(props.get("Dimension"), problems)
    distance_metric = _choice(props, "DistanceMetric", DISTANCE_METRICS, DEFAULT_DISTANCE_METRIC, problems)
    data_type = _choice(props, "DataType", DATA_TYPES, DATA_TYPES[0], problems)
    keys = _non_filterable_keys(props.get("NonFilterableMetadataKeys", []), problems)
    encryption = _encryption(props, problems)
    try:
        retain = parse_retain_on_delete(props)
    except InvalidProperties as err:
        problems.append(str(err))
        retain = False

    owner_tag_key = _owner_tag_key(props.get("OwnerTagKey"), problems)
    # DataVersion is not checked: it only makes CloudFormation call the handler again, and a rollback sends the
    # earlier template's value to this handler.

    if problems:
        raise InvalidProperties("Invalid vector index properties: " + "; ".join(problems))
    return VectorIndexProperties(
        bucket_base_name=bucket_base,
        index_base_name=index_base,
        index=IndexParams(data_type, dimension, distance_metric, keys),
        encryption=encryption,
        retain_on_delete=retain,
        owner_tag_key=owner_tag_key,
    )


_TAG_KEY_RE = re.compile(r"^[\w .:/=+\-@]{1,128}$")


def _owner_tag_key(value: Any, problems: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _TAG_KEY_RE.match(value) or value.lower().startswith("aws:"):
        problems.append(
            "OwnerTagKey must be a tag key of 1..128 letters, digits, spaces or _ . : / = + - @, not starting "
            f"with 'aws:', got {value!r}"
        )
        return None
    return value


def _base_name(props, key, validate, max_chars, problems) -> str:
    value = props.get(key)
    if value is None or value == "":
        problems.append(f"{key} is required")
        return ""
    try:
        return validate(value, max_chars=max_chars)
    except names.InvalidName as err:
        problems.append(
            f"{key}: {err} (it is a base name: the resource appends '-' and an {NAME_HASH_CHARS}-character "
            f"hash, and S3 Vectors allows {limits.NAME_MAX_CHARS} characters in all)"
        )
        return ""


def _dimension(value: Any, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r"[0-9]+", str(value).strip()):
        problems.append(f"Dimension must be a whole number from 1 to {limits.MAX_DIMENSION}, got {value!r}")
        return 0
    dimension = int(str(value).strip())
    if not 1 <= dimension <= limits.MAX_DIMENSION:
        problems.append(f"Dimension must be from 1 to {limits.MAX_DIMENSION}, got {dimension}")
    return dimension


def _choice(props, key, allowed, default, problems) -> str:
    value = props.get(key, default)
    if value not in allowed:
        problems.append(f"{key} must be one of {list(allowed)}, got {value!r}")
    return value


def _non_filterable_keys(value: Any, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(key, str) for key in value):
        problems.append(f"NonFilterableMetadataKeys must be a list of strings such as ['source_text'], got {value!r}")
        return ()
    if len(value) > limits.MAX_NON_FILTERABLE_KEYS:
        problems.append(
            f"NonFilterableMetadataKeys has {len(value)} keys; "
            f"S3 Vectors allows at most {limits.MAX_NON_FILTERABLE_KEYS}"
        )
    bad = [key for key in value if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS]
    if bad:
        problems.append(f"NonFilterableMetadataKeys {bad} must each be 1..{MAX_METADATA_KEY_CHARS} characters long")
    duplicates = sorted({key for key in value if value.count(key) > 1})
    if duplicates:
        problems.append(f"NonFilterableMetadataKeys lists {duplicates} more than once")
    return tuple(sorted(value))


def _encryption(props: Mapping[str, Any], problems: list[str]) -> Encryption:
    sse_type = _choice(props, "SseType", SSE_TYPES, SSE_AES256, problems)
    key_arn = props.get("KmsKeyArn") or None
    if sse_type == SSE_KMS:
        if key_arn is None:
            problems.append("KmsKeyArn is required when SseType is 'aws:kms': pass the full ARN of a symmetric KMS key")
        elif not isinstance(key_arn, str) or not _KMS_KEY_ARN_RE.match(key_arn):
            problems.append(
                f"KmsKeyArn must be a full key ARN like 'arn:aws:kms:REGION:ACCOUNT:key/KEY-ID' "
                f"(not a key id or alias), got {key_arn!r}"
            )
    elif sse_type == SSE_AES256 and key_arn is not None:
        problems.append("KmsKeyArn is allowed only when SseType is 'aws:kms'; remove it or set SseType to 'aws:kms'")
        key_arn = None
    return Encryption(sse_type=sse_type, kms_key_arn=key_arn if sse_type == SSE_KMS else None)


