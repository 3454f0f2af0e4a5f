"""Maps of programs the policy does not have (loaded with ovs-ofctl) are
typed by the BTF the switch gives; it is read in chunks, checked, and kept
per switch, program and map for as long as the program is the same load."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.base import app_manager

from okopy.bpf.btf import Btf, BtfError, TypedMap, map_definitions
from okopy.controller import app as appmod
from okopy.controller.switch_btf import (
    MAX_BTF,
    MIN_AGE,
    BtfChanged,
    LoadedProgram,
    SwitchMaps,
    fetch_btf,
    typed_map,
)
from okopy.ofp import messages as m
from okopy.ofp.constants import OKOPY_VENDOR_ID
from tests.unit.test_controller_owner import (
    DPID,
    PROG,
    FakeSwitch,
    policy_generation,
    wait_until,
)
from tests.unit.test_golden_replies import CONFIG, SOURCES_MAP, TINY_MAPS_BTF

DEFS = {d.name: d for d in map_definitions(Btf.parse(TINY_MAPS_BTF))}
OFCTL_PROG = 8  # loaded "with ovs-ofctl": not in the policy
CHUNK = 256


def btf_reply(name: str, offset: int = 0, blob: bytes = TINY_MAPS_BTF) -> m.MapBtfReply:
    d = DEFS[name]
    return m.MapBtfReply(OFCTL_PROG, name, offset, len(blob), d.key_type_id, d.value_type_id,
                         blob[offset : offset + CHUNK])  # fmt: skip


def test_fetch_reads_every_chunk() -> None:
    asked: list[int] = []

    def request(req: m.Message) -> m.Message:
        assert isinstance(req, m.MapBtfRequest)
        assert (req.prog_id, req.map) == (OFCTL_PROG, "sources")
        asked.append(req.offset)
        return btf_reply("sources", req.offset)

    got = fetch_btf(request, OFCTL_PROG, "sources")
    assert got.chunk == TINY_MAPS_BTF
    assert (got.key_type_id, got.value_type_id) == (
        DEFS["sources"].key_type_id,
        DEFS["sources"].value_type_id,
    )
    assert asked == list(range(0, len(TINY_MAPS_BTF), CHUNK))


def test_fetch_notices_a_replace_in_between() -> None:
    other = TINY_MAPS_BTF + bytes(8)

    def request(req: m.Message) -> m.Message:
        assert isinstance(req, m.MapBtfRequest)
        return btf_reply("sources", req.offset, TINY_MAPS_BTF if req.offset == 0 else other)

    with pytest.raises(BtfChanged, match="changed while its BTF was read"):
        fetch_btf(request, OFCTL_PROG, "sources")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (m.MapBtfReply(OFCTL_PROG, "sources", 0, MAX_BTF + 1, 1, 2, b"x"), "over the controller"),
        (m.MapBtfReply(OFCTL_PROG, "sources", 0, 100, 1, 2, b""), "empty BTF chunk"),
        (m.MapBtfReply(OFCTL_PROG, "sources", 0, 1, 1, 2, b"xy"), "more BTF than"),
        (m.MapBtfReply(OFCTL_PROG, "sources", 4, 100, 1, 2, b"x"), "chunk at 4, asked 0"),
        (m.MapListReply(OFCTL_PROG), "MapListReply answers a BTF request"),
    ],
)
def test_fetch_refuses_answers_that_make_no_sense(answer: m.Message, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        fetch_btf(lambda req: answer, OFCTL_PROG, "sources")


def test_no_btf_is_an_empty_answer() -> None:
    got = fetch_btf(lambda req: m.MapBtfReply(OFCTL_PROG, "sources"), OFCTL_PROG, "sources")
    assert got.chunk == b""


def test_typed_by_the_switchs_btf() -> None:
    whole = dataclasses.replace(btf_reply("sources"), chunk=TINY_MAPS_BTF)
    typed, why = typed_map(SOURCES_MAP, whole)
    assert why is None
    key, value = bytes([10, 0, 0, 1]), (3).to_bytes(8, "little") + (180).to_bytes(8, "little")
    assert typed.decode_entry(key, value) == {
        "key": "10.0.0.1",
        "value": {"packets": 3, "bytes": 180},
    }
    assert typed.encode_key("10.0.0.1") == key
    assert typed.encode_value({"packets": 3, "bytes": 180}) == value


@pytest.mark.parametrize(
    ("blob", "desc", "why"),
    [
        (b"", SOURCES_MAP, "no BTF"),
        (b"\x9f\xeb garbage", SOURCES_MAP, "BTF refused"),
        (TINY_MAPS_BTF, dataclasses.replace(SOURCES_MAP, value_size=8), "16 bytes, not 8"),
    ],
)
def test_maps_without_usable_btf_are_hex(blob: bytes, desc: m.MapDesc, why: str) -> None:
    reply = dataclasses.replace(btf_reply("sources"), chunk=blob)
    typed, untyped_why = typed_map(desc, reply)
    assert untyped_why is not None
    assert why in untyped_why
    assert typed.btf is None
    assert typed.decode_entry(b"\x0a\x00\x00\x01", bytes(desc.value_size))["key"] == "0a000001"
    assert typed.encode_key("0x0a000001") == b"\x0a\x00\x00\x01"
    with pytest.raises(BtfError, match="no BTF type for its key: give 0x-hex"):
        typed.encode_key("10.0.0.1")


def stats(duration: int, name: str = "per_source", cookie: int = 0) -> m.ProgStats:
    return m.ProgStats(OFCTL_PROG, 40, name, 2, duration, cookie, 0, 0, (0,) * 6)


def test_kept_for_one_load_only() -> None:
    kept = SwitchMaps()
    typed = TypedMap("sources", 4, 16, Btf.parse(TINY_MAPS_BTF), 1, 2)
    seen = LoadedProgram.of(stats(100), now=1000.0)
    kept.put(DPID, OFCTL_PROG, seen, typed)
    # The same load, seen later (and a second off: duration_sec is whole).
    assert kept.get(DPID, OFCTL_PROG, LoadedProgram.of(stats(160), now=1060.7), "sources") is typed
    assert kept.get(DPID, OFCTL_PROG, seen, "config") is None
    assert kept.get(DPID, OFCTL_PROG + 1, seen, "sources") is None
    assert kept.get(DPID + 1, OFCTL_PROG, seen, "sources") is None
    # Replaced: duration_sec starts again; or another name or cookie.
    for other in (stats(5), stats(100, name="other"), stats(100, cookie=7)):
        kept.put(DPID, OFCTL_PROG, seen, typed)
        assert kept.get(DPID, OFCTL_PROG, LoadedProgram.of(other, now=1000.0), "sources") is None
        assert kept.get(DPID, OFCTL_PROG, seen, "sources") is None  # dropped, not kept aside
    # A load too young to tell from a replace right after it is not kept.
    young = LoadedProgram.of(stats(MIN_AGE - 1), now=1000.0)
    kept.put(DPID, OFCTL_PROG, young, typed)
    assert kept.get(DPID, OFCTL_PROG, young, "sources") is None


def test_maps_of_one_program_share_their_btf_and_are_forgotten() -> None:
    kept = SwitchMaps()
    seen = LoadedProgram.of(stats(100), now=1000.0)
    kept.put(DPID, OFCTL_PROG, seen, TypedMap("sources", 4, 16, Btf.parse(TINY_MAPS_BTF), 1, 2))
    kept.put(DPID, OFCTL_PROG, seen, TypedMap("config", 4, 8, Btf.parse(TINY_MAPS_BTF), 1, 3))
    a, b = (kept.get(DPID, OFCTL_PROG, seen, n) for n in ("sources", "config"))
    assert a is not None
    assert b is not None
    assert a.btf is b.btf
    kept.put(DPID + 1, OFCTL_PROG, seen, a)
    kept.forget(DPID, OFCTL_PROG + 1)
    assert len(kept) == 3
    kept.forget(DPID, OFCTL_PROG)
    assert len(kept) == 1
    kept.forget(DPID + 1)
    assert len(kept) == 0


# The controller against a fake switch that has a program of ovs-ofctl's --------------


class SwitchWithOfctlProgram(FakeSwitch):
    """FakeSwitch (the policy's program 1), plus program 8 loaded by someone
    else, with tiny_maps.c's maps and BTF."""

    def __init__(self, app: appmod.OkopyController) -> None:
        super().__init__(app)
        self.loaded_at: dict[int, float] = {}
        self.sources: dict[bytes, bytes] = {}
        self.btf_requests = 0

    def load_ofctl_program(self, age: float) -> None:
        with self.lock:
            self.programs[OFCTL_PROG] = ("per_source", 0)
            self.loaded_at[OFCTL_PROG] = time.monotonic() - age

    def _answer(self, xid: int, req: m.Message) -> tuple[str, Any]:
        def reply(r: m.Message) -> tuple[str, Any]:
            return ("exp", SimpleNamespace(xid=xid, experimenter=OKOPY_VENDOR_ID,
                                           exp_type=int(r.TYPE), data=r.body()))  # fmt: skip

        if isinstance(req, m.ProgListRequest):
            now = time.monotonic()
            return reply(m.ProgListReply(0, tuple(
                m.ProgStats(pid, 10, name, 2, int(now - self.loaded_at.get(pid, now)), cookie,
                            0, 0, (0,) * 6)
                for pid, (name, cookie) in sorted(self.programs.items())
                if pid >= req.start_id
            )[: req.max_progs or None]))  # fmt: skip
        if getattr(req, "prog_id", None) != OFCTL_PROG or OFCTL_PROG not in self.programs:
            return super()._answer(xid, req)
        if isinstance(req, m.MapListRequest):
            return reply(m.MapListReply(OFCTL_PROG, (CONFIG, SOURCES_MAP)))
        if isinstance(req, m.MapBtfRequest):
            self.btf_requests += 1
            return reply(btf_reply(req.map, req.offset))
        assert isinstance(req, m._MapMsg)
        assert req.map == "sources"
        assert (req.key_size, req.value_size) == (4, 16)
        if isinstance(req, m.MapDumpRequest):
            keys = tuple(sorted(self.sources))
            return reply(m.MapDumpReply(OFCTL_PROG, "sources", 4, 16, len(keys), 0, keys,
                                        tuple(self.sources[k] for k in keys)))  # fmt: skip
        if isinstance(req, m.MapLookupRequest):
            found = [k for k in req.keys if k in self.sources]
            return reply(m.MapLookupReply(OFCTL_PROG, "sources", 4, 16, len(found), 0,
                                          tuple(found), tuple(self.sources[k] for k in found)))  # fmt: skip
        if isinstance(req, m.MapUpdate):
            self.sources.update(zip(req.keys, req.values, strict=True))
            return reply(m.MapUpdateReply(OFCTL_PROG, "sources", 4, 16, len(req.keys)))
        if isinstance(req, m.MapDelete):
            n = sum(self.sources.pop(k, None) is not None for k in req.keys)
            return reply(m.MapDeleteReply(OFCTL_PROG, "sources", 4, 16, n))
        raise AssertionError(f"unexpected request {req}")


@pytest.fixture
def controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[appmod.OkopyController, SwitchWithOfctlProgram]]:
    monkeypatch.setattr(appmod, "load_policy", lambda path: None)
    monkeypatch.setattr(appmod, "check_policy", lambda _: policy_generation(0))
    monkeypatch.setattr(appmod.OkopyController, "settings",
                        appmod.Settings(str(tmp_path / "policy.yaml"), stats_interval=60))  # fmt: skip
    app = appmod.OkopyController()
    app_manager.register_instance(app)
    app.start()
    switch = SwitchWithOfctlProgram(app)
    switch.connect()
    wait_until("deployed", lambda: PROG in switch.programs)
    try:
        yield app, switch
    finally:
        app.stop()


