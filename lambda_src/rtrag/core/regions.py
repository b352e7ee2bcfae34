"""Where the answering model can be called from: the one Region -> inference profile map of Amazon Nova Lite.

The stack reads it (its asker policy, its ``AnswerModelId`` output, and the deploy-time check that refuses a Region
not in it) and so do the scripts (``ask.py``'s default model), so the two never disagree. A Region missing here
gets one clear line at synth or deploy, and from ``ask.py``, instead of a stack that deploys and then fails at the
first question.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rtrag.core.errors import UserError

NOVA_LITE_MODEL_ID = "amazon.nova-lite-v1:0"

_US, _EU, _APAC = (f"{geo}.{NOVA_LITE_MODEL_ID}" for geo in ("us", "eu", "apac"))

# Source Regions of Nova Lite's system-defined (geographic) inference profiles: the Regions a request naming the
# profile may be sent from. On-demand Nova Lite calls need a profile in every one of them (in-Region on-demand
# calls exist only in us-east-1 and us-gov-west-1; us-east-1 uses its geography's profile like the others).
# Sources, consulted 2026-11-30 (Amazon Bedrock User Guide):
#   https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-supported.html
#     (Nova Lite, "Regions that support inference profile": exactly the 14 Regions below)
#   https://docs.aws.amazon.com/bedrock/latest/userguide/copy-model-support.html (the same Regions for Nova Lite)
#   https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html (single-Region support: us-east-1,
#     us-gov-west-1)
#   https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html (source and destination
#     Regions; the us./eu./apac. geographies)
# Not served, for example: eu-west-2, ca-central-1, ap-southeast-3, sa-east-1. The documentation lists no jp., au.,
# ca. or global. profile of Nova Lite (v1); a ca. profile reported by third parties is left out until AWS documents
# it. Adding a Region is one line here.
NOVA_LITE_PROFILES: Mapping[str, str] = MappingProxyType({
    "us-east-1": _US,
    "us-east-2": _US,
    "us-west-2": _US,
    "eu-central-1": _EU,
    "eu-north-1": _EU,
    "eu-south-1": _EU,
    "eu-south-2": _EU,
    "eu-west-1": _EU,
    "eu-west-3": _EU,
    "ap-northeast-1": _APAC,
    "ap-northeast-2": _APAC,
    "ap-south-1": _APAC,
    "ap-southeast-1": _APAC,
    "ap-southeast-2": _APAC,
})


def unsupported_region_message(region: str | None) -> str:
    """One line: Nova Lite cannot be called from ``region`` (None: "this Region"), and the Regions that work."""
    where = region or "this Region"
    return (f"Amazon Nova Lite (the answering model) cannot be called from {where}: no Bedrock inference profile "
            f"serves it; deploy the stack and ask in one of {', '.join(sorted(NOVA_LITE_PROFILES))}")


class UnsupportedRegion(UserError):
    """No Nova Lite inference profile serves ``region``; the message names it and the Regions that work."""

    def __init__(self, region: str | None):
        super().__init__(unsupported_region_message(region))
        self.region = region


def nova_lite_profile(region: str | None) -> str:
    """Nova Lite's inference profile for calls from ``region`` (e.g. ``eu.amazon.nova-lite-v1:0`` from
    eu-west-1); :class:`UnsupportedRegion` for a Region no profile serves."""
    try:
        return NOVA_LITE_PROFILES[region or ""]
    except KeyError:
        raise UnsupportedRegion(region) from None
