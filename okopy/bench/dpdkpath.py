"""A path for forwarding benchmarks driven by the project's DPDK generator:
gen -> switch -> gen, the switch's one PMD thread on core 1, the generator
(`bench/dpdk-gen.c`, one lcore) on core 0.  It sends 64-byte TCP SYNs over
a number of flows into switch port 1 and counts what comes back from switch
port 2.  Two kinds of ports:

- `dpdk`: the switch, with DPDK, has two vhost-user client ports; the
  generator's two `net_virtio_user` ports are their servers.  The switch's
  clients reconnect to each new generator by themselves.
- `afxdp`: the switch (no DPDK) has two AF_XDP ports on veth ends (their
  XDP programs in veth's driver); the generator runs in a namespace of its
  own on the peers through DPDK's `net_af_xdp`: both ends of each veth
  pair are AF_XDP sockets, no kernel network stack is crossed, and the
  kernel's work is veth's copy and the XDP programs that hand each packet
  to a socket.

Each measurement is one run of the generator (a warm-up, then the window).
Huge pages are reserved for the path's life and given back when it is
deleted (okopy.lab.dpdk.HugePages).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from okopy.lab.dpdk import HugePages
from okopy.netns import Namespace, add_veth
from okopy.ovs.instance import DpdkSettings, OvsInstance, OvsTools
from okopy.paths import Layout
from okopy.process import CommandError, run

# Memory (MB of 2 MB huge pages) for the switch's DPDK and the generator's.
SWITCH_MB = 256
GEN_MB = 128
GEN_CORE, PMD_CORE = 0, 1
PORTS = ("vhu1", "vhu2")
# afxdp: the switch's veth ends and the generator's peers.
VETHS = (("f0", "g0"), ("f1", "g1"))
PORT_KINDS = ("dpdk", "afxdp")


def build_generator(layout: Layout) -> Path:
    """Build bench/dpdk-gen.c into build/bench (make: only when it changed)."""
    out = layout.build / "bench"
    run(["make", "-C", str(layout.repo / "bench"), "--no-print-directory", f"O={out}"],
        timeout=300)  # fmt: skip
    return out / "dpdk-gen"


class DpdkPath:
    """The switch, its two ports of 'kind' (PORT_KINDS) and what the
    generator needs to reach them."""

    def __init__(
        self, layout: Layout, workdir: Path, flows: int, dst_ip: str, kind: str = "dpdk"
    ) -> None:
        if kind not in PORT_KINDS:
            raise ValueError(f"port kind {kind!r}: one of {', '.join(PORT_KINDS)}")
        self.kind = kind
        self.flows = flows
        self.dst_ip = dst_ip
        self.workdir = workdir
        self.gen = build_generator(layout)
        self.sockets = [workdir / f"{p}.sock" for p in PORTS]
        switch_mb = SWITCH_MB if kind == "dpdk" else 0
        self.pages = HugePages(switch_mb + GEN_MB, workdir / "hugepages").reserve()
        self.fw: Namespace | None = None
        self.gen_ns: Namespace | None = None
        self.switch: OvsInstance | None = None
        self.runs = 0
        try:
            self.fw = Namespace.create("fw")
            tools = OvsTools.from_layout(layout)
            if kind == "dpdk":
                eal = tuple(self.pages.eal_args(f"okopy-bench-{self.fw.name}"))
                settings = DpdkSettings(eal, SWITCH_MB, (PMD_CORE,))
                self.switch = OvsInstance(tools, workdir / "ovs", self.fw, settings).start()
            else:
                self.gen_ns = Namespace.create("gen")
                for ours, theirs in VETHS:
                    add_veth(self.fw, ours, self.gen_ns, theirs)
                self.switch = OvsInstance(tools, workdir / "ovs", self.fw).start()
                self.switch.vsctl("set", "Open_vSwitch", ".",
                                  f"other_config:pmd-cpu-mask={1 << PMD_CORE:#x}")  # fmt: skip
            self.switch.add_bridge("br0")
            for ofport in (1, 2):
                if kind == "dpdk":
                    self.switch.add_port("br0", PORTS[ofport - 1], ofport, "vhost",
                                         str(self.sockets[ofport - 1]))  # fmt: skip
                else:
                    self.switch.add_port("br0", VETHS[ofport - 1][0], ofport, "afxdp")
        except BaseException:
            self.delete()
            raise

    def vdevs(self) -> list[str]:
        """The generator's two ports, as EAL --vdev arguments."""
        if self.kind == "dpdk":
            return [f"net_virtio_user{i},path={sock},server=1,queue_size=1024"
                    for i, sock in enumerate(self.sockets)]  # fmt: skip
        return [f"net_af_xdp{i},iface={theirs}" for i, (_, theirs) in enumerate(VETHS)]

    def blast(self, seconds: float, warmup: float = 0.5) -> float:
        """Run the generator for 'seconds' after 'warmup'; packets per second
        that came back."""
        self.runs += 1
        argv = [str(self.gen), "-l", str(GEN_CORE),
                *self.pages.eal_args(f"okopy-gen-{self.runs}-{self.fw.name if self.fw else ''}",
                                     GEN_MB)]  # fmt: skip
        for vdev in self.vdevs():
            argv += ["--vdev", vdev]
        argv += ["--", "--seconds", str(seconds), "--warmup", str(warmup),
                 "--flows", str(self.flows), "--dst-ip", self.dst_ip]  # fmt: skip
        if self.gen_ns is not None:
            argv = self.gen_ns.argv(argv)
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=seconds + warmup + 60)  # fmt: skip
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            if self.switch is not None:
                out += "\nthe switch's log:\n" + self.switch.log_tail()
            raise CommandError(argv, proc.returncode, out)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        # Let the switch's clients see this generator go before the next.
        time.sleep(0.2)
        return float(result["rx_pps"])

    def rtt_ms(self, count: int = 10) -> float:
        """Not measured on this path (no kernel stack to ping from)."""
        return float("nan")

    def delete(self) -> None:
        if self.switch is not None:
            self.switch.stop()
            self.switch = None
        for ns in (self.fw, self.gen_ns):
            if ns is not None:
                ns.delete()  # the veth pairs with it
        self.fw = self.gen_ns = None
        self.pages.release()
