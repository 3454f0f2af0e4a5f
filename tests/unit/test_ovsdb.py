"""The pure part of switch settings through OVSDB."""

from __future__ import annotations

from okopy.controller.ovsdb import BridgeState, changes, datapath_problem
from okopy.policy.file import OvsSettings

STATE = BridgeState("br0", "netdev", "", ("tcp:10.0.0.5:6653",), {"bpf-jit": "true", "x": "y"})


def test_the_kernel_datapath_is_named() -> None:
    assert datapath_problem(STATE) is None
    for kind in ("", "system"):
        problem = datapath_problem(BridgeState("br1", kind, "", ()))
        assert problem is not None
        assert problem.startswith("bridge br1 is on the 'system' datapath: the bpf action runs ")
        assert "set datapath_type=netdev" in problem


def test_changes_only_what_differs() -> None:
    assert changes(STATE, OvsSettings()) == []
    assert changes(STATE, OvsSettings(True, None, "standalone", ("tcp:10.0.0.5:6653",))) == []
    assert changes(STATE, OvsSettings(False, 1 << 20, "secure",
                                      ("tcp:10.0.0.6:6653", "tcp:10.0.0.5:6653"))) == [
        "other_config:bpf-jit=false",
        "other_config:bpf-max-map-memory=1048576",
        "fail_mode=secure",
        "controllers=tcp:10.0.0.6:6653,tcp:10.0.0.5:6653",
    ]  # fmt: skip


def test_state_as_json_shows_only_okopy_settings() -> None:
    assert STATE.to_json() == {
        "bridge": "br0", "datapath_type": "netdev", "fail_mode": "standalone",
        "controllers": ["tcp:10.0.0.5:6653"], "other_config": {"bpf-jit": "true"},
    }  # fmt: skip
