"""The bcc side of `okopy trace` and `okopy top`: find the running
ovs-vswitchd, learn its programs and the flows that call them, attach
small BPF programs to its okopy:* USDT probes, and read what they report.

They attach to okopy:bpf_batch, which fires once per datapath batch
(up to 32 packets) with each packet's verdict, run time and data: a probe
that fires costs a trap into the kernel, and once per batch is what keeps
a tracer cheap.  The probe has a semaphore: while nothing is attached the
switch does not even time its runs; attaching raises it (bcc does), and
the switch then runs its packets one at a time, timing each, for at most
other_config:bpf-trace-rate batches a second per datapath thread (10000
by default): at millions of packets a second, a trap per batch would
cost the thread a third of its rate.  The batches over that rate run
untraced; the next batch traced reports how many runs were skipped, which
`okopy trace` reports and `okopy top` uses where the switch's own counters
are not at hand.  What a tracer costs the switch is measured by `okopy
bench datapath --trace`.

Needs root (CAP_BPF and CAP_PERFMON), Debian's python3-bpfcc, kernel
headers where bcc looks for them and tracefs: scripts/setup provides
them.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from okopy.ofp.client import OfClient, OfClientError
from okopy.ofp.messages import ProgStats
from okopy.paths import import_debian_package
from okopy.trace.events import (
    BATCH,
    BRIDGE_LEN,
    BYTES_LEN,
    NAME_LEN,
    SNAP,
    ChangeEvent,
    Filters,
    ProbeCounts,
    Program,
    RunEvent,
    TopState,
    change_line,
    change_record,
    flows_calling,
    render_top,
    run_line,
    run_record,
    top_record,
)

VSWITCHD = "ovs-vswitchd"
DEFAULT_RUNDIR = Path("/var/run/openvswitch")


class TraceError(RuntimeError):
    """The switch cannot be traced; the message says why and what to do."""


# The switch ------------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    pid: int
    rundir: Path | None  # where its bridges' management sockets are
    exe: Path


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raise TraceError(f"no process {pid}") from None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def find_switch(pid: int | None = None, rundir: Path | None = None) -> Switch:
    """The ovs-vswitchd to trace: process 'pid', or the one whose pidfile
    is in 'rundir' (default: $OVS_RUNDIR, then /var/run/openvswitch, as
    Open vSwitch's own tools look)."""
    if pid is None:
        rundir = rundir or Path(os.environ.get("OVS_RUNDIR", DEFAULT_RUNDIR))
        pidfile = rundir / f"{VSWITCHD}.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            raise TraceError(
                f"no running {VSWITCHD} found: {pidfile} is missing or unreadable "
                "(give --pid, --lab NAME or set OVS_RUNDIR)"
            ) from None
    argv = _cmdline(pid)
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError as e:
        raise TraceError(f"process {pid}: {e.strerror}") from None
    if not exe.name.startswith(VSWITCHD):
        raise TraceError(f"process {pid} is {exe}, not {VSWITCHD}")
    if rundir is None:
        for arg in argv:
            if arg.startswith("--pidfile="):
                rundir = Path(arg.partition("=")[2]).parent
    return Switch(pid, rundir, exe)


def _program_lists(rundir: Path) -> Iterator[tuple[Path, dict[int, ProgStats]]]:
    """Each bridge's management socket in 'rundir' and its program list;
    a bridge that cannot be asked (going away meanwhile) is left out."""
    for mgmt in sorted(rundir.glob("*.mgmt")):
        try:
            with OfClient.unix(mgmt, timeout=5) as client:
                listed = client.programs()
        except (OfClientError, OSError):
            continue
        yield mgmt, listed


