"""Unit tests turn every warning into an error (a leaked file or socket, a deprecation).

Suite-wide `filterwarnings = error` waits on the integration tests: some of them still
leak files and netlink sockets (ResourceWarning) that the garbage collector reports in
whichever test runs next.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unit = config.rootpath / "tests" / "unit"
    for item in items:
        if item.path.is_relative_to(unit):
            item.add_marker(pytest.mark.filterwarnings("error"))
