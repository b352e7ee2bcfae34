"""What a requirements file installs, taken from this venv: the tests that prove a file is enough (the Lambda layer,
``make demo``) put only those packages on a subprocess's path."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path


def distributions(requirements: Path) -> set[str]:
    """The pinned distributions of ``requirements`` (following ``-r``) and everything they require."""
    todo: list[str] = []
    for line in requirements.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            todo += sorted(distributions(requirements.parent / line[3:].strip()))
        elif line and not line.startswith("#"):
            todo.append(re.split(r"[=<>~! ;\[]", line)[0])
    seen: set[str] = set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            required = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a requirement for other Pythons or platforms, not installed here
        seen.add(name)
        todo += [re.split(r"[=<>~! ;(\[]", r.strip())[0] for r in required if "extra ==" not in r]
    return seen


def link_distributions(names: set[str], root: Path) -> Path:
    """A directory holding one link per top-level package or module of ``names``: a site-packages of just those."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        for file in metadata.distribution(name).files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".pth")) or top == ".." or top.startswith("_") and top.endswith(".py"):
                continue
            source = Path(file.locate()).parents[len(file.parts) - 1] / top
            if not (root / top).exists() and source.exists():
                (root / top).symlink_to(source)
    return root
