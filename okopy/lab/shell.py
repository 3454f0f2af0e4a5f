"""A lab's Open vSwitch from a shell: the exports `okopy lab env` prints and
the command line `okopy lab ofctl` runs.

Pure functions: the lab gives the values (its run directory's variables,
the build's tool directories, the caller's PATH)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence

# The okopy messages and the bpf_verdict field are OpenFlow 1.3
# experimenter extensions, and a lab switch with a controller speaks only
# OpenFlow 1.3; ovs-ofctl's own default is 1.0.
OPENFLOW = "OpenFlow13"


def shell_env(variables: Mapping[str, str], bindirs: Sequence[str], path: str) -> dict[str, str]:
    """'variables' and a PATH with 'bindirs' first, then 'path' without
    them: evaluating the exports twice gives the same PATH."""
    first = list(bindirs)
    rest = [p for p in path.split(os.pathsep) if p and p not in first]
    return {**variables, "PATH": os.pathsep.join([*first, *rest])}


def exports(env: Mapping[str, str]) -> str:
    """POSIX shell `export` lines, one per variable, for `eval`."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def chooses_protocol(args: Sequence[str]) -> bool:
    """Whether ovs-ofctl 'args' set the OpenFlow versions (-O, --protocols)."""
    for a in args:
        if a == "--":  # getopt reads no options after it
            return False
        if a.startswith("-O") or a == "--protocols" or a.startswith("--protocols="):
            return True
    return False


def ofctl_argv(ofctl: str, args: Sequence[str]) -> list[str]:
    """`ovs-ofctl ARGS`, with `-O OpenFlow13` first unless ARGS choose."""
    if chooses_protocol(args):
        return [ofctl, *args]
    return [ofctl, "-O", OPENFLOW, *args]
