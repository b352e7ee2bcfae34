"""The functions' code asset is made by package boundaries (stacks/dependencies.py), and it is enough: the Lambda
entry points import, and build their clients, with nothing on the path but the asset and the layer's packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging_helpers import distributions, link_distributions  # tests/packaging_helpers.py

from stacks.dependencies import FUNCTION_ENTRY_MODULES, REQUIREMENTS, stage_function_code

# What must never reach a function: local mode, CLI code, and their dependencies.
NEVER_DEPLOYED = ("rtrag.local", "rtrag.cli", "numpy", "wordllama", "tokenizers", "safetensors")
# What the indexer function must not load, though it ships (the scripts' adapters and workflows): each is a cold
# start cost for nothing (bench/cold_start.py).
NOT_LOADED_BY_THE_INDEXER = ("rtrag.workflows", "rtrag.aws.archive", "rtrag.aws.kinesis", "rtrag.aws.nova")


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    """The layer's packages, taken from this venv (the same pinned versions): one link per top-level name."""
    return link_distributions(distributions(REQUIREMENTS), tmp_path_factory.mktemp("layer"))


@pytest.fixture(scope="module")
def asset(tmp_path_factory) -> Path:
    return stage_function_code(tmp_path_factory.mktemp("function") / "asset")


_PROBE = """
import json, os, sys
asset, layer = sys.argv[1], sys.argv[2]
sys.path[:0] = [asset, layer]
os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1",
                   "AWS_DEFAULT_REGION": "us-east-1", "VECTOR_BUCKET": "b", "VECTOR_INDEX": "i",
                   "DEAD_LETTER_BUCKET": "d", "VERSION_TABLE": "v", "AWS_EC2_METADATA_DISABLED": "true"})
import indexer, vector_index_resource
from rtrag.functions.vector_index_resource import _s3vectors_client
built = indexer.handler.indexer  # what the first invocation builds: every client and adapter
_s3vectors_client()
print(json.dumps({"modules": sorted(sys.modules), "files": {m.__name__: getattr(m, "__file__", None) or ""
                  for m in list(sys.modules.values()) if m.__name__.split(".")[0] == "rtrag"}}))
"""


def test_the_asset_holds_the_entry_modules_and_the_lambda_layers_of_rtrag_only(asset):
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}

    assert set(FUNCTION_ENTRY_MODULES) <= files
    assert all(f.endswith(".py") for f in files), "sources only: no bytecode, no requirements file"
    assert not [f for f in files if f.startswith(("rtrag/local/", "rtrag/cli/"))]
    packages = {f.split("/")[1] for f in files if f.startswith("rtrag/") and f.count("/") > 1}
    assert packages == {"functions", "aws", "workflows", "indexing", "core"}


def test_the_entry_points_import_and_build_with_only_the_asset_and_the_layer_on_the_path(asset, layer):
    # -S: no site-packages, so nothing of this venv or the project is importable but what the two paths hold.
    probe = subprocess.run([sys.executable, "-S", "-c", _PROBE, str(asset), str(layer)], capture_output=True,
                           text=True, timeout=120)

    assert probe.returncode == 0, probe.stderr
    loaded = json.loads(probe.stdout)
    assert not [m for m in loaded["modules"] if m.split(".")[0] in NEVER_DEPLOYED or
                any(m == n or m.startswith(n + ".") for n in NEVER_DEPLOYED)]
    assert all(path.startswith(str(asset)) for path in loaded["files"].values()), "rtrag came from the asset"
    assert not [m for m in loaded["modules"] if any(m == n or m.startswith(n + ".") for n in NOT_LOADED_BY_THE_INDEXER)]
