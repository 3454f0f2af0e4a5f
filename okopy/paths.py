"""Where things live in a checkout: sources, the build tree, the patch series."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths of one okopy checkout and its build tree."""

    repo: Path
    # The build tree; repo/build unless given.  Only default_layout() reads
    # OKOPY_BUILD_DIR, so a Layout made for another tree (a test's) never
    # reaches the build tree the environment names.
    build_dir: Path | None = None

    @property
    def build(self) -> Path:
        return self.build_dir if self.build_dir is not None else self.repo / "build"

    @property
    def patches(self) -> Path:
        return self.repo / "ovs-patches"

    @property
    def vm_sources(self) -> Path:
        return self.repo / "vm"

    @property
    def ovs_src(self) -> Path:
        return self.build / "ovs-src"

    @property
    def ovs_build(self) -> Path:
        return self.build / "ovs"

    @property
    def vm_build(self) -> Path:
        return self.build / "vm"


def default_layout() -> Layout:
    """The layout of the checkout this package was imported from; its build
    tree is $OKOPY_BUILD_DIR when that is set."""
    override = os.environ.get("OKOPY_BUILD_DIR")
    return Layout(Path(__file__).resolve().parent.parent, Path(override) if override else None)
