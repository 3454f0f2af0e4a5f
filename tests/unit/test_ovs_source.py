"""The series <-> work tree pipeline, on a small stand-in source tarball."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path

import pytest

from okopy.ovs import source
from okopy.ovs.source import Prepared, Upstream


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def make_upstream(tmp: Path, files: dict[str, str]) -> Upstream:
    top = tmp / "dist" / "openvswitch"
    for name, text in files.items():
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(text)
    tarball = tmp / "openvswitch.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(top, arcname="openvswitch")
    return Upstream(tarball, hashlib.sha256(tarball.read_bytes()).hexdigest(), "9.9")


BASE = {
    "lib/a.c": "int a(void)\n{\n    return 1;\n}\n",
    "configure": "#!/bin/sh\n",
    "Makefile.in": "generated\n",
    "NEWS": "v9.9\n",
}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return make_upstream(tmp_path, BASE)


def write_patch(src: Path, patches: Path, path: str, text: str, subject: str) -> None:
    """Commit a change in 'src' and export the whole series to 'patches'."""
    (src / path).parent.mkdir(parents=True, exist_ok=True)
    (src / path).write_text(text)
    _git(src, "add", path)
    _git(src, "commit", "-q", "-m", subject)


def test_fresh_import_tracks_what_upstream_tracks(tmp_path: Path, upstream: Upstream) -> None:
    src, patches = tmp_path / "src", tmp_path / "patches"
    assert source.prepare(src, patches, upstream, log=lambda m: None) is Prepared.FRESH
    tracked = _git(src, "ls-files").split()
    assert "lib/a.c" in tracked
    assert "NEWS" in tracked
    # Autotools output is in the tarball but not tracked (OVS's git checks).
    assert "configure" not in tracked
    assert "Makefile.in" not in tracked
    assert (src / "configure").exists()
    assert _git(src, "tag").split() == [source.BASE_TAG]
    assert not source.is_dirty(src)
    assert source.prepare(src, patches, upstream) is Prepared.UNCHANGED


def test_export_then_series_change_reapplies(tmp_path: Path, upstream: Upstream) -> None:
    src, patches = tmp_path / "src", tmp_path / "patches"
    source.prepare(src, patches, upstream, log=lambda m: None)
    write_patch(src, patches, "lib/a.c", BASE["lib/a.c"].replace("1", "2"), "lib: Return two.")
    write_patch(src, patches, "lib/b.c", "int b;\n", "lib: Add b.")
    assert source.export(src, patches, upstream, log=lambda m: None) == 2
    names = [p.name for p in source.series(patches)]
    assert names == ["0001-lib-Return-two.patch", "0002-lib-Add-b.patch"]
    # Exporting records the tree as matching the series: nothing to do.
    assert source.prepare(src, patches, upstream) is Prepared.UNCHANGED

    # Someone else drops the second patch (as a pull would): re-applied.
    (patches / names[1]).unlink()
    assert source.prepare(src, patches, upstream, log=lambda m: None) is (Prepared.REAPPLIED)
    assert "return 2;" in (src / "lib/a.c").read_text()
    assert not (src / "lib/b.c").exists()


def test_fresh_import_reproduces_exported_series(tmp_path: Path, upstream: Upstream) -> None:
    src, patches = tmp_path / "src", tmp_path / "patches"
    source.prepare(src, patches, upstream, log=lambda m: None)
    write_patch(src, patches, "lib/a.c", "changed\n", "lib: Change a.")
    source.export(src, patches, upstream, log=lambda m: None)
    other = tmp_path / "other"
    assert source.prepare(other, patches, upstream, log=lambda m: None) is (Prepared.FRESH)
    assert (other / "lib/a.c").read_text() == "changed\n"
    assert _git(other, "log", "--format=%s", "-1").strip() == "lib: Change a."


def test_broken_patch_is_named(tmp_path: Path, upstream: Upstream) -> None:
    src, patches = tmp_path / "src", tmp_path / "patches"
    source.prepare(src, patches, upstream, log=lambda m: None)
    write_patch(src, patches, "lib/a.c", "changed\n", "lib: Change a.")
    source.export(src, patches, upstream, log=lambda m: None)
    patch = source.series(patches)[0]
    patch.write_text(patch.read_text().replace("-    return 1;", "-    return 7;"))
    fresh = tmp_path / "fresh"
    with pytest.raises(source.PatchDoesNotApply) as info:
        source.prepare(fresh, patches, upstream, log=lambda m: None)
    assert info.value.patch == patch
    assert "0001-lib-Change-a.patch does not apply" in str(info.value)
    assert "9.9" in str(info.value)
    # No half-applied `git am` session is left behind.
    assert not (fresh / ".git" / "rebase-apply").exists()


def test_unexported_work_is_never_discarded(tmp_path: Path, upstream: Upstream) -> None:
    src, patches = tmp_path / "src", tmp_path / "patches"
    source.prepare(src, patches, upstream, log=lambda m: None)
    write_patch(src, patches, "lib/a.c", "mine\n", "lib: My work.")
    # The series changes underneath (a pull brings a patch).
    patches.mkdir()
    (patches / "0001-x.patch").write_text("not a patch\n")
    with pytest.raises(source.SourceError, match="okopy ovs export"):
        source.prepare(src, patches, upstream)
    assert (src / "lib/a.c").read_text() == "mine\n"


def test_uncommitted_changes_are_not_exported(tmp_path: Path, upstream: Upstream) -> None:
    src, patches = tmp_path / "src", tmp_path / "patches"
    source.prepare(src, patches, upstream, log=lambda m: None)
    (src / "lib/a.c").write_text("dirty\n")
    with pytest.raises(source.SourceError, match="uncommitted"):
        source.export(src, patches, upstream)


def test_missing_tarball_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(source.SourceError, match="openvswitch-source"):
        source.find_upstream(tmp_path / "nope.tar.gz")
