"""Stack outputs: every name and ARN the scripts read, each with a description."""

from __future__ import annotations

from .helpers import custom_resource, dead_letter_bucket, function_by_handler, getatt, managed_policy, of_type, one

# The output keys are the contract with scripts/ (they resolve names from the deployed stack's outputs).
EXPECTED_OUTPUTS = {
    "StreamName", "StreamArn", "VectorBucketName", "VectorIndexName", "VectorIndexArn", "DeadLetterBucketName",
    "IndexerFunctionName", "ProducerPolicyArn", "AskerPolicyArn", "EmbedModelId", "EmbedDimensions",
    "AnswerModelId", "Region", "OperatorPolicyArn", "AlarmTopicArn", "DashboardName", "DashboardUrl",
    "VersionTableName", "VectorIndexGeneration", "MaxTsSkewSeconds",
    "ArchiveBucketName",  # only while archive_enabled (tests/stack/test_archive.py covers the other case)
}


def test_every_output_the_scripts_need_is_there_with_a_description(synth):
    outputs = synth.template_json["Outputs"]

    assert set(outputs) == EXPECTED_OUTPUTS
    for key, output in outputs.items():
        assert len(output.get("Description", "")) > 10, key
        assert "Export" not in output, key  # exports would collide between two stacks


def test_outputs_point_at_the_resources(synth, resources):
    outputs = {key: o["Value"] for key, o in synth.template_json["Outputs"].items()}
    stream_id, _ = one(of_type(resources, "AWS::Kinesis::Stream"))
    bucket_id, _ = dead_letter_bucket(resources)
    indexer_id, _ = function_by_handler(resources, "indexer.handler")
    table_id, _ = one(of_type(resources, "AWS::DynamoDB::Table"))
    policies = of_type(resources, "AWS::IAM::ManagedPolicy")

    assert outputs["StreamName"] == {"Ref": stream_id}
    assert outputs["StreamArn"] == getatt(stream_id, "Arn")
    assert outputs["VectorIndexArn"] == getatt(custom_resource(resources), "IndexArn")
    assert outputs["VectorIndexGeneration"] == getatt(custom_resource(resources), "IndexGeneration")
    assert outputs["DeadLetterBucketName"] == {"Ref": bucket_id}
    assert outputs["IndexerFunctionName"] == {"Ref": indexer_id}
    assert outputs["VersionTableName"] == {"Ref": table_id}
    policy_outputs = ("ProducerPolicyArn", "AskerPolicyArn", "OperatorPolicyArn")
    assert {outputs[key]["Ref"] for key in policy_outputs} == set(policies)
    assert outputs["EmbedModelId"] == "amazon.titan-embed-text-v2:0"
    assert outputs["EmbedDimensions"] == "1024"
    assert outputs["Region"] == {"Ref": "AWS::Region"}
    asker = managed_policy(resources, "Ask the real-time RAG index")["Properties"]["PolicyDocument"]["Statement"]
    profile_arn = next(s for s in asker if s["Sid"] == "AnswerWithNova")["Resource"][0]
    assert outputs["AnswerModelId"] == profile_arn["Fn::Join"][1][-1]  # the very profile the asker policy allows
