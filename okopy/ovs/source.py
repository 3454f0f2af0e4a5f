"""The Open vSwitch work tree: Debian's source + our patch series, as a git repo.

`build/ovs-src` is a git repository whose first commit (tag `ovs-base`) is
Debian's `openvswitch-source` tarball as upstream would track it, and whose
later commits are `ovs-patches/*.patch`, applied with `git am`.  Developers
commit in that tree and `export` the series back; `prepare()` re-imports only
when the series changed and the tree holds nothing unexported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from okopy.process import CommandError, run

DEBIAN_TARBALL = Path("/usr/src/openvswitch/openvswitch.tar.gz")
DEBIAN_PACKAGE = "openvswitch-source"
BASE_TAG = "ovs-base"
STATE_FILE = "okopy-import.json"

# Files that Debian's `make dist` tarball carries but upstream's git does not
# track: autotools output, generated test suites, and Debian's own changelog
# (which mentions ifconfig and trips OVS's `check-ifconfig`).  OVS's build runs
# git-based style checks when `.git` exists, so tracking them would fail it.
UNTRACKED_PATTERNS = (
    "Makefile.in",
    "/configure",
    "/config.h.in",
    "/aclocal.m4",
    "/package.m4",
    "/build-aux/ar-lib",
    "/build-aux/compile",
    "/build-aux/config.guess",
    "/build-aux/config.sub",
    "/build-aux/depcomp",
    "/build-aux/install-sh",
    "/build-aux/ltmain.sh",
    "/build-aux/missing",
    "/build-aux/test-driver",
    "/m4/libtool.m4",
    "/m4/ltoptions.m4",
    "/m4/ltsugar.m4",
    "/m4/ltversion.m4",
    "/m4/lt~obsolete.m4",
    "/autom4te.cache",
    "*testsuite",
    "/tests/atlocal",
    "/debian/changelog",
    "*~",
)

Log = Callable[[str], None]


class SourceError(RuntimeError):
    """The work tree cannot be prepared; the message says what to do."""


class PatchDoesNotApply(SourceError):
    """One patch of the series does not apply; names the patch."""

    def __init__(self, patch: Path, upstream: Upstream, detail: str) -> None:
        self.patch = patch
        super().__init__(
            f"{patch.name} does not apply to Open vSwitch {upstream.describe()}:\n{detail.strip()}"
        )


@dataclass(frozen=True)
class Upstream:
    """The pristine source the series is based on."""

    tarball: Path
    sha256: str
    package_version: str

    def describe(self) -> str:
        return f"{DEBIAN_PACKAGE} {self.package_version} ({self.tarball})"


def find_upstream(tarball: Path = DEBIAN_TARBALL) -> Upstream:
    """Describe 'tarball', by default Debian's `openvswitch-source`."""
    if not tarball.is_file():
        raise SourceError(
            f"{tarball} not found: install Debian's {DEBIAN_PACKAGE} (scripts/setup does)"
        )
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    try:
        version = run(["dpkg-query", "-W", "-f=${Version}", DEBIAN_PACKAGE], timeout=30).strip()
    except (CommandError, FileNotFoundError):
        version = "unknown version"
    return Upstream(tarball, digest, version or "unknown version")


def series(patches: Path) -> list[Path]:
    """The patch series in application order."""
    return sorted(patches.glob("*.patch")) if patches.is_dir() else []


def series_digest(patches: Path) -> str:
    h = hashlib.sha256()
    for p in series(patches):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class ImportState:
    """What `prepare()` last put into the work tree."""

    tarball_sha256: str
    series_digest: str
    head: str

    @staticmethod
    def load(src: Path) -> ImportState | None:
        path = src / ".git" / STATE_FILE
        try:
            data = json.loads(path.read_text())
            return ImportState(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, src: Path) -> None:
        (src / ".git" / STATE_FILE).write_text(json.dumps(asdict(self), indent=1))


class Prepared(Enum):
    UNCHANGED = "unchanged"
    FRESH = "fresh"
    REAPPLIED = "reapplied"


def git(src: Path, *args: str, timeout: float = 300.0) -> str:
    return run(["git", "-C", str(src), *args], timeout=timeout)


def head(src: Path) -> str:
    return git(src, "rev-parse", "HEAD").strip()


def is_dirty(src: Path) -> bool:
    """True if 'src' has uncommitted or untracked (non-ignored) changes."""
    return bool(git(src, "status", "--porcelain").strip())


def has_unexported_work(src: Path, state: ImportState | None) -> bool:
    if not (src / ".git").is_dir():
        return False
    if state is None:
        return True
    try:
        return head(src) != state.head or is_dirty(src)
    except CommandError:
        return True


