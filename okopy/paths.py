"""Where things live in a checkout: sources, the build tree, the patch series."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# Debian's Python packages (mininet, python3-bpfcc's bcc) install here,
# outside okopy's virtualenv.
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def import_debian_package(name: str, deb: str) -> None:
    """Make `import NAME` work in a Python that does not see Debian's
    dist-packages (okopy's virtualenv) by loading that one package from
    there, not the whole directory.  'deb' names the Debian package for
    the error when it is not installed."""
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    init = DEBIAN_DIST_PACKAGES / name / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(init.parent)]
    )
    if not init.exists() or spec is None or spec.loader is None:
        raise ImportError(
            f"{name} is not installed: run scripts/setup (Debian package {deb})", name=name
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


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
