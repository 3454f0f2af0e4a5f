"""Build the patched Open vSwitch (userspace only) into `build/ovs`.

The build is skipped when its inputs are unchanged: the upstream tarball,
the work tree (which is the series plus any developer edits), the VM
sources it links, the configure arguments and this pipeline's version.
Otherwise `make` runs incrementally, with ccache, printing progress.

A second flavor, `build/ovs-asan`, builds the same work tree with
AddressSanitizer and UndefinedBehaviorSanitizer, linked with libokovm built
the same way; OVS's test suite fails any test whose daemons left a
sanitizer report (`ovs_cleanup` in tests/ovs-macros.at).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from okopy.ovs.source import (
    BASE_TAG,
    Log,
    Prepared,
    Upstream,
    find_upstream,
    git,
    prepare,
)
from okopy.paths import Layout

# Bump when the way the build is made changes, to force one rebuild.
PIPELINE_VERSION = "2"

CONFIGURE_ARGS: tuple[str, ...] = (
    # One build serves every port type: AF_PACKET (netdev on veth), afxdp
    # (Debian's libxdp and libbpf) and DPDK (Debian's shared libraries;
    # initialised only when other_config:dpdk-init asks).
    "--with-dpdk=shared",
    "--enable-afxdp",
    # Link libokovm (found through build/vm/okovm.pc) into ovs-vswitchd.
    "--with-okovm",
    # USDT probes (Debian's systemtap-sdt-dev): okopy trace and okopy top
    # attach to okopy:bpf_run and its siblings.
    "--enable-usdt-probes",
)
# Debian's interpreter, not a pyenv shim that may not exist later.
PYTHON_ARG = "PYTHON3=/usr/bin/python3"

# AddressSanitizer and UBSan, as Open vSwitch's own CI builds them; -O1
# keeps the stack traces readable and the build fast.  --enable-Werror is
# left to the plain build: its warnings do not change under sanitizers.
# Two -fsanitize options: tests/atlocal looks for "fsanitize=undefined" to
# skip the tests that cannot run under UBSan.
SANITIZER_CFLAGS = (
    "-g -O1 -fno-omit-frame-pointer -fno-common -fsanitize=address -fsanitize=undefined"
)


@dataclass(frozen=True)
class Flavor:
    """One build of the work tree: where it goes and how it is configured."""

    name: str
    subdir: str  # under build/
    vm_subdir: str  # libokovm's build under build/vm ("" for the plain one)
    extra_args: tuple[str, ...]
    cc: str = "gcc"

    def build_dir(self, layout: Layout) -> Path:
        return layout.build / self.subdir

    def vm_dir(self, layout: Layout) -> Path:
        return layout.vm_build / self.vm_subdir if self.vm_subdir else layout.vm_build


PLAIN = Flavor("plain", "ovs", "", ("--enable-Werror",))
SANITIZED = Flavor("asan", "ovs-asan", "asan", (f"CFLAGS={SANITIZER_CFLAGS}",))
# For libFuzzer targets of the series' decoders (scripts/fuzz): clang, with
# coverage instrumentation in every object; the targets add the fuzzer's
# main when they link.
FUZZING = Flavor(
    "fuzz", "ovs-fuzz", "",
    ("CFLAGS=-g -O1 -fno-omit-frame-pointer "
     "-fsanitize=fuzzer-no-link,address,undefined",),
    cc="clang",
)  # fmt: skip
# The plain build without USDT probes, for `okopy bench datapath --trace`
# to measure what the probes cost when nothing is attached.
NO_USDT = Flavor("no-usdt", "ovs-no-usdt", "", ("--enable-Werror", "--disable-usdt-probes"))
FLAVORS = {f.name: f for f in (PLAIN, SANITIZED, FUZZING, NO_USDT)}

BINARIES = (
    "vswitchd/ovs-vswitchd",
    "ovsdb/ovsdb-server",
    "ovsdb/ovsdb-tool",
    "utilities/ovs-vsctl",
    "utilities/ovs-ofctl",
    "utilities/ovs-appctl",
)

# Files whose change needs `boot.sh` (autoreconf) before configure.
AUTOTOOLS_INPUTS = ("configure.ac", "acinclude.m4", "m4/")

STAMP = ".okopy-stamp"
CONFIGURED = ".okopy-configured"
LOG_NAME = "ovs-build.log"


class BuildError(RuntimeError):
    """The Open vSwitch build failed; the message points at the log."""


@dataclass(frozen=True)
class BuildResult:
    skipped: bool
    fingerprint: str
    seconds: float


def compiler(cc: str = "gcc") -> str:
    return f"ccache {cc}" if shutil.which("ccache") else cc


def configure_args(flavor: Flavor = PLAIN) -> list[str]:
    return [*CONFIGURE_ARGS, *flavor.extra_args, PYTHON_ARG, f"CC={compiler(flavor.cc)}"]


def _hash_tree(h: hashlib._Hash, root: Path) -> None:
    if not root.is_dir():
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")


def fingerprint(layout: Layout, upstream: Upstream, flavor: Flavor = PLAIN) -> str:
    """A digest of everything the build's result depends on."""
    src = layout.ovs_src
    h = hashlib.sha256()
    h.update(f"pipeline {PIPELINE_VERSION}\0{upstream.sha256}\0".encode())
    h.update(" ".join(configure_args(flavor)).encode() + b"\0")
    h.update(git(src, "rev-parse", "HEAD").encode())
    h.update(git(src, "diff", "--binary", "HEAD").encode())
    for name in git(src, "ls-files", "--others", "--exclude-standard").split():
        h.update(name.encode() + b"\0" + (src / name).read_bytes())
    _hash_tree(h, layout.vm_sources)
    return h.hexdigest()


