#!/usr/bin/env python3
"""Cold start of the indexer: import time in fresh interpreters, and the size of what the function ships.

Each figure is the median over several fresh interpreters (the interpreter's own start-up is not counted):

- ``boto3``: ``import boto3`` alone;
- ``entry``: ``import indexer`` (the Lambda entry module, ``lambda_src/`` on ``sys.path``), which defers boto3;
- ``entry + first-invocation imports``: the entry module plus the modules its first invocation imports
  before it creates clients (the first invocation): what the project really costs to import;
- ``build_indexer``: creating the four clients on the first invocation (loads botocore's service models).

``import_ratio`` = (entry + first-invocation imports) / boto3.

``--against REV`` also measures the same figure for the Lambda code of the git revision REV (its own entry and
first-invocation imports, read from that revision's ``bench/cold_start.py``), interleaved with the others in the
same interpreters' conditions, and reports ``vs_against``: the median over the runs of this tree / REV, and
``vs_against_total``, the same up to a built indexer (imports and the first invocation's clients and adapters),
which also counts what a tree imports lazily on its first invocation. The ratio to boto3 moves with the
machine (boto3's import took 167 ms on one benchmark machine and 124 ms on another); the paired comparison does
not. ``--against`` alone (as ``make bench`` runs it) compares with ``BASELINE_REV``, the last tree before the
layered package (issue 11).

Two bytecode situations: "cached" (the .pyc files Python keeps beside the sources, as on a laptop) and
"no .pyc for the function and the layer" (the standard library still compiled), which is the situation in
Lambda when the layer is built with ``pip install --no-compile`` (stacks/dependencies.py: the build machine's
Python is not the runtime's 3.13) and ``/opt`` is read-only, so every cold start compiles boto3 from source.

Sizes: the bundled indexer code and the dependency layer, read from ``cdk.out`` (``make synth``) when it is
there, else built the same way into a temporary directory (the layer with pip, which needs PyPI).

examples:
  python bench/cold_start.py
  python bench/cold_start.py --runs 15 --json
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import common
from common import median, note, table
from rtrag.cli.common import script_parser

# What the first invocation imports (rtrag.aws.compose.AwsBackend) before it creates clients.
FIRST_INVOCATION_IMPORTS = ("boto3", "botocore.config")
# The last flat tree (with the version ledger), before the layered domain package of issue 11: "no worse" is
# measured against it.
BASELINE_REV = "70a430b"

CHILD = r"""
import json, sys, time
sys.path.insert(0, {lambda_src!r})
scenario = {scenario!r}
out = {{}}
start = time.perf_counter()
if scenario == "boto3":
    import boto3
else:
    import indexer
    out["entry_ms"] = (time.perf_counter() - start) * 1000
    if scenario in ("ready", "imports"):
        import importlib
        for name in {imports!r}:
            importlib.import_module(name)
out["ms"] = (time.perf_counter() - start) * 1000
if scenario in ("ready", "imports"):
    start = time.perf_counter()
    # What the first invocation builds: the clients and the adapters (an older tree: get_indexer()).
    get_indexer = getattr(indexer, "get_indexer", None)
    get_indexer() if get_indexer is not None else indexer.handler.indexer
    out["build_ms"] = (time.perf_counter() - start) * 1000
print(json.dumps(out))
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("cold_start.py", __doc__)
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per figure (default 9)")
    parser.add_argument("--no-source-compile", action="store_true",
                        help="skip the 'no .pyc' measurements (they take most of the time)")
    parser.add_argument("--against", metavar="REV", nargs="?", const=BASELINE_REV,
                        help="also measure the Lambda code of this git revision, paired (without REV: "
                             f"{BASELINE_REV}, the tree before the layered package)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/cold_start.json")
    return parser.parse_args(argv)


