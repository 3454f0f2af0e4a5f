"""What makes the Open vSwitch build run again, and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.ovs import build, source
from okopy.ovs.source import Upstream
from okopy.paths import Layout, default_layout
from tests.unit.test_ovs_source import BASE, make_upstream


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Layout, Upstream]:
    repo = tmp_path / "repo"
    (repo / "vm").mkdir(parents=True)
    (repo / "vm" / "okovm.c").write_text("int x;\n")
    layout = Layout(repo)
    upstream = make_upstream(tmp_path, BASE)
    source.prepare(layout.ovs_src, layout.patches, upstream, log=lambda m: None)
    return layout, upstream


def test_fingerprint_is_stable(tree: tuple[Layout, Upstream]) -> None:
    layout, upstream = tree
    assert build.fingerprint(layout, upstream) == build.fingerprint(layout, upstream)


@pytest.mark.parametrize(
    "change",
    ["edit tracked file", "add untracked file", "edit vm source", "new tarball"],
)
def test_fingerprint_follows_inputs(tree: tuple[Layout, Upstream], change: str) -> None:
    layout, upstream = tree
    before = build.fingerprint(layout, upstream)
    if change == "edit tracked file":
        (layout.ovs_src / "lib/a.c").write_text("edited\n")
    elif change == "add untracked file":
        (layout.ovs_src / "lib/new.c").write_text("int n;\n")
    elif change == "edit vm source":
        (layout.vm_sources / "okovm.c").write_text("int y;\n")
    else:
        upstream = Upstream(upstream.tarball, "0" * 64, upstream.package_version)
    assert build.fingerprint(layout, upstream) != before


def test_ignored_generated_files_do_not_count(
    tree: tuple[Layout, Upstream],
) -> None:
    layout, upstream = tree
    before = build.fingerprint(layout, upstream)
    (layout.ovs_src / "configure").write_text("#!/bin/sh\n# regenerated\n")
    assert build.fingerprint(layout, upstream) == before


def test_missing_binaries_are_listed(tmp_path: Path) -> None:
    assert build.missing_binaries(tmp_path) == list(build.BINARIES)


def test_a_layout_for_another_tree_ignores_okopy_build_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests that make a Layout for a scratch tree must never write into the
    # build tree OKOPY_BUILD_DIR names (they once replaced its ovs-src).
    monkeypatch.setenv("OKOPY_BUILD_DIR", str(tmp_path / "elsewhere"))
    assert Layout(tmp_path / "repo").ovs_src == tmp_path / "repo/build/ovs-src"
    assert default_layout().build == tmp_path / "elsewhere"
    monkeypatch.delenv("OKOPY_BUILD_DIR")
    assert default_layout().build == default_layout().repo / "build"
