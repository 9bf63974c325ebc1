"""Generate Hugging Face model cards (``README.md``) from the manifest and ``BENCHMARKS.md``.

A card states what the manifest knows -- architecture, training data and
command, licence, file hash -- and copies the model's measured numbers from
its own section of ``BENCHMARKS.md`` (never invented: a missing section says
so).  Empty manifest fields are shown as "not recorded".
"""

from __future__ import annotations

import re
from pathlib import Path

from .manifest import FORMATS, REPO_ROOT, ModelEntry

BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
_NOT_RECORDED = "_not recorded_"


def benchmark_section(section: str, benchmarks_md: Path | None = None) -> str | None:
    """The markdown between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` of BENCHMARKS.md."""
    path = benchmarks_md or BENCHMARKS_MD
    if not section or not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"<!-- BEGIN {re.escape(section)} -->\n?(.*?)<!-- END {re.escape(section)} -->", text, re.S)
    return match.group(1).strip() if match else None


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_HUB_LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "gpl-3.0", "agpl-3.0", "lgpl-3.0",
                 "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc0-1.0", "openrail"}


def _license_id(license_text: str) -> str:
    # The Hub's metadata wants one of its licence ids; anything else is "other" (explained in the card).
    first = license_text.split()[0].lower().rstrip(":;,") if license_text else ""
    return first if first in _HUB_LICENSES else "other"


def model_card(entry: ModelEntry, *, repo_id: str, path_in_repo: str, sha256: str, size: int,
               benchmarks_md: Path | None = None) -> str:
    """The README.md for one model in ``repo_id`` (YAML front matter + sections)."""
    card = entry.card
    bench_name = card.benchmark_section or entry.stage
    bench = benchmark_section(bench_name, benchmarks_md)
    bench_text = bench if bench else (f"No measured numbers yet: `BENCHMARKS.md` has no section "
                                      f"`{bench_name}`. Run the stage's `benchmarks/bench_*.py` script.")
    tags = ["cctv-face-pipeline", entry.stage, entry.framework]
    lines = [
        "---",
        f"license: {_license_id(entry.license)}",
        f"library_name: {entry.framework}",
        "tags:",
        *[f"- {t}" for t in tags if t],
        "---",
        "",
        f"# {entry.name}",
        "",
        entry.description or _NOT_RECORDED,
        "",
        "## Files",
        "",
        "| file | format | size (bytes) | sha256 |",
        "|---|---|---|---|",
        f"| `{path_in_repo}` | {entry.format}: {FORMATS.get(entry.format, '')} | {size} | `{sha256}` |",
        "",
        "## Architecture",
        "",
        card.architecture or _NOT_RECORDED,
        "",
        "## Training data",
        "",
        card.training_data or _NOT_RECORDED,
        "",
        "## Training command",
        "",
        f"```\n{card.training_command}\n```" if card.training_command else _NOT_RECORDED,
        "",
        "## Measured results",
        "",
        f"Copied from the `{bench_name}` section of the project's `BENCHMARKS.md`:",
        "",
        bench_text,
        "",
        "## Intended use",
        "",
        card.intended_use or _NOT_RECORDED,
        "",
        "## Limitations",
        "",
        card.limitations or _NOT_RECORDED,
        "",
        "## License",
        "",
        entry.license or _NOT_RECORDED,
        "",
        "## How to use",
        "",
        "In the open CCTV face pipeline, pin this repo and revision in `weights/models.json` (or set "
        f"`CCTV_MODEL_{entry.name.upper().replace('-', '_')}_REPO={repo_id}` and `..._REVISION=<commit>`), then:",
        "",
        "```python",
        "import hub_utils",
        f"resolved = hub_utils.resolve({entry.name!r})   # downloads, verifies sha256, caches",
        f"hub_utils.load_keras_weights(model, {entry.name!r})",
        "```",
    ]
    if card.references:
        lines += ["", "## References", "", card.references]
    return "\n".join(lines) + "\n"


def index_card(repo_id: str, rows: list[tuple[str, str, str, str]]) -> str:
    """The repo's root README.md: one row per model ``(name, stage, path_in_repo, sha256)``."""
    lines = [
        "---",
        "library_name: keras",
        "tags:",
        "- cctv-face-pipeline",
        "---",
        "",
        f"# {repo_id}",
        "",
        "Weights for the open CCTV face pipeline. Each model has its own card in its folder.",
        "",
        "| model | stage | file | sha256 |",
        "|---|---|---|---|",
        *[f"| [{n}]({p.rsplit('/', 1)[0] if '/' in p else '.'}/README.md) | {s} | `{p}` | `{h[:16]}...` |"
          for n, s, p, h in rows],
    ]
    return "\n".join(lines) + "\n"


__all__ = ["benchmark_section", "index_card", "model_card"]
