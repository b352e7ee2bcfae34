"""The layer is built by pip on this machine for the Lambda platform; Docker is never needed."""

from __future__ import annotations

import subprocess
import sys

import aws_cdk as cdk

from stacks.dependencies import LAYER_LOCK, PIP_PLATFORM, PIP_PYTHON_VERSION, REQUIREMENTS, PipInstallLocally


def test_local_bundling_installs_the_pinned_requirements_as_arm64_python_3_13_wheels(tmp_path, monkeypatch):
    # given a bundler and a pip that only records what it is asked to do
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: commands.append((command, kwargs)))
    bundler = PipInstallLocally(requirements=LAYER_LOCK, platform=PIP_PLATFORM, python_version=PIP_PYTHON_VERSION)

    # when CDK asks it to bundle
    done = bundler.try_bundle(str(tmp_path), cdk.BundlingOptions(image=cdk.DockerImage.from_registry("unused")))

    # then it bundled locally (CDK will not fall back to Docker) with binary wheels for the Lambda platform
    assert done is True
    (command, kwargs), = commands
    assert command[:3] == [sys.executable, "-m", "pip"]
    assert command[command.index("--requirement") + 1] == str(LAYER_LOCK)
    assert "--require-hashes" in command and "--no-deps" in command  # exactly the locked files, nothing else
    assert command[command.index("--target") + 1] == str(tmp_path / "python")  # where a layer's packages live
    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    assert command[command.index("--python-version") + 1] == "3.13"
    assert "--only-binary=:all:" in command
    assert kwargs == {"check": True}


def test_the_layer_lock_pins_every_requirement_at_its_version_each_with_a_hash():
    import re

    wanted = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE))
    locked = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", LAYER_LOCK.read_text(),
                             re.MULTILINE))
    pinned_lines = [line for line in LAYER_LOCK.read_text().splitlines() if "==" in line]

    assert wanted and {name.lower(): version for name, version in wanted.items()}.items() <= locked.items(), \
        "lambda_src/requirements.txt changed: run make layer-lock"
    assert len(locked) == len(pinned_lines), "every pin carries its hash"
    assert {"urllib3", "s3transfer", "jmespath", "python-dateutil"} <= locked.keys(), "the transitive ones too"
