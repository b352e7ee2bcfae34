"""The first hour's set-up: ``make demo`` needs only requirements-local.txt (no CDK, no test tools, no Node.js), and
the targets that do need Node.js say so in one line when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging_helpers import distributions, link_distributions  # tests/packaging_helpers.py

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")

# Runs the demo with the standard library, the repository and the linked packages on the path, nothing else (-S:
# no site-packages, -E: no PYTHON* variables).
_RUN_DEMO = """
import runpy, sys
root, site = sys.argv[1], sys.argv[2]
sys.path[1:1] = [root + "/lambda_src", root + "/scripts", root, site]
sys.argv = [root + "/scripts/demo.py"]
runpy.run_path(root + "/scripts/demo.py", run_name="__main__")
"""


def test_the_demo_runs_with_only_the_local_requirements(tmp_path):
    # given a site-packages holding exactly what requirements-local.txt installs
    local = distributions(ROOT / "requirements-local.txt")
    assert not local & {"aws-cdk-lib", "constructs", "cdk-nag", "pytest", "moto", "cfn-lint", "matplotlib"}
    site = link_distributions(local, tmp_path / "site")

    # when the demo runs with nothing else on its path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    run = subprocess.run([sys.executable, "-S", "-E", "-c", _RUN_DEMO, str(ROOT), str(site)],
                         env=env | {"RAG_LOCAL_DIR": str(tmp_path / "state")},
                         capture_output=True, text=True, timeout=300)

    # then it runs to the end and answers from the streamed fact
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ModuleNotFoundError" not in run.stderr
    assert "2026-09-01" in run.stdout and "Done in" in run.stdout


def test_make_demo_installs_the_local_requirements_only_and_make_test_everything():
    demo = subprocess.run([MAKE, "-n", "-C", str(ROOT), "demo", "VENV=/nonexistent/venv"],
                          capture_output=True, text=True, check=True).stdout
    test = subprocess.run([MAKE, "-n", "-C", str(ROOT), "test", "VENV=/nonexistent/venv"],
                          capture_output=True, text=True, check=True).stdout

    assert "-r requirements-local.txt" in demo and "requirements-dev.txt" not in demo
    assert "check-node" not in demo and "node" not in demo
    assert "-r requirements-dev.txt" in test
    # requirements.txt (the CDK app) builds on the local requirements, and dev on both
    assert distributions(ROOT / "requirements-local.txt") < distributions(ROOT / "requirements.txt") \
        < distributions(ROOT / "requirements-dev.txt")


def test_a_missing_node_is_one_clear_line_before_anything_runs(tmp_path):
    # given a PATH without node (make's recipes run under /bin/sh, whose builtins are enough for the check)
    for target in ("test", "synth"):
        run = subprocess.run([MAKE, "-s", "-C", str(ROOT), target], env={"PATH": str(tmp_path)},
                             capture_output=True, text=True, timeout=60)

        assert run.returncode != 0
        first = run.stderr.splitlines()[0]
        assert first.startswith("error: node (Node.js) not found") and "Node.js 22 or later" in first
        assert "make demo needs no Node.js" in first
        assert "Traceback" not in run.stderr and "jsii" not in run.stderr
