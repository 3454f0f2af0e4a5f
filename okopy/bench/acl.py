"""`okopy bench acl`: an ordered rule set of N rules, enforced five ways.

Rule sets in the style of ClassBench's ACL seeds: source prefixes of mixed
lengths (wildcard, /8, /16, /24, /32), destination prefixes, TCP, UDP or
any protocol, source ports (wildcard, the ephemeral range, one port) and
destination ports (well-known ports, ranges), half ACCEPT and half DROP,
policy DROP.  Each rule's destination is a block of its own, so no two
rules overlap: the nftables interval map below can hold them (it refuses
overlapping elements), and every engine sees the same first-match rule
set.

Traffic: PROBES different packets, cycled by trafgen, each matching one
rule at evenly spaced depths of the list, and some matching none.

Variants, in the kernel's forwarding path (okopy.lab.router):
- iptables (legacy and nf_tables): one rule per rule;
- nftables: one rule per rule (intervals for ranges);
- nftables interval map: one concatenated-range verdict map
  (`ip daddr . ip saddr . meta l4proto . th sport . th dport vmap`);
- okopy XDP: bpf/acl.c on the router's ingress link, maps written by
  okopy.acl's compiler;
and in the patched switch:
- okopy switch: bpf/acl.c run by `bpf(prog=1,drop_unless=pass)`, maps
  written over OpenFlow.

Adding and deleting one rule (in the middle of the list) is timed with
each variant's own tool, and for okopy as the map writes the compiler
says (one message per map over an OpenFlow connection kept open, or bpf
system calls), while paced traffic that no change concerns crosses the
firewall: its loss is reported.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okopy.acl.compile import CompiledAcl, compile_rules, ordered_changes
from okopy.acl.rules import VERDICT_DROP, VERDICT_PASS, AclRule, Match
from okopy.acl.sets import IntSet
from okopy.bench.common import Sample, markdown_table, pyplot, write_report
from okopy.bench.scaling import kernel_memory, process_rss
from okopy.bpf import vm
from okopy.bpf.kernel import KernelProgram
from okopy.bpf.toolchain import compile_program
from okopy.lab.router import MACS, Router, mac_bytes
from okopy.netns import inside
from okopy.ofp.client import OfClient
from okopy.ofp.messages import MapDelete, MapDeleteReply, MapUpdate, MapUpdateReply
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.paths import Layout
from okopy.traffic import packets as pk

PROBES = 32
DEFAULT_PROBES = 4
DST_BASE = int(ipaddress.IPv4Address("100.64.0.0"))
WELL_KNOWN = (22, 25, 53, 80, 110, 123, 143, 443, 993, 3306, 5432, 8080)
UPDATES = 10
PACED_GAP_US = 40  # 25 kpps: well under every variant's rate


@dataclass(frozen=True)
class BenchRule:
    src: tuple[int, int]  # (address, prefix length)
    dst: tuple[int, int]
    proto: int | None  # 6, 17, or None: any
    sport: tuple[int, int] | None
    dport: tuple[int, int] | None
    accept: bool


def _block(i: int) -> int:
    """Rule i's destination block: a /24 of 100.64.0.0/10 of its own."""
    return DST_BASE + (i << 8)


def generate(n: int, seed: int = 1) -> list[BenchRule]:
    rng = random.Random(seed)
    rules = []
    for i in range(n):
        splen = rng.choices([0, 8, 16, 24, 32], [20, 10, 20, 30, 20])[0]
        src = rng.randrange(11 << 24, 95 << 24) & ~((1 << (32 - splen)) - 1) if splen else 0
        dplen = rng.choice([24, 28, 32])
        dst = _block(i) + (rng.randrange(256) & ~((1 << (32 - dplen)) - 1) & 0xFF)
        proto = rng.choices([6, 17, None], [50, 30, 20])[0]
        sport = dport = None
        if proto is not None:
            sport = rng.choices([None, (1024, 65535), None], [60, 25, 15])[0]
            if sport is None and rng.random() < 0.15:
                p = rng.randrange(1, 65536)
                sport = (p, p)
            kind = rng.choices(["known", "range", "any"], [50, 30, 20])[0]
            if kind == "known":
                p = rng.choice(WELL_KNOWN)
                dport = (p, p)
            elif kind == "range":
                lo = rng.randrange(1, 60000)
                dport = (lo, lo + rng.randrange(1, 2000))
        rules.append(BenchRule((src, splen), (dst, dplen), proto, sport, dport, rng.random() < 0.5))
    return rules


def _net(v: tuple[int, int]) -> str:
    return f"{ipaddress.IPv4Address(v[0])}/{v[1]}"


