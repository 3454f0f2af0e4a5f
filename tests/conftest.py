"""Test tiers: tests/unit is `unit`, tests/integration is `integration`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["okopy.testing.fixtures"]

_TIERS = ("unit", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
