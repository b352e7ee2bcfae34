"""Where the Lambda code lives; importing this module makes its domain package (``rtrag``) importable at synth."""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = PROJECT_ROOT / "lambda_src"

if str(LAMBDA_SRC) not in sys.path:
    sys.path.append(str(LAMBDA_SRC))