def _proto_name(p: int | None) -> str:
    return {1: "icmp", 6: "tcp", 17: "udp"}.get(p or 0, "all")


def iptables_args(r: BenchRule) -> list[str]:
    out = ["-s", _net(r.src), "-d", _net(r.dst)]
    if r.proto is not None:
        out += ["-p", _proto_name(r.proto)]
        if r.sport or r.dport:
            out += ["-m", _proto_name(r.proto)]
        if r.sport:
            out += ["--sport", f"{r.sport[0]}:{r.sport[1]}"]
        if r.dport:
            out += ["--dport", f"{r.dport[0]}:{r.dport[1]}"]
    return [*out, "-j", "ACCEPT" if r.accept else "DROP"]


# The last two rules of every set: a ping between the outer ends, both
# ways, for the round-trip time at the end of the list.
PING_A, PING_B = (
    int(ipaddress.IPv4Address("169.254.1.2")),
    int(ipaddress.IPv4Address("169.254.2.2")),
)
PING_RULES = (
    BenchRule((PING_A, 32), (PING_B, 32), 1, None, None, True),
    BenchRule((PING_B, 32), (PING_A, 32), 1, None, None, True),
)


def iptables_save(rules: Sequence[BenchRule]) -> str:
    lines = ["*filter", ":FORWARD DROP [0:0]"]
    lines += ["-A FORWARD " + " ".join(iptables_args(r)) for r in rules]
    return "\n".join([*lines, "COMMIT", ""])


def nft_rule(r: BenchRule) -> str:
    out = f"ip saddr {_net(r.src)} ip daddr {_net(r.dst)}"
    if r.proto is not None:
        name = _proto_name(r.proto)
        out += f" meta l4proto {name}"
        if r.sport:
            out += f" {name} sport {r.sport[0]}-{r.sport[1]}"
        if r.dport:
            out += f" {name} dport {r.dport[0]}-{r.dport[1]}"
    return out + (" accept" if r.accept else " drop")


def nft_linear(rules: Sequence[BenchRule]) -> str:
    body = "".join(f"    {nft_rule(r)}\n" for r in rules)
    return (
        "table ip okbench {\n  chain filter_forward {\n"
        "    type filter hook forward priority 0; policy drop;\n"
        f"{body}  }}\n}}\n"
    )


def nft_element(r: BenchRule) -> str:
    proto = f"{r.proto}" if r.proto is not None else "0-255"
    sport = f"{r.sport[0]}-{r.sport[1]}" if r.sport else "0-65535"
    dport = f"{r.dport[0]}-{r.dport[1]}" if r.dport else "0-65535"
    verdict = "accept" if r.accept else "drop"
    return f"{_net(r.dst)} . {_net(r.src)} . {proto} . {sport} . {dport} : {verdict}"


def nft_vmap(rules: Sequence[BenchRule]) -> str:
    elems = ",\n      ".join(nft_element(r) for r in rules)
    return (
        "table ip okbench {\n"
        "  map acl {\n"
        "    type ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service : verdict\n"
        "    flags interval\n" + (f"    elements = {{ {elems} }}\n" if rules else "") + "  }\n"
        "  chain filter_forward {\n"
        "    type filter hook forward priority 0; policy drop;\n"
        "    ip daddr . ip saddr . meta l4proto . th sport . th dport vmap @acl\n"
        "  }\n}\n"
    )


def acl_rules(rules: Sequence[BenchRule]) -> list[AclRule]:
    out = []
    for i, r in enumerate(rules):
        sets: dict[str, IntSet] = {}
        for name, (addr, plen) in (("src", r.src), ("dst", r.dst)):
            if plen:
                sets[name] = IntSet.of(1 << 32, [(addr, addr + (1 << (32 - plen)) - 1)])
        if r.proto is not None:
            sets["proto"] = IntSet.values(256, [r.proto])
        for name, span in (("sport", r.sport), ("dport", r.dport)):
            if span:
                sets[name] = IntSet.of(1 << 16, [span])
        verdict = VERDICT_PASS if r.accept else VERDICT_DROP
        out.append(AclRule(Match.of(**sets), verdict, f"rule {i}", key=repr(r)))
    return out


