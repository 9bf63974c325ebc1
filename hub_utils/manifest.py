"""The models manifest (``weights/models.json``) and per-model user overrides.

The manifest lists, for every model the app can use: which stage uses it,
where its weights live (a file bundled under ``weights/`` and/or a file in a
Hugging Face Hub repo at a pinned commit), the file's sha256 and size, its
format and licence, and the facts for its model card.

Users override where a model comes from, per model, without editing the
manifest (highest priority first):

1. :func:`set_override` (what ``--model-path NAME=PATH`` etc. call);
2. environment variables, ``NAME`` upper-cased with ``-`` -> ``_``::

       CCTV_MODEL_SRCNN_X3_PATH=/data/my_srcnn.weights.h5   # explicit local file
       CCTV_MODEL_VGGFACE_REPO=my-org/vggface                # another Hub repo
       CCTV_MODEL_VGGFACE_REVISION=<40-hex commit>           # another pinned commit
       CCTV_MODEL_VGGFACE_SHA256=<64-hex>                    # accept a file with this hash

3. ``CCTV_HUB_ORG`` replaces ``{org}`` in every manifest ``repo_id``;
   ``CCTV_MODELS_MANIFEST`` points at another manifest file and
   ``CCTV_WEIGHTS_DIR`` at another folder of bundled weights.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ManifestError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"
DEFAULT_MANIFEST = DEFAULT_WEIGHTS_DIR / "models.json"

# Formats we know how to load *safely* (no pickle, no arbitrary code):
FORMATS: dict[str, str] = {
    "keras-weights-h5": "Keras 3 weights-only HDF5 (model.save_weights, *.weights.h5)",
    "keras-legacy-h5": "Keras 2 HDF5 weights keyed by layer name (e.g. keras-vggface releases)",
    "keras": "Keras 3 .keras archive, loaded with safe_mode=True",
    "tflite": "TFLite flatbuffer run by the LiteRT interpreter (data only, no code)",
}

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9_.{}-]+/[A-Za-z0-9_.-]+$")


def is_commit_hash(revision: str | None) -> bool:
    """True for a full 40-hex git commit id (the only kind of revision a release should pin)."""
    return bool(revision) and bool(_COMMIT_RE.match(revision))  # type: ignore[arg-type]


def env_key(name: str) -> str:
    """``srcnn-x3`` -> ``SRCNN_X3``: the model's part of its environment variable names."""
    return name.upper().replace("-", "_")


