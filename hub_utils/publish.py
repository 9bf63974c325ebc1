"""Publish bundled weights (and imported VGGFace files) to a Hub repo with generated model cards.

:func:`plan_publish` computes exactly what would be uploaded (tested in dry
runs); :func:`publish` uploads it in one commit and returns the commit id to
pin.  Only files whose sha256 matches the manifest are published.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import hub
from .cards import index_card, model_card
from .errors import ManifestError, ModelUnavailable
from .manifest import Manifest, ModelEntry, load_manifest, save_manifest, update_entry, weights_dir
from .resolve import sha256_file

_MAX_GIT_FILE = 20 * 1024 * 1024


@dataclass
class PublishPlan:
    """What one publish commit contains."""

    repo_id: str
    files: dict[str, Path | bytes] = field(default_factory=dict)
    """path in repo -> local file (weights) or bytes (cards)."""
    models: list[tuple[ModelEntry, str, str, int]] = field(default_factory=list)
    """(entry, path in repo, sha256, size) per published model."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(model, why) for models left out."""

    def describe(self) -> list[str]:
        lines = [f"repo {self.repo_id}: {len(self.files)} file(s)"]
        for path, src in sorted(self.files.items()):
            what = f"{src} ({src.stat().st_size} bytes)" if isinstance(src, Path) else f"generated ({len(src)} bytes)"
            lines.append(f"  {path}  <- {what}")
        for name, why in self.skipped:
            lines.append(f"  skipped {name}: {why}")
        return lines


def card_path(path_in_repo: str, name: str) -> str:
    """Where a model's card goes: next to its weights file, or ``NAME/README.md``."""
    folder = posixpath.dirname(path_in_repo)
    return f"{folder or name}/README.md"


def add_model(plan: PublishPlan, entry: ModelEntry, weights: Path, sha256: str,
              benchmarks_md: Path | None = None) -> None:
    """Add one model's weights file and card to ``plan``."""
    path_in_repo = entry.hub_filename or f"{entry.name}/{weights.name}"
    size = weights.stat().st_size
    plan.files[path_in_repo] = weights
    plan.files[card_path(path_in_repo, entry.name)] = model_card(
        entry, repo_id=plan.repo_id, path_in_repo=path_in_repo, sha256=sha256, size=size,
        benchmarks_md=benchmarks_md).encode("utf-8")
    plan.models.append((entry, path_in_repo, sha256, size))


def finish_plan(plan: PublishPlan) -> PublishPlan:
    """Add the repo's root README.md listing the plan's models."""
    if plan.models:
        rows = [(e.name, e.stage, p, h) for e, p, h, _s in plan.models]
        plan.files["README.md"] = index_card(plan.repo_id, rows).encode("utf-8")
    return plan


def plan_publish(repo_id: str, names: list[str] | None = None, *, manifest: Manifest | None = None,
                 benchmarks_md: Path | None = None) -> PublishPlan:
    """The files a publish of the bundled weights would upload (nothing is sent).

    Models without a bundled file, not registered, or whose file does not match
    its registered sha256 are skipped with the reason.
    """
    manifest = manifest or load_manifest()
    plan = PublishPlan(repo_id=repo_id)
    wanted = names or [e.name for e in manifest.models if e.bundled_file]
    for name in wanted:
        entry = manifest.get(name)
        if not entry.bundled_file:
            plan.skipped.append((name, "not a bundled model (use import-vggface for VGGFace)"))
            continue
        path = weights_dir() / entry.bundled_file
        if not path.is_file():
            plan.skipped.append((name, f"weights/{entry.bundled_file} missing (not trained yet)"))
            continue
        if entry.sha256 is None:
            plan.skipped.append((name, f"not registered: run `python -m hub_utils register {name} "
                                       f"weights/{entry.bundled_file}`"))
            continue
        actual = sha256_file(path)
        if actual != entry.sha256:
            plan.skipped.append((name, f"weights/{entry.bundled_file} does not match its registered sha256 "
                                       "(re-register it)"))
            continue
        add_model(plan, entry, path, actual, benchmarks_md)
    return finish_plan(plan)


def publish(plan: PublishPlan, *, private: bool = False, message: str | None = None) -> str:
    """Upload ``plan`` in one commit; returns the commit id (the revision to pin)."""
    if not plan.models:
        raise ModelUnavailable("publish", "nothing to publish: " +
                               ("; ".join(f"{n}: {w}" for n, w in plan.skipped) or "no models selected"))
    names = ", ".join(e.name for e, *_ in plan.models)
    return hub.upload(plan.repo_id, plan.files, private=private,
                      message=message or f"Publish {names} from the open CCTV face pipeline")


def pin_in_manifest(plan: PublishPlan, revision: str, manifest: Manifest | None = None, *,
                    new_file: bool = False) -> Manifest:
    """Record ``repo@revision`` as published for every model of ``plan`` and save the manifest.

    ``new_file`` allows a hash different from the manifest's (an imported VGGFace file replacing
    an earlier one); bundled models must publish exactly the registered file.
    """
    manifest = manifest or load_manifest()
    for entry, path_in_repo, sha256, size in plan.models:
        current = manifest.get(entry.name)
        if not new_file and current.sha256 not in (None, sha256):
            raise ManifestError(f"model {entry.name!r}: the manifest's sha256 changed during publishing")
        manifest = update_entry(manifest, replace(current, repo_id=plan.repo_id, hub_filename=path_in_repo,
                                                  revision=revision, published=True, sha256=sha256, size=size))
    save_manifest(manifest)
    return manifest


def warn_if_too_big_for_git(path: Path) -> str | None:
    """A warning when a bundled file would exceed the repo's 20 MB per-file limit."""
    size = path.stat().st_size
    if size > _MAX_GIT_FILE:
        return (f"{path} is {size / 1e6:.1f} MB: over the 20 MB limit for files in git; "
                "publish it to the Hub instead of committing it")
    return None


__all__ = ["PublishPlan", "add_model", "card_path", "finish_plan", "pin_in_manifest", "plan_publish", "publish",
           "warn_if_too_big_for_git"]