def probe(r: BenchRule | None, rng: random.Random, n: int) -> bytes:
    """A frame from side A matching 'r' (None: no rule)."""
    if r is None:
        dst = _block(n + 1000) + rng.randrange(256)
        src = rng.randrange(11 << 24, 95 << 24)
        proto, sport, dport = 6, rng.randrange(1024, 65536), 80
    else:
        dst = r.dst[0] + rng.randrange(1 << (32 - r.dst[1]))
        src = (
            r.src[0] + rng.randrange(1 << (32 - r.src[1]))
            if r.src[1]
            else rng.randrange(11 << 24, 95 << 24)
        )
        proto = r.proto or rng.choice([6, 17])
        sport = rng.randint(*r.sport) if r.sport else rng.randrange(1024, 65536)
        dport = rng.randint(*r.dport) if r.dport else rng.randrange(1, 65536)
    s, d = str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst))
    l4 = pk.tcp(s, d, sport, dport) if proto == 6 else pk.udp(s, d, sport, dport, b"\0" * 4)
    return pk.ethernet(
        pk.ETH_P_IP,
        pk.ipv4(s, d, proto, l4),
        src=mac_bytes(MACS["ea"]),
        dst=mac_bytes(MACS["fa"]),
    )


def probes(rules: Sequence[BenchRule], seed: int = 2) -> tuple[list[bytes], float]:
    """The probe frames, and the share the rule set accepts: at evenly
    spaced depths, the nearest rule that accepts, then one that drops, in
    turn, so that every N forwards the same share of the probes."""
    rng = random.Random(seed)
    n = len(rules)
    matching = PROBES - DEFAULT_PROBES
    chosen: list[BenchRule | None] = []
    for i in range(matching if n else 0):
        depth = round(i * (n - 1) / (matching - 1))
        want = i % 2 == 0
        window = range(max(0, depth - 63), min(n, depth + 64))
        near = sorted(window, key=lambda j: abs(j - depth))[:64]
        pick = next((j for j in near if rules[j].accept == want), depth)
        chosen.append(rules[pick])
    chosen += [None] * DEFAULT_PROBES
    accepted = sum(1 for r in chosen if r is not None and r.accept)
    return [probe(r, rng, n) for r in chosen], accepted / len(chosen)


def trafgen_config(frames: Sequence[bytes]) -> str:
    return "".join("{ " + ", ".join(f"0x{b:02x}" for b in f) + " }\n" for f in frames)


