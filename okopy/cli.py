"""The `okopy` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from okopy import __version__
from okopy.acl import policy as acl_policy
from okopy.bpf import offline, toolchain, vm
from okopy.bpf.btf import parse_entry_text
from okopy.controller import endpoint, plan
from okopy.controller.client import ApiClient, ApiClientError
from okopy.lab import shell, testbed, tracelog
from okopy.lab.demo import run_demo
from okopy.ovs import build as ovs_build
from okopy.ovs import replay
from okopy.ovs import series as ovs_series
from okopy.ovs import source as ovs_source
from okopy.ovs.instance import OvsNotBuilt
from okopy.paths import default_layout
from okopy.policy.build import check as check_policy
from okopy.policy.file import load as load_policy
from okopy.policy.schema import ConfigError
from okopy.trace import events as trace_events
from okopy.trace import probes as trace_probes
from okopy.traffic import describe, pcap


class InputError(ValueError):
    """A file given on the command line cannot be used."""


def _log(message: str) -> None:
    print(message, flush=True)


class _DeprecatedTokenFile(argparse.Action):
    """--token-file, the old name of --api-token-file: still taken, with a warning."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"okopy: warning: --token-file is deprecated: use {endpoint.TOKEN_FLAG}",
              file=sys.stderr)  # fmt: skip
        setattr(namespace, self.dest, values)


def cmd_ovs_build(args: argparse.Namespace) -> int:
    ovs_build.build(
        default_layout(),
        jobs=args.jobs,
        reimport=args.reimport,
        force=args.force,
        flavor=ovs_build.FLAVORS[args.flavor],
        log=_log,
    )
    return 0


def cmd_ovs_import(args: argparse.Namespace) -> int:
    layout = default_layout()
    upstream = ovs_source.find_upstream()
    result = ovs_source.prepare(
        layout.ovs_src, layout.patches, upstream, reimport=args.force, log=_log
    )
    _log(f"{layout.ovs_src}: {result.value}")
    return 0


def cmd_ovs_export(args: argparse.Namespace) -> int:
    layout = default_layout()
    upstream = ovs_source.find_upstream()
    ovs_source.export(layout.ovs_src, layout.patches, upstream, log=_log)
    return 0


def cmd_ovs_check_series(args: argparse.Namespace) -> int:
    results = ovs_series.check_series(
        default_layout(), jobs=args.jobs, first=args.first, last=args.last, log=_log,
        tests=args.tests,
    )  # fmt: skip
    bad = [r for r in results if not r.ok]
    also = f" and pass their {args.tests} tests" if args.tests else ""
    _log(
        f"{len(results) - len(bad)} of {len(results)} patches apply, pass checkpatch "
        f"and build{also}"
    )
    return 1 if bad else 0


def cmd_build(args: argparse.Namespace) -> int:
    out = toolchain.compile_program(
        Path(args.source),
        Path(args.output) if args.output else None,
        includes=[Path(d) for d in args.include],
        defines=args.define,
    )
    _log(str(out))
    return 0


