"""Reuses the in-memory fake manager of the things tests (pytest importlib mode)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "things"))
