#!/usr/bin/env python3
"""CDK app: reads the settings from context, defines the stack, runs cdk-nag. ``npx aws-cdk@2 synth|deploy``."""

from __future__ import annotations

import os
import sys

# Node 20 is supported by this project's toolchain; the jsii runtime would otherwise print an end-of-life banner.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402

from stacks.assembly import add_checks, add_stack  # noqa: E402
from stacks.settings import Settings, SettingsError  # noqa: E402


def main() -> int:
    app = cdk.App()
    try:
        settings = Settings.from_context(app.node.get_all_context())
        add_stack(app, settings)  # a stack pinned to a Region Nova Lite cannot be called from: SettingsError
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    add_checks(app)
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