def _ensure_identity(src: Path) -> None:
    """git am needs a committer; set a local one only if none is configured."""
    try:
        git(src, "config", "--get", "user.email")
    except CommandError:
        git(src, "config", "user.email", "okopy@localhost")
        git(src, "config", "user.name", "okopy build")


def _unpack(upstream: Upstream, src: Path, log: Log) -> None:
    log(f"unpacking {upstream.describe()} into {src}")
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    run(
        ["tar", "-xzf", str(upstream.tarball), "--strip-components=1", "-C", str(src)],
        timeout=300,
    )
    git(src, "init", "-q")
    (src / ".git" / "info").mkdir(exist_ok=True)
    (src / ".git" / "info" / "exclude").write_text(
        "# okopy: generated files upstream does not track\n" + "\n".join(UNTRACKED_PATTERNS) + "\n"
    )
    _ensure_identity(src)
    git(src, "add", "-A")
    git(
        src,
        "commit",
        "-q",
        "-m",
        f"Open vSwitch from Debian {DEBIAN_PACKAGE} {upstream.package_version}\n\n"
        f"Tarball sha256 {upstream.sha256}.",
    )
    git(src, "tag", "-f", BASE_TAG)


def _apply_series(src: Path, patches: Path, upstream: Upstream, log: Log) -> None:
    files = series(patches)
    if not files:
        log("patch series is empty: building upstream Open vSwitch")
    for patch in files:
        try:
            git(src, "am", "-q", "--whitespace=nowarn", str(patch.resolve()))
        except CommandError as e:
            subprocess.run(
                ["git", "-C", str(src), "am", "--abort"],
                check=False,
                capture_output=True,
            )
            raise PatchDoesNotApply(patch, upstream, e.output) from None
    if files:
        log(f"applied {len(files)} patches from {patches}")


def prepare(
    src: Path,
    patches: Path,
    upstream: Upstream,
    *,
    reimport: bool = False,
    log: Log = print,
) -> Prepared:
    """Bring 'src' to 'upstream' + the series in 'patches'.

    Keeps a developer's unexported commits: if the series changed too, it
    refuses, naming both ways out.  'reimport' discards the tree's work."""
    state = ImportState.load(src)
    digest = series_digest(patches)
    fresh_needed = (
        reimport
        or not (src / ".git").is_dir()
        or state is None
        or state.tarball_sha256 != upstream.sha256
    )
    if not fresh_needed and state is not None and state.series_digest == digest:
        return Prepared.UNCHANGED
    if not reimport and has_unexported_work(src, state):
        raise SourceError(
            f"{src} has commits or changes that are not in {patches}, and "
            f"{'the upstream source' if fresh_needed else 'the series'} changed "
            "too.  Export your work first (okopy ovs export, after committing), "
            "or discard it (okopy ovs import --force)."
        )
    if fresh_needed:
        _unpack(upstream, src, log)
        result = Prepared.FRESH
    else:
        log(f"patch series changed: re-applying {patches} onto {BASE_TAG}")
        git(src, "reset", "-q", "--hard", BASE_TAG)
        git(src, "clean", "-q", "-fd")
        result = Prepared.REAPPLIED
    try:
        _apply_series(src, patches, upstream, log)
    except PatchDoesNotApply:
        # Leave the tree at the base so that a later run retries the series.
        ImportState(upstream.sha256, "", head(src)).save(src)
        raise
    ImportState(upstream.sha256, digest, head(src)).save(src)
    return result


def export(src: Path, patches: Path, upstream: Upstream, log: Log = print) -> int:
    """Write the commits after `ovs-base` in 'src' to 'patches' as a series.

    Returns the number of patches written."""
    if not (src / ".git").is_dir():
        raise SourceError(f"{src} is not a work tree: run okopy ovs import first")
    if git(src, "status", "--porcelain", "--untracked-files=no").strip():
        raise SourceError(
            f"{src} has uncommitted changes: commit them (git -C {src} commit) before exporting"
        )
    patches.mkdir(parents=True, exist_ok=True)
    for old in series(patches):
        old.unlink()
    git(
        src,
        "format-patch",
        "-q",
        "--zero-commit",
        "--no-signature",
        "-o",
        str(patches.resolve()),
        f"{BASE_TAG}..HEAD",
    )
    count = len(series(patches))
    ImportState(upstream.sha256, series_digest(patches), head(src)).save(src)
    log(f"exported {count} patches to {patches}")
    return count
