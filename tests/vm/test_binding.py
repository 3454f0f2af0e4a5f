"""okopy.bpf.vm: the Python face of libokovm, on real clang-compiled filters."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from okopy.bpf import btf, elf, vm
from okopy.bpf.toolchain import compile_program
from okopy.traffic import packets
from tests.btf_blobs import PTR, BtfWriter


def test_blocklist_typed_maps(objects: dict[str, bytes]) -> None:
    ns = vm.Namespace("t")
    prog = ns.load(objects["blocklist"])
    assert prog.info.name == "blocklist"
    assert prog.info.kernel_verified
    assert prog.info.mode == "verified"
    blocked = prog.map("blocked_v4")
    assert blocked.info.type == "hash"
    assert blocked.info.pinned
    blocked.update(blocked.encode_key("10.1.0.2"), bytes(16))

    drop = packets.udp4("10.0.0.1", "10.1.0.2", 1000, 53)
    ok = packets.udp4("10.0.0.1", "10.1.0.3", 1000, 53)
    assert prog.run(drop) == 1
    assert prog.run(ok) == 2
    assert blocked.dump() == [{"key": "10.1.0.2", "value": {"packets": 1, "bytes": len(drop)}}]
    stats = prog.stats
    assert stats.runs == 2
    assert stats.verdicts["drop"] == 1
    assert stats.verdicts["pass"] == 1


def test_pinned_maps_shared_and_kept_on_replace(objects: dict[str, bytes]) -> None:
    ns = vm.Namespace("t")
    first = ns.load(objects["blocklist"])
    m = first.map("blocked_v4")
    m.update(ipaddress.IPv4Address("192.0.2.1").packed, bytes(16))
    second = ns.load(objects["blocklist"])
    del first  # the "replace": the old program goes away
    assert second.map("blocked_v4").lookup(ipaddress.IPv4Address("192.0.2.1").packed)
    assert "blocked_v4" in ns.pinned()
    # Another namespace (another bridge) has its own maps.
    other = vm.Namespace("other").load(objects["blocklist"])
    assert len(other.map("blocked_v4")) == 0


def test_tiny_and_odd_packets_never_crash(objects: dict[str, bytes]) -> None:
    ns = vm.Namespace("t")
    for name in ("blocklist", "ratelimit", "prefix_blocklist"):
        prog = ns.load(objects[name])
        for pkt in packets.random_packets(seed=3, count=300):
            assert prog.run(pkt) in (1, 2)
        for n in range(0, 40):
            assert prog.run(b"\x08\x00" * n) in (1, 2)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "truncated"),
        (b"\x7fELF" + bytes(60), "not a usable BPF object"),
        (b"MZ" * 100, "not a usable BPF object"),
    ],
)
def test_malformed_objects_refused(blob: bytes, message: str) -> None:
    with pytest.raises(vm.VmError, match=message):
        vm.Namespace("t").load(blob)


def test_truncated_real_object_refused(objects: dict[str, bytes]) -> None:
    obj = objects["blocklist"]
    ns = vm.Namespace("t")
    for cut in range(0, len(obj), 311):
        with pytest.raises(vm.VmError):
            ns.load(obj[:cut])


def _with_btf(obj: bytes, blob: bytes) -> bytes:
    """'obj' with its .BTF section's contents replaced by 'blob' (padded
    with zeros; the header says where the types and names end)."""
    sec = elf.sections(obj)[".BTF"]
    assert len(blob) <= sec.size
    out = bytearray(obj)
    out[sec.offset : sec.offset + sec.size] = blob.ljust(sec.size, b"\0")
    return bytes(out)


def test_broken_btf_references_refused(objects: dict[str, bytes]) -> None:
    """libbpf 1.1 trusts BTF type ids and follows reference chains without a
    bound; the VM checks them first (found by the ELF fuzz test)."""
    obj = objects["blocklist"]
    w = BtfWriter()
    w.struct("s", 4, [("a", 0x640005, 0, 0)])
    with pytest.raises(vm.VmError, match=r"refers to type 6553605, which does not exist"):
        vm.Namespace("t").load(_with_btf(obj, w.blob()))
    w = BtfWriter()
    w.ref(PTR, 1)
    with pytest.raises(vm.VmError, match=r"chain of references does not end"):
        vm.Namespace("t").load(_with_btf(obj, w.blob()))


def test_every_map_round_trips(objects: dict[str, bytes]) -> None:
    """JSON -> bytes -> JSON through libokovm's codec, for the key and value
    of every map of every object of bpf/ and tests/progs/, from the object's
    own BTF and from the BTF the loaded map hands out (okovm_map_btf(), what
    the switch sends in MAP_BTF replies)."""
    rng = random.Random(12)
    checked = 0
    for name, obj in sorted(objects.items()):
        parsed = btf.Btf.parse(elf.sections(obj)[".BTF"].data)
        for d in btf.map_definitions(parsed):
            for tid, size in ((d.key_type_id, d.key_size), (d.value_type_id, d.value_size)):
                if not tid:
                    continue
                assert parsed.size_of(tid) == size, (name, d.name)
                # Printable bytes: finite floats, text that stays text.
                for raw in (bytes(size), bytes(rng.randrange(32, 127) for _ in range(size))):
                    value = parsed.decode(tid, raw)
                    again = parsed.encode(tid, value)
                    assert parsed.decode(tid, again) == value, (name, d.name, value)
                    checked += 1
    assert checked > 40
    prog = vm.Namespace("t").load(objects["typed_maps"])
    for m in prog.maps.values():
        if m.btf is not None and m.info.btf_key_type_id:
            raw = bytes(range(m.info.key_size))
            assert m.encode_key(m.decode_key(raw)) is not None


def test_map_errors_name_the_problem(objects: dict[str, bytes]) -> None:
    prog = vm.Namespace("t").load(objects["ratelimit"])
    with pytest.raises(vm.VmError, match=r"has no map 'nope'.*config, sources"):
        prog.map("nope")
    sources = prog.map("sources")
    with pytest.raises(vm.VmError, match="key is 3 bytes, the map's is 4"):
        sources.lookup(b"abc")
    with pytest.raises(vm.VmError, match="not an IP address"):
        sources.encode_key("10.0.0.999")
    with pytest.raises(vm.VmError, match="unknown field 'rate_pps'"):
        prog.map("config").encode_value({"rate_pps": 5})
    with pytest.raises(vm.VmError, match="update flags must be one of"):
        sources.update(bytes(4), bytes(24), flags="sometimes")
    # Arrays cannot delete, and index 1 of a 1-entry array does not exist.
    with pytest.raises(vm.VmError, match="Invalid argument"):
        prog.map("config").delete(bytes(4))
    with pytest.raises(vm.VmError, match="Argument list too long"):
        prog.map("config").update(b"\x01\0\0\0", bytes(8))


def test_update_flags(objects: dict[str, bytes]) -> None:
    m = vm.Namespace("t").load(objects["ratelimit"]).map("sources")
    key, value = bytes([10, 0, 0, 1]), bytes(24)
    with pytest.raises(vm.VmError, match="No such file"):
        m.update(key, value, flags="exist")
    m.update(key, value, flags="noexist")
    with pytest.raises(vm.VmError, match="File exists"):
        m.update(key, value, flags="noexist")
    m.update(key, value, flags="exist")
    assert m.delete(key)
    assert not m.delete(key)


def test_forced_sandbox_runs_the_same(objects: dict[str, bytes]) -> None:
    ns = vm.Namespace("t")
    fast = ns.load(objects["prefix_blocklist"])
    slow = vm.Namespace("s").load(objects["prefix_blocklist"], sandbox="force")
    assert slow.info.mode == "sandbox"
    assert not slow.info.kernel_verified
    for prog in (fast, slow):
        m = prog.map("prefixes")
        m.update(
            m.encode_key({"prefixlen": 8, "addr": "10.0.0.0"}),
            m.encode_value({"block": 1}),
        )
    for pkt in packets.random_packets(seed=11, count=500):
        assert fast.run(pkt) == slow.run(pkt)


FIRST_BYTE = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Returns the frame's first byte as its verdict. */
SEC("xdp")
int first_byte(struct xdp_md *ctx)
{
    const unsigned char *data = (const void *) (long) ctx->data;

    if (data + 1 > (const unsigned char *) (long) ctx->data_end) {
        return XDP_ABORTED;
    }
    return data[0];
}

char _license[] SEC("license") = "GPL";
"""


def test_every_verdict_has_its_counter(tmp_path: Path) -> None:
    """XDP_REDIRECT is counted as such, values past it as "other"."""
    src = tmp_path / "first_byte.c"
    src.write_text(FIRST_BYTE)
    prog = vm.Namespace("t").load(compile_program(src, tmp_path / "first_byte.o").read_bytes())
    for first in range(8):
        assert prog.run(bytes([first]) + bytes(63)) == first
    stats = prog.stats
    assert stats.runs == 8
    assert stats.verdicts == {
        "aborted": 1, "drop": 1, "pass": 1, "tx": 1, "redirect": 1, "other": 3,
    }  # fmt: skip
    # One run in 64 is timed, starting with the first: 8 runs are not 0 ns.
    assert stats.time_ns > 0
