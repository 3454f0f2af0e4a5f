"""Turn a policy into built, verified programs (the I/O side of the policy).

`check()` is what `okopy check-config` and the controller run: the policy
schema, then every program compiled (or read) and verified by libokovm and
the kernel, then every map seed typed through the program's BTF.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from okopy.bpf import vm
from okopy.bpf.btf import Btf, BtfError, map_definitions
from okopy.bpf.elf import ElfError, sections
from okopy.bpf.toolchain import CompileError, compile_program
from okopy.paths import default_layout
from okopy.policy.desired import BuiltProgram, DesiredSwitch, desired_switch
from okopy.policy.file import Policy, ProgramSpec
from okopy.policy.schema import ConfigError, Problem


class CheckError(ConfigError):
    """Programs or seeds of the policy are unusable."""


def object_cache() -> Path:
    """Where built programs are kept: build/programs, or, for a user who
    cannot write there (`okopy replay` needs no root), their own cache."""
    shared = default_layout().build / "programs"
    if os.access(shared if shared.exists() else shared.parent, os.W_OK):
        return shared
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(home) / "okopy" / "programs"


def build_program(spec: ProgramSpec, file: str) -> BuiltProgram:
    """Compile (or read) one program and read its maps from BTF."""
    where = Problem(spec.file or file, spec.line, 1, "")
    try:
        if spec.object is not None:
            elf = spec.object.read_bytes()
        else:
            assert spec.source is not None
            src = spec.source.read_bytes()
            tag = hashlib.sha256(src + "\0".join(spec.defines).encode()).hexdigest()[:16]
            out = object_cache() / f"{spec.name}-{tag}.o"
            out.parent.mkdir(parents=True, exist_ok=True)
            compile_program(spec.source, out, defines=spec.defines)
            elf = out.read_bytes()
        secs = sections(elf)
    except OSError as e:
        raise CheckError([_at(where, f"program {spec.name}: {e.strerror}: {e.filename}")]) from None
    except (CompileError, ElfError) as e:
        raise CheckError([_at(where, f"program {spec.name}: {e}")]) from None
    btf = Btf.parse(secs[".BTF"].data) if ".BTF" in secs else None
    maps = {m.name: m for m in map_definitions(btf)} if btf else {}
    return BuiltProgram(spec.name, spec.prog_id, elf, btf, maps)


def _at(p: Problem, message: str) -> Problem:
    return Problem(p.file, p.line, p.column, message)


@dataclass(frozen=True)
class Checked:
    policy: Policy
    programs: dict[str, BuiltProgram]
    switches: dict[str, DesiredSwitch]


def check(policy: Policy, *, verify: bool = True) -> Checked:
    """Build and verify every program, type every seed; all problems at once."""
    file = str(policy.path or "<policy>")
    problems: list[Problem] = []
    built: dict[str, BuiltProgram] = {}
    for name, spec in policy.programs.items():
        try:
            prog = build_program(spec, file)
        except CheckError as e:
            problems.extend(e.problems)
            continue
        if verify:
            try:
                vm.Namespace(f"check-{name}").load(
                    prog.elf,
                    prog_name=spec.function,
                    sandbox="allow" if spec.sandbox else "never",
                )
            except vm.VmError as e:
                problems.append(
                    Problem(spec.file or file, spec.line, 1, f"program {name}: {e.describe()}")
                )
                continue
        built[name] = prog
    switches: dict[str, DesiredSwitch] = {}
    for sname, sw in policy.switches.items():
        if not all(p in built for p in sw.programs):
            continue
        for seed in sw.seeds:
            try:
                built[seed.program].encode_entry(seed.map, seed.key, seed.value)
            except (BtfError, ValueError) as e:
                problems.append(
                    Problem(
                        seed.file or file, seed.line, 1, f"seed of {seed.program}.{seed.map}: {e}"
                    )
                )
        if not problems:
            switches[sname] = desired_switch(policy, sw, built)
    if problems:
        raise CheckError(problems)
    return Checked(policy, built, switches)