def programs(switch: Switch, ofctl: Path | None) -> dict[tuple[str, int], Program]:
    """The programs of every bridge of 'switch' (those with a management
    socket in its run directory), with the flows that call each (through
    the patched ovs-ofctl 'ofctl', when given); empty without a run
    directory."""
    if switch.rundir is None:
        return {}
    out: dict[tuple[str, int], Program] = {}
    for mgmt, listed in _program_lists(switch.rundir):
        bridge = mgmt.stem
        flows: dict[int, list[tuple[int, int]]] = {}
        if ofctl is not None and listed:
            dump = subprocess.run(
                [str(ofctl), "-O", "OpenFlow13", "dump-flows", f"unix:{mgmt}"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            flows = flows_calling(dump.stdout)
        for prog_id, st in listed.items():
            out[(bridge, prog_id)] = Program(bridge, prog_id, st.name,
                                             tuple(flows.get(prog_id, ())))  # fmt: skip
    return out


# bcc --------------------------------------------------------------------------

_COMMON_C = r"""
#include <uapi/linux/ptrace.h>

#define SNAP %(SNAP)d
#define BRIDGE_LEN %(BRIDGE_LEN)d
#define BATCH %(BATCH)d
"""

# struct run_event is events.RUN_EVENT.
_TRACE_C = r"""
#define NAME_LEN %(NAME_LEN)d
#define BYTES_LEN %(BYTES_LEN)d

struct run_event {
    u64 ts_ns;
    u64 run_ns;
    u64 len;
    u32 prog_id;
    u32 handle;
    u32 verdict;
    u32 in_port;
    u32 cap;
    u32 cpu;
    char bridge[BRIDGE_LEN];
    u8 data[SNAP + 8];          /* The filters read up to 8 bytes past SNAP. */
};

struct change_event {
    u64 ts_ns;
    u32 kind;
    u32 prog_id;
    u32 handle;
    s32 result;
    u32 n_insns;
    u32 jit;
    u32 key_size;
    u32 value_size;
    char bridge[BRIDGE_LEN];
    char name[NAME_LEN];
    u8 key[BYTES_LEN];
    u8 value[BYTES_LEN];
};

struct addr { u8 b[16]; };
struct cap_state { u64 window; u64 count; u64 suppressed; u64 untraced; };

BPF_PERCPU_ARRAY(run_scratch, struct run_event, 1);
BPF_PERCPU_ARRAY(change_scratch, struct change_event, 1);
BPF_PERF_OUTPUT(runs);
BPF_PERF_OUTPUT(changes);
BPF_ARRAY(cap_state, struct cap_state, 1);
BPF_HASH(want_progs, u32, u8, 1024);
BPF_HASH(want_hosts, struct addr, u8, 256);
BPF_HASH(want_ports, u16, u8, 256);

static __always_inline int wanted_packet(struct run_event *e)
{
#if FILTER_HOSTS || FILTER_PORTS
    u8 *d = e->data;
    u32 n = e->cap;
    u32 off = 14;
    u32 l4 = 0;
    u16 type;
    u8 proto;
    struct addr src = {}, dst = {};

    if (n < 14) {
        return 0;
    }
    type = (d[12] << 8) | d[13];
    if (type == 0x8100) {
        if (n < 18) {
            return 0;
        }
        type = (d[16] << 8) | d[17];
        off = 18;
    }
    if (type == 0x0800) {
        if (off + 20 > n) {
            return 0;
        }
        proto = d[off + 9];
        src.b[10] = src.b[11] = dst.b[10] = dst.b[11] = 0xff;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            src.b[12 + i] = d[off + 12 + i];
            dst.b[12 + i] = d[off + 16 + i];
        }
        if (!(((d[off + 6] & 0x1f) << 8) | d[off + 7])) {
            l4 = off + (d[off] & 0xf) * 4;
        }
    } else if (type == 0x86dd) {
        if (off + 40 > n) {
            return 0;
        }
        proto = d[off + 6];
#pragma unroll
        for (int i = 0; i < 16; i++) {
            src.b[i] = d[off + 8 + i];
            dst.b[i] = d[off + 24 + i];
        }
        l4 = off + 40;
    } else {
        return 0;
    }
#if FILTER_HOSTS
    if (!want_hosts.lookup(&src) && !want_hosts.lookup(&dst)) {
        return 0;
    }
#endif
#if FILTER_PORTS
    if ((proto != 6 && proto != 17 && proto != 132) || !l4 || l4 + 4 > n) {
        return 0;
    }
    l4 &= SNAP - 1;
    u16 sport = (d[l4] << 8) | d[l4 + 1];
    u16 dport = (d[l4 + 2] << 8) | d[l4 + 3];
    if (!want_ports.lookup(&sport) && !want_ports.lookup(&dport)) {
        return 0;
    }
#endif
#endif
    return 1;
}

/* What okopy:bpf_batch points at, copied whole (the switch's arrays have
 * room for BATCH packets). */
struct batch {
    u32 verdicts[BATCH];
    u64 run_ns[BATCH];
    struct { u64 data; u64 len; } pkts[BATCH];
};
BPF_PERCPU_ARRAY(batch_scratch, struct batch, 1);

/* Each run of a batch that the filters let through is sent, at most
 * RATE_CAP a second (0: no cap); the others over the cap are counted. */
int on_batch(struct pt_regs *ctx)
{
    u32 zero = 0;
    struct batch *bt = batch_scratch.lookup(&zero);
    struct run_event *e = run_scratch.lookup(&zero);
    struct cap_state *c = cap_state.lookup(&zero);
    u64 n = 0, pkts = 0, verdicts = 0, run_ns = 0, bridge = 0, skipped = 0;
    u32 prog_id = 0;

    if (!bt || !e || !c) {
        return 0;
    }
    /* Runs of any program that the switch did not trace, over its
     * bpf-trace-rate, since the last batch it traced. */
    bpf_usdt_readarg(9, ctx, &skipped);
    if (skipped) {
        __sync_fetch_and_add(&c->untraced, skipped);
    }
    bpf_usdt_readarg(2, ctx, &prog_id);
#if FILTER_PROGS
    if (!want_progs.lookup(&prog_id)) {
        return 0;
    }
#endif
    bpf_usdt_readarg(4, ctx, &n);
    bpf_usdt_readarg(5, ctx, &pkts);
    bpf_usdt_readarg(6, ctx, &verdicts);
    bpf_usdt_readarg(7, ctx, &run_ns);
    if (bpf_probe_read_user(bt->verdicts, sizeof bt->verdicts, (void *) verdicts)
        || bpf_probe_read_user(bt->run_ns, sizeof bt->run_ns, (void *) run_ns)
        || bpf_probe_read_user(bt->pkts, sizeof bt->pkts, (void *) pkts)) {
        return 0;
    }
    e->prog_id = prog_id;
    bpf_usdt_readarg(3, ctx, &e->handle);
    bpf_usdt_readarg(8, ctx, &e->in_port);
    bpf_usdt_readarg(1, ctx, &bridge);
    bpf_probe_read_user_str(e->bridge, sizeof e->bridge, (void *) bridge);
    e->cpu = bpf_get_smp_processor_id();

    u64 now = bpf_ktime_get_ns();
    if (now - c->window >= 1000000000ULL) {
        c->window = now;
        c->count = 0;
    }
#pragma clang loop unroll(disable)
    for (u32 i = 0; i < BATCH; i++) {
        if (i >= n) {
            break;
        }
        u32 verdict = bt->verdicts[i];
        if (!((1 << (verdict < 5 ? verdict : 5)) & VERDICT_MASK)) {
            continue;
        }
#if !FILTER_HOSTS && !FILTER_PORTS
        /* Over the cap, the run is only counted: nothing more to read. */
        if (RATE_CAP && c->count >= RATE_CAP) {
            __sync_fetch_and_add(&c->suppressed, 1);
            continue;
        }
#endif
        e->verdict = verdict;
        e->run_ns = bt->run_ns[i];
        e->len = bt->pkts[i].len;
        u32 cap = e->len < SNAP ? e->len : SNAP;
        e->cap = cap;
        if (bpf_probe_read_user(e->data, cap & (2 * SNAP - 1),
                                (void *) bt->pkts[i].data)) {
            e->cap = 0;
        }
#if FILTER_HOSTS || FILTER_PORTS
        if (!wanted_packet(e)) {
            continue;
        }
        if (RATE_CAP && c->count >= RATE_CAP) {
            __sync_fetch_and_add(&c->suppressed, 1);
            continue;
        }
#endif
        __sync_fetch_and_add(&c->count, 1);
        e->ts_ns = bpf_ktime_get_ns();
        runs.perf_submit(ctx, e, sizeof *e);
    }
    return 0;
}

static __always_inline struct change_event *change_scratch_get(u32 kind)
{
    u32 zero = 0;
    struct change_event *e = change_scratch.lookup(&zero);

    if (e) {
        __builtin_memset(e, 0, sizeof *e);
        e->kind = kind;
        e->ts_ns = bpf_ktime_get_ns();
    }
    return e;
}

"""


# bcc gives each probe function its own bpf_usdt_readarg(), which only the
# probe function itself may call, not a function it calls nor a macro: the
# common parts of the change probes are repeated by Python instead.
def _change_probe(fn: str, kind: int, body: str) -> str:
    return f"""
int {fn}(struct pt_regs *ctx)
{{
    struct change_event *e = change_scratch_get({kind});
    u64 bridge = 0;

    if (!e) {{
        return 0;
    }}
    bpf_usdt_readarg(1, ctx, &bridge);
    bpf_probe_read_user_str(e->bridge, sizeof e->bridge, (void *) bridge);
    bpf_usdt_readarg(2, ctx, &e->prog_id);
{body}
    changes.perf_submit(ctx, e, sizeof *e);
    return 0;
}}
"""


def _read_bytes(dst: str, arg_ptr: int, arg_size: int, size_field: str) -> str:
    return f"""
    {{
        u64 ptr = 0, size = 0;

        bpf_usdt_readarg({arg_ptr}, ctx, &ptr);
        bpf_usdt_readarg({arg_size}, ctx, &size);
        e->{size_field} = size;
        bpf_probe_read_user(e->{dst}, (size < BYTES_LEN ? size : BYTES_LEN) & (2 * BYTES_LEN - 1),
                            (void *) ptr);
    }}"""


_MAP_NAME = """
    {
        u64 name = 0;

        bpf_usdt_readarg(3, ctx, &name);
        bpf_probe_read_user_str(e->name, sizeof e->name, (void *) name);
    }"""

_CHANGES_C = (
    _change_probe(
        "on_prog_load",
        1,
        """
    u64 name = 0;

    bpf_usdt_readarg(3, ctx, &e->handle);
    bpf_usdt_readarg(4, ctx, &name);
    bpf_probe_read_user_str(e->name, sizeof e->name, (void *) name);
    bpf_usdt_readarg(5, ctx, &e->result);
    bpf_usdt_readarg(6, ctx, &e->n_insns);
    bpf_usdt_readarg(7, ctx, &e->jit);""",
    )
    + _change_probe("on_prog_unload", 2, "    bpf_usdt_readarg(3, ctx, &e->handle);")
    + _change_probe(
        "on_map_update",
        3,
        _MAP_NAME
        + _read_bytes("key", 4, 5, "key_size")
        + _read_bytes("value", 6, 7, "value_size")
        + "\n    bpf_usdt_readarg(8, ctx, &e->result);",
    )
    + _change_probe(
        "on_map_delete",
        4,
        _MAP_NAME
        + _read_bytes("key", 4, 5, "key_size")
        + "\n    bpf_usdt_readarg(6, ctx, &e->result);",
    )
)

_TOP_C = r"""
/* Per program (datapath handle) and CPU: who it is, runs by verdict class
 * and log2 histogram of run times. */
struct prog_stats {
    u32 prog_id;
    char bridge[BRIDGE_LEN];
    u64 batches;
    u64 skipped;    /* Runs the switch did not trace before a batch of this
                     * program that it did (bpf-trace-rate). */
    u64 counts[6];
    u64 hist[64];
};
struct batch {
    u32 verdicts[BATCH];
    u64 run_ns[BATCH];
};

BPF_PERCPU_HASH(stats, u32, struct prog_stats, 4096);
BPF_PERCPU_ARRAY(batch_scratch, struct batch, 1);
BPF_PERCPU_ARRAY(new_stats, struct prog_stats, 1);

int on_batch(struct pt_regs *ctx)
{
    u32 zero = 0, handle = 0;
    u64 n = 0, verdicts = 0, run_ns = 0, skipped = 0;
    struct batch *bt = batch_scratch.lookup(&zero);

    if (!bt) {
        return 0;
    }
    bpf_usdt_readarg(3, ctx, &handle);
    bpf_usdt_readarg(4, ctx, &n);
    bpf_usdt_readarg(6, ctx, &verdicts);
    bpf_usdt_readarg(7, ctx, &run_ns);
    if (bpf_probe_read_user(bt->verdicts, sizeof bt->verdicts, (void *) verdicts)
        || bpf_probe_read_user(bt->run_ns, sizeof bt->run_ns, (void *) run_ns)) {
        return 0;
    }

    struct prog_stats *st = stats.lookup(&handle);
    if (!st) {
        struct prog_stats *fresh = new_stats.lookup(&zero);
        u64 bridge = 0;

        if (!fresh) {
            return 0;
        }
        __builtin_memset(fresh, 0, sizeof *fresh);
        bpf_usdt_readarg(2, ctx, &fresh->prog_id);
        bpf_usdt_readarg(1, ctx, &bridge);
        bpf_probe_read_user_str(fresh->bridge, sizeof fresh->bridge, (void *) bridge);
        stats.update(&handle, fresh);
        st = stats.lookup(&handle);
        if (!st) {
            return 0;
        }
    }
    st->batches++;
    bpf_usdt_readarg(9, ctx, &skipped);
    st->skipped += skipped;
#pragma clang loop unroll(disable)
    for (u32 i = 0; i < BATCH; i++) {
        if (i >= n) {
            break;
        }
        u32 v = bt->verdicts[i];
        st->counts[v < 5 ? v : 5]++;
        st->hist[bpf_log2l(bt->run_ns[i]) & 63]++;
    }
    return 0;
}
"""


def _bcc() -> Any:
    import_debian_package("bcc", "python3-bpfcc")
    return importlib.import_module("bcc")


def _defines(values: dict[str, int]) -> str:
    return "".join(f"#define {k} {v}\n" for k, v in values.items())


def _attach(switch: Switch, text: str, handlers: dict[str, str]) -> Any:
    """Compiles 'text' and attaches each function of 'handlers' to the
    okopy probe it names in 'switch'."""
    if os.geteuid() != 0:
        raise TraceError("tracing the switch needs root (CAP_BPF and CAP_PERFMON)")
    try:
        bcc = _bcc()
    except ImportError as e:
        raise TraceError(str(e)) from None
    usdt = bcc.USDT(pid=switch.pid)
    for probe, fn in handlers.items():
        try:
            usdt.enable_probe(probe=f"okopy:{probe}", fn_name=fn)
        except Exception as e:  # bcc raises a bare Exception
            raise TraceError(
                f"{switch.exe} (pid {switch.pid}) has no okopy:{probe} probe: build Open vSwitch "
                f"with --enable-usdt-probes and the okopy series (okopy ovs build does) ({e})"
            ) from None
    try:
        b = bcc.BPF(text=text, usdt_contexts=[usdt])
    except Exception as e:
        raise TraceError(f"bcc could not compile or attach the tracer: {e}") from None
    # The USDT object holds the probes' semaphores up: when it is freed,
    # the switch stops firing okopy:bpf_batch even though 'b' is attached.
    b.okopy_usdt = usdt
    return b


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@dataclass
class TraceOptions:
    filters: Filters = field(default_factory=Filters)
    as_json: bool = False
    changes: bool = False  # also program loads/unloads and map writes
    count: int = 0  # stop after this many run events (0: never)
    duration: float = 0.0  # stop after this many seconds (0: never)


@dataclass
class TraceStats:
    runs: int = 0
    changes: int = 0
    suppressed: int = 0  # over the rate cap
    lost: int = 0  # perf buffer overruns
    untraced: int = 0  # runs the switch did not trace (its bpf-trace-rate)


def trace(
    switch: Switch,
    opts: TraceOptions,
    out: TextIO,
    ofctl: Path | None = None,
    resolve: Callable[[dict[tuple[str, int], Program]], Filters] | None = None,
    ready: Callable[[], None] | None = None,
) -> TraceStats:
    """Prints the switch's program runs (and changes) as they happen until
    the count, the duration or an interrupt ends it, or the switch exits.
    'resolve' turns the switch's programs into the filters (for --prog
    names); 'ready' is called once the probes are attached."""
    progs = programs(switch, ofctl)
    filters = resolve(progs) if resolve else opts.filters
    text = (
        _COMMON_C % {"SNAP": SNAP, "BRIDGE_LEN": BRIDGE_LEN, "BATCH": BATCH}
        + _defines(filters.kernel_defines())
        + _TRACE_C % {"NAME_LEN": NAME_LEN, "BYTES_LEN": BYTES_LEN}
        + _CHANGES_C
    )
    handlers = {"bpf_batch": "on_batch"}
    if opts.changes:
        handlers |= {"prog_load": "on_prog_load", "prog_unload": "on_prog_unload",
                     "map_update": "on_map_update", "map_delete": "on_map_delete"}  # fmt: skip
    else:  # still followed, to name new programs
        handlers |= {"prog_load": "on_prog_load", "prog_unload": "on_prog_unload"}
    b = _attach(switch, text, handlers)
    stats = TraceStats()
    offset = time.time() - time.monotonic()
    stale = False

    def emit(obj: dict[str, Any], line: str) -> None:
        out.write((json.dumps(obj) if opts.as_json else line) + "\n")
        out.flush()

    def on_run(_cpu: int, data: Any, size: int) -> None:
        if opts.count and stats.runs >= opts.count:
            return
        ev = RunEvent.decode(ctypes.string_at(data, size))
        prog = progs.get((ev.bridge, ev.prog_id))
        stats.runs += 1
        emit(run_record(ev, prog, offset), run_line(ev, prog, offset))

    def on_change(_cpu: int, data: Any, size: int) -> None:
        nonlocal stale
        ev = ChangeEvent.decode(ctypes.string_at(data, size))
        stale = stale or ev.kind in ("prog_load", "prog_unload")
        if opts.changes:
            stats.changes += 1
            emit(change_record(ev, offset), change_line(ev, offset))

    def on_lost(n: int) -> None:
        stats.lost += n

    try:
        for key in filters.prog_ids:
            b["want_progs"][ctypes.c_uint32(key)] = ctypes.c_uint8(1)
        for host in filters.hosts:
            k = b["want_hosts"].Key()
            ctypes.memmove(ctypes.addressof(k), host, 16)
            b["want_hosts"][k] = ctypes.c_uint8(1)
        for port in filters.ports:
            b["want_ports"][ctypes.c_uint16(port)] = ctypes.c_uint8(1)
        b["runs"].open_perf_buffer(on_run, page_cnt=64, lost_cb=on_lost)
        b["changes"].open_perf_buffer(on_change, page_cnt=16, lost_cb=on_lost)
        if ready:
            ready()
        start = time.monotonic()
        next_check = start + 1.0
        while True:
            b.perf_buffer_poll(timeout=200)
            if opts.count and stats.runs >= opts.count:
                break
            now = time.monotonic()
            if opts.duration and now - start >= opts.duration:
                break
            if stale:
                progs = programs(switch, ofctl)
                stale = False
            if now >= next_check:
                next_check = now + 1.0
                _report_gaps(b, stats, opts, out)
                if not _alive(switch.pid):
                    raise TraceError(f"the switch (pid {switch.pid}) exited")
    except KeyboardInterrupt:
        pass
    finally:
        _report_gaps(b, stats, opts, out)
        b.cleanup()
    return stats


def _report_gaps(b: Any, stats: TraceStats, opts: TraceOptions, out: TextIO) -> None:
    """Says how many events the rate cap held back, the perf buffer lost
    and the switch did not trace since the last report."""
    states = list(b["cap_state"].values())
    suppressed = sum(v.suppressed for v in states)
    untraced = sum(v.untraced for v in states)
    new, new_untraced = suppressed - stats.suppressed, untraced - stats.untraced
    stats.suppressed, stats.untraced = suppressed, untraced
    lost = stats.lost
    stats.lost = 0
    if not new and not lost and not new_untraced:
        return
    if opts.as_json:
        out.write(json.dumps({"event": "not_shown", "over_rate_cap": new, "lost": lost,
                              "not_traced": new_untraced,
                              "rate_cap": opts.filters.rate}) + "\n")  # fmt: skip
    else:
        parts = []
        if new:
            parts.append(f"{new} events over the rate cap ({opts.filters.rate}/s)")
        if lost:
            parts.append(f"{lost} events lost (the tracer fell behind)")
        if new_untraced:
            parts.append(
                f"{new_untraced} runs of any program not traced by the switch "
                "(over its other_config:bpf-trace-rate)"
            )
        out.write(f"... not shown: {', '.join(parts)}\n")
    out.flush()


# okopy top ------------------------------------------------------------------------


@contextmanager
def top_session(switch: Switch) -> Iterator[Any]:
    text = _COMMON_C % {"SNAP": SNAP, "BRIDGE_LEN": BRIDGE_LEN, "BATCH": BATCH} + _TOP_C
    b = _attach(switch, text, {"bpf_batch": "on_batch"})
    try:
        yield b
    finally:
        b.cleanup()


def _snapshot(b: Any) -> ProbeCounts:
    """The top program's per-CPU counters, summed."""
    snap = ProbeCounts()
    for key, per_cpu in b["stats"].items():
        handle = key.value
        for st in per_cpu:
            if st.prog_id or st.bridge:  # ctypes gives the name as bytes
                snap.whos[handle] = (bytes(st.bridge).split(b"\0", 1)[0].decode(errors="replace"),
                                     st.prog_id)  # fmt: skip
            snap.batches[handle] = snap.batches.get(handle, 0) + st.batches
            snap.skipped[handle] = snap.skipped.get(handle, 0) + st.skipped
            for cls, n in enumerate(st.counts):
                if n:
                    snap.counts[(handle, cls)] = snap.counts.get((handle, cls), 0) + n
            for slot, n in enumerate(st.hist):
                if n:
                    snap.hist[(handle, slot)] = snap.hist.get((handle, slot), 0) + n
    return snap


def switch_counts(switch: Switch) -> dict[tuple[str, int], tuple[int, ...]] | None:
    """Each program's cumulative runs by verdict class, from the program
    list of every bridge of 'switch', or None without a run directory."""
    if switch.rundir is None:
        return None
    return {
        (mgmt.stem, prog_id): tuple(st.verdicts)
        for mgmt, listed in _program_lists(switch.rundir)
        for prog_id, st in listed.items()
    }


def top(
    switch: Switch,
    out: TextIO,
    interval: float = 1.0,
    count: int = 0,
    as_json: bool = False,
    clear: bool | None = None,
    ofctl: Path | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Prints per-program verdict rates and run-time histograms every
    'interval' seconds, 'count' times (0: until interrupted or the switch
    exits).  Returns the number of refreshes."""
    if clear is None:
        clear = out.isatty() and not as_json
    state = TopState()
    shown = 0
    progs = programs(switch, ofctl)
    with top_session(switch) as b:
        state.advance(_snapshot(b), switch_counts(switch), progs, time.monotonic())
        if ready:
            ready()
        try:
            while not count or shown < count:
                time.sleep(interval)
                if not _alive(switch.pid):
                    raise TraceError(f"the switch (pid {switch.pid}) exited")
                snap, counts = _snapshot(b), switch_counts(switch)
                if any(key not in progs for key in [*snap.whos.values(), *(counts or {})]):
                    progs = programs(switch, ofctl)
                rows = state.advance(snap, counts, progs, time.monotonic())
                shown += 1
                if as_json:
                    out.write(json.dumps(top_record(rows, time.time())) + "\n")
                else:
                    screen = render_top(rows, interval)
                    out.write(("\x1b[H\x1b[2J" if clear else "") + screen + "\n")
                    if not clear:
                        out.write("\n")
                out.flush()
        except KeyboardInterrupt:
            pass
    return shown
