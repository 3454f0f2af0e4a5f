"""okopy.ofp.client against the patched switch: replies, refusals, bad sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.bpf.toolchain import compile_program
from okopy.controller.intents import AddFlow
from okopy.controller.openflow import encode
from okopy.ofp.client import OfClient, OfClientError
from okopy.ofp.messages import MapLookupReply, MapLookupRequest, MapUpdate, MapUpdateReply
from okopy.ovs.instance import OvsInstance
from okopy.policy.desired import Flow
from okopy.testing.fixtures import BRIDGE

ROOT = Path(__file__).resolve().parent.parent.parent


def test_update_lookup_and_refusals(switch: OvsInstance, tmp_path: Path) -> None:
    obj = compile_program(ROOT / "bpf/ratelimit.c", tmp_path / "ratelimit.o")
    switch.ofctl("-O", "OpenFlow13", "load-bpf-prog", BRIDGE, "7", str(obj), "name=limit")
    key, value = bytes(4), bytes.fromhex("1400000005000000")
    with OfClient.bridge(switch.rundir, BRIDGE) as client:
        reply = client.request(MapUpdate(7, "config", 4, 8, 1, 0, (key,), (value,)))
        assert isinstance(reply, MapUpdateReply)
        got = client.request(MapLookupRequest(7, "config", 4, 8, 1, 0, (key,)))
        assert isinstance(got, MapLookupReply)
        assert got.values == (value,)
        # Refusals carry the switch's text, and the connection stays usable.
        with pytest.raises(OfClientError, match="MapUpdate refused: OKOPYBPF_UNKNOWN_MAP"):
            client.request(MapUpdate(7, "nope", 4, 8, 1, 0, (key,), (value,)))
        with pytest.raises(OfClientError, match="OKOPYBPF_UNKNOWN_PROG"):
            client.request(MapLookupRequest(99, "config", 4, 8, 1, 0, (key,)))
        again = client.request(MapLookupRequest(7, "config", 4, 8, 1, 0, (key,)))
        assert isinstance(again, MapLookupReply)
    assert "limit" in switch.ofctl("-O", "OpenFlow13", "dump-bpf-progs", BRIDGE)


def test_a_batch_in_one_round_trip(switch: OvsInstance, tmp_path: Path) -> None:
    """request_all: every message sent at once, replies in the messages'
    order; a refusal in the middle is named once all replies are in, and
    what came before and after it was applied."""
    obj = compile_program(ROOT / "bpf/ratelimit.c", tmp_path / "ratelimit.o")
    switch.ofctl("-O", "OpenFlow13", "load-bpf-prog", BRIDGE, "7", str(obj), "name=limit")
    key = bytes(4)
    one, two = bytes.fromhex("0100000001000000"), bytes.fromhex("0200000002000000")
    with OfClient.bridge(switch.rundir, BRIDGE) as client:
        replies = client.request_all([
            MapUpdate(7, "config", 4, 8, 1, 0, (key,), (one,)),
            MapLookupRequest(7, "config", 4, 8, 1, 0, (key,)),
        ])  # fmt: skip
        assert isinstance(replies[0], MapUpdateReply)
        assert isinstance(replies[1], MapLookupReply)
        assert replies[1].values == (one,)
        with pytest.raises(OfClientError, match="MapUpdate refused: OKOPYBPF_UNKNOWN_MAP"):
            client.request_all([
                MapUpdate(7, "nope", 4, 8, 1, 0, (key,), (one,)),
                MapUpdate(7, "config", 4, 8, 1, 0, (key,), (two,)),
            ])  # fmt: skip
        got = client.request(MapLookupRequest(7, "config", 4, 8, 1, 0, (key,)))
        assert isinstance(got, MapLookupReply)
        assert got.values == (two,)


def test_missing_socket_named(tmp_path: Path) -> None:
    with pytest.raises(OfClientError, match=r"cannot connect to .*br9\.mgmt"):
        OfClient.bridge(tmp_path, "br9")


def test_frames_without_replies_then_a_barrier(switch: OvsInstance) -> None:
    """send_frames: flow mods (no reply of their own) and a barrier; a
    refused one is named by its place, and the others took effect."""
    good = encode(AddFlow(Flow(0, 10, (("in_port", "1"),), ("output:2",))))
    bad = encode(AddFlow(Flow(0, 20, (), ("bpf:99",))))  # no program 99
    with OfClient.bridge(switch.rundir, BRIDGE) as client:
        client.send_frames(good)
        with pytest.raises(OfClientError, match="message 2 of 2 refused: OKOPYBPF_UNKNOWN_PROG"):
            client.send_frames(good + bad)
        client.send_frames([])  # just the barrier
    flows = switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE)
    assert "priority=10,in_port=1 actions=output:2" in flows
    assert "priority=20" not in flows
