"""One synthesized template per test session (bundling skipped), shared by every test in tests/stack."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from stacks.assembly import add_checks, add_stack  # noqa: E402
from stacks.rag_stack import RealtimeRagStack  # noqa: E402
from stacks.settings import Settings  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Asset bundling (pip install of the layer) needs the network; `make synth` covers it.
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    """The context the CDK CLI would pass from cdk.json (feature flags and the project's settings)."""
    return json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synthesized:
    """A synthesized app: its stacks, their templates, and cdk-nag's validation report (None when clean)."""

    app: cdk.App
    stacks: list[RealtimeRagStack]
    templates: dict[str, dict[str, Any]]
    validation_report: dict[str, Any] | None
    synth_error: str | None
    outdir: Path

    @property
    def stack(self) -> RealtimeRagStack:
        return self.stacks[0]

    @property
    def template_json(self) -> dict[str, Any]:
        return self.templates[self.stack.stack_name]


def synthesize(outdir: Path, *settings_overrides: dict[str, Any]) -> Synthesized:
    """Synthesize one app with one stack per overrides dict, cdk-nag on, as app.py does (minus bundling)."""
    app = cdk.App(context={**cdk_json_context(), **SKIP_BUNDLING}, outdir=str(outdir))
    base = Settings.from_context(app.node.get_all_context())
    stacks = [add_stack(app, Settings.from_mapping({**_asdict(base), **o})) for o in settings_overrides or ({},)]
    add_checks(app)
    error = None
    try:
        app.synth()
    except RuntimeError as err:  # cdk-nag violations fail synth; the tests report them from the report file
        error = str(err)
    report_path = outdir / "validation-report.json"
    return Synthesized(
        app=app,
        stacks=stacks,
        templates={
            s.stack_name: json.loads((outdir / s.template_file).read_text()) for s in stacks
        },
        validation_report=json.loads(report_path.read_text()) if report_path.exists() else None,
        synth_error=error,
        outdir=outdir,
    )


def _asdict(settings: Settings) -> dict[str, Any]:
    return {key: getattr(settings, key) for key in Settings.keys()}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default stack exactly as cdk.json configures it."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# A stack with every option changed from its default.
CUSTOM = {
    "stack_name": "RagCustom",
    "vector_bucket_name": "team-vectors",
    "vector_index_name": "docs.v2",
    "embed_dimensions": "512",
    "starting_position": "LATEST",
    "reserved_concurrency": "5",
    "retain_data_on_destroy": "true",
    "vectors_kms_key_arn": KMS_KEY_ARN,
    "log_retention_days": "365",
    "batch_size": "500",
    "max_batching_window_seconds": "2",
    "enhanced_fan_out": "true",
    "alarm_email": "ops@example.com",
    "alarm_iterator_age_seconds": "900",
    "alarm_freshness_p99_seconds": "30",
    "alarm_dead_letters": "5",
    "alarm_lambda_errors": "3",
    "alarm_throttles": "10",
    "alarm_archive_freshness_seconds": "1800",
    "archive_expiration_days": "0",
    "archive_glacier_ir_days": "30",
    "tombstone_retention_days": "0",
}
NO_ARCHIVE = {"stack_name": "RagNoArchive", "archive_enabled": "false"}


@pytest.fixture(scope="session")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """One app, four stacks in one synth: two that differ only by name, one with every option changed, and
    one without the archive."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-variants"),
        {"stack_name": "RagA"}, {"stack_name": "RagB"}, CUSTOM, NO_ARCHIVE,
    )


@pytest.fixture
def template(synth: Synthesized) -> Template:
    return Template.from_json(synth.template_json)


@pytest.fixture
def resources(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return synth.template_json["Resources"]
