"""The `okopy` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from okopy import __version__
from okopy.demo import run_demo
from okopy.ovs import build as ovs_build
from okopy.ovs import source as ovs_source
from okopy.ovs.instance import OvsNotBuilt
from okopy.paths import default_layout


def _log(message: str) -> None:
    print(message, flush=True)


def cmd_ovs_build(args: argparse.Namespace) -> int:
    ovs_build.build(
        default_layout(),
        jobs=args.jobs,
        reimport=args.reimport,
        force=args.force,
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
        "--reimport",
        action="store_true",
        help="discard build/ovs-src and re-apply ovs-patches/ from scratch",
    )
    b.set_defaults(func=cmd_ovs_build)
    i = ovs_sub.add_parser(
        "import", help="apply ovs-patches/ into build/ovs-src (a git repo)"
    )
    i.add_argument(
        "--force", action="store_true", help="discard unexported work in build/ovs-src"
    )
    i.set_defaults(func=cmd_ovs_import)
    e = ovs_sub.add_parser(
        "export", help="git format-patch build/ovs-src back into ovs-patches/"
    )
    e.set_defaults(func=cmd_ovs_export)

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
    except (ovs_source.SourceError, ovs_build.BuildError, OvsNotBuilt) as e:
        print(f"okopy: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
