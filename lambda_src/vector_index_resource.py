"""CloudFormation custom resource that owns one Amazon S3 Vectors vector bucket and one index in it.

``on_event`` is the ``onEvent`` handler of a CDK Provider framework (no ``isComplete``: every S3 Vectors call
here completes synchronously). It returns ``{"PhysicalResourceId": <index ARN>, "Data": {...}}``; raising fails
the CloudFormation operation and the framework shows the exception's message as the status reason, so every
error names its cause and its fix.

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
==============================  ========  ===============================================================

Data: ``VectorBucketName``, ``VectorBucketArn``, ``IndexName``, ``IndexArn`` -- the actual names and ARNs,
which the stack must reference (``get_att``) instead of the base names.

Naming. S3 Vectors cannot change an index's parameters or a bucket's encryption, and two indexes in one
bucket cannot share a name, so a change must create a new index (CloudFormation then deletes the old one,
see ``update_vector_index``). Each actual name is therefore ``f"{base}-{hash8}"``, where ``hash8`` is the
first 8 hex digits of the SHA-256 of the resource's immutable parameters in canonical JSON: the index's data
type, dimension, distance metric and sorted non-filterable keys; the bucket's sseType (and kmsKeyArn). A base
name may thus be at most ``MAX_BUCKET_BASE_NAME_CHARS`` / ``MAX_INDEX_BASE_NAME_CHARS`` (54) characters.
A replacement starts with an EMPTY index: the vectors of the old one are deleted with it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rtrag.core import limits, names

logger = Logger(service="vector-index-resource")

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

# The key ARN form only: S3 Vectors rejects key ids and aliases (botocore s3vectors model, shape KmsKeyArn).
_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+$")
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
)
_FRAMEWORK_PROPERTIES = ("ServiceToken",)  # CloudFormation adds it to every custom resource's properties

_TRANSIENT_CODES = frozenset(
    {"TooManyRequestsException", "ServiceUnavailableException", "InternalServerException", "RequestTimeoutException"}
)


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

    if problems:
        raise InvalidProperties("Invalid vector index properties: " + "; ".join(problems))
    return VectorIndexProperties(
        bucket_base_name=bucket_base,
        index_base_name=index_base,
        index=IndexParams(data_type, dimension, distance_metric, keys),
        encryption=encryption,
        retain_on_delete=retain,
    )


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


def _call(client, operation: str, **params: Any) -> dict[str, Any]:
    """Call ``client.<operation>(**params)``; any failure becomes an S3VectorsError that keeps the AWS code."""
    try:
        return getattr(client, operation)(**params)
    except ClientError as err:
        raise _as_s3vectors_error(operation, params, err) from err
    except BotoCoreError as err:
        region = client.meta.region_name
        raise S3VectorsError(
            f"S3 Vectors {operation} could not reach the service in {region}: {err}. Check that S3 Vectors is "
            f"available in {region} and that the function can reach its endpoint.",
            operation=operation,
            code=type(err).__name__,
        ) from err


def _as_s3vectors_error(operation: str, params: Mapping[str, Any], err: ClientError) -> S3VectorsError:
    error = err.response.get("Error", {})
    code = error.get("Code", "Unknown")
    api_name = err.operation_name or operation
    target = "/".join(str(params[key]) for key in ("vectorBucketName", "indexName") if key in params)
    if code == "AccessDeniedException":
        fix = (
            f"Allow s3vectors:{api_name} on this bucket/index in the custom resource function's role "
            "(and, for an aws:kms bucket, let the role and S3 Vectors use the key)."
        )
    elif code == "ServiceQuotaExceededException":
        fix = "An S3 Vectors quota is reached: delete unused vector buckets or indexes, or raise the quota."
    elif code in _TRANSIENT_CODES:
        fix = "S3 Vectors stayed busy or unavailable through the retries: deploy again in a few minutes."
    elif code == "ValidationException":
        fix = "S3 Vectors rejected a parameter: check the custom resource's properties."
    else:
        fix = "See the S3 Vectors error above."
    return S3VectorsError(
        f"S3 Vectors {api_name} on {target or 'the vector bucket'} failed with {code}: "
        f"{error.get('Message', err)}. {fix}",
        operation=api_name,
        code=code,
    )


def ensure_vector_bucket(client, name: str, encryption: Encryption) -> tuple[dict[str, Any], bool]:
    """Create the vector bucket unless it exists with this encryption; return (its description, created)."""
    created = True
    try:
        _call(client, "create_vector_bucket", vectorBucketName=name, encryptionConfiguration=encryption.canonical())
    except S3VectorsError as err:
        # Vector bucket names are unique per account and Region (S3 Vectors naming rules; the model's
        # ConflictException says so too), so a conflict means this account already has it: a retried Create,
        # a rollback, or another index of this stack. Reuse it only if its encryption matches.
        if err.code != "ConflictException":
            raise
        created = False
    bucket = _call(client, "get_vector_bucket", vectorBucketName=name)["vectorBucket"]
    actual = Encryption.from_api(bucket.get("encryptionConfiguration"))
    if actual != encryption:
        raise ResourceConflict(
            f"Vector bucket {name} already exists with encryption {actual.canonical()}, but the properties ask "
            f"for {encryption.canonical()}. Its name is derived from its encryption, so it was made outside this "
            "resource; delete it or choose another VectorBucketName."
        )
    logger.info("vector bucket ready", vector_bucket=name, newly_created=created, encryption=encryption.canonical())
    return bucket, created


def _get_index(client, bucket_name: str, index_name: str) -> dict[str, Any] | None:
    try:
        return _call(client, "get_index", vectorBucketName=bucket_name, indexName=index_name)["index"]
    except S3VectorsError as err:
        if err.code == "NotFoundException":
            return None
        raise


def ensure_index(client, bucket_name: str, index_name: str, params: IndexParams) -> dict[str, Any]:
    """Create the index unless it exists with these parameters; return its description."""
    index = _get_index(client, bucket_name, index_name)
    # Look before creating: a duplicate CreateIndex must not pass unnoticed (AWS answers ConflictException;
    # moto silently replaces the index).
    if index is None:
        request: dict[str, Any] = {
            "vectorBucketName": bucket_name,
            "indexName": index_name,
            "dataType": params.data_type,
            "dimension": params.dimension,
            "distanceMetric": params.distance_metric,
        }
        if params.non_filterable_metadata_keys:
            request["metadataConfiguration"] = {
                "nonFilterableMetadataKeys": list(params.non_filterable_metadata_keys)
            }
        try:
            _call(client, "create_index", **request)
            logger.info("created vector index", vector_bucket=bucket_name, index=index_name, **params.canonical())
        except S3VectorsError as err:
            if err.code != "ConflictException":  # created meanwhile by a concurrent retry: checked below
                raise
        index = _get_index(client, bucket_name, index_name)
        if index is None:
            raise ResourceConflict(
                f"Vector index {index_name} in bucket {bucket_name} vanished right after it was created; "
                "something else is deleting it. Stop that, then deploy again."
            )
    _check_index_params(index, bucket_name, index_name, params)
    return index


def _check_index_params(index: Mapping[str, Any], bucket_name: str, index_name: str, wanted: IndexParams) -> None:
    actual = {
        "dataType": index.get("dataType"),
        "dimension": index.get("dimension"),
        "distanceMetric": index.get("distanceMetric"),
    }
    expected = wanted.canonical()
    # GetIndex may leave metadataConfiguration out (moto 5.2.5 always does); compare the keys only when reported.
    if "metadataConfiguration" in index:
        reported = index["metadataConfiguration"].get("nonFilterableMetadataKeys") or []
        actual["nonFilterableMetadataKeys"] = sorted(reported)
    else:
        expected.pop("nonFilterableMetadataKeys")
    if actual != expected:
        raise ResourceConflict(
            f"Vector index {index_name} in bucket {bucket_name} already exists with {actual}, but the properties "
            f"ask for {expected}. Index parameters cannot change and this name is derived from them, so the index "
            "was made outside this resource; delete it or choose another IndexName."
        )


def create_vector_index(client, props: VectorIndexProperties) -> dict[str, Any]:
    """Make sure the bucket and index ``props`` describe exist; return the Provider framework response."""
    bucket_name, index_name = props.bucket_name, props.index_name
    bucket, bucket_created = ensure_vector_bucket(client, bucket_name, props.encryption)
    try:
        index = ensure_index(client, bucket_name, index_name, props.index)
    except VectorIndexResourceError:
        if bucket_created:
            _discard_new_bucket(client, bucket_name)
        raise
    ref = IndexRef(
        arn=index["indexArn"],
        bucket_arn=bucket["vectorBucketArn"],
        bucket_name=bucket_name,
        index_name=index_name,
    )
    return {"PhysicalResourceId": ref.arn, "Data": ref.data()}


def _discard_new_bucket(client, bucket_name: str) -> None:
    # A failed Create gets the framework's CREATE_FAILED marker as physical id, whose Delete never reaches this
    # handler: a bucket made by this very request would be left behind, so take it back now.
    try:
        delete_bucket_if_empty(client, bucket_name)
    except VectorIndexResourceError:
        logger.warning(
            "could not remove the vector bucket of a failed create", vector_bucket=bucket_name, exc_info=True
        )


def update_vector_index(client, props: VectorIndexProperties, physical_id: str) -> dict[str, Any]:
    """Keep the resource when no immutable parameter changed, else create the new bucket/index.

    A new physical id tells CloudFormation this was a replacement: once the whole stack update succeeds it sends
    a Delete with the OLD physical id, and the old index goes then (not now, so a rollback still finds it).
    """
    current = parse_index_arn(physical_id)
    if current and (current.bucket_name, current.index_name) == (props.bucket_name, props.index_name):
        logger.info("no immutable parameter changed; nothing to do", index_arn=physical_id)
        return {"PhysicalResourceId": physical_id, "Data": current.data()}
    logger.info(
        "immutable parameters changed; creating the replacement",
        old_physical_id=physical_id,
        vector_bucket=props.bucket_name,
        index=props.index_name,
    )
    return create_vector_index(client, props)


def _index_names(client, bucket_name: str) -> list[str]:
    index_names: list[str] = []
    request: dict[str, Any] = {"vectorBucketName": bucket_name}
    while True:
        page = _call(client, "list_indexes", **request)
        index_names += [index["indexName"] for index in page.get("indexes", [])]
        if not page.get("nextToken"):
            return index_names
        request["nextToken"] = page["nextToken"]


def delete_bucket_if_empty(client, bucket_name: str, *, ignore_index: str | None = None) -> bool:
    """Delete the vector bucket unless it holds an index other than ``ignore_index``; True if it is gone."""
    try:
        others = [name for name in _index_names(client, bucket_name) if name != ignore_index]
    except S3VectorsError as err:
        if err.code == "NotFoundException":
            return True
        raise
    if others:
        logger.info("vector bucket kept: it holds other indexes", vector_bucket=bucket_name, indexes=others[:10])
        return False
    try:
        _call(client, "delete_vector_bucket", vectorBucketName=bucket_name)
    except S3VectorsError as err:
        if err.code == "NotFoundException":
            return True
        if err.code == "ConflictException":  # an index appeared after the listing: it is not ours to remove
            logger.warning("vector bucket kept: it is not empty", vector_bucket=bucket_name, error=str(err))
            return False
        raise
    logger.info("deleted vector bucket", vector_bucket=bucket_name)
    return True


def delete_vector_index(client, physical_id: str, *, retain: bool) -> dict[str, Any]:
    """Delete the index named by ``physical_id``, then its bucket if no other index remains.

    Names come from the physical id only, never from the properties: on the cleanup Delete after a replacement
    CloudFormation sends the replaced resource's physical id, and the properties are not a safe guide to it (the
    AWS docs do not say which set it sends; third-party write-ups report the old ones).
    """
    response = {"PhysicalResourceId": physical_id}
    ref = parse_index_arn(physical_id)
    if ref is None:
        # e.g. the framework's MISSING_PHYSICAL_ID marker or a request id: this resource never made anything
        logger.info("physical id is not an index ARN; nothing to delete", physical_id=physical_id)
        return response
    if retain:
        logger.info("RetainOnDelete is true; keeping the vector bucket and index", index_arn=physical_id)
        return response
    try:
        _call(client, "delete_index", vectorBucketName=ref.bucket_name, indexName=ref.index_name)
        logger.info("deleted vector index", vector_bucket=ref.bucket_name, index=ref.index_name)
    except S3VectorsError as err:
        if err.code != "NotFoundException":
            raise
        logger.info("vector index already gone", vector_bucket=ref.bucket_name, index=ref.index_name)
    delete_bucket_if_empty(client, ref.bucket_name, ignore_index=ref.index_name)
    return response


def handle_event(client, event: Mapping[str, Any]) -> dict[str, Any]:
    """Dispatch one CloudFormation custom resource event to create, update or delete."""
    request_type = event.get("RequestType")
    props = event.get("ResourceProperties") or {}
    if request_type == "Create":
        return create_vector_index(client, parse_properties(props))
    if request_type == "Update":
        return update_vector_index(client, parse_properties(props), event.get("PhysicalResourceId", ""))
    if request_type == "Delete":
        return delete_vector_index(client, event.get("PhysicalResourceId", ""), retain=parse_retain_on_delete(props))
    raise VectorIndexResourceError(
        f"Unknown RequestType {request_type!r}: expected Create, Update or Delete from CloudFormation"
    )


@lru_cache(maxsize=1)
def _s3vectors_client():
    # Created on first use, not at import: importing stays free of AWS configuration (tests, tooling).
    return boto3.client(
        "s3vectors",
        config=Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5, read_timeout=30),
    )


def on_event(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """CDK Provider framework onEvent entry point."""
    logger.clear_state()
    # The event also carries the presigned ResponseURL, so log its identifying fields only.
    logger.append_keys(
        request_type=event.get("RequestType"),
        logical_resource_id=event.get("LogicalResourceId"),
        physical_resource_id=event.get("PhysicalResourceId"),
        stack_id=event.get("StackId"),
    )
    try:
        response = handle_event(_s3vectors_client(), event)
    except Exception:
        logger.exception("vector index custom resource failed")
        raise
    logger.info("vector index custom resource done", response=response)
    return response