def missing_binaries(build_dir: Path) -> list[str]:
    return [b for b in BINARIES if not (build_dir / b).is_file()]


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _needs_autoreconf(src: Path) -> bool:
    changed = git(src, "diff", "--name-only", f"{BASE_TAG}..HEAD").split()
    changed += git(src, "diff", "--name-only", "HEAD").split()
    return any(c.startswith(AUTOTOOLS_INPUTS) for c in changed)


def _env(layout: Layout, flavor: Flavor) -> dict[str, str]:
    return dict(
        os.environ,
        CCACHE_BASEDIR=str(layout.build),
        PKG_CONFIG_PATH=str(flavor.vm_dir(layout)),
    )


def build_vm(layout: Layout, jobs: int, log: Log, flavor: Flavor = PLAIN) -> Path:
    """Build libokovm (linked into ovs-vswitchd) for 'flavor'; returns its
    libokovm.a, beside an okovm.pc that points at it."""
    lib = flavor.vm_dir(layout) / "libokovm.a"
    targets = ["all"] if flavor is PLAIN else ["all", str(lib)]
    proc = subprocess.run(
        ["make", "-C", str(layout.vm_sources), f"-j{jobs}", "--no-print-directory",
         f"O={layout.vm_build}", *targets],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BuildError(f"building libokovm failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    if flavor is not PLAIN:
        # The same package description, naming this flavor's archive.
        pc = (layout.vm_build / "okovm.pc").read_text()
        plain = str(layout.vm_build / "libokovm.a")
        if plain not in pc:
            raise BuildError(f"{layout.vm_build / 'okovm.pc'} does not name {plain}")
        (lib.parent / "okovm.pc").write_text(pc.replace(plain, str(lib)))
    return lib


def _relink_if_vm_changed(out: Path, vm_lib: Path, log: Log) -> None:
    """ovs-vswitchd links libokovm.a statically: relink when it changed."""
    digest = hashlib.sha256(vm_lib.read_bytes()).hexdigest() if vm_lib.exists() else ""
    meta = _read_json(out / STAMP)
    la = out / "lib" / "libopenvswitch.la"
    if meta.get("okovm") != digest and la.exists():
        log("libokovm changed: relinking the programs that use it")
        la.touch()
    if out.exists():
        meta["okovm"] = digest
        (out / STAMP).write_text(json.dumps(meta))


def _configure(layout: Layout, flavor: Flavor, log: Log) -> None:
    src, out = layout.ovs_src, flavor.build_dir(layout)
    args = configure_args(flavor)
    out.mkdir(parents=True, exist_ok=True)
    log(f"configuring: {src}/configure {' '.join(args)}")
    proc = subprocess.run(
        [str(src / "configure"), *args],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
        env=_env(layout, flavor),
    )
    (out / "configure.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BuildError(
            f"configure failed (see {out}/config.log):\n"
            + "\n".join(proc.stderr.strip().splitlines()[-15:])
        )
    (out / CONFIGURED).write_text(json.dumps({"args": args}))


def _make(layout: Layout, flavor: Flavor, jobs: int, log: Log) -> None:
    """Run make, showing progress, keeping the whole output in a log file."""
    out = flavor.build_dir(layout)
    logfile = layout.build / (LOG_NAME if flavor is PLAIN else f"{flavor.subdir}-build.log")
    previous = _read_json(out / STAMP).get("compiled")
    total = f"/~{previous}" if isinstance(previous, int) and previous > 0 else ""
    log(f"make -j{jobs} in {out} (full output: {logfile})")
    start = last = time.monotonic()
    compiled = 0
    env = _env(layout, flavor)
    with logfile.open("w") as f:
        proc = subprocess.Popen(
            ["make", f"-j{jobs}", "V=0"],
            cwd=out,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            word = line.split(maxsplit=1)[0] if line.strip() else ""
            if word == "CC":
                compiled += 1
            now = time.monotonic()
            if now - last >= 10:
                last = now
                log(f"  ... {compiled}{total} files compiled, {now - start:.0f} s")
        rc = proc.wait()
    if rc != 0:
        errors = [
            ln for ln in logfile.read_text().splitlines() if "error" in ln.lower() or "***" in ln
        ]
        raise BuildError(
            f"make failed with status {rc}; see {logfile}:\n" + "\n".join(errors[-20:])
        )
    log(f"  {compiled} files compiled in {time.monotonic() - start:.0f} s")
    meta = _read_json(out / STAMP)
    meta["compiled"] = max(compiled, int(str(meta.get("compiled", 0))))
    (out / STAMP).write_text(json.dumps(meta))


def build(
    layout: Layout,
    *,
    jobs: int = 2,
    reimport: bool = False,
    force: bool = False,
    flavor: Flavor = PLAIN,
    log: Log = print,
) -> BuildResult:
    """Prepare the work tree and build it in 'flavor', unless nothing
    changed."""
    start = time.monotonic()
    vm_lib = build_vm(layout, jobs, log, flavor)
    upstream = find_upstream()
    log(f"Open vSwitch source: {upstream.describe()}")
    prepared = prepare(layout.ovs_src, layout.patches, upstream, reimport=reimport, log=log)
    fp = fingerprint(layout, upstream, flavor)
    out = flavor.build_dir(layout)
    stamp = _read_json(out / STAMP)
    if (
        not force
        and prepared is Prepared.UNCHANGED
        and stamp.get("fingerprint") == fp
        and not missing_binaries(out)
    ):
        log(f"Open vSwitch build is up to date ({out}); skipped")
        return BuildResult(True, fp, time.monotonic() - start)

    if prepared is Prepared.FRESH:
        # A fresh unpack restores old mtimes: objects built from a patched
        # file would look newer than the original and survive.  Start over
        # (ccache makes this cheap), in every flavor's build.
        for other in FLAVORS.values():
            if other.build_dir(layout).exists():
                shutil.rmtree(other.build_dir(layout))
    if prepared is not Prepared.UNCHANGED and _needs_autoreconf(layout.ovs_src):
        log("the series touches autotools inputs: running boot.sh")
        subprocess.run(["./boot.sh"], cwd=layout.ovs_src, check=True, capture_output=True)
        for other in FLAVORS.values():
            (other.build_dir(layout) / CONFIGURED).unlink(missing_ok=True)
    configured = _read_json(out / CONFIGURED)
    if configured.get("args") != configure_args(flavor) or not (out / "Makefile").exists():
        _configure(layout, flavor, log)
    _relink_if_vm_changed(out, vm_lib, log)
    _make(layout, flavor, jobs, log)
    missing = missing_binaries(out)
    if missing:
        raise BuildError(f"make succeeded but did not produce: {', '.join(missing)}")
    meta = _read_json(out / STAMP)
    meta["fingerprint"] = fp
    (out / STAMP).write_text(json.dumps(meta))
    seconds = time.monotonic() - start
    log(f"Open vSwitch built in {seconds:.0f} s: {out}/vswitchd/ovs-vswitchd")
    return BuildResult(False, fp, seconds)