def child_env(pycache: Path | None) -> dict[str, str]:
    """A Lambda-like environment: the variables the stack sets, fake credentials, nothing from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                "VECTOR_BUCKET": "bench-vectors", "VECTOR_INDEX": "bench-index",
                "DEAD_LETTER_BUCKET": "bench-dead-letters", "VERSION_TABLE": "bench-versions",
                "POWERTOOLS_SERVICE_NAME": "indexer",
                "POWERTOOLS_METRICS_NAMESPACE": "RealtimeRag", "POWERTOOLS_LOG_LEVEL": "INFO"})
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Tree:
    """The Lambda code to import: its directory and what its first invocation imports."""

    def __init__(self, lambda_src: Path, imports: tuple[str, ...], rev: str | None = None):
        self.lambda_src, self.imports, self.rev = lambda_src, imports, rev


THIS_TREE = Tree(common.LAMBDA_SRC, FIRST_INVOCATION_IMPORTS)


def tree_at(rev: str, into: Path) -> Tree:
    """The Lambda code of git revision ``rev``, extracted under ``into``."""
    def git(*args: str) -> bytes:
        done = subprocess.run(["git", "-C", str(common.ROOT), *args], capture_output=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"cold_start.py: git {' '.join(args)} failed: {done.stderr.decode().strip()} "
                             "(--against needs a git clone with that revision's history)")
        return done.stdout

    with tarfile.open(fileobj=io.BytesIO(git("archive", rev, "lambda_src"))) as archive:
        archive.extractall(into, filter="data")
    imports = FIRST_INVOCATION_IMPORTS
    for node in ast.parse(git("show", f"{rev}:bench/cold_start.py")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FIRST_INVOCATION_IMPORTS"
                                                for t in node.targets):
            imports = tuple(ast.literal_eval(node.value))
    return Tree(into / "lambda_src", imports, rev)


def run_child(scenario: str, env: dict[str, str], tree: Tree = THIS_TREE) -> dict[str, float]:
    code = CHILD.format(lambda_src=str(tree.lambda_src), scenario=scenario, imports=tree.imports)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def stdlib_only_cache(env: dict[str, str]) -> Path:
    """A bytecode cache holding the standard library only: what the Lambda runtime image provides."""
    cache = Path(tempfile.mkdtemp(prefix="rag-bench-pyc-"))
    warm = {**env, "PYTHONPYCACHEPREFIX": str(cache)}
    warm.pop("PYTHONDONTWRITEBYTECODE", None)
    run_child("ready", warm)
    stdlib = Path(os.__file__).resolve().parent
    for compiled in list(cache.rglob("*.pyc")):
        source = Path("/") / compiled.relative_to(cache)
        if stdlib not in source.parents or "site-packages" in source.parts:
            compiled.unlink()
    return cache


def measure(runs: int, pycache: Path | None, against: Tree | None = None) -> dict[str, Any]:
    env = child_env(pycache)
    samples: dict[str, list[float]] = {"boto3": [], "entry": [], "ready": [], "build": [], "against": [],
                                       "against_total": []}
    run_child("ready", env)  # the first start also warms the OS file cache
    if against is not None:
        run_child("imports", env, against)
    for _ in range(runs):
        # Interleaved, so drift in the machine's load spreads over all of them.
        samples["boto3"].append(run_child("boto3", env)["ms"])
        samples["entry"].append(run_child("entry", env)["ms"])
        ready = run_child("ready", env)
        samples["ready"].append(ready["ms"])
        samples["build"].append(ready["build_ms"])
        if against is not None:
            old = run_child("imports", env, against)
            samples["against"].append(old["ms"])
            samples["against_total"].append(old["ms"] + old["build_ms"])
    boto3_ms, ready_ms = median(samples["boto3"]), median(samples["ready"])
    out = {"boto3_ms": round(boto3_ms, 1), "entry_ms": round(median(samples["entry"]), 1),
           "entry_first_imports_ms": round(ready_ms, 1), "build_indexer_ms": round(median(samples["build"]), 1),
           "import_ratio": round(ready_ms / boto3_ms, 3),
           "entry_only_ratio": round(median(samples["entry"]) / boto3_ms, 3), "runs": runs}
    if against is not None:
        against_ms = median(samples["against"])
        out.update({"against_rev": against.rev, "against_ms": round(against_ms, 1),
                    "against_import_ratio": round(against_ms / boto3_ms, 3),
                    # the median of the paired ratios: each pair ran back to back, under the same load
                    "vs_against": round(median([r / a for r, a in zip(samples["ready"], samples["against"])]), 3),
                    # to a built indexer: what a tree imports lazily on its first invocation is counted too
                    "vs_against_total": round(median([(r + b) / t for r, b, t in zip(
                        samples["ready"], samples["build"], samples["against_total"])]), 3)})
    return out


def tree_size(root: Path) -> dict[str, Any]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root).as_posix())
    return {"files": len(files), "unzipped_bytes": sum(p.stat().st_size for p in files),
            "zipped_bytes": buffer.getbuffer().nbytes}


def bundle_sizes() -> dict[str, Any]:
    """Sizes of the indexer's code asset and its layer, from cdk.out if synthesized, else built here."""
    out = common.ROOT / "cdk.out"
    templates = sorted(out.glob("*.template.json")) if out.is_dir() else []
    for template in templates:
        resources = json.loads(template.read_text()).get("Resources", {})
        for resource in resources.values():
            props = resource.get("Properties", {})
            if resource.get("Type") != "AWS::Lambda::Function" or props.get("Handler") != "indexer.handler":
                continue
            code = out / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
            layers = [resources[ref["Ref"]]["Properties"]["Content"]["S3Key"].removesuffix(".zip")
                      for ref in props.get("Layers", []) if isinstance(ref, dict) and "Ref" in ref]
            layer = out / f"asset.{layers[0]}" if layers else None
            if code.is_dir() and layer is not None and layer.is_dir():
                return {"source": f"cdk.out ({template.name}, synthesized "
                                  f"{_mtime(template)})", "function": tree_size(code), "layer": tree_size(layer),
                        "memory_mb": props.get("MemorySize"), "architecture": props.get("Architectures")}
    note("  cdk.out has no synthesized indexer assets (make synth); building them here")
    sys.path.insert(0, str(common.ROOT))
    from stacks.dependencies import stage_function_code  # the asset as the stack stages it, by package

    with tempfile.TemporaryDirectory(prefix="rag-bench-function-") as tmp:
        function = tree_size(stage_function_code(Path(tmp) / "function"))
    with tempfile.TemporaryDirectory(prefix="rag-bench-layer-") as tmp:
        target = Path(tmp) / "python"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--requirement", str(common.LAMBDA_SRC / "requirements.txt"), "--target", str(target),
                   "--platform", "manylinux2014_aarch64", "--python-version", "3.13", "--implementation", "cp",
                   "--only-binary=:all:", "--no-compile"]
        if subprocess.run(command, check=False).returncode != 0:
            return {"source": "lambda_src (layer build failed: pip could not reach PyPI?)", "function": function,
                    "layer": None}
        layer = tree_size(Path(tmp))
    return {"source": "built here like stacks/dependencies.py", "function": function, "layer": layer}