def test_maps_of_a_program_loaded_by_ovs_ofctl(
    controller: tuple[appmod.OkopyController, SwitchWithOfctlProgram],
) -> None:
    app, switch = controller
    with pytest.raises(LookupError, match=f"switch 0x1 has no program {OFCTL_PROG}"):
        app.map_dump(DPID, OFCTL_PROG, "sources")
    switch.load_ofctl_program(age=100)
    switch.sources[bytes([10, 0, 0, 1])] = (3).to_bytes(8, "little") + (180).to_bytes(8, "little")

    assert app.map_dump(DPID, OFCTL_PROG, "sources") == [
        {"key": "10.0.0.1", "value": {"packets": 3, "bytes": 180}}
    ]
    chunks = -(-len(TINY_MAPS_BTF) // CHUNK)
    assert switch.btf_requests == chunks
    # Typed both ways, with the BTF kept: read once for the program's load.
    assert app.map_lookup(DPID, OFCTL_PROG, "sources", "10.0.0.1") == {"packets": 3, "bytes": 180}
    assert app.map_lookup(DPID, OFCTL_PROG, "sources", "10.0.0.9") is None
    app.map_update(DPID, OFCTL_PROG, "sources", "10.0.0.2", {"packets": 1, "bytes": 2}, "any")
    assert switch.sources[bytes([10, 0, 0, 2])] == (1).to_bytes(8, "little") + (2).to_bytes(
        8, "little"
    )
    assert app.map_delete(DPID, OFCTL_PROG, "sources", "10.0.0.2") is True
    assert switch.btf_requests == chunks
    with pytest.raises(LookupError, match=r"per_source \(8\) has no map 'nope' \(maps: config"):
        app.map_dump(DPID, OFCTL_PROG, "nope")

    # Replaced: its maps' types are read again, and not kept while it is young.
    switch.load_ofctl_program(age=0)
    app.map_lookup(DPID, OFCTL_PROG, "sources", "10.0.0.1")
    app.map_lookup(DPID, OFCTL_PROG, "sources", "10.0.0.1")
    assert switch.btf_requests == 3 * chunks

    # What was kept for a switch goes when it reconnects.
    switch.load_ofctl_program(age=100)
    app.map_lookup(DPID, OFCTL_PROG, "sources", "10.0.0.1")
    assert app._call(lambda: len(app.switch_maps)) == 1
    switch.connect()
    wait_until("forgotten", lambda: app._call(lambda: len(app.switch_maps)) == 0)
