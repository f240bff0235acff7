"""The report tests reuse the hand-written parts of tests/design/rigparts.py."""

from __future__ import annotations

import sys
from pathlib import Path

_DESIGN = str(Path(__file__).resolve().parents[1] / "design")
if _DESIGN not in sys.path:
    sys.path.insert(0, _DESIGN)
