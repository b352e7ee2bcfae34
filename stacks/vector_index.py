"""The S3 Vectors bucket and index, provisioned by a custom resource (the product's design card asks for one)."""

from __future__ import annotations

from aws_cdk import ArnFormat, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from rtrag.core import contract as c
from stacks.dependencies import ARCHITECTURE, PYTHON_RUNTIME_PIN_REASON, RUNTIME, function_code
from stacks.nag import acknowledge, wildcard_resource

# The indexer stores the chunk text under this key; it is too large for S3 Vectors' 2 KB filterable budget.
NON_FILTERABLE_METADATA_KEYS = ("source_text",)
DISTANCE_METRIC = "cosine"
DATA_TYPE = "float32"
RESOURCE_TYPE = "Custom::S3VectorIndex"
# The handler's suffix on both base names: "-" and 8 hex digits (lambda_src/vector_index_resource.py, "Naming").
NAME_SUFFIX_PATTERN = "-" + "?" * 8


class VectorIndex(Construct):
    """A vector bucket and one index in it, created, replaced and deleted by ``vector_index_resource.on_event``.

    The handler appends a short hash of the immutable parameters to the base names, so a change of dimension (or
    encryption) creates a new index under a new physical id and CloudFormation deletes the old one after the update
    succeeds. The actual names and ARNs are attributes of the custom resource, exposed here as
    ``bucket_name``, ``bucket_arn``, ``index_name`` and ``index_arn``; use them, never the base names.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_base_name: str,
        index_base_name: str,
        dimension: int,
        kms_key_arn: str | None,
        retain_on_destroy: bool,
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        log_removal = RemovalPolicy.RETAIN if retain_on_destroy else RemovalPolicy.DESTROY

        handler_logs = logs.LogGroup(self, "HandlerLogs", retention=log_retention, removal_policy=log_removal)
        handler_role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="onEvent handler of the S3 Vectors bucket and index custom resource",
        )
        handler_logs.grant_write(handler_role)

        def arn(resource_name: str) -> str:
            return stack.format_arn(
                service="s3vectors",
                resource="bucket",
                resource_name=resource_name,
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )

        # The handler names each resource f"{base}-{8 hex digits of a hash of its immutable parameters}", so the
        # actual names are unknown until it runs; "?" matches exactly one character, so these patterns admit this
        # stack's base names with such a suffix and nothing else. (CreateVectorBucket is account-level in IAM;
        # it is scoped by the ARN of the bucket it creates.)
        self.bucket_arn_pattern = arn(f"{bucket_base_name}{NAME_SUFFIX_PATTERN}")
        self.index_arn_pattern = arn(
            f"{bucket_base_name}{NAME_SUFFIX_PATTERN}/index/{index_base_name}{NAME_SUFFIX_PATTERN}"
        )
        handler_role.add_to_policy(
            iam.PolicyStatement(
                sid="ManageVectorBucket",
                actions=[
                    "s3vectors:CreateVectorBucket",
                    "s3vectors:GetVectorBucket",
                    "s3vectors:DeleteVectorBucket",
                    "s3vectors:ListIndexes",
                    "s3vectors:TagResource",  # the owner tag, at creation and on what an update keeps
                ],
                resources=[self.bucket_arn_pattern],
            )
        )
        handler_role.add_to_policy(
            iam.PolicyStatement(
                sid="ManageVectorIndex",
                actions=[
                    "s3vectors:CreateIndex",
                    "s3vectors:GetIndex",
                    "s3vectors:DeleteIndex",
                    "s3vectors:TagResource",
                    "s3vectors:ListVectors",  # at the stack's Create: an index kept from an earlier stack is empty
                ],
                resources=[self.index_arn_pattern],
            )
        )
        # After a rename, CloudFormation's cleanup Delete names the EARLIER bucket and index, outside the patterns
        # above: the role may delete those only if they carry this stack's owner tag (the handler puts it on
        # everything it makes or keeps, and may tag only names of the patterns above), so a rename never orphans
        # the old index and nothing else in the account can be touched.
        owned_by_this_stack = {"StringEquals": {f"aws:ResourceTag/{c.VECTOR_OWNER_TAG_KEY}": stack.stack_id}}
        handler_role.add_to_policy(
            iam.PolicyStatement(
                sid="CleanUpEarlierVectorBuckets",
                actions=["s3vectors:ListIndexes", "s3vectors:DeleteVectorBucket"],
                resources=[arn("*")],
                conditions=owned_by_this_stack,
            )
        )
        handler_role.add_to_policy(
            iam.PolicyStatement(
                sid="CleanUpEarlierVectorIndexes",
                actions=["s3vectors:DeleteIndex"],
                resources=[arn("*/index/*")],
                conditions=owned_by_this_stack,
            )
        )
        for pattern, what in ((arn("*"), "vector buckets"), (arn("*/index/*"), "vector indexes")):
            acknowledge(
                handler_role,
                wildcard_resource(self, pattern),
                f"Attribute-based cleanup of {what}: only those tagged with this stack's own id (aws:ResourceTag "
                "condition), a tag the handler alone puts and only on this stack's names; it deletes the earlier "
                f"{what} after a rename, whose names the stack no longer knows.",
            )
        if kms_key_arn:
            handler_role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseVectorsKey",
                    actions=["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[kms_key_arn],
                )
            )

        self.handler = lambda_.Function(
            self,
            "Handler",
            description="Creates, replaces and deletes the S3 Vectors bucket and index of this stack",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="vector_index_resource.on_event",
            code=function_code(),
            layers=[layer],
            role=handler_role,
            log_group=handler_logs,
            memory_size=256,
            timeout=Duration.minutes(2),
            environment={
                "POWERTOOLS_SERVICE_NAME": "vector-index-resource",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )

        framework_logs = logs.LogGroup(self, "ProviderLogs", retention=log_retention, removal_policy=log_removal)
        # An explicit role keeps the framework function off the AWSLambdaBasicExecutionRole managed policy: it may
        # write only to its own log group (the Provider adds invoke and GetFunction on the handler).
        framework_role = iam.Role(
            self,
            "ProviderRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="CDK Provider framework function of the S3 Vectors custom resource",
        )
        framework_logs.grant_write(framework_role)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            framework_on_event_role=framework_role,
            log_group=framework_logs,
        )

        properties: dict[str, object] = {
            "VectorBucketName": bucket_base_name,
            "IndexName": index_base_name,
            "Dimension": str(dimension),
            "DistanceMetric": DISTANCE_METRIC,
            "DataType": DATA_TYPE,
            "NonFilterableMetadataKeys": list(NON_FILTERABLE_METADATA_KEYS),
            "SseType": "aws:kms" if kms_key_arn else "AES256",
            "RetainOnDelete": "true" if retain_on_destroy else "false",
            "OwnerTagKey": c.VECTOR_OWNER_TAG_KEY,
            # A new Data key (IndexGeneration) comes with a new value: on a stack made before it, the property
            # change makes CloudFormation ask the handler again, so the get_att below finds the key.
            "DataVersion": c.VECTOR_INDEX_DATA_VERSION,
        }
        if kms_key_arn:
            properties["KmsKeyArn"] = kms_key_arn
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
        )

        self.bucket_name = self.resource.get_att_string("VectorBucketName")
        self.bucket_arn = self.resource.get_att_string("VectorBucketArn")
        self.index_name = self.resource.get_att_string("IndexName")
        self.index_arn = self.resource.get_att_string("IndexArn")
        # Its creation time: tells the index from an earlier one of the same name (the version ledger's generation).
        self.index_generation = self.resource.get_att_string("IndexGeneration")
        self.dimension = dimension
        self.kms_key_arn = kms_key_arn

        self._acknowledge(framework_role)

    def writer_statements(self) -> list[iam.PolicyStatement]:
        """What the indexer does to the index: read stored state, upsert and delete vectors; nothing else."""
        statements = [
            iam.PolicyStatement(
                sid="WriteVectorIndex",
                actions=["s3vectors:GetVectors", "s3vectors:PutVectors", "s3vectors:DeleteVectors"],
                resources=[self.index_arn],
            )
        ]
        return statements + self._key_statements("WriteVectorsKey")

    def reader_statements(self) -> list[iam.PolicyStatement]:
        """What a question needs: query with metadata and filters (QueryVectors needs GetVectors then) and GetIndex."""
        statements = [
            iam.PolicyStatement(
                sid="QueryVectorIndex",
                actions=["s3vectors:QueryVectors", "s3vectors:GetVectors", "s3vectors:GetIndex"],
                resources=[self.index_arn],
            )
        ]
        return statements + self._key_statements("ReadVectorsKey")

    def _key_statements(self, sid: str) -> list[iam.PolicyStatement]:
        if not self.kms_key_arn:
            return []
        return [
            iam.PolicyStatement(
                sid=sid, actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.kms_key_arn]
            )
        ]

    def _acknowledge(self, framework_role: iam.Role) -> None:
        acknowledge(
            framework_role,
            wildcard_resource(self, f"{self.handler.function_arn}:*"),
            "Added by the CDK Provider framework (grantInvoke): the framework function may invoke the onEvent "
            "handler's versions and aliases; the wildcard is confined to qualifiers of that one function.",
        )
        acknowledge(self.handler, "AwsSolutions-L1", PYTHON_RUNTIME_PIN_REASON)
