"""What every benchmark report says: the machine, the versions, the method."""

from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from okopy import __version__


def _cmd_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = sum(
        1 for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("processor")
    )
    return {
        "cpu": cpu,
        "cores": cores,
        "kernel": platform.release(),
        "okopy": __version__,
        "clang": _cmd_version(["clang", "--version"]),
        "iptables": _cmd_version(["iptables", "--version"]),
        "nft": _cmd_version(["nft", "--version"]),
    }


@dataclass(frozen=True)
class Sample:
    """Repeated measurements of one quantity: median and spread."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        if not self.values:
            return (float("nan"), float("nan"))
        return (min(self.values), max(self.values))

    def fmt(self, unit: str = "", digits: int = 0) -> str:
        """'median (min-max)', or '-' when there is no figure (no values, or
        a quantity this run could not measure)."""
        if math.isnan(self.median):
            return "-"
        lo, hi = self.spread
        return f"{self.median:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def pyplot() -> Any | None:
    """matplotlib.pyplot with a file-only backend, or None without matplotlib."""
    try:
        import matplotlib  # noqa: PLC0415 - only reports need it

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return None
    return plt


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def write_report(out_dir: Path, suite: str, lines: list[str], data: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{suite}.md"
    m = machine()
    head = [
        f"# Benchmark: {suite}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}.  "
        f"okopy {m['okopy']}; {m['clang']}; {m['iptables']}; {m['nft']}.",
        "",
    ]
    md.write_text("\n".join(head + lines) + "\n")
    (out_dir / f"{suite}.json").write_text(json.dumps({"machine": m, **data}, indent=1))
    return md
