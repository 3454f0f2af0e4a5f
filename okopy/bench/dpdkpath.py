"""A DPDK path for forwarding benchmarks: gen -> switch -> gen.

The patched ovs-vswitchd with DPDK (its PMD thread on core 1) has two
vhost-user client ports; the generator is the project's own
`bench/dpdk-gen.c` on two `net_virtio_user` ports (the vhost-user servers),
its one lcore on core 0: it sends 64-byte TCP SYNs over a number of flows
into switch port 1 and counts what comes back from switch port 2.  Each
measurement is one run of the generator (a warm-up, then the window); the
switch's clients reconnect to each new generator by themselves.

Huge pages are reserved for the path's life and given back when it is
deleted (okopy.lab.dpdk.HugePages).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from okopy.lab.dpdk import HugePages
from okopy.netns import Namespace
from okopy.ovs.instance import DpdkSettings, OvsInstance, OvsTools
from okopy.paths import Layout
from okopy.process import CommandError, run

# Memory (MB of 2 MB huge pages) for the switch's DPDK and the generator's.
SWITCH_MB = 256
GEN_MB = 128
GEN_CORE, PMD_CORE = 0, 1
PORTS = ("vhu1", "vhu2")


def build_generator(layout: Layout) -> Path:
    """Build bench/dpdk-gen.c into build/bench (make: only when it changed)."""
    out = layout.build / "bench"
    run(["make", "-C", str(layout.repo / "bench"), "--no-print-directory", f"O={out}"],
        timeout=300)  # fmt: skip
    return out / "dpdk-gen"


class DpdkPath:
    """The switch, its two vhost-user ports and the generator's sockets."""

    def __init__(self, layout: Layout, workdir: Path, flows: int, dst_ip: str) -> None:
        self.flows = flows
        self.dst_ip = dst_ip
        self.workdir = workdir
        self.gen = build_generator(layout)
        self.sockets = [workdir / f"{p}.sock" for p in PORTS]
        self.pages = HugePages(SWITCH_MB + GEN_MB, workdir / "hugepages").reserve()
        self.fw: Namespace | None = None
        self.switch: OvsInstance | None = None
        self.runs = 0
        try:
            self.fw = Namespace.create("fw")
            eal = tuple(self.pages.eal_args(f"okopy-bench-{self.fw.name}"))
            self.switch = OvsInstance(
                OvsTools.from_layout(layout), workdir / "ovs", self.fw,
                DpdkSettings(eal, SWITCH_MB, (PMD_CORE,)),
            ).start()  # fmt: skip
            self.switch.add_bridge("br0")
            for ofport, (port, sock) in enumerate(zip(PORTS, self.sockets, strict=True), 1):
                self.switch.add_port("br0", port, ofport, "vhost", str(sock))
        except BaseException:
            self.delete()
            raise

    def blast(self, seconds: float, warmup: float = 0.5) -> float:
        """Run the generator for 'seconds' after 'warmup'; packets per second
        that came back."""
        self.runs += 1
        argv = [str(self.gen), "-l", str(GEN_CORE),
                *self.pages.eal_args(f"okopy-gen-{self.runs}-{self.fw.name if self.fw else ''}",
                                     GEN_MB)]  # fmt: skip
        for i, sock in enumerate(self.sockets):
            argv += ["--vdev", f"net_virtio_user{i},path={sock},server=1,queue_size=1024"]
        argv += ["--", "--seconds", str(seconds), "--warmup", str(warmup),
                 "--flows", str(self.flows), "--dst-ip", self.dst_ip]  # fmt: skip
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
        if self.fw is not None:
            self.fw.delete()
            self.fw = None
        self.pages.release()
