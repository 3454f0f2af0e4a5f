"""Test tiers, by directory: unit (no root, no daemons), vm and bpf (the VM
library, the kernel's verifier and BPF_PROG_TEST_RUN: root), integration
(root, real Open vSwitch, namespaces)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["okopy.testing.fixtures"]

_TIERS = ("unit", "vm", "bpf", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
