"""Suite-wide settings: integration tests need root and fail (not skip) without it."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # CI runs everything as root with no skips. Elsewhere such a test fails loudly before
    # its fixtures start anything, so a non-root run never reads green; deselect them
    # with -m "not integration".
    if os.geteuid() == 0:
        return
    for name in ("integration", "root"):
        marker = item.get_closest_marker(name)
        if marker is not None:
            pytest.fail(
                f"needs root: this {name} test drives runc, namespaces, bridges, a registry "
                'or a broker (run as root, or deselect with -m "not integration")',
                pytrace=False,
            )