def _mtime(path: Path) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    note(f"cold start: {args.runs} fresh interpreters per figure")
    scratch = Path(tempfile.mkdtemp(prefix="rag-bench-rev-"))
    try:
        against = tree_at(args.against, scratch) if args.against else None
        rows = [{"bytecode": "cached .pyc", **measure(args.runs, None, against)}]
        if not args.no_source_compile:
            cache = stdlib_only_cache(child_env(None))
            try:
                rows.append({"bytecode": "no .pyc for function and layer (Lambda as built)",
                             **measure(args.runs, cache, against)})
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sizes = bundle_sizes()
    mib = 1024 * 1024
    size_rows = [{"what": name, "files": part["files"], "unzipped_mib": round(part["unzipped_bytes"] / mib, 2),
                  "zipped_mib": round(part["zipped_bytes"] / mib, 2)}
                 for name, part in (("indexer function code", sizes["function"]), ("dependency layer", sizes["layer"]))
                 if part]
    if args.json:
        common.emit_json({"benchmark": "cold_start", **row} for row in rows)
        common.emit_json([{"benchmark": "bundle_size", "source": sizes["source"], **row} for row in size_rows])
    else:
        print(table([("bytecode", "bytecode"), ("boto3_ms", "import boto3 ms"), ("entry_ms", "import indexer ms"),
                     ("entry_first_imports_ms", "indexer + first-invocation imports ms"),
                     ("import_ratio", "import_ratio"), ("build_indexer_ms", "first invocation (4 clients) ms")]
                    + ([("against_ms", f"{args.against} ms"), ("vs_against", f"vs {args.against}"),
                        ("vs_against_total", f"vs {args.against}, to a built indexer")]
                       if args.against else []),
                    rows, title="Cold start: imports in a fresh interpreter (median)"))
        print()
        print(table([("what", "bundle"), ("files", "files"), ("unzipped_mib", "unzipped MiB"),
                     ("zipped_mib", "zipped MiB")], size_rows, title=f"Bundle sizes (from {sizes['source']})"))
    if not args.no_save:
        path = common.save_results("cold_start", {"imports": rows, "sizes": sizes})
        note(f"results: {path.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
