"""The S3 Vectors bucket and index: a custom resource whose actual names every consumer reads from its attributes."""

from __future__ import annotations

from aws_cdk.assertions import Match

from stacks.settings import Settings

from .helpers import custom_resource, function_by_handler, getatt, of_type, one


def test_custom_resource_asks_for_a_cosine_float32_index_with_source_text_non_filterable(template):
    template.has_resource_properties("Custom::S3VectorIndex", {
        "VectorBucketName": Settings().vector_bucket_base_name,
        "IndexName": Settings().vector_index_base_name,
        "Dimension": "1024",
        "DistanceMetric": "cosine",
        "DataType": "float32",
        "NonFilterableMetadataKeys": ["source_text"],
        "SseType": "AES256",
        "KmsKeyArn": Match.absent(),
        "RetainOnDelete": "false",
        # Read by the handler: a stack made before IndexGeneration gets an Update that answers it (see the handler
        # test test_given_a_stack_made_before_index_generation_when_data_version_arrives_...).
        "DataVersion": "2",
    })


def test_custom_resource_is_served_by_the_provider_framework_calling_the_python_handler(resources):
    provider_id, provider = function_by_handler(resources, "framework.onEvent")
    handler_id, _ = function_by_handler(resources, "vector_index_resource.on_event")
    _, index = one(of_type(resources, "Custom::S3VectorIndex"))

    assert index["Properties"]["ServiceToken"] == getatt(provider_id, "Arn")
    assert provider["Properties"]["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"] == getatt(handler_id, "Arn")


def test_handler_runs_python_3_13_on_arm64(template):
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "vector_index_resource.on_event",
        "Runtime": "python3.13",
        "Architectures": ["arm64"],
    })


def test_the_native_s3vectors_resources_are_not_used(resources):
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::S3Vectors::")]


def test_outputs_and_indexer_use_the_actual_names_from_the_resource_attributes(synth, resources):
    index = custom_resource(resources)
    outputs = synth.template_json["Outputs"]

    assert outputs["VectorBucketName"]["Value"] == getatt(index, "VectorBucketName")
    assert outputs["VectorIndexName"]["Value"] == getatt(index, "IndexName")
    assert outputs["VectorIndexArn"]["Value"] == getatt(index, "IndexArn")
    _, indexer = function_by_handler(resources, "indexer.handler")
    variables = indexer["Properties"]["Environment"]["Variables"]
    assert (variables["VECTOR_BUCKET"], variables["VECTOR_INDEX"]) == (
        getatt(index, "VectorBucketName"), getatt(index, "IndexName"))
