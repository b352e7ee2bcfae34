"""After a full `cdk synth`: check that the dependency layer in cdk.out ships a boto3 with the s3vectors client.

Usage: python tests/stack/check_bundle.py [CDK_OUT_DIR]   (run by `make synth`; exits non-zero with the reason)

The functions rely on the layer's boto3, not the runtime's, for S3 Vectors (see stacks/dependencies.py). This finds
every Lambda layer in the synthesized templates, resolves its staged asset directory through the asset manifest,
and then, in a Python that sees nothing but the layer, imports boto3 and creates an s3vectors client.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = PROJECT_ROOT / "lambda_src" / "requirements.txt"

_PROBE = """
import sys
layer = sys.argv[1]
sys.path[:0] = [layer]
import boto3, botocore
assert boto3.__file__.startswith(layer), f"boto3 came from {boto3.__file__}, not from the layer"
client = boto3.client("s3vectors", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
assert hasattr(client, "put_vectors") and hasattr(client, "query_vectors")
print(boto3.__version__, botocore.__version__)
"""


class BundleError(Exception):
    """The synthesized layer is missing, or its boto3 cannot create an s3vectors client."""


def layer_directories(cdk_out: Path) -> list[Path]:
    """Staged asset directories of every AWS::Lambda::LayerVersion in the cloud assembly."""
    found = []
    for template_path in sorted(cdk_out.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        assets = json.loads(template_path.with_name(template_path.name.replace(".template.json", ".assets.json"))
                            .read_text())["files"]
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::Lambda::LayerVersion":
                continue
            asset_hash = resource["Properties"]["Content"]["S3Key"].removesuffix(".zip")
            found.append(cdk_out / assets[asset_hash]["source"]["path"])
    if not found:
        raise BundleError(f"no Lambda layer found in {cdk_out}/*.template.json; run a full synth first")
    return found


def pinned_boto3() -> str:
    match = re.search(r"^boto3==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    if not match:
        raise BundleError(f"{REQUIREMENTS} does not pin boto3")
    return match.group(1)


def check_layer(layer: Path, expected_boto3: str) -> str:
    python = layer / "python"
    service_models = python / "botocore" / "data" / "s3vectors"
    if not service_models.is_dir():
        raise BundleError(f"{service_models} is missing: the layer's botocore has no s3vectors service model")
    # -S: no site-packages, so the only boto3 this interpreter can import is the layer's.
    probe = subprocess.run([sys.executable, "-S", "-c", _PROBE, str(python.resolve())], capture_output=True, text=True)
    if probe.returncode != 0:
        raise BundleError(f"the layer's boto3 cannot create an s3vectors client: {probe.stderr.strip()}")
    boto3_version, botocore_version = probe.stdout.split()
    if boto3_version != expected_boto3:
        raise BundleError(f"the layer has boto3 {boto3_version}, {REQUIREMENTS.name} pins {expected_boto3}")
    return f"{layer.name}: boto3 {boto3_version}, botocore {botocore_version}, s3vectors client OK"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cdk_out = Path(args[0] if args else PROJECT_ROOT / "cdk.out")
    try:
        expected = pinned_boto3()
        for layer in layer_directories(cdk_out):
            print(check_layer(layer, expected))
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
