"""Makes the things suite's in-memory fake manager importable (pytest importlib mode)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "things"))
sys.path.insert(0, str(Path(__file__).parent))
