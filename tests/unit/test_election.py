"""The election's URL handling (the election itself runs against a real
etcd in tests/integration/test_controller_ha.py)."""

from __future__ import annotations

import pytest

from okopy.controller.election import EtcdElection, with_lock_ttl


def test_lock_ttl_is_added_unless_given() -> None:
    assert with_lock_ttl("etcd3+http://127.0.0.1:2379", 2) == (
        "etcd3+http://127.0.0.1:2379?lock_timeout=2"
    )
    assert with_lock_ttl("etcd3+http://h:1?timeout=5&lock_timeout=9", 2) == (
        "etcd3+http://h:1?timeout=5&lock_timeout=9"
    )


def test_only_etcd3() -> None:
    with pytest.raises(ValueError, match="give an etcd3"):
        EtcdElection("zookeeper://h:2181", "a")
