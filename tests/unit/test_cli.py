"""The command line's shape."""

from __future__ import annotations

import argparse

import pytest

from okopy import __version__
from okopy.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"okopy {__version__}"


def test_ovs_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ovs"])
    assert info.value.code == 2
    assert "ACTION" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_bench_io_choices_are_the_bench_s() -> None:
    """`okopy bench --io` offers exactly the datapath bench's port types."""
    from okopy.bench.datapath import IO_TYPES  # noqa: PLC0415 - the CLI imports it late
    from okopy.cli import parser  # noqa: PLC0415

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    (io,) = [a for a in commands.choices["bench"]._actions if a.dest == "io"]
    assert tuple(io.choices or ()) == IO_TYPES


def test_bench_profile_choices_are_the_bench_s_configurations() -> None:
    """`okopy bench datapath --profile` offers exactly its flow tables (the
    tracing configurations are recirc's, measured with something attached)."""
    from okopy.bench.datapath import CONFIGS, TRACE_CONFIGS  # noqa: PLC0415 - imported late
    from okopy.cli import parser  # noqa: PLC0415

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    (prof,) = [a for a in commands.choices["bench"]._actions if a.dest == "profile"]
    assert tuple(prof.choices or ()) == tuple(c for c in CONFIGS if c not in TRACE_CONFIGS)