@dataclass(frozen=True)
class ModelCardFacts:
    """What a model card says beyond the manifest's technical fields (free text, may be empty)."""

    architecture: str = ""
    training_data: str = ""
    training_command: str = ""
    intended_use: str = ""
    limitations: str = ""
    benchmark_section: str = ""
    references: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest.

    Attributes:
        name: manifest name, e.g. ``"srcnn-x3"``.
        stage: pipeline stage that uses it (``"superres"``, ``"deblur"``, ``"recognition"``).
        format: one of :data:`FORMATS`.
        bundled_file: file name under the weights folder, or ``None`` (Hub only).
        repo_id: Hub repo, may contain ``{org}``; ``None`` if it has no Hub home.
        hub_filename: path of the file inside the Hub repo.
        revision: pinned commit (40 hex) or ``None`` while unpublished.
        published: whether ``repo_id@revision`` really holds the file.
        sha256, size: of the weights file, or ``None`` while unknown.
        layout: optional layer-layout id checked on import (``"vggface-vgg16"``...).
    """

    name: str
    stage: str
    format: str
    description: str = ""
    framework: str = "keras"
    license: str = ""
    bundled_file: str | None = None
    repo_id: str | None = None
    hub_filename: str | None = None
    revision: str | None = None
    published: bool = False
    sha256: str | None = None
    size: int | None = None
    layout: str | None = None
    card: ModelCardFacts = field(default_factory=ModelCardFacts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: a default Hub organisation and the models in display order."""

    models: tuple[ModelEntry, ...]
    default_org: str = "cctv-face-pipeline"
    path: Path | None = None
    broken: tuple[tuple[str, str, dict], ...] = ()
    """Entries that failed validation: ``(name, error message, raw JSON)``.  They are
    reported as unavailable with the message; the other models keep working."""

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models] + [b[0] for b in self.broken]

    def get(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        for broken_name, message, _raw in self.broken:
            if broken_name == name:
                raise ManifestError(message)
        raise ManifestError(f"unknown model {name!r}; the manifest lists: {', '.join(self.names)}")

    @property
    def org(self) -> str:
        return os.environ.get("CCTV_HUB_ORG") or self.default_org

    def repo_for(self, entry: ModelEntry) -> str | None:
        """The entry's Hub repo with ``{org}`` filled in."""
        return entry.repo_id.replace("{org}", self.org) if entry.repo_id else None


def _entry_from_dict(raw: dict[str, Any], where: str) -> ModelEntry:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: each model must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ManifestError(f"{where}: model name {name!r} must be lower-case letters, digits and '-'")
    label = f"{where}: model {name!r}"
    known = {f for f in ModelEntry.__dataclass_fields__}
    unknown = set(raw) - known
    if unknown:
        raise ManifestError(f"{label}: unknown field(s) {', '.join(sorted(unknown))}")
    card_raw = raw.get("card") or {}
    if not isinstance(card_raw, dict):
        raise ManifestError(f"{label}: card must be an object")
    card_unknown = set(card_raw) - set(ModelCardFacts.__dataclass_fields__)
    if card_unknown:
        raise ManifestError(f"{label}: unknown card field(s) {', '.join(sorted(card_unknown))}")
    values = {k: v for k, v in raw.items() if k != "card"}
    for required in ("stage", "format"):
        if not isinstance(values.get(required), str) or not values[required]:
            raise ManifestError(f"{label}: field {required!r} is required")
    entry = ModelEntry(**values, card=ModelCardFacts(**card_raw))
    if entry.format not in FORMATS:
        raise ManifestError(f"{label}: unknown format {entry.format!r} (known: {', '.join(FORMATS)})")
    if entry.sha256 is not None and not (isinstance(entry.sha256, str) and _SHA256_RE.match(entry.sha256)):
        raise ManifestError(f"{label}: sha256 {entry.sha256!r} is not 64 lower-case hex digits")
    if entry.size is not None and (not isinstance(entry.size, int) or entry.size < 0):
        raise ManifestError(f"{label}: size must be a non-negative integer")
    if entry.revision is not None and not (isinstance(entry.revision, str) and entry.revision):
        raise ManifestError(f"{label}: revision must be a string or null")
    if entry.repo_id is not None and not _REPO_RE.match(entry.repo_id):
        raise ManifestError(f"{label}: repo_id {entry.repo_id!r} must look like ORG/NAME")
    if entry.repo_id and not entry.hub_filename:
        raise ManifestError(f"{label}: a model with a repo_id needs a hub_filename")
    if entry.published:
        if not entry.repo_id or not is_commit_hash(entry.revision):
            raise ManifestError(f"{label}: a published model must pin its revision to a 40-hex commit, "
                                f"not {entry.revision!r}")
        if not entry.sha256:
            raise ManifestError(f"{label}: a published model must have a sha256")
    bundled = Path(entry.bundled_file) if entry.bundled_file is not None else None
    if bundled is not None and (bundled.is_absolute() or ".." in bundled.parts):
        raise ManifestError(f"{label}: bundled_file must be a plain name inside the weights folder")
    return entry


def manifest_path() -> Path:
    """Where the manifest is read from (``CCTV_MODELS_MANIFEST`` or ``weights/models.json``)."""
    return Path(os.environ.get("CCTV_MODELS_MANIFEST") or DEFAULT_MANIFEST)


def weights_dir() -> Path:
    """The folder of bundled weights (``CCTV_WEIGHTS_DIR`` or ``weights/``)."""
    return Path(os.environ.get("CCTV_WEIGHTS_DIR") or DEFAULT_WEIGHTS_DIR)


def parse_manifest(data: dict[str, Any], path: Path | None = None, *, strict: bool = False) -> Manifest:
    """Validate a manifest already decoded from JSON.

    A malformed file raises :class:`ManifestError`; a malformed *entry* is
    kept aside in ``Manifest.broken`` (or raises too when ``strict``).
    """
    where = str(path) if path else "manifest"
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ManifestError(f"{where}: expected an object with a 'models' list")
    entries: list[ModelEntry] = []
    broken: list[tuple[str, str, dict]] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["models"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        label = name if isinstance(name, str) and name else f"#{index}"
        try:
            entry = _entry_from_dict(raw, where)
            if entry.name in seen:
                raise ManifestError(f"{where}: model {entry.name!r} is listed twice")
        except (ManifestError, TypeError) as exc:
            if strict:
                raise ManifestError(str(exc)) from None
            # One bad entry must not take the other models down with it.
            broken.append((label, f"invalid manifest entry: {exc}", raw if isinstance(raw, dict) else {}))
            continue
        seen.add(entry.name)
        entries.append(entry)
    return Manifest(models=tuple(entries), default_org=str(data.get("default_org") or "cctv-face-pipeline"),
                    path=path, broken=tuple(broken))


def load_manifest(path: str | Path | None = None, *, strict: bool = False) -> Manifest:
    """Read and validate the manifest (re-read on every call: it is small and may change)."""
    path = Path(path) if path else manifest_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"models manifest not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    return parse_manifest(data, path, strict=strict)


def save_manifest(manifest: Manifest, path: str | Path | None = None) -> Path:
    """Write the manifest as stable, indented JSON (atomic replace)."""
    path = Path(path) if path else (manifest.path or manifest_path())
    data = {"schema": 1, "default_org": manifest.default_org,
            "models": [entry.to_dict() for entry in manifest.models] + [raw for _n, _m, raw in manifest.broken]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def update_entry(manifest: Manifest, entry: ModelEntry) -> Manifest:
    """A copy of ``manifest`` with ``entry`` replacing the model of the same name."""
    manifest.get(entry.name)
    return replace(manifest, models=tuple(entry if m.name == entry.name else m for m in manifest.models))


# -- user overrides -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """Where the user wants a model to come from; ``None`` fields keep the manifest's value."""

    path: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None

    def is_empty(self) -> bool:
        return not (self.path or self.repo_id or self.revision or self.sha256)


_OVERRIDES: dict[str, Override] = {}
_OVERRIDES_LOCK = threading.Lock()


def set_override(name: str, *, path: str | None = None, repo_id: str | None = None,
                 revision: str | None = None, sha256: str | None = None) -> None:
    """Override where model ``name`` comes from for this process (CLI flags call this).

    Fields left ``None`` keep any earlier override.  Raises :class:`ManifestError`
    for a malformed repo id or sha256.
    """
    if repo_id is not None and not _REPO_RE.match(repo_id):
        raise ManifestError(f"model {name!r}: repo {repo_id!r} must look like ORG/NAME")
    if sha256 is not None and not _SHA256_RE.match(sha256.lower()):
        raise ManifestError(f"model {name!r}: sha256 {sha256!r} is not 64 hex digits")
    with _OVERRIDES_LOCK:
        old = _OVERRIDES.get(name, Override())
        _OVERRIDES[name] = Override(
            path=path if path is not None else old.path,
            repo_id=repo_id if repo_id is not None else old.repo_id,
            revision=revision if revision is not None else old.revision,
            sha256=sha256.lower() if sha256 is not None else old.sha256,
        )


def clear_overrides() -> None:
    """Forget every override made with :func:`set_override` (environment variables stay)."""
    with _OVERRIDES_LOCK:
        _OVERRIDES.clear()


def override_for(name: str) -> Override:
    """The effective override for ``name``: :func:`set_override` first, then the environment."""
    prefix = f"CCTV_MODEL_{env_key(name)}_"
    env = Override(
        path=os.environ.get(prefix + "PATH") or None,
        repo_id=os.environ.get(prefix + "REPO") or None,
        revision=os.environ.get(prefix + "REVISION") or None,
        sha256=(os.environ.get(prefix + "SHA256") or "").lower() or None,
    )
    if env.repo_id and not _REPO_RE.match(env.repo_id):
        raise ManifestError(f"model {name!r}: {prefix}REPO={env.repo_id!r} must look like ORG/NAME")
    if env.sha256 and not _SHA256_RE.match(env.sha256):
        raise ManifestError(f"model {name!r}: {prefix}SHA256 is not 64 hex digits")
    with _OVERRIDES_LOCK:
        mine = _OVERRIDES.get(name, Override())
    return Override(
        path=mine.path or env.path,
        repo_id=mine.repo_id or env.repo_id,
        revision=mine.revision or env.revision,
        sha256=mine.sha256 or env.sha256,
    )


def guess_format(path: str | Path) -> str:
    """Manifest format for a file name: ``*.weights.h5``, ``*.keras`` or another ``*.h5``."""
    name = Path(path).name.lower()
    if name.endswith(".weights.h5"):
        return "keras-weights-h5"
    if name.endswith(".keras"):
        return "keras"
    if name.endswith(".tflite"):
        return "tflite"
    if name.endswith((".h5", ".hdf5")):
        return "keras-legacy-h5"
    raise ManifestError(f"{path}: unknown weights format (expected *.weights.h5, *.keras or *.h5); "
                        "pickled PyTorch files (*.pt, *.pth, *.bin, *.pkl) are refused on purpose")


__all__ = [
    "DEFAULT_MANIFEST", "DEFAULT_WEIGHTS_DIR", "FORMATS", "Manifest", "ModelCardFacts", "ModelEntry",
    "Override", "clear_overrides", "env_key", "guess_format", "is_commit_hash", "load_manifest",
    "manifest_path", "override_for", "parse_manifest", "save_manifest", "set_override", "update_entry",
    "weights_dir",
]
