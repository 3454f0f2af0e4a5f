"""okopy.ovs.series: what needs autotools, and how a patch's check reads."""

from __future__ import annotations

from pathlib import Path

from okopy.ovs.series import PatchCheck, touches_autotools

PATCH = """From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] configure: Something.

---
diff --git a/{path} b/{path}
index 1111111..2222222 100644
--- a/{path}
+++ b/{path}
@@ -1 +1 @@
-a
+b
"""


def test_autotools_inputs(tmp_path: Path) -> None:
    cases = {
        "configure.ac": True,
        "acinclude.m4": True,
        "m4/openvswitch.m4": True,
        "lib/automake.mk": False,  # make reruns automake itself
        "lib/ofp-bpf.c": False,
        "tests/configure.ac.at": False,
    }
    for path, expected in cases.items():
        patch = tmp_path / "p.patch"
        patch.write_text(PATCH.format(path=path))
        assert touches_autotools(patch) is expected, path


def test_a_line_in_the_message_is_no_file(tmp_path: Path) -> None:
    patch = tmp_path / "p.patch"
    patch.write_text("Subject: [PATCH] acinclude.m4 is mentioned\n\n" + PATCH.format(path="NEWS"))
    assert not touches_autotools(patch)


def test_summary() -> None:
    good = PatchCheck(5, "ofp-actions-Add-bpf-action", True, "", "", 42.4)
    assert good.ok
    assert good.summary() == "0005 ofp-actions-Add-bpf-action: checkpatch ok, builds (42 s)"
    style = PatchCheck(6, "x", True, "ERROR: Line is 80 characters long", "", 1.0)
    assert not style.ok
    assert style.summary() == "0006 x: checkpatch FAILED, builds (1 s)"
    broken = PatchCheck(7, "y", True, "", "lib/x.c:1: error: z", 2.0)
    assert broken.summary() == "0007 y: checkpatch ok, build FAILED (2 s)"
    missing = PatchCheck(8, "z", False, "", "patch does not apply", 0.2)
    assert not missing.ok
    assert missing.summary() == "0008 z: does not apply (0 s)"
    tested = PatchCheck(9, "t", True, "", "", 3.0, "")
    assert tested.ok
    assert tested.summary() == "0009 t: checkpatch ok, builds, tests pass (3 s)"
    failing = PatchCheck(10, "u", True, "", "", 3.0, "885: ofproto - x FAILED (ofproto.at:62)")
    assert not failing.ok
    assert failing.summary() == "0010 u: checkpatch ok, builds, tests FAILED (3 s)"
