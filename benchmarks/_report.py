"""Shared helpers for benchmark scripts: machine description and BENCHMARKS.md sections.

Each benchmark owns one section of ``BENCHMARKS.md`` between the markers
``<!-- BEGIN name -->`` and ``<!-- END name -->`` and rewrites only that
section, so benchmarks can be rerun one at a time.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
SHARED = ROOT.parent / "shared" / "datasets"

HEADER = """# Benchmarks

Every number here was measured by a script in `benchmarks/`; each section names
its script, the machine and the date.  Rerun a script to refresh its section.
"""


def machine() -> str:
    """One line naming the CPU, core count, Python and date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{_dt.date.today().isoformat()}")


def write_section(name: str, markdown: str) -> Path:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``markdown``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    fd, tmp = tempfile.mkstemp(dir=BENCHMARKS_MD.parent, prefix=".BENCHMARKS.", suffix=".md")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, BENCHMARKS_MD)
    return BENCHMARKS_MD


def require_shared(*parts: str) -> Path:
    """Path inside ../shared/datasets, or exit with a clear message if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"benchmark data not found: {path} (benchmarks need ../shared/datasets)")
    return path
