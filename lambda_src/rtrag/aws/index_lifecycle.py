"""Create, update and delete of the vector bucket and index custom resource (``rtrag.aws.index_resource`` holds
its properties and naming): every call idempotent, a missing resource counted as deleted, and every failure an
error that names its cause and its fix (CloudFormation shows it as the status reason)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from rtrag.aws.index_resource import (
    Encryption,
    IndexParams,
    IndexRef,
    ResourceConflict,
    S3VectorsError,
    VectorIndexProperties,
    VectorIndexResourceError,
    parse_index_arn,
    parse_properties,
    parse_retain_on_delete,
)
from rtrag.core import contract
from rtrag.core.versions import index_generation

logger = Logger(service="vector-index-resource")


# What the cleanup Delete of an earlier (renamed) bucket and index calls: allowed by the owner tag only.
_CLEANUP_OPERATIONS = frozenset({"DeleteIndex", "ListIndexes", "DeleteVectorBucket"})
_TRANSIENT_CODES = frozenset(
    {"TooManyRequestsException", "ServiceUnavailableException", "InternalServerException", "RequestTimeoutException"}
)


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
    if code == "AccessDeniedException" and api_name in _CLEANUP_OPERATIONS:
        bucket = params.get("vectorBucketName", "BUCKET")
        by_hand = f"aws s3vectors delete-vector-bucket --vector-bucket-name {bucket}"
        if "indexName" in params:
            by_hand = (f"aws s3vectors delete-index --vector-bucket-name {bucket} --index-name {params['indexName']}"
                       f", then {by_hand} if it holds no other index")
        fix = (
            f"Allow s3vectors:{api_name} on it in the custom resource function's role. If it is an earlier bucket "
            "or index of this stack (its names changed), the role may delete it only by the stack's owner tag "
            f"({contract.VECTOR_OWNER_TAG_KEY}), which one made before the tag existed lacks: delete it yourself "
            f"once you no longer need its vectors: {by_hand}."
        )
    elif code == "AccessDeniedException":
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


def _tag(client, arn: str, tags: Mapping[str, str] | None) -> None:
    """Put ``tags`` on an existing bucket or index (TagResource overwrites a key's value: idempotent)."""
    if tags:
        _call(client, "tag_resource", resourceArn=arn, tags=dict(tags))


def ensure_vector_bucket(
    client, name: str, encryption: Encryption, tags: Mapping[str, str] | None = None, *, tag_existing: bool = True
) -> tuple[dict[str, Any], bool]:
    """Create the vector bucket unless it exists with this encryption; return (its description, created). An
    existing one is tagged too, unless ``tag_existing`` is False (the caller tags it once it may take it over)."""
    created = True
    request: dict[str, Any] = {"vectorBucketName": name, "encryptionConfiguration": encryption.canonical()}
    if tags:
        request["tags"] = dict(tags)
    try:
        _call(client, "create_vector_bucket", **request)
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
    if not created and tag_existing:  # kept from a retried create or a retained earlier stack: this stack's now
        _tag(client, bucket["vectorBucketArn"], tags)
    logger.info("vector bucket ready", vector_bucket=name, newly_created=created, encryption=encryption.canonical())
    return bucket, created


def _get_index(client, bucket_name: str, index_name: str) -> dict[str, Any] | None:
    try:
        return _call(client, "get_index", vectorBucketName=bucket_name, indexName=index_name)["index"]
    except S3VectorsError as err:
        if err.code == "NotFoundException":
            return None
        raise


def ensure_index(
    client, bucket_name: str, index_name: str, params: IndexParams, tags: Mapping[str, str] | None = None,
    *, only_empty: bool = False
) -> dict[str, Any]:
    """Create the index unless it exists with these parameters; return its description. ``only_empty``: an index
    that exists already must hold no vector (``_check_empty``)."""
    index = _get_index(client, bucket_name, index_name)
    existed = index is not None
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
        if tags:
            request["tags"] = dict(tags)
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
    if existed:
        if only_empty:
            _check_empty(client, bucket_name, index_name)
        _tag(client, index["indexArn"], tags)
    return index


def _check_empty(client, bucket_name: str, index_name: str) -> None:
    """Refuse to take over an index that holds vectors when the stack is created: it was kept by an earlier stack
    (``retain_data_on_destroy``), whose version ledger this stack does not have. With a new, empty ledger the
    indexer could not know how many chunks each document has in the index, so an update that shrinks a document
    or a delete would leave chunks a query still returns. (A retried Create of this stack finds its index empty:
    nothing writes into it before the stack is created.)"""
    listed = _call(client, "list_vectors", vectorBucketName=bucket_name, indexName=index_name, maxResults=1)
    if listed.get("vectors"):
        raise ResourceConflict(
            f"Vector index {index_name} in bucket {bucket_name} already holds vectors, kept from an earlier stack "
            "(retain_data_on_destroy). This new stack's version ledger knows none of its documents, so updates "
            "and deletes could leave their old chunks behind. Delete the index (aws s3vectors delete-index "
            f"--vector-bucket-name {bucket_name} --index-name {index_name}) and deploy again; then refill it from "
            "the kept archive: aws s3 sync s3://<earlier archive bucket> ./archive, then "
            "scripts/reindex.py --from-dir ./archive --to-index."
        )


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


def owner_tags(props: VectorIndexProperties, stack_id: str | None) -> dict[str, str] | None:
    """``{OwnerTagKey: StackId}``, or None when the properties ask for no owner tag."""
    if props.owner_tag_key is None:
        return None
    if not stack_id:
        raise VectorIndexResourceError(
            "The event has no StackId to tag the vector bucket and index with; CloudFormation always sends one, "
            "so invoke this handler through the stack (or remove OwnerTagKey)."
        )
    return {props.owner_tag_key: stack_id}


def create_vector_index(
    client, props: VectorIndexProperties, tags: Mapping[str, str] | None = None, *, only_empty: bool = False
) -> dict[str, Any]:
    """Make sure the bucket and index ``props`` describe exist; return the Provider framework response.
    ``only_empty``: as ``ensure_index`` (the stack's Create)."""
    bucket_name, index_name = props.bucket_name, props.index_name
    # With only_empty, an existing bucket is tagged only once its index may be taken over: a refused Create must
    # not move another stack's owner tag (its rename cleanup would then be denied).
    bucket, bucket_created = ensure_vector_bucket(client, bucket_name, props.encryption, tags,
                                                  tag_existing=not only_empty)
    try:
        index = ensure_index(client, bucket_name, index_name, props.index, tags, only_empty=only_empty)
    except VectorIndexResourceError:
        if bucket_created:
            _discard_new_bucket(client, bucket_name)
        raise
    if only_empty and not bucket_created:
        _tag(client, bucket["vectorBucketArn"], tags)
    ref = IndexRef(
        arn=index["indexArn"],
        bucket_arn=bucket["vectorBucketArn"],
        bucket_name=bucket_name,
        index_name=index_name,
    )
    # The index's generation (its creation time): the indexer stamps its version ledger's entries with it, so an
    # index deleted and created again under this name (settings changed and changed back) starts over: entries of
    # the earlier index keep only their reach instead of calling every document unchanged.
    generation = index_generation(index.get("creationTime")) or ""
    return {"PhysicalResourceId": ref.arn, "Data": {**ref.data(), "IndexGeneration": generation}}


def _discard_new_bucket(client, bucket_name: str) -> None:
    # A failed Create gets the framework's CREATE_FAILED marker as physical id, whose Delete never reaches this
    # handler: a bucket made by this very request would be left behind, so take it back now.
    try:
        delete_bucket_if_empty(client, bucket_name)
    except VectorIndexResourceError:
        logger.warning(
            "could not remove the vector bucket of a failed create", vector_bucket=bucket_name, exc_info=True
        )


def update_vector_index(
    client, props: VectorIndexProperties, physical_id: str, tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keep the resource when no immutable parameter changed, else create the new bucket/index.

    A new physical id tells CloudFormation this was a replacement (a changed parameter or a rename): once the whole
    stack update succeeds it sends a Delete with the OLD physical id, and the old index goes then (not now, so a
    rollback still finds it). The owner tag is what lets the role delete an old index of another name.
    """
    current = parse_index_arn(physical_id)
    if current and (current.bucket_name, current.index_name) == (props.bucket_name, props.index_name):
        # Make sure both still exist, then tag them (all idempotent): a bucket and index made before the owner tag
        # are adopted here, so a later rename can still clean them up; one deleted outside the stack is made
        # again (an empty index of a new generation) rather than failing the update and then its rollback.
        response = create_vector_index(client, props, tags)
        logger.info("no immutable parameter changed; kept", index_arn=physical_id, owner_tagged=bool(tags))
        return response
    logger.info(
        "immutable parameters changed; creating the replacement",
        old_physical_id=physical_id,
        vector_bucket=props.bucket_name,
        index=props.index_name,
    )
    return create_vector_index(client, props, tags)


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
        # Not this stack's to delete (an index made by hand, e.g. a reindex target): kept, and said loudly, since
        # the bucket and that index go on costing after the stack is gone.
        logger.warning("vector bucket kept: it holds other indexes; delete them, then the bucket, by hand when no "
                       "longer needed", vector_bucket=bucket_name, indexes=others[:10])
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
        properties = parse_properties(props)
        return create_vector_index(client, properties, owner_tags(properties, event.get("StackId")), only_empty=True)
    if request_type == "Update":
        properties = parse_properties(props)
        return update_vector_index(
            client, properties, event.get("PhysicalResourceId", ""), owner_tags(properties, event.get("StackId"))
        )
    if request_type == "Delete":
        return delete_vector_index(client, event.get("PhysicalResourceId", ""), retain=parse_retain_on_delete(props))
    raise VectorIndexResourceError(
        f"Unknown RequestType {request_type!r}: expected Create, Update or Delete from CloudFormation"
    )
