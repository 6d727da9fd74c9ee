"""Fixtures of the service suites: they live in things/service_harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

# pytest runs in importlib mode: make the shared harness importable.
sys.path.insert(0, str(Path(__file__).parents[1] / "things"))
from service_harness import broker, busybox_layout, cloud, service  # noqa: F401