class Path2:
    """The router, with counters of what side A sent and side B received."""

    def __init__(self, forwarding: bool = True) -> None:
        self.router = Router(split=True)
        if not forwarding:
            self.router.fw.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
        assert self.router.edge is not None
        self.edge = self.router.edge
        self.ping_to = self.router.address_ends(through_router=forwarding)[1]

    def counter(self, ifname: str, what: str) -> int:
        ns = self.router.outer(ifname)
        return int(ns.run(["cat", f"/sys/class/net/{ifname}/statistics/{what}"]).strip())

    def rtt_ms(self, count: int = 20) -> float:
        """The median round trip of a ping between the outer ends, through
        the firewall (its rules for it are the last of the list)."""
        out = self.edge.run(["ping", "-n", "-c", str(count), "-i", "0.02", "-W", "1",
                             self.ping_to], check=False)  # fmt: skip
        rtts = [float(x.split("time=")[1].split()[0]) for x in out.splitlines() if "time=" in x]
        return statistics.median(rtts) if rtts else float("nan")

    def blast(self, frames: Sequence[bytes], seconds: float, gap_us: int = 0) -> tuple[float, int]:
        """trafgen the frames in turn for 'seconds' (paced with 'gap_us');
        packets/s side B received, and how many side A sent."""
        with tempfile.NamedTemporaryFile("w", suffix=".trafgen", delete=False) as f:
            f.write(trafgen_config(frames))
            conf = f.name
        try:
            sent0, got0 = self.counter("ea", "tx_packets"), self.counter("eb", "rx_packets")
            start = time.monotonic()
            argv = ["timeout", "-k", "2", "-s", "INT", str(seconds), "trafgen", "--dev", "ea",
                    "--conf", conf, "-q"] + (["-t", f"{gap_us}us"] if gap_us else [])  # fmt: skip
            subprocess.run(self.edge.argv(argv), capture_output=True, check=False,
                           timeout=seconds + 30)  # fmt: skip
            elapsed = time.monotonic() - start
            time.sleep(0.3)
            got = self.counter("eb", "rx_packets") - got0
            return got / elapsed, self.counter("ea", "tx_packets") - sent0
        finally:
            Path(conf).unlink(missing_ok=True)

    def pace(self, frames: Sequence[bytes], seconds: float) -> subprocess.Popen[bytes]:
        """trafgen the frames at one per PACED_GAP_US for 'seconds', in the
        background."""
        with tempfile.NamedTemporaryFile("w", suffix=".trafgen", delete=False) as conf:
            conf.write(trafgen_config(frames))
        self._paced_conf = conf.name
        return subprocess.Popen(
            self.edge.argv(["timeout", "-s", "INT", str(seconds), "trafgen", "--dev", "ea",
                            "--conf", conf.name, "-q", "-t", f"{PACED_GAP_US}us"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def close(self) -> None:
        conf = getattr(self, "_paced_conf", None)
        if conf:
            Path(conf).unlink(missing_ok=True)
        self.router.close()


class Variant:
    name = ""
    forwarding = True
    base_memory = 0

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        raise NotImplementedError

    def add(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        """Insert 'extra' before rule 'at'."""
        raise NotImplementedError

    def delete(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        raise NotImplementedError

    def memory(self) -> int:
        return kernel_memory()

    def teardown(self, path: Path2) -> None:
        """The namespaces go with the path; only what this started."""


class Iptables(Variant):
    def __init__(self, binary: str, label: str) -> None:
        self.binary, self.name = binary, label

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        self.base_memory = self.memory()
        path.router.fw.run([f"{self.binary}-restore"], input_text=iptables_save(rules),
                           timeout=1200)  # fmt: skip

    def add(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        path.router.fw.run([self.binary, "-I", "FORWARD", str(at + 1), *iptables_args(extra)])

    def delete(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        path.router.fw.run([self.binary, "-D", "FORWARD", str(at + 1)])


class NftLinear(Variant):
    name = "nftables rules"

    def __init__(self) -> None:
        self.handle = ""

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        self.base_memory = self.memory()
        path.router.fw.run(["nft", "-f", "-"], input_text=nft_linear(rules), timeout=1200)

    def add(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        argv = ["nft", "--echo", "--handle", "insert", "rule", "ip", "okbench",
                "filter_forward", "index", str(at), *nft_rule(extra).split()]  # fmt: skip
        out = path.router.fw.run(argv)
        self.handle = out.rsplit("# handle", 1)[-1].split()[0]

    def delete(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        path.router.fw.run(["nft", "delete", "rule", "ip", "okbench", "filter_forward", "handle",
                            self.handle])  # fmt: skip


class NftVmap(Variant):
    name = "nftables interval map"

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        self.base_memory = self.memory()
        path.router.fw.run(["nft", "-f", "-"], input_text=nft_vmap(rules), timeout=1200)

    def add(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        path.router.fw.run(["nft", "add", "element", "ip", "okbench", "acl",
                            f"{{ {nft_element(extra)} }}"])  # fmt: skip

    def delete(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        key = nft_element(extra).rsplit(" : ", 1)[0]
        path.router.fw.run(["nft", "delete", "element", "ip", "okbench", "acl", f"{{ {key} }}"])


# Map entries written (map, key, value) or deleted (map, key, None), in
# the order they are applied.
Ops = list[tuple[str, bytes, bytes | None]]


@dataclass
class Change:
    """The map writes of a rule added, removed, its twin added, removed,
    in a cycle that gives the same maps again ('steps'); 'at' is the next
    step.  An add also clears the bits of the rule removed before it."""

    steps: list[Ops]
    at: int = 0

    def next(self) -> Ops:
        ops = self.steps[self.at]
        self.at = (self.at + 1) % len(self.steps)
        return ops

    def count(self) -> int:
        """Map writes of one rule added."""
        return len(self.steps[0])


def _diff(prog: vm.Program, old: CompiledAcl, new: CompiledAcl) -> Ops:
    """okopy.acl.compile.ordered_changes() as bytes for 'prog''s maps, in
    its order (the controller's)."""
    out: Ops = []
    for op in ordered_changes(old.maps, new.maps):
        m = prog.map(op.map)
        key = m.encode_key(op.key)
        if op.value is not None:
            out.append((op.map, key, m.encode_value(op.value)))
        elif m.info.type == "array":
            # Array entries cannot be deleted: back to zeros (as the
            # controller does).
            out.append((op.map, key, bytes(m.info.value_size)))
        else:
            out.append((op.map, key, None))
    return out


class OkopyBase(Variant):
    """What both okopy variants share: the object, compiled maps, the
    change of one rule as map writes."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.dir: tempfile.TemporaryDirectory[str] | None = None
        self.obj = b""
        self.prog: vm.Program | None = None
        self.change: Change | None = None

    def compile(self, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> CompiledAcl:
        self.dir = tempfile.TemporaryDirectory(prefix="okopy-bench-acl-")
        # Room for half as many rules again at least, a power of two, as
        # an operator would build it: rules then keep gaps between them,
        # and one added moves no other.
        limit = max(1024, 1 << (len(rules) + len(rules) // 2).bit_length())
        self.obj = compile_program(self.layout.repo / "bpf" / "acl.c",
                                   Path(self.dir.name) / "acl.o",
                                   defines=[f"ACL_MAX_RULES={limit}"]).read_bytes()  # fmt: skip
        self.prog = vm.Namespace("bench-acl").load(self.obj)
        base_rules = acl_rules(rules)
        # A rule taken out keeps its bits until the next change clears
        # them, so adding back the rule just removed would cost only the
        # switch: the bench adds 'extra' and a twin (another port) in
        # turn, each add clearing the other's bits, every change written
        # against the translation before it, until the maps repeat.
        twin = dataclasses.replace(extra, dport=(extra.dport[0] + 1,) * 2 if extra.dport else None)
        cycle = []
        for rule in (extra, twin):
            more = list(base_rules)
            more.insert(at, acl_rules([rule])[0])
            cycle += [more, base_rules]
        states = [compile_rules(base_rules, VERDICT_DROP, limit)]

        def repeats() -> bool:
            """The last state is the one a cycle before, both with no rule added."""
            n = len(states) - 1
            return n > len(cycle) and n % 2 == 0 and states[n].maps == states[n - len(cycle)].maps

        while not repeats():
            if len(states) > 4 * len(cycle):
                raise RuntimeError("adding and removing two rules in turn never repeats the maps")
            rs = cycle[(len(states) - 1) % len(cycle)]
            states.append(compile_rules(rs, VERDICT_DROP, limit, states[-1].maps))
        last = states[-1 - len(cycle) :]
        self.change = Change([_diff(self.prog, a, b) for a, b in itertools.pairwise(last)])
        return last[0]

    def _apply(self, ops: Ops) -> None:
        raise NotImplementedError

    def add(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        assert self.change is not None
        self._apply(self.change.next())

    def delete(self, path: Path2, rules: Sequence[BenchRule], extra: BenchRule, at: int) -> None:
        assert self.change is not None
        self._apply(self.change.next())

    def seeds(self, acl: CompiledAcl) -> Ops:
        assert self.prog is not None
        out: Ops = []
        for name, entries in acl.maps.items():
            m = self.prog.map(name)
            out += [(name, m.encode_key(e["key"]), m.encode_value(e["value"])) for e in entries]
        return out

    def teardown(self, path: Path2) -> None:
        if self.dir is not None:
            self.dir.cleanup()
            self.dir = None


class OkopyXdp(OkopyBase):
    name = "okopy acl.c, XDP"

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout)
        self.kernel: KernelProgram | None = None

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        base = self.compile(rules, *_extra(rules))
        self.kernel = KernelProgram(self.obj)
        self.base_memory = 0
        self._apply(self.seeds(base))
        with inside(path.router.fw):
            # Generic (skb) mode: in native mode on veth, trafgen's TX ring
            # does not drain (its sends never complete) on this kernel.
            self.kernel.attach_xdp(path.router.ifindex("fa"), mode="skb")

    def _apply(self, ops: Ops) -> None:
        assert self.kernel is not None
        for name, key, value in ops:
            if value is None:
                self.kernel.maps[name].delete(key)
            else:
                self.kernel.maps[name].update(key, value)

    def memory(self) -> int:
        """The memory the kernel charged for the program's maps."""
        if self.kernel is None:
            return 0
        total = 0
        for m in self.kernel.maps.values():
            for line in Path(f"/proc/self/fdinfo/{m.fd}").read_text().splitlines():
                if line.startswith("memlock:"):
                    total += int(line.split()[1])
        return total

    def teardown(self, path: Path2) -> None:
        if self.kernel is not None:
            self.kernel.close()
            self.kernel = None
        super().teardown(path)


class OkopySwitch(OkopyBase):
    name = "okopy acl.c, switch"
    forwarding = False

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout)
        self.switch: OvsInstance | None = None
        self.client: OfClient | None = None

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        base = self.compile(rules, *_extra(rules))
        assert self.dir is not None
        sw = OvsInstance(OvsTools.from_layout(self.layout), Path(self.dir.name) / "ovs",
                         path.router.fw).start()  # fmt: skip
        self.switch = sw
        sw.add_bridge("br0")
        sw.add_port("br0", "fa", 1)
        sw.add_port("br0", "fb", 2)
        self.base_memory = self.memory()
        obj = Path(self.dir.name) / "acl.o"
        sw.ofctl("-O", "OpenFlow13", "load-bpf-prog", "br0", "1", str(obj), "name=acl")
        self.client = OfClient.bridge(sw.rundir, "br0")
        self._apply(self.seeds(base))
        sw.ofctl("del-flows", "br0")
        for flow in (
            "table=0,priority=100,in_port=1,ip,actions=bpf(prog=1,drop_unless=pass),output:2",
            # The ping's replies come back unfiltered.
            "table=0,priority=100,in_port=2,ip,actions=output:1",
            "table=0,priority=0,actions=drop",
        ):
            sw.ofctl("-O", "OpenFlow13", "add-flow", "br0", flow)

    def _messages(self, ops: Ops) -> list[MapUpdate | MapDelete]:
        """A message per run of writes (or deletions) to one map, in the
        order of 'ops' (and per 60 kB of entries: an OpenFlow message is at
        most 64 kB); the switch applies them in that order."""
        assert self.prog is not None
        out: list[MapUpdate | MapDelete] = []
        for (name, deleting), group in itertools.groupby(ops, lambda o: (o[0], o[2] is None)):
            run = list(group)
            keys = tuple(k for _, k, _ in run)
            if deleting:
                vs = self.prog.map(name).info.value_size
                out.append(MapDelete(1, name, len(keys[0]), vs, len(keys), 0, keys))
                continue
            values = tuple(v for _, _, v in run if v is not None)
            per = max(1, 60000 // (len(keys[0]) + len(values[0])))
            for start in range(0, len(keys), per):
                ks, vs_ = keys[start : start + per], values[start : start + per]
                out.append(MapUpdate(1, name, len(ks[0]), len(vs_[0]), len(ks), 0, ks, vs_))
        return out

    def _apply(self, ops: Ops) -> None:
        """All the change's messages at once, then their replies: one round
        trip over the connection kept open."""
        assert self.client is not None
        for reply in self.client.request_all(self._messages(ops)):
            if not isinstance(reply, MapUpdateReply | MapDeleteReply):
                raise RuntimeError(f"unexpected reply to a map change: {reply}")

    def memory(self) -> int:
        assert self.switch is not None
        return process_rss(self.switch.pids["ovs-vswitchd"])

    def teardown(self, path: Path2) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.switch is not None:
            self.switch.stop()
            self.switch = None
        super().teardown(path)


class Plain(Variant):
    """The kernel's forwarding path with no rules: the baseline."""

    name = "kernel forwarding, no rules"

    def setup(self, path: Path2, rules: Sequence[BenchRule]) -> None:
        self.base_memory = self.memory()


def _extra(rules: Sequence[BenchRule]) -> tuple[BenchRule, int]:
    """The rule added and removed in the middle of 'rules', the same kind
    for every N (a /24 source, a block of its own, TCP to port 443): what
    a change costs should not depend on which random rule it was."""
    src = int(ipaddress.IPv4Address("11.22.33.0"))
    return BenchRule((src, 24), (_block(len(rules)), 24), 6, None, (443, 443), True), len(
        rules
    ) // 2


@dataclass
class Result:
    variant: str
    n: int
    pps: Sample
    accepted: float
    add_ms: Sample
    delete_ms: Sample
    loss: Sample
    memory_bytes: int
    writes: int = 0
    rtt_ms: float = float("nan")
    note: str = ""


@dataclass
class AclRun:
    sizes: Sequence[int]
    runs: int
    seconds: float
    results: list[Result] = field(default_factory=list)


def variants(layout: Layout) -> list[Variant]:
    return [
        Plain(),
        Iptables("iptables-legacy", "iptables (legacy)"),
        Iptables("iptables-nft", "iptables (nf_tables)"),
        NftLinear(),
        NftVmap(),
        OkopyXdp(layout),
        OkopySwitch(layout),
    ]


def measure(v: Variant, rules: Sequence[BenchRule], runs: int, seconds: float,
            log: Callable[[str], None]) -> Result:  # fmt: skip
    path = Path2(v.forwarding)
    # The ping's two rules go last: its round trip meets every rule.
    listed = [*rules, *PING_RULES]
    try:
        frames, accepted = probes(rules)
        v.setup(path, listed)
        memory = v.memory() - v.base_memory
        rtt = path.rtt_ms()
        # A packet of the first ACCEPT rule, which no change concerns,
        # paced while rules change.
        first = next((r for r in rules if r.accept), None)
        steady = [probe(first, random.Random(5), len(rules))] if first else []
        pps, adds, deletes, losses = [], [], [], []
        extra, at = _extra(listed)
        for _ in range(runs):
            pps.append(path.blast(frames, seconds)[0])
            if isinstance(v, Plain):
                continue
            sent0, got0 = path.counter("ea", "tx_packets"), path.counter("eb", "rx_packets")
            paced = path.pace(steady, 2.0) if steady else None
            time.sleep(0.3)
            for _ in range(UPDATES):
                t = time.perf_counter()
                v.add(path, listed, extra, at)
                adds.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                v.delete(path, listed, extra, at)
                deletes.append((time.perf_counter() - t) * 1000)
            if paced is not None:
                paced.wait(timeout=30)
                time.sleep(0.3)
                sent = path.counter("ea", "tx_packets") - sent0
                got = path.counter("eb", "rx_packets") - got0
                losses.append(float(sent - got))
        writes = v.change.count() if isinstance(v, OkopyBase) and v.change else 0
        res = Result(v.name, len(rules), Sample(tuple(pps)), accepted, Sample(tuple(adds)),
                     Sample(tuple(deletes)), Sample(tuple(losses)), memory,
                     writes, rtt)  # fmt: skip
        log(f"  {v.name:<28} N={len(rules):<5} {res.pps.fmt(' pps')}  rtt {rtt:.3f} ms  "
            f"add {res.add_ms.fmt(' ms', 3)}  delete {res.delete_ms.fmt(' ms', 3)}  "
            f"lost {res.loss.fmt('', 0)}  memory {memory / 2**20:.2f} MiB")  # fmt: skip
        return res
    finally:
        v.teardown(path)
        path.close()


def run(
    layout: Layout,
    sizes: Sequence[int] = (10, 100, 1000, 8192),
    runs: int = 3,
    seconds: float = 2.0,
    log: Callable[[str], None] = print,
    out_dir: Path | None = None,
    only: Sequence[str] = (),
) -> AclRun:
    result = AclRun(sizes, runs, seconds)
    for n in sizes:
        rules = generate(n)
        for v in variants(layout):
            if only and not any(o in v.name for o in only):
                continue
            if isinstance(v, Plain) and result.results and n != sizes[0]:
                continue
            result.results.append(measure(v, rules, runs, seconds, log))
    lines = _report(result)
    data: dict[str, Any] = {
        "results": [
            {"variant": r.variant, "n": r.n, "pps": r.pps.values, "accepted": r.accepted,
             "add_ms": r.add_ms.values, "delete_ms": r.delete_ms.values,
             "lost": r.loss.values, "memory_bytes": r.memory_bytes, "writes": r.writes,
             "rtt_ms": r.rtt_ms}
            for r in result.results
        ]
    }  # fmt: skip
    md = write_report(out_dir or layout.repo / "docs" / "benchmarks", "acl", lines, data)
    plot(data, md.with_suffix(".png"))
    log(f"report: {md}")
    return result


def _find(run_: AclRun, variant: str, n: int) -> Result | None:
    for r in run_.results:
        if r.variant == variant and r.n == n:
            return r
    return None


def targets(run_: AclRun) -> list[str]:
    """The issue's targets, checked against this run."""
    out = []
    sizes = sorted(run_.sizes)
    lo, hi = sizes[0], sizes[-1]
    for name in (OkopyXdp.name, OkopySwitch.name):
        a, b = _find(run_, name, lo), _find(run_, name, hi)
        if a and b and a.pps.median:
            ratio = b.pps.median / a.pps.median
            out.append(f"- {name}: rate at {hi} rules / rate at {lo}: {ratio:.2f} "
                       f"(target >= 0.90: {'met' if ratio >= 0.9 else 'missed'})")  # fmt: skip
    for n in sizes:
        sw = _find(run_, OkopySwitch.name, n)
        if sw and sw.add_ms.values:
            typical = max(sw.add_ms.median, sw.delete_ms.median)
            worst = max(*sw.add_ms.values, *sw.delete_ms.values)
            lost = max(sw.loss.values) if sw.loss.values else float("nan")
            ok = typical < 1.0 and lost == 0
            out.append(f"- {OkopySwitch.name}, {n} rules: add/delete one rule over a kept "
                       f"OpenFlow connection, median {typical:.3f} ms (slowest {worst:.3f}), "
                       f"paced packets lost {lost:.0f} (target < 1 ms, 0 lost: "
                       f"{'met' if ok else 'missed'})")  # fmt: skip
    for n in sizes:
        ok_x = _find(run_, OkopyXdp.name, n)
        if ok_x is None:
            continue
        for other, when in (("iptables (legacy)", 100), ("iptables (nf_tables)", 100),
                            ("nftables interval map", 1000)):  # fmt: skip
            o = _find(run_, other, n)
            if o is None or n < when:
                continue
            ratio = ok_x.pps.median / o.pps.median if o.pps.median else float("nan")
            want = "faster than" if other.startswith("iptables") else "not slower than"
            ok = ratio > 1.0 if other.startswith("iptables") else ratio >= 1.0
            out.append(f"- {OkopyXdp.name} vs {other} at {n} rules: {ratio:.2f}x "
                       f"(target {want}: {'met' if ok else 'missed'})")  # fmt: skip
    return out


HEADER = ["variant", "N", "pps (median, min-max)", "vs no rules", "vs own at smallest N",
          "RTT ms", "add ms", "delete ms", "map writes", "paced lost", "memory MiB"]  # fmt: skip


def _report(run_: AclRun) -> list[str]:
    base = _find(run_, Plain.name, sorted(run_.sizes)[0])
    smallest = sorted(run_.sizes)[0]
    rows = []
    for r in run_.results:
        vs_base = r.pps.median / base.pps.median if base and base.pps.median else float("nan")
        own = _find(run_, r.variant, smallest)
        vs_own = r.pps.median / own.pps.median if own and own.pps.median else float("nan")
        rows.append([r.variant, r.n, r.pps.fmt(), f"{vs_base:.2f}", f"{vs_own:.2f}",
                     f"{r.rtt_ms:.3f}",
                     r.add_ms.fmt(digits=3),
                     r.delete_ms.fmt(digits=3),
                     r.writes or "-", r.loss.fmt(),
                     f"{r.memory_bytes / 2**20:.2f}"])  # fmt: skip
    accepted = run_.results[0].accepted if run_.results else float("nan")
    return [
        "## Method",
        "",
        f"A router namespace forwards between two veth links (okopy.lab.router); trafgen "
        f"sends {PROBES} different 64-byte-class packets in turn from side A for "
        f"{run_.seconds} s per run ({run_.runs} runs: median, min-max), and the rate is what "
        f"side B received per second.  Each probe matches one rule, at evenly spaced "
        f"depths of the list, and {DEFAULT_PROBES} match none (policy DROP); "
        f"{accepted:.0%} of the probes are accepted.  Rules in the style of ClassBench's "
        "ACL seeds (source prefixes of mixed lengths, destination prefixes, TCP/UDP/any, "
        "ephemeral and single source ports, well-known and ranged destination ports, half "
        "ACCEPT, half DROP); each rule's destination is a block of its own, so the rules do "
        "not overlap and the nftables interval map holds them as they are.",
        "",
        "RTT: the median of 20 pings between the outer ends through the firewall, whose "
        "rules for them are the last two of the list (every rule is met on the way; "
        "N counts the others); in the switch the replies come back unfiltered.",
        "",
        "Add and delete: one rule inserted in the middle of the list and removed again, "
        f"{UPDATES} times per run, with the variant's own tool (iptables, nft: process "
        "start included) or, for okopy, the map writes okopy.acl's compiler gives for the "
        "change (`map writes`: entries written or deleted for one rule added; okopy adds "
        "that rule and a twin of it (the next port) in turn, each written against the "
        "translation before, as a reload does: a rule removed keeps its bits until the next "
        "change clears them, so adding the same one back would cost less), as bpf system "
        "calls (XDP) or one OpenFlow message per map over a connection kept open (switch), "
        "from the first request to the last reply.  Meanwhile trafgen paces a packet of the "
        f"first rule (accepted when that rule is an ACCEPT) at one per {PACED_GAP_US} us: "
        "`paced lost` "
        "is what it sent minus what arrived.  Memory: the kernel's slab + vmalloc + per-CPU "
        "growth for iptables and nftables (machine-wide, approximate), the maps' memlock for "
        "okopy XDP, ovs-vswitchd's resident set growth for the okopy switch.",
        "",
        "The okopy switch forwards through AF_PACKET ports in userspace: its absolute rate "
        "is far below the kernel's whatever the rules, and its columns compare with "
        "themselves across N.  `vs no rules` is against the kernel's forwarding path with "
        "no rules, measured in the same run.",
        "",
        *markdown_table(HEADER, rows),
        "",
        "## Targets",
        "",
        *targets(run_),
    ]


def plot(data: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in data["results"]:
        by_variant.setdefault(r["variant"], []).append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, unsorted in by_variant.items():
        rs = sorted(unsorted, key=lambda r: r["n"])
        ns = [r["n"] for r in rs]
        if len(rs) == 1 and name == Plain.name:
            ax1.axhline(statistics.median(rs[0]["pps"]), color="grey", linestyle=":", label=name)
            continue
        ax1.plot(ns, [statistics.median(r["pps"]) for r in rs], marker="o", label=name)
        if any(r["add_ms"] for r in rs):
            ax2.plot(ns, [statistics.median(r["add_ms"]) if r["add_ms"] else float("nan")
                          for r in rs], marker="o", label=name)  # fmt: skip
    for ax, ylabel in ((ax1, "packets/s received"), (ax2, "ms to add one rule")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rules (N)")
        ax.set_ylabel(ylabel)
    ax1.set_title("Throughput, probes over the rule list")
    ax2.set_title("Adding one rule while traffic flows")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