def _read_object(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None


def cmd_inspect(args: argparse.Namespace) -> int:
    info = offline.inspect_object(_read_object(args.object))
    _log(json.dumps(info, indent=2) if args.json else offline.format_inspect(info))
    return 0


def _load(args: argparse.Namespace, ns: vm.Namespace) -> vm.Program:
    return ns.load(
        _read_object(args.object),
        prog_name=args.prog,
        sandbox="force" if args.sandbox else "never",
        jit=not args.no_jit,
    )


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        prog = _load(args, vm.Namespace("verify"))
    except vm.VmError as e:
        print(f"{args.object}: {offline.describe_error(e)}", file=sys.stderr)
        return 1
    i = prog.info
    if i.kernel_verified:
        rules = "strict rules" if i.kernel_strict else "privileged rules, stack zeroed per run"
        how = f"admitted by the kernel verifier ({rules}) in {i.kernel_verify_ns / 1e6:.1f} ms"
        engine = "runs as native code (JIT)" if i.jit else "runs in the interpreter"
        _log(f"{args.object}: program {i.name} OK, {i.n_insns} insns, {i.n_maps} maps, "
             f"{how}; {engine}")  # fmt: skip
        return 0
    _log(f"{args.object}: program {i.name} OK in sandbox mode only, {i.n_insns} insns, "
         f"{i.n_maps} maps: not kernel-verified, every access checked at run time "
         "(a switch loads it only with sandbox allowed)")  # fmt: skip
    # What the kernel says of it, so that nobody takes sandbox admission
    # for verification.
    try:
        vm.Namespace("verify-kernel").load(
            _read_object(args.object), prog_name=args.prog, sandbox="never"
        )
    except vm.VmError as e:
        _log(f"the kernel's verifier refuses it: {e.describe()}")
    else:
        _log("the kernel's verifier admits it too: without --sandbox it runs verified")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    packets = pcap.read(Path(args.pcap))
    ns = vm.Namespace("run")
    try:
        prog = _load(args, ns)
    except vm.VmError as e:
        print(f"{args.object}: {offline.describe_error(e)}", file=sys.stderr)
        return 1
    if args.prandom_seed is not None:
        ns.seed_prandom(args.prandom_seed)
    for spec in args.seed:
        name, key, value = offline.parse_seed(spec)
        offline.seed_map(prog, name, key, value)
    clock = offline.pcap_clock(args.clock, packets)
    if args.explain is not None:
        if args.trace:
            raise InputError("--explain and --trace: give one of them")
        try:
            explained = offline.explain_packet(
                prog, packets, args.explain, clock=clock, in_port=args.in_port
            )
        except vm.VmError as e:
            print(f"{args.object}: {e.describe(with_log=False)}", file=sys.stderr)
            return 1
        if args.json:
            _log(json.dumps(explained.to_json(), indent=2))
        else:
            _log(offline.format_explanation(explained, args.pcap))
        return 0
    result = offline.run_packets(prog, packets, clock=clock, in_port=args.in_port, trace=args.trace)
    if args.json:
        _log(json.dumps(result.to_json(), indent=2))
    else:
        _log(offline.format_run(result, args.pcap))
    return 0


def cmd_pcap(args: argparse.Namespace) -> int:
    descriptions = describe.parse(args.description)
    if args.interval < 0:
        raise InputError(f"--interval {args.interval}: give 0 or more seconds")
    interval_ns = round(args.interval * 1e9)
    try:
        n = pcap.write(Path(args.write), describe.timed(descriptions, interval_ns))
    except OSError as e:
        raise InputError(f"{args.write}: {e.strerror}") from None
    _log(f"{args.write}: {n} packets\n{describe.summary(descriptions)}")
    return 0


def _lab(args: argparse.Namespace) -> testbed.Lab:
    return testbed.Lab(default_layout(), args.name, log=_log)


def cmd_lab_up(args: argparse.Namespace) -> int:
    topo = testbed.load_topology(Path(args.topology))
    if args.name:
        topo = dataclasses.replace(topo, name=args.name)
    testbed.Lab(default_layout(), topo.name, log=_log).up(topo)
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    _lab(args).down()
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        _log(json.dumps(status, indent=2))
        return 0
    _log(f"lab {status['name']}")
    for name, d in status["daemons"].items():
        _log(f"  {name}: pid {d['pid']} {'running' if d['running'] else 'NOT RUNNING'}")
    for name, s in status["switches"].items():
        _log(f"  switch {name}: dpid {s['dpid']}, {s['flows']} flows")
    for name, h in status["hosts"].items():
        _log(f"  host {name}: {h['ip']} on {h['switch']} port {h['port']}")
    if "api" in status:
        _log(f"  controller API: {status['api']['address']}, "
             f"token in {status['api']['token_file']}")  # fmt: skip
    return 0


def cmd_lab_exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise InputError("give a command: okopy lab exec HOST -- CMD ...")
    return subprocess.run(_lab(args).exec(args.host, argv), check=False).returncode


def cmd_lab_env(args: argparse.Namespace) -> int:
    env = testbed.Lab(default_layout(), args.lab).shell_env()
    sys.stdout.write(shell.exports(env))
    return 0


def cmd_lab_ofctl(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise InputError(f"give an ovs-ofctl command: okopy lab ofctl {args.lab} dump-flows s1")
    cmd, env = testbed.Lab(default_layout(), args.lab).ofctl_argv(argv)
    return subprocess.run(cmd, env={**os.environ, **env}, check=False).returncode


def cmd_lab_tracelog(args: argparse.Namespace) -> int:
    return _tracelog(testbed.Lab(default_layout(), args.lab).vswitchd_log(), args)


def cmd_prog_tracelog(args: argparse.Namespace) -> int:
    if args.log:
        path = Path(args.log)
    else:  # as Open vSwitch's own tools find it
        path = Path(os.environ.get("OVS_LOGDIR", "/var/log/openvswitch")) / "ovs-vswitchd.log"
    return _tracelog(path, args)


def _tracelog(path: Path, args: argparse.Namespace) -> int:
    """Prints the bpf_trace_printk() lines of the ovs-vswitchd log at
    'path' (of --prog only), then, with --follow, new ones as they come."""
    try:
        log = path.open()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    with log:
        for line in tracelog.trace_lines(log, args.prog):
            _log(str(line))
        partial = ""
        while args.follow:  # until interrupted, as tail -f
            chunk = log.readline()
            if not chunk.endswith("\n"):
                partial += chunk
                time.sleep(0.2)
                continue
            for line in tracelog.trace_lines([partial + chunk], args.prog):
                _log(str(line))
            partial = ""
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    checked = check_policy(load_policy(Path(args.policy)), verify=not args.no_verify)
    for name, prog in checked.programs.items():
        _log(
            f"program {name}: id {prog.prog_id}, {len(prog.elf)} bytes, "
            f"maps {', '.join(prog.maps) or 'none'}"
        )
    for name, sw in checked.switches.items():
        _log(
            f"switch {name}: dpid {sw.dpid:#x}, {len(sw.programs)} programs, "
            f"{len(sw.seeds)} map entries, {len(sw.flows)} flows"
        )
    _log(f"{args.policy}: OK")
    return 0


def _replay_one(
    policy_file: str, args: argparse.Namespace, packets: list[pcap.Packet]
) -> replay.Report:
    checked = check_policy(load_policy(Path(policy_file)))
    desired = checked.switches.get(args.switch)
    if desired is None:
        names = ", ".join(sorted(checked.switches)) or "none"
        raise InputError(f"{policy_file}: no switch {args.switch!r} (switches: {names})")
    return replay.replay(
        default_layout(), desired, packets, args.in_port,
        policy=policy_file, switch=args.switch, pace=args.pace,
    )  # fmt: skip


def cmd_replay(args: argparse.Namespace) -> int:
    packets = replay.read_capture(Path(args.pcap))
    report = _replay_one(args.policy, args, packets)
    if args.against is None:
        _log(json.dumps(report.to_json(), indent=1) if args.json else report.format())
        return 0
    other = _replay_one(args.against, args, packets)
    if args.json:
        _log(json.dumps(replay.differences_json(report, other), indent=1))
    else:
        _log(replay.format_differences(report, other))
    return 0


def _traced_switch(args: argparse.Namespace) -> trace_probes.Switch:
    """The ovs-vswitchd of --pid, --lab or $OVS_RUNDIR."""
    if args.lab:
        lab = testbed.Lab(default_layout(), args.lab)
        lab.require_running()
        return trace_probes.find_switch(lab.state.pids["ovs-vswitchd"], Path(lab.state.rundir))
    return trace_probes.find_switch(args.pid)


def _patched_ofctl() -> Path | None:
    ofctl = default_layout().ovs_build / "utilities" / "ovs-ofctl"
    return ofctl if ofctl.exists() else None


def cmd_trace(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise InputError("--rate: give 0 (no cap) or a positive number of events a second")
    base = trace_events.Filters(
        verdict_mask=trace_events.parse_verdicts(args.verdict),
        hosts=tuple(trace_events.host_key(h) for h in args.host),
        ports=trace_events.parse_ports(args.port),
        rate=args.rate,
    )
    switch = _traced_switch(args)

    def resolve(progs: dict[tuple[str, int], trace_events.Program]) -> trace_events.Filters:
        ids = trace_events.resolve_progs(args.prog, progs.values())
        return dataclasses.replace(base, prog_ids=ids)

    opts = trace_probes.TraceOptions(
        filters=base, as_json=args.json, changes=args.changes, count=args.count,
        duration=args.duration,
    )  # fmt: skip
    trace_probes.trace(switch, opts, sys.stdout, _patched_ofctl(), resolve, _attached(switch))
    return 0


def _attached(switch: trace_probes.Switch) -> Callable[[], None]:
    """Says on standard error that the probes are attached: events from
    then on are seen."""

    def say() -> None:
        print(f"okopy: attached to {switch.exe} (pid {switch.pid}); Ctrl-C stops",
              file=sys.stderr, flush=True)  # fmt: skip

    return say


def cmd_top(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise InputError("--interval: give a positive number of seconds")
    switch = _traced_switch(args)
    trace_probes.top(
        switch, sys.stdout, interval=args.interval, count=args.count, as_json=args.json,
        clear=False if args.no_clear else None, ofctl=_patched_ofctl(), ready=_attached(switch),
    )  # fmt: skip
    return 0


def _port_names(specs: Sequence[str]) -> dict[str, int]:
    ports = {}
    for spec in specs:
        name, _, number = spec.partition("=")
        if not name or not number.isdigit():
            raise InputError(f"--port {spec!r}: expected NAME=NUMBER (an OpenFlow port)")
        ports[name] = int(number)
    return ports


def _shown_path(path: Path, output: str | None) -> str:
    """'path' as a policy written to 'output' should name it: relative to
    the policy's folder when it is below it."""
    if output:
        shown = os.path.relpath(path, Path(output).resolve().parent)
        if not shown.startswith(".."):
            return shown
    return str(path)


def cmd_import_iptables(args: argparse.Namespace) -> int:
    if args.file.count("-") > 1:
        raise InputError("standard input ('-') can be read once")
    dumps = []
    for name in args.file:
        if name == "-":
            dumps.append((name, sys.stdin.read()))
            continue
        try:
            dumps.append((name, Path(name).read_text()))
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{name}: {getattr(e, 'strerror', None) or e}") from None
    repo = default_layout().repo
    source = Path(args.source).resolve() if args.source else repo / "bpf/acl.c"
    source6 = Path(args.source6).resolve() if args.source6 else repo / "bpf/acl6.c"
    opts = acl_policy.PolicyOptions(
        source=_shown_path(source, args.output),
        source6=_shown_path(source6, args.output),
        switch=args.switch,
        dpid=int(args.dpid, 0),
        prog_id=args.prog_id,
        then=args.then or ("normal",),
        verdicts=tuple(acl_policy.CustomVerdict.parse(v) for v in args.verdict),
    )
    previous = None
    if args.previous:
        try:
            previous = Path(args.previous).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{args.previous}: {getattr(e, 'strerror', None) or e}") from None
    result = acl_policy.from_iptables(
        dumps,
        opts,
        chain=args.chain,
        ports=_port_names(args.port),
        skip_unsupported=args.skip_unsupported,
        max_rules=args.max_rules,
        previous=previous,
    )
    for s in result.skipped:
        print(f"skipped: {s}", file=sys.stderr)
    for n in result.notes:
        print(f"note: {n}", file=sys.stderr)
    if result.changes is not None:
        written, deleted = result.changes
        print(
            f"against {args.previous}: {written} map entries written, {deleted} deleted",
            file=sys.stderr,
        )
    if args.output:
        Path(args.output).write_text(result.text)
        print(
            f"{args.output}: {result.rules} ACL rules, {result.entry_count()} map entries",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(result.text)
    return 0


def _token(args: argparse.Namespace) -> tuple[str | None, endpoint.Setting | None]:
    """The bearer token from --api-token-file or $OKOPY_API_TOKEN_FILE, and
    where it came from."""
    given = endpoint.choose(
        args.api_token_file, endpoint.TOKEN_FLAG, os.environ, endpoint.TOKEN_ENV
    )
    return (endpoint.read_token(given) if given else None), given


def cmd_controller(args: argparse.Namespace) -> int:
    from okopy.controller import app  # noqa: PLC0415 - os-ken loads only when needed

    host, port = endpoint.parse_host_port(
        endpoint.Setting(args.listen, "--listen"), "give HOST:PORT (e.g. 127.0.0.1:6653) or :PORT"
    )
    api = endpoint.choose(args.api, endpoint.API_FLAG, os.environ, endpoint.API_ENV)
    if api is not None and args.api_socket_fd is not None:
        raise InputError(f"give {api} or --api-socket-fd, not both")
    address = endpoint.parse_address(api, server=True) if api else None
    if args.api_socket_fd is not None:
        try:
            is_socket = stat.S_ISSOCK(os.fstat(args.api_socket_fd).st_mode)
        except OSError as e:
            raise InputError(f"--api-socket-fd {args.api_socket_fd}: {e.strerror}") from None
        if not is_socket:
            raise InputError(f"--api-socket-fd {args.api_socket_fd}: not a socket")
    token, _ = _token(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.watch_policy is not None and args.watch_policy <= 0:
        raise InputError(f"--watch-policy {args.watch_policy}: give a number of seconds above 0")
    member = args.member or f"{socket.gethostname()}-{os.getpid()}"
    app.run(args.policy, host, port, address.host if address else "127.0.0.1",
            address.port if address else 0, token, args.api_socket_fd,
            args.watch_policy or 0.0, args.coordination, member)  # fmt: skip
    return 0


def _client(args: argparse.Namespace) -> ApiClient:
    api = endpoint.choose(
        args.api, endpoint.API_FLAG, os.environ, endpoint.API_ENV, endpoint.DEFAULT_API
    )
    assert api is not None
    address = endpoint.parse_address(api)
    token, token_from = _token(args)
    if api.source == "the default":
        base_from = f"the default; give {endpoint.API_FLAG} or set {endpoint.API_ENV}"
    else:
        base_from = f"from {api.source}"
    return ApiClient(address.url, token, token_from=str(token_from) if token_from else None,
                     base_from=base_from)  # fmt: skip


def _json_arg(text: str, what: str) -> Any:
    try:
        return parse_entry_text(text)
    except ValueError as e:
        raise InputError(f"{what} {e}") from None


def cmd_prog_list(args: argparse.Namespace) -> int:
    progs = _client(args).programs(int(args.dpid, 0))
    if args.json:
        _log(json.dumps(progs, indent=2))
        return 0
    for p in progs:
        v = ", ".join(f"{k} {n}" for k, n in p["verdicts"].items() if n)
        _log(f"{p['id']:>4} {p['name']:<20} {p['mode']:<11} {p['instructions']:>5} insns "
             f"{p['runs']:>10} runs  {v}")  # fmt: skip
    return 0


def cmd_prog_maps(args: argparse.Namespace) -> int:
    maps = _client(args).maps(int(args.dpid, 0), args.prog)
    if args.json:
        _log(json.dumps(maps, indent=2))
        return 0
    for mp in maps:
        pinned = ", pinned" if mp["pinned"] else ""
        _log(f"{mp['name']:<20} {mp['type']:<10} {mp['entries']:>8} / {mp['max_entries']:<8} "
             f"key {mp['key_size']} B, value {mp['value_size']} B{pinned}")  # fmt: skip
    return 0


def cmd_switches(args: argparse.Namespace) -> int:
    out = _client(args).switches()
    if args.json:
        _log(json.dumps(out, indent=2))
        return 0
    for sw in out:
        state = "connected" if sw["connected"] else "NOT CONNECTED"
        _log(f"{sw['name']:<10} dpid {sw['dpid']:#x} {state}, programs {sw['programs']}, "
             f"{sw['flows']} flows")  # fmt: skip
        db = sw.get("ovsdb")
        if db is not None:
            _log(f"{'':<10} {_ovsdb_text(db)}")
    return 0


def cmd_policy_reload(args: argparse.Namespace) -> int:
    out = _client(args).reload()
    if args.json:
        _log(json.dumps(out, indent=2))
    else:
        _log(f"reloaded {out['reloaded']}: switches {', '.join(out['switches']) or 'none'}")
    return 0


def cmd_policy_diff(args: argparse.Namespace) -> int:
    out = _client(args).diff()
    if args.json:
        _log(json.dumps(out, indent=2))
    else:
        for sw in out["switches"]:
            head = f"switch {sw['name']} (dpid {sw['dpid']:#x})"
            if not sw["connected"]:
                _log(f"{head}: not connected (reconciled when it connects)")
                continue
            _log(f"{head}: {sw['summary']}")
            for change in sw["changes"]:
                _log(f"  {plan.change_text(change)}")
    changes = sum(len(sw.get("changes", ())) for sw in out["switches"])
    return 1 if args.exit_code and changes else 0


def _ovsdb_text(db: dict[str, Any]) -> str:
    """A switch's OVSDB status (the API's "ovsdb") on one line."""
    parts = [f"ovsdb {db['remote']}"]
    if "bridge" in db:
        other = ", ".join(f"{k}={v}" for k, v in sorted(db["other_config"].items()))
        parts.append(f"bridge {db['bridge']} ({db['datapath_type']}), fail_mode "
                     f"{db['fail_mode']}, controllers {','.join(db['controllers']) or 'none'}"
                     + (f", {other}" if other else ""))  # fmt: skip
    if db.get("error"):
        parts.append(f"ERROR: {db['error']}")
    return ": ".join(parts)


def cmd_lab_ctl(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise InputError("give an okopy command: okopy lab ctl -- prog list --dpid 0x1")
    return subprocess.run(_lab(args).ctl_argv(argv), check=False).returncode


def cmd_map(args: argparse.Namespace) -> int:
    c = _client(args)
    dpid, prog = int(args.dpid, 0), args.prog
    if args.map_command == "dump":
        out = c.map_dump(dpid, prog, args.map)
    elif args.map_command == "get":
        out = c.map_get(dpid, prog, args.map, _json_arg(args.key, "key"))
    elif args.map_command == "set":
        out = c.map_set(dpid, prog, args.map, _json_arg(args.key, "key"),
                        _json_arg(args.value, "value"), args.flags)  # fmt: skip
    else:
        out = c.map_delete(dpid, prog, args.map, _json_arg(args.key, "key"))
    _log(json.dumps(out, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from okopy.bench import acl, controller, datapath, scaling, vmbench  # noqa: PLC0415

    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
    if args.suite == "scaling":
        scaling.run(
            default_layout(),
            sizes=sizes or ((1, 100) if args.quick else (1, 1000, 10000, 100000)),
            runs=1 if args.quick else args.runs,
            seconds=0.5 if args.quick else args.seconds,
            log=_log,
            out_dir=Path(args.out) if args.out else None,
        )
    elif args.suite == "acl":
        acl.run(
            default_layout(),
            sizes=sizes or ((10, 100) if args.quick else (10, 100, 1000, 8192)),
            runs=1 if args.quick else args.runs,
            seconds=0.5 if args.quick else args.seconds,
            log=_log,
            out_dir=Path(args.out) if args.out else None,
        )
    elif args.suite == "datapath" and args.profile:
        from okopy.bench import profile  # noqa: PLC0415 - on demand

        profile.run(default_layout(), args.profile, args.io, args.flows, args.seconds, log=_log)
    elif args.suite == "datapath":
        datapath.run(
            default_layout(),
            configs=(*datapath.DEFAULT_CONFIGS, *(datapath.TRACE_CONFIGS if args.trace else ())),
            runs=1 if args.quick else args.runs,
            seconds=0.5 if args.quick else args.seconds,
            log=_log,
            out_dir=Path(args.out) if args.out else None,
            io=args.io,
            flows=args.flows,
        )
    elif args.suite == "controller":
        controller.run(
            default_layout(),
            sizes=sizes or ((1, 3) if args.quick else (1, 10, 25, 50)),
            log=_log,
            out_dir=Path(args.out) if args.out else None,
        )
    elif args.suite == "vm":
        vmbench.run(
            default_layout(),
            repeat=1000 if args.quick else 100_000,
            n_packets=4 if args.quick else 32,
            log=_log,
            out_dir=Path(args.out) if args.out else None,
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(default_layout(), log=_log)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="okopy",
        description="Oko-style stateful BPF filters for Open vSwitch.",
    )
    p.add_argument("--version", action="version", version=f"okopy {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ovs = sub.add_parser("ovs", help="the patched Open vSwitch: build, import, export")
    ovs_sub = ovs.add_subparsers(dest="ovs_command", metavar="ACTION", required=True)
    b = ovs_sub.add_parser(
        "build", help="import the series if needed and build (skipped if unchanged)"
    )
    b.add_argument("-j", "--jobs", type=int, default=2, help="make jobs (default 2)")
    b.add_argument("--force", action="store_true", help="run make even if unchanged")
    b.add_argument(
        "--flavor",
        choices=sorted(ovs_build.FLAVORS),
        default="plain",
        help="plain (build/ovs, default), asan (AddressSanitizer + UBSan, "
        "build/ovs-asan), fuzz (clang with libFuzzer coverage, build/ovs-fuzz) or no-usdt "
        "(plain without USDT probes, build/ovs-no-usdt, for okopy bench datapath --trace)",
    )
    b.add_argument(
        "--reimport",
        action="store_true",
        help="discard build/ovs-src and re-apply ovs-patches/ from scratch",
    )
    b.set_defaults(func=cmd_ovs_build)
    i = ovs_sub.add_parser("import", help="apply ovs-patches/ into build/ovs-src (a git repo)")
    i.add_argument("--force", action="store_true", help="discard unexported work in build/ovs-src")
    i.set_defaults(func=cmd_ovs_import)
    e = ovs_sub.add_parser("export", help="git format-patch build/ovs-src back into ovs-patches/")
    e.set_defaults(func=cmd_ovs_export)
    cs = ovs_sub.add_parser(
        "check-series",
        help="apply ovs-patches/ one patch at a time to a scratch tree: "
        "each passes checkpatch and each prefix builds",
    )
    cs.add_argument("-j", "--jobs", type=int, default=2, help="make jobs (default 2)")
    cs.add_argument(
        "--from", dest="first", type=int, default=1, metavar="N",
        help="first patch to check (the ones before are built once, unreported)",
    )  # fmt: skip
    cs.add_argument("--to", dest="last", type=int, default=None, metavar="N",
                    help="last patch to check (default: the last)")  # fmt: skip
    cs.add_argument(
        "--tests", metavar="KEYWORDS",
        help="after each prefix builds, run its Open vSwitch tests of these autotest "
        "keywords (e.g. okopy; never hidden)",
    )  # fmt: skip
    cs.set_defaults(func=cmd_ovs_check_series)

    bl = sub.add_parser("build", help="compile a filter (clang -O2 -g -target bpf)")
    bl.add_argument("source", help="the filter's C source")
    bl.add_argument("-o", "--output", help="object file (default: SOURCE.o)")
    bl.add_argument("-I", dest="include", action="append", default=[], help="include dir")
    bl.add_argument("-D", dest="define", action="append", default=[], help="NAME[=VALUE]")
    bl.set_defaults(func=cmd_build)

    ins = sub.add_parser("inspect", help="programs, maps and BTF types of an object")
    ins.add_argument("object")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    ins.set_defaults(func=cmd_inspect)

    def program_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("object", help="a clang-compiled XDP object (.o)")
        p.add_argument("--prog", help="program (function) name; default: first xdp")
        p.add_argument(
            "--sandbox",
            action="store_true",
            help="skip the kernel verifier; check every access at run time",
        )
        p.add_argument(
            "--no-jit",
            action="store_true",
            help="run a verified program in the interpreter, not as native code "
            "(as the switch with other_config:bpf-jit=false)",
        )

    ver = sub.add_parser("verify", help="verify a program as the switch would")
    program_args(ver)
    ver.set_defaults(func=cmd_verify)

    r = sub.add_parser("run", help="run a program over a pcap in the VM, offline")
    program_args(r)
    r.add_argument("--pcap", required=True, help="classic pcap file (Ethernet)")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="MAP=KEY=VALUE",
        help="map entry before the run, JSON or 0x-hex: blocked_v4='\"10.0.0.1\"'={}",
    )
    r.add_argument(
        "--clock",
        default="pcap",
        help="bpf_ktime_get_ns: pcap (packet timestamps, default), real, or NS",
    )
    r.add_argument("--prandom-seed", type=int, help="seed bpf_get_prandom_u32")
    r.add_argument("--in-port", type=int, default=0, help="ingress_ifindex (in_port)")
    r.add_argument(
        "--trace", action="store_true",
        help="print every bpf_trace_printk() line, with the packet that printed it",
    )  # fmt: skip
    r.add_argument(
        "--explain", type=int, metavar="K",
        help="run packets 1..K-1, then show packet K's path through the source lines, "
        "the map entries it read and wrote (before and after), and its verdict",
    )  # fmt: skip
    r.set_defaults(func=cmd_run)

    pc = sub.add_parser(
        "pcap",
        help="write a pcap from a short traffic description (to try a filter with `run`)",
        description="Write a classic Ethernet pcap from traffic descriptions, e.g.\n"
        "  okopy pcap -w t.pcap 'udp src 10.0.0.1 dst 10.0.0.2 dport 9999 count 3' \\\n"
        "      'tcp src 10.0.0.0/30 dst 10.0.0.2 sport 40000-40001 dport 80 flags SA'\n\n"
        "A description is a protocol (udp, tcp, icmp) and fields:\n"
        "  src, dst  IPv4 or IPv6: an address, a range A-B, a prefix P/LEN, or a comma list\n"
        f"  sport     ports (default {describe.DEFAULT_SPORT}), dport (required): "
        "a port, a range A-B, or a comma list\n"
        "  flags     tcp only, scapy's letters F S R P A U E C (default S)\n"
        "  payload   bytes of zeros after the header (default 0)\n"
        "  count     times the whole sweep is written (default 1)\n"
        "Lists and ranges give every combination (src, dst, sport, dport; the last varies "
        "fastest).\nicmp is an echo request (ICMPv6 between IPv6 addresses). "
        "See docs/guide.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pc.add_argument("-w", "--write", required=True, metavar="FILE", help="the pcap to write")
    pc.add_argument(
        "-i", "--interval", type=float, default=0.001, metavar="SECONDS",
        help="time between packets (default 0.001); the first is at 1 s",
    )  # fmt: skip
    pc.add_argument("description", nargs="+", help="PROTO FIELD VALUE ...")
    pc.set_defaults(func=cmd_pcap)

    rp = sub.add_parser(
        "replay",
        help="run a capture through a policy in a private switch: each packet's fate and why",
        description="Start a private patched ovs-vswitchd on dummy ports (no root, no "
        "namespaces), apply one switch of POLICY as the controller would, inject the "
        "capture's packets one by one on --in-port, and report what left the switch and "
        "where, with the programs that ran and their verdicts. Map state carries over "
        "from packet to packet. With --against, only the packets whose fate differs.",
    )
    rp.add_argument("policy")
    rp.add_argument("--pcap", required=True, help="classic pcap file (Ethernet)")
    rp.add_argument("--switch", required=True, metavar="NAME", help="the policy's switch")
    rp.add_argument("--in-port", type=int, required=True, metavar="N",
                    help="OpenFlow port the packets arrive on")  # fmt: skip
    rp.add_argument("--against", metavar="POLICY2", help="a second policy to compare with")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.add_argument(
        "--pace", action="store_true",
        help="keep the capture's gaps between packets (default: back to back)",
    )  # fmt: skip
    rp.set_defaults(func=cmd_replay)

    for name, text, desc in (
        ("trace", "live program runs of a running switch: verdicts, packets, run times",
         "Attach to the okopy:* USDT probes of a running patched ovs-vswitchd (bcc) and "
         "print each program run as it happens: bridge, program, verdict, input port, the "
         "packet's addresses, protocol and ports, run time, and the table and cookie of the "
         "flows that call the program. Filters run in the kernel, before the rate cap. "
         "The switch traces at most other_config:bpf-trace-rate batches a second per "
         "datapath thread (default 10000); the runs it skips are counted. Needs root."),
        ("top", "per-program verdict rates and run-time histograms of a running switch",
         "Attach to okopy:bpf_batch of a running patched ovs-vswitchd (bcc) and refresh, "
         "every --interval seconds, each program's runs and verdicts per second (from the "
         "switch's program list) and the log2 histogram of its traced run times over the "
         "interval (the switch traces at most other_config:bpf-trace-rate batches a "
         "second per thread). Needs root."),
    ):  # fmt: skip
        tp = sub.add_parser(name, help=text, description=desc)
        where = tp.add_mutually_exclusive_group()
        where.add_argument(
            "--pid",
            type=int,
            help="the ovs-vswitchd process "
            "(default: the one of $OVS_RUNDIR, else /var/run/openvswitch)",
        )
        where.add_argument("--lab", metavar="NAME", help="the switch of a running okopy lab")
        tp.add_argument("--json", action="store_true", help="one JSON object a line")
        tp.add_argument("--count", type=int, default=0, metavar="N",
                        help="stop after N events (trace) or refreshes (top)")  # fmt: skip
        if name == "trace":
            tp.add_argument(
                "--prog",
                action="append",
                default=[],
                metavar="ID|NAME",
                help="only these programs (repeat or comma-separate)",
            )
            tp.add_argument(
                "--verdict",
                action="append",
                default=[],
                metavar="V",
                help="only these verdicts: drop, pass, tx, redirect, aborted, other, or numbers",
            )
            tp.add_argument(
                "--host",
                action="append",
                default=[],
                metavar="ADDR",
                help="only packets from or to this IPv4/IPv6 address",
            )
            tp.add_argument(
                "--port",
                action="append",
                default=[],
                metavar="N",
                help="only TCP/UDP/SCTP packets from or to this port",
            )
            tp.add_argument(
                "--rate",
                type=int,
                default=200,
                metavar="N",
                help="show at most N runs a second; the rest are counted (default 200, 0: no cap)",
            )
            tp.add_argument(
                "--changes",
                action="store_true",
                help="also program loads, replacements, unloads and map writes from OpenFlow",
            )
            tp.add_argument(
                "--duration", type=float, default=0.0, metavar="S", help="stop after S seconds"
            )
            tp.set_defaults(func=cmd_trace)
        else:
            tp.add_argument(
                "--interval",
                type=float,
                default=1.0,
                metavar="S",
                help="seconds between refreshes (default 1)",
            )
            tp.add_argument(
                "--no-clear",
                action="store_true",
                help="print each refresh below the last instead of redrawing",
            )
            tp.set_defaults(func=cmd_top)

    cc = sub.add_parser(
        "check-config",
        help="validate a policy: schema, programs built and verified, seeds",
    )
    cc.add_argument("policy")
    cc.add_argument("--no-verify", action="store_true", help="skip the verifiers")
    cc.set_defaults(func=cmd_check_config)

    im = sub.add_parser("import", help="translate other firewalls' rules into a policy")
    im_sub = im.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    ii = im_sub.add_parser(
        "iptables",
        help="iptables-save / ip6tables-save dumps -> a policy running their rules in "
        "bpf/acl.c and bpf/acl6.c",
        description="Translates one built-in chain of the filter table (with the user "
        "chains it reaches) into the maps of bpf/acl.c (an iptables-save dump, IPv4) or "
        "bpf/acl6.c (an ip6tables-save dump, IPv6; one of each may be given), and writes a "
        "policy that runs each on its family's packets with bpf(prog,drop_unless=pass). "
        "Anything it cannot translate exactly is an error naming the line and the option.",
    )
    ii.add_argument("file", nargs="+",
                    help="iptables-save or ip6tables-save output ('-': standard input); the "
                    "family comes from the dump's header, or its addresses")  # fmt: skip
    ii.add_argument("-o", "--output", help="the policy file to write (default: standard output)")
    ii.add_argument("--chain", default="FORWARD", help="the built-in chain (default FORWARD)")
    ii.add_argument("--port", action="append", default=[], metavar="NAME=NUMBER",
                    help="the OpenFlow port of an interface -i names (repeat)")  # fmt: skip
    ii.add_argument("--skip-unsupported", action="store_true",
                    help="leave out rules that cannot be translated, and list them")  # fmt: skip
    ii.add_argument("--switch", default="s1", help="the policy's switch name (default s1)")
    ii.add_argument("--dpid", default="0x1", help="its datapath id (default 0x1)")
    ii.add_argument("--prog-id", type=int,
                    help="the program's OpenFlow id (IPv4's; IPv6's is the next)")  # fmt: skip
    ii.add_argument("--then", action="append", metavar="ACTION",
                    help="action for accepted packets: normal (default), flood, or a port "
                    "number (repeat for several)")  # fmt: skip
    ii.add_argument(
        "--verdict", action="append", default=[], metavar="CHAIN=NUMBER[:ACTION,...]",
        help="jumps to user chain CHAIN end with verdict NUMBER (5 or more, not 16) for "
        "OpenFlow, instead of the chain's rules; the policy gives those packets ACTIONs "
        "(normal, flood, in_port, controller, drop or a port number; default drop). "
        "Repeat for several chains",
    )  # fmt: skip
    ii.add_argument("--max-rules", type=int, default=1024,
                    help="ACL_MAX_RULES to build bpf/acl.c with (a multiple of 64)")  # fmt: skip
    ii.add_argument("--source", help="bpf/acl.c to name in the policy (default: this checkout's)")
    ii.add_argument("--source6",
                    help="bpf/acl6.c to name in the policy (default: this checkout's)")  # fmt: skip
    ii.add_argument(
        "--previous", metavar="POLICY",
        help="the policy an earlier import wrote (it may be -o's file): rules keep their "
        "positions, so a reload writes a few map entries per rule changed",
    )  # fmt: skip
    ii.set_defaults(func=cmd_import_iptables)

    ct = sub.add_parser("controller", help="run the SDN controller (os-ken) for a policy")
    ct.add_argument("--policy", required=True, help="policy YAML (okopy check-config it first)")
    ct.add_argument("--listen", default="127.0.0.1:6653",
                    help="OpenFlow HOST:PORT or :PORT (default 127.0.0.1:6653)")  # fmt: skip
    ct.add_argument(
        "--api", metavar="HOST:PORT",
        help=f"serve the HTTP API on HOST:PORT, :PORT (127.0.0.1) or http://HOST:PORT "
        f"(default ${endpoint.API_ENV}; neither: no API)",
    )  # fmt: skip
    ct.add_argument(
        "--api-token-file", metavar="FILE",
        help="file with the bearer token that API changes and map reads need "
        f"(default ${endpoint.TOKEN_ENV}; neither: changes refused, reads open)",
    )  # fmt: skip
    ct.add_argument(
        "--api-socket-fd", type=int, metavar="FD",
        help="serve the HTTP API on this inherited, listening socket instead "
        "(okopy lab: bound on the host, while the controller runs in a namespace)",
    )  # fmt: skip
    ct.add_argument(
        "--watch-policy", type=float, nargs="?", const=2.0, metavar="SECONDS",
        help="reload when a file of the policy (or of its programs) changes, looking every "
        "SECONDS (default 2); a policy that fails its checks is logged and not applied",
    )  # fmt: skip
    ct.add_argument(
        "--coordination", metavar="URL",
        help="with several controllers of one policy: the coordination service where they "
        "elect the master, etcd3+http://HOST:PORT (the others stand by, as OpenFlow "
        "slaves, and one takes over when the master dies)",
    )  # fmt: skip
    ct.add_argument("--member", metavar="NAME",
                    help="this controller's name there (default: HOST-PID)")  # fmt: skip
    ct.add_argument("-v", "--verbose", action="store_true")
    ct.set_defaults(func=cmd_controller)

    def api_args(p: argparse.ArgumentParser, dpid: bool = True) -> None:
        p.add_argument(
            "--api", metavar="HOST:PORT",
            help="the controller's API: HOST:PORT, :PORT (127.0.0.1) or a URL "
            f"(default ${endpoint.API_ENV}, else {endpoint.DEFAULT_API})",
        )  # fmt: skip
        p.add_argument(
            "--api-token-file", metavar="FILE",
            help=f"file with the API's bearer token (default ${endpoint.TOKEN_ENV}); "
            "map contents and changes need it when the controller has one",
        )  # fmt: skip
        p.add_argument("--token-file", dest="api_token_file", action=_DeprecatedTokenFile,
                       help=argparse.SUPPRESS)  # fmt: skip
        if dpid:
            p.add_argument("--dpid", required=True, help="switch datapath id (e.g. 0x1)")

    sws = sub.add_parser("switches", help="switches of the policy, through the controller API")
    api_args(sws, dpid=False)
    sws.add_argument("--json", action="store_true")
    sws.set_defaults(func=cmd_switches)

    po = sub.add_parser("policy", help="the running controller's policy, through its API")
    po_sub = po.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    prl = po_sub.add_parser(
        "reload",
        help="re-read the policy file and apply only the difference (as SIGHUP); a "
        "policy that fails its checks is refused and the running one kept",
    )
    api_args(prl, dpid=False)
    prl.add_argument("--json", action="store_true")
    prl.set_defaults(func=cmd_policy_reload)
    pdf = po_sub.add_parser(
        "diff",
        help="what reloading the policy file would change on each switch, changing nothing",
    )
    api_args(pdf, dpid=False)
    pdf.add_argument("--json", action="store_true")
    pdf.add_argument("--exit-code", action="store_true",
                     help="exit 1 if anything would change (as git diff --exit-code)")  # fmt: skip
    pdf.set_defaults(func=cmd_policy_diff)

    pr = sub.add_parser("prog", help="programs on a switch, through the controller API")
    pr_sub = pr.add_subparsers(dest="prog_command", metavar="ACTION", required=True)
    pl = pr_sub.add_parser("list", help="loaded programs with statistics")
    api_args(pl)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_prog_list)
    pm = pr_sub.add_parser("maps", help="a program's maps and their entry counts")
    api_args(pm)
    pm.add_argument("prog", type=int, help="program id")
    pm.add_argument("--json", action="store_true")
    pm.set_defaults(func=cmd_prog_maps)
    pt = pr_sub.add_parser(
        "tracelog",
        help="bpf_trace_printk() lines of a switch's programs, from its ovs-vswitchd log "
        "(as bpftool prog tracelog)",
    )
    pt.add_argument(
        "--log", metavar="FILE",
        help="the switch's ovs-vswitchd.log (default: in $OVS_LOGDIR, else "
        "/var/log/openvswitch)",
    )  # fmt: skip
    pt.add_argument("--prog", help="only this program (its name)")
    pt.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    pt.set_defaults(func=cmd_prog_tracelog)

    mp = sub.add_parser("map", help="map entries on a switch, through the controller API")
    mp_sub = mp.add_subparsers(dest="map_command", metavar="ACTION", required=True)
    map_actions = (
        ("dump", "all entries"),
        ("get", "one entry"),
        ("set", "create or replace an entry"),
        ("delete", "delete an entry"),
    )
    for action, text in map_actions:
        p_ = mp_sub.add_parser(action, help=text)
        api_args(p_)
        p_.add_argument("prog", type=int, help="program id")
        p_.add_argument("map", help="map name")
        if action != "dump":
            p_.add_argument(
                "key", help="key as JSON, e.g. '\"10.0.0.1\"' or '{\"prefixlen\": 24, ...}'"
            )
        if action == "set":
            p_.add_argument("value", help="value as JSON")
            p_.add_argument("--flags", default="any", choices=("any", "noexist", "exist"))
        p_.set_defaults(func=cmd_map)

    lb = sub.add_parser("lab", help="a testbed: switches and hosts in namespaces")
    lab_sub = lb.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    lu = lab_sub.add_parser("up", help="start a lab from a topology file")
    lu.add_argument("topology", help="topology YAML (see docs/lab.md)")
    lu.add_argument("--name", help="lab name (default: the file's name field or stem)")
    lu.set_defaults(func=cmd_lab_up)
    for action, func, text in (
        ("down", cmd_lab_down, "tear a lab down (also after a crash)"),
        ("status", cmd_lab_status, "daemons, switches and hosts of a lab"),
    ):
        p_ = lab_sub.add_parser(action, help=text)
        p_.add_argument("--name", default="lab", help="lab name (default: lab)")
        if action == "status":
            p_.add_argument("--json", action="store_true")
        p_.set_defaults(func=func)
    le = lab_sub.add_parser("exec", help="run a command on a host: exec HOST -- CMD")
    le.add_argument("--name", default="lab", help="lab name (default: lab)")
    le.add_argument("host")
    le.add_argument("argv", nargs=argparse.REMAINDER)
    le.set_defaults(func=cmd_lab_exec)
    lv = lab_sub.add_parser(
        "env",
        help="shell exports that point ovs-ofctl, ovs-vsctl & co. (the patched ones, first "
        'on PATH) at a lab: eval "$(okopy lab env NAME)"',
    )
    lv.add_argument("lab", metavar="NAME", help="lab name")
    lv.set_defaults(func=cmd_lab_env)
    lo = lab_sub.add_parser(
        "ofctl",
        help="the patched ovs-ofctl against a lab: ofctl NAME CMD [ARGS] "
        "(-O OpenFlow13 unless given)",
    )
    lo.add_argument("lab", metavar="NAME", help="lab name")
    lo.add_argument("argv", nargs=argparse.REMAINDER, help="ovs-ofctl arguments")
    lo.set_defaults(func=cmd_lab_ofctl)
    lt = lab_sub.add_parser(
        "tracelog",
        help="bpf_trace_printk() lines of the lab's programs, from its switch's log "
        "(as bpftool prog tracelog)",
    )
    lt.add_argument("lab", metavar="NAME", help="lab name")
    lt.add_argument("--prog", help="only this program (its name)")
    lt.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    lt.set_defaults(func=cmd_lab_tracelog)
    lc = lab_sub.add_parser(
        "ctl", help="run an okopy command (switches, prog, map) with the lab's API and token "
        "($OKOPY_API, $OKOPY_API_TOKEN_FILE)",
    )  # fmt: skip
    lc.add_argument("--name", default="lab", help="lab name (default: lab)")
    lc.add_argument("argv", nargs=argparse.REMAINDER)
    lc.set_defaults(func=cmd_lab_ctl)

    be = sub.add_parser("bench", help="benchmarks with ratios against an in-run baseline")
    be.add_argument("suite", choices=("vm", "datapath", "scaling", "controller", "acl"))
    be.add_argument(
        "--sizes",
        help="comma-separated entry counts (scaling), rule counts (acl) or switch counts "
        "(controller)",
    )
    be.add_argument("--runs", type=int, default=3, help="runs per point (median, spread)")
    be.add_argument("--seconds", type=float, default=2.0, help="traffic per run")
    be.add_argument("--quick", action="store_true", help="a short smoke run")
    be.add_argument(
        "--io",
        choices=("afpacket", "dpdk", "afxdp"),  # okopy.bench.datapath.IO_TYPES
        default="afpacket",
        help="datapath: the switch's ports: veth through AF_PACKET (trafgen floods), or "
        "DPDK vhost-user or AF_XDP on veth, with the project's DPDK generator (default "
        "afpacket)",
    )
    be.add_argument(
        "--flows", type=int, default=1,
        help="datapath --io dpdk or afxdp: connections the generator sends over",
    )  # fmt: skip
    be.add_argument(
        "--trace", action="store_true",
        help="datapath: also measure with okopy trace and okopy top attached, and on a "
        "switch built without USDT probes (built on demand)",
    )  # fmt: skip
    be.add_argument("--out", help="report directory (default docs/benchmarks)")
    be.add_argument(
        "--profile",
        metavar="CONFIG",
        choices=("plain", "monitor", "recirc", "one-pass", "recirc-interp", "ct"),
        help="datapath: instead of measuring, flood one configuration and show where the "
        "forwarding thread's time goes (perf record, --seconds of samples)",
    )  # okopy.bench.datapath.CONFIGS
    be.set_defaults(func=cmd_bench)

    d = sub.add_parser("demo", help="run the end-to-end demo with real traffic")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not hasattr(args, "func"):
        p.print_help()
        return 2
    try:
        return int(args.func(args))
    except (
        ovs_source.SourceError,
        ovs_build.BuildError,
        OvsNotBuilt,
        InputError,
        ValueError,
        vm.VmError,
        vm.VmNotBuilt,
        toolchain.CompileError,
        testbed.LabError,
        ConfigError,
        ApiClientError,
        trace_probes.TraceError,
    ) as e:
        print(f"okopy: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
