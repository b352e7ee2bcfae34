"""What the Lambda functions are made of: their code, staged by package from ``lambda_src/``, and the layer with
their pinned dependencies, built with pip on this machine (no Docker)."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.paths import LAMBDA_SRC, PROJECT_ROOT

FUNCTION_STAGING = PROJECT_ROOT / ".build" / "function"

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# pip's view of the same runtime: Amazon Linux 2023 on Graviton, CPython 3.13.
PIP_PLATFORM = "manylinux2014_aarch64"
PIP_PYTHON_VERSION = "3.13"
REQUIREMENTS = LAMBDA_SRC / "requirements.txt"  # what the functions need, edited by hand
# Everything the layer installs, each pinned with its wheel's hash for PIP_PLATFORM (``make layer-lock`` writes it
# from REQUIREMENTS): a build on any machine, any day, installs exactly these files, or fails.
LAYER_LOCK = LAMBDA_SRC / "requirements-layer.lock"
# Why the functions are not on the newest Python runtime (cdk-nag AwsSolutions-L1).
PYTHON_RUNTIME_PIN_REASON = (
    "python3.13 is pinned on purpose: the dependency layer is built by pip for CPython 3.13 "
    "(stacks/dependencies.py, PIP_PYTHON_VERSION) and the pinned boto3/Powertools set is tested on it; python3.13 "
    "is a supported Lambda runtime. Move the runtime and the layer's --python-version together."
)


@jsii.implements(ILocalBundling)
class PipInstallLocally:
    """Installs a requirements file for another platform with this Python's pip: binary wheels only, so nothing
    is compiled here and the result runs on the Lambda runtime, not on the build machine."""

    def __init__(self, *, requirements: Path, platform: str, python_version: str) -> None:
        self._requirements = requirements
        self._platform = platform
        self._python_version = python_version

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:  # noqa: ARG002 (jsii signature)
        target = Path(output_dir) / "python"  # a layer's Python packages live under python/
        command = [
            sys.executable, "-m", "pip", "install",
            "--requirement", str(self._requirements),
            "--require-hashes",  # every file pinned by its hash (LAYER_LOCK), the transitive ones included
            "--no-deps",  # the lock is the whole closure: nothing outside it may come in
            "--target", str(target),
            "--platform", self._platform,
            "--python-version", self._python_version,
            "--implementation", "cp",
            "--only-binary=:all:",
            "--no-compile",  # .pyc built by this Python would be ignored by the runtime's 3.13
            "--disable-pip-version-check",
            "--quiet",
        ]
        subprocess.run(command, check=True)
        return True


class DependencyLayer(Construct):
    """A layer with ``lambda_src/requirements.txt`` (pinned boto3 with the s3vectors client, Powertools).

    The runtime's own boto3 differs by Region and may predate S3 Vectors, so every function ships this one; a
    layer's ``/opt/python`` comes before the runtime's packages on ``sys.path``.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(
            str(LAMBDA_SRC),
            exclude=["*", f"!{LAYER_LOCK.name}"],
            # The layer is rebuilt when a pin or the target platform changes, and reused from cdk.out otherwise.
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=_layer_hash(),
            bundling=BundlingOptions(
                local=PipInstallLocally(
                    requirements=LAYER_LOCK, platform=PIP_PLATFORM, python_version=PIP_PYTHON_VERSION
                ),
                # Used only if local bundling declined; it never does, but the option is required.
                image=RUNTIME.bundling_image,
                platform="linux/arm64",
                command=["bash", "-c", f"pip install --no-compile --require-hashes --no-deps -r {LAYER_LOCK.name} "
                         "-t /asset-output/python"],
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="boto3 with the s3vectors client and aws-lambda-powertools (lambda_src/requirements.txt)",
        )


def _layer_hash() -> str:
    """What the layer is made of: every pinned file (the lock, hashes included) and the target platform."""
    inputs = f"{LAYER_LOCK.read_text()}\n{PIP_PLATFORM}\n{PIP_PYTHON_VERSION}"
    return hashlib.sha256(inputs.encode()).hexdigest()


def write_layer_lock() -> None:
    """Resolve REQUIREMENTS for the Lambda platform with pip (binary wheels only, as the layer is built), and write
    LAYER_LOCK: every distribution of the closure pinned to the version pip chose, with its wheel's sha256."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--requirement", str(REQUIREMENTS), "--dest", folder, "--platform", PIP_PLATFORM,
            "--python-version", PIP_PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:",
        ], check=True)
        pins = []
        for wheel in sorted(Path(folder).glob("*.whl")):
            name, version = wheel.name.split("-")[:2]
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            pins.append(f"{name.lower().replace('_', '-')}=={version} \\\n    --hash=sha256:{digest}")
    text = (f"# Written by `make layer-lock` from {REQUIREMENTS.name} for {PIP_PLATFORM}, CPython "
            f"{PIP_PYTHON_VERSION}: the layer's whole\n# dependency closure, each wheel pinned by its hash (pip "
            "--require-hashes). Do not edit by hand.\n" + "\n".join(pins) + "\n")
    LAYER_LOCK.write_text(text)


if __name__ == "__main__":
    write_layer_lock()


# What the functions run, by package: their entry modules, and the layers of rtrag below the CLI and local mode
# (import-linter holds that these never import those: pyproject.toml). Nothing else of lambda_src is deployed.
FUNCTION_ENTRY_MODULES = ("indexer.py", "vector_index_resource.py")
FUNCTION_PACKAGES = ("rtrag.functions", "rtrag.aws", "rtrag.workflows", "rtrag.indexing", "rtrag.core")


def stage_function_code(target: Path) -> Path:
    """Copy the functions' code into ``target`` (emptied first): the entry modules, ``rtrag/__init__.py`` and the
    packages of FUNCTION_PACKAGES, Python sources only. Returns ``target``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in FUNCTION_ENTRY_MODULES:
        shutil.copy2(LAMBDA_SRC / name, target / name)
    (target / "rtrag").mkdir()
    shutil.copy2(LAMBDA_SRC / "rtrag" / "__init__.py", target / "rtrag" / "__init__.py")
    for package in FUNCTION_PACKAGES:
        relative = Path(*package.split("."))
        for source in sorted((LAMBDA_SRC / relative).rglob("*.py")):
            copy = target / source.relative_to(LAMBDA_SRC)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    return target


@functools.cache
def _staged_function_code() -> Path:
    return stage_function_code(FUNCTION_STAGING)


def function_code() -> lambda_.Code:
    """The functions' own code (``stage_function_code``), staged once per synth under ``.build/function``."""
    return lambda_.Code.from_asset(str(_staged_function_code()))
