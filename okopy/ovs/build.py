"""Build the patched Open vSwitch (userspace only) into `build/ovs`.

The build is skipped when its inputs are unchanged: the upstream tarball,
the work tree (which is the series plus any developer edits), the VM
sources it links, the configure arguments and this pipeline's version.
Otherwise `make` runs incrementally, with ccache, printing progress.
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
PIPELINE_VERSION = "1"

CONFIGURE_ARGS: tuple[str, ...] = (
    # AF_XDP switches itself on when libbpf/libxdp headers exist; we do not
    # use it and it needs libxdp.
    "--disable-afxdp",
    # Link libokovm (found through build/vm/okovm.pc) into ovs-vswitchd.
    "--with-okovm",
    "--enable-Werror",
    # Debian's interpreter, not a pyenv shim that may not exist later.
    "PYTHON3=/usr/bin/python3",
)

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


def compiler() -> str:
    return "ccache gcc" if shutil.which("ccache") else "gcc"


def configure_args() -> list[str]:
    return [*CONFIGURE_ARGS, f"CC={compiler()}"]


def _hash_tree(h: hashlib._Hash, root: Path) -> None:
    if not root.is_dir():
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")


def fingerprint(layout: Layout, upstream: Upstream) -> str:
    """A digest of everything the build's result depends on."""
    src = layout.ovs_src
    h = hashlib.sha256()
    h.update(f"pipeline {PIPELINE_VERSION}\0{upstream.sha256}\0".encode())
    h.update(" ".join(configure_args()).encode() + b"\0")
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


def _env(layout: Layout) -> dict[str, str]:
    return dict(
        os.environ,
        CCACHE_BASEDIR=str(layout.build),
        PKG_CONFIG_PATH=str(layout.vm_build),
    )


def build_vm(layout: Layout, jobs: int, log: Log) -> Path:
    """Build libokovm (linked into ovs-vswitchd); returns libokovm.a."""
    proc = subprocess.run(
        ["make", "-C", str(layout.vm_sources), f"-j{jobs}", "--no-print-directory",
         f"O={layout.vm_build}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BuildError(f"building libokovm failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return layout.vm_build / "libokovm.a"


def _relink_if_vm_changed(layout: Layout, vm_lib: Path, log: Log) -> None:
    """ovs-vswitchd links libokovm.a statically: relink when it changed."""
    digest = hashlib.sha256(vm_lib.read_bytes()).hexdigest() if vm_lib.exists() else ""
    meta = _read_json(layout.ovs_build / STAMP)
    la = layout.ovs_build / "lib" / "libopenvswitch.la"
    if meta.get("okovm") != digest and la.exists():
        log("libokovm changed: relinking the programs that use it")
        la.touch()
    if layout.ovs_build.exists():
        meta["okovm"] = digest
        (layout.ovs_build / STAMP).write_text(json.dumps(meta))


def _configure(layout: Layout, log: Log) -> None:
    src, out = layout.ovs_src, layout.ovs_build
    args = configure_args()
    out.mkdir(parents=True, exist_ok=True)
    log(f"configuring: {src}/configure {' '.join(args)}")
    proc = subprocess.run(
        [str(src / "configure"), *args],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
        env=_env(layout),
    )
    (out / "configure.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BuildError(
            f"configure failed (see {out}/config.log):\n"
            + "\n".join(proc.stderr.strip().splitlines()[-15:])
        )
    (out / CONFIGURED).write_text(json.dumps({"args": args}))


def _make(layout: Layout, jobs: int, log: Log) -> None:
    """Run make, showing progress, keeping the whole output in a log file."""
    out = layout.ovs_build
    logfile = layout.build / LOG_NAME
    previous = _read_json(out / STAMP).get("compiled")
    total = f"/~{previous}" if isinstance(previous, int) and previous > 0 else ""
    log(f"make -j{jobs} in {out} (full output: {logfile})")
    start = last = time.monotonic()
    compiled = 0
    env = _env(layout)
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
    log: Log = print,
) -> BuildResult:
    """Prepare the work tree and build it, unless nothing changed."""
    start = time.monotonic()
    vm_lib = build_vm(layout, jobs, log)
    upstream = find_upstream()
    log(f"Open vSwitch source: {upstream.describe()}")
    prepared = prepare(layout.ovs_src, layout.patches, upstream, reimport=reimport, log=log)
    fp = fingerprint(layout, upstream)
    out = layout.ovs_build
    stamp = _read_json(out / STAMP)
    if (
        not force
        and prepared is Prepared.UNCHANGED
        and stamp.get("fingerprint") == fp
        and not missing_binaries(out)
    ):
        log(f"Open vSwitch build is up to date ({out}); skipped")
        return BuildResult(True, fp, time.monotonic() - start)

    if prepared is Prepared.FRESH and out.exists():
        # A fresh unpack restores old mtimes: objects built from a patched
        # file would look newer than the original and survive.  Start over
        # (ccache makes this cheap).
        shutil.rmtree(out)
    if prepared is not Prepared.UNCHANGED and _needs_autoreconf(layout.ovs_src):
        log("the series touches autotools inputs: running boot.sh")
        subprocess.run(["./boot.sh"], cwd=layout.ovs_src, check=True, capture_output=True)
        (out / CONFIGURED).unlink(missing_ok=True)
    configured = _read_json(out / CONFIGURED)
    if configured.get("args") != configure_args() or not (out / "Makefile").exists():
        _configure(layout, log)
    _relink_if_vm_changed(layout, vm_lib, log)
    _make(layout, jobs, log)
    missing = missing_binaries(out)
    if missing:
        raise BuildError(f"make succeeded but did not produce: {', '.join(missing)}")
    meta = _read_json(out / STAMP)
    meta["fingerprint"] = fp
    (out / STAMP).write_text(json.dumps(meta))
    seconds = time.monotonic() - start
    log(f"Open vSwitch built in {seconds:.0f} s: {out}/vswitchd/ovs-vswitchd")
    return BuildResult(False, fp, seconds)
