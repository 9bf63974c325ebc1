"""Find a verified weights file for a model: local path -> Hub cache/Hub -> bundled -> unavailable.

:func:`resolve` is the only way the rest of the project gets a weights path.
Every file it returns has been checked against the sha256 the manifest (or
the user, via ``CCTV_MODEL_<NAME>_SHA256``) pins; a mismatching file is
refused and left where it is.  Results are cached per process and per
settings, and every model's current state (pending / downloading n% / ready /
unavailable: reason) is kept in one table that :func:`status`, the CLI, the
app's panel and its API endpoint all read -- so they always agree.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import hub
from .errors import ChecksumMismatch, ManifestError, ModelUnavailable
from .manifest import (
    DEFAULT_WEIGHTS_DIR,
    Manifest,
    ModelEntry,
    env_key,
    is_commit_hash,
    load_manifest,
    override_for,
    weights_dir,
)

Source = Literal["local", "cache", "hub", "bundled", "missing"]
State = Literal["pending", "resolving", "downloading", "ready", "unavailable"]


@dataclass(frozen=True)
class ResolvedModel:
    """A weights file that passed its checks and may be loaded.

    Attributes:
        name: manifest name (``"srcnn-x3"``).
        path: the file to load (inside the HF cache, ``weights/`` or the user's path).
        source: ``"local"`` (user's path), ``"cache"`` (HF cache, no download),
            ``"hub"`` (downloaded now) or ``"bundled"`` (shipped in ``weights/``).
        repo_id, revision: the Hub location it came from or would come from.
        sha256: the file's actual sha256 (hex).
        verified: ``True`` when it matched a pinned sha256; ``False`` only for a
            user's local file of a model with no pinned hash.
        format: manifest format (how to load it).
        notes: why earlier steps were skipped (``"HF_HUB_OFFLINE is set"``...).
    """

    name: str
    path: Path
    source: Source
    repo_id: str | None
    revision: str | None
    sha256: str
    verified: bool
    format: str
    stage: str
    size: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        out["notes"] = list(self.notes)
        return out


@dataclass
class ModelStatus:
    """One model's state for status panels, the API and ``python -m hub_utils status``."""

    name: str
    stage: str = ""
    state: State = "pending"
    source: Source = "missing"
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    path: str | None = None
    reason: str = ""
    progress: float | None = None
    format: str = ""
    published: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def label(self) -> str:
        """Short text for a toggle: ``ready (bundled)``, ``downloading 42%``, ``unavailable: reason``."""
        if self.state == "ready":
            return f"ready ({self.source})"
        if self.state == "downloading":
            return f"downloading {self.progress:.0%}" if self.progress is not None else "downloading"
        if self.state == "unavailable":
            return f"unavailable: {self.reason}"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label"] = self.label
        return out

    def row(self) -> list[str]:
        """The status line's columns (:data:`STATUS_COLUMNS`), shared by the CLI and the app's panel."""
        where = f"{self.repo_id}@{self.revision[:12] if self.revision else 'unpinned'}" if self.repo_id else "-"
        source = self.source if self.state == "ready" else "missing"
        if self.state == "ready":
            detail = "; ".join(self.notes)
        elif self.state == "unavailable":
            detail = f"unavailable: {self.reason}"
        else:
            detail = self.label
        return [self.name, source, where, self.sha256[:12] if self.sha256 else "-", detail]


STATUS_COLUMNS = ("model", "source", "repo@revision", "sha256", "state / reason")


# -- sha256 with a small cache -------------------------------------------------------------------

_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file; cached per (real path, size, mtime) so a file is hashed once."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if key in _HASHES:
            return _HASHES[key]
    digest = hashlib.sha256()
    with open(real, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASHES[key] = value
    return value


def verify_file(name: str, path: Path, expected: str | None, hint: str = "") -> str:
    """Check ``path`` against ``expected`` (hex sha256); returns the actual hash.

    Raises:
        ChecksumMismatch: the hashes differ (the file is not touched).
        ModelUnavailable: the file cannot be read.
    """
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise ModelUnavailable(name, f"cannot read {path}: {exc.strerror or exc}") from None
    if expected is not None and actual != expected.lower():
        raise ChecksumMismatch(name, str(path), expected, actual, hint)
    return actual


# -- the state table -----------------------------------------------------------------------------

_STATES: dict[str, ModelStatus] = {}
_RESULTS: dict[str, tuple[tuple, ResolvedModel | ModelUnavailable]] = {}
_TABLE_LOCK = threading.Lock()
_NAME_LOCKS: dict[str, threading.Lock] = {}
_listeners: list[Callable[[ModelStatus], None]] = []
_BACKGROUND_STARTED = threading.Event()
"""Set once :func:`start_background_resolution` ran in this process (the app); then UI calls never block."""


def _name_lock(name: str) -> threading.Lock:
    with _TABLE_LOCK:
        return _NAME_LOCKS.setdefault(name, threading.Lock())


def _publish_state(status: ModelStatus) -> None:
    with _TABLE_LOCK:
        _STATES[status.name] = status
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(status)
        except Exception:  # a UI callback must never break resolution
            pass


def add_listener(fn: Callable[[ModelStatus], None]) -> Callable[[], None]:
    """Call ``fn(ModelStatus)`` on every state change; returns a function that removes it."""
    with _TABLE_LOCK:
        _listeners.append(fn)

    def remove() -> None:
        with _TABLE_LOCK:
            if fn in _listeners:
                _listeners.remove(fn)

    return remove


def clear_cache() -> None:
    """Forget every resolution result, state and unreachable endpoint (tests, "retry" buttons)."""
    with _TABLE_LOCK:
        _STATES.clear()
        _RESULTS.clear()
    hub.forget_unreachable()


def _status_for(entry: ModelEntry, repo: str | None, revision: str | None) -> ModelStatus:
    return ModelStatus(name=entry.name, stage=entry.stage, repo_id=repo, revision=revision,
                       format=entry.format, published=entry.published)


def mark_loaded(model: ResolvedModel) -> None:
    """After a successful load: show the model as ready again if an earlier load had failed."""
    with _TABLE_LOCK:
        current = _STATES.get(model.name)
    if current is None or current.state != "ready":
        try:
            entry = load_manifest().get(model.name)
        except ManifestError:
            return
        _publish_state(_ready_status(entry, model))


def _ready_status(entry: ModelEntry, model: ResolvedModel) -> ModelStatus:
    return ModelStatus(name=model.name, stage=model.stage, state="ready", source=model.source,
                       repo_id=model.repo_id, revision=model.revision, sha256=model.sha256,
                       path=str(model.path), progress=1.0, format=model.format, published=entry.published,
                       notes=list(model.notes))


# -- resolution ----------------------------------------------------------------------------------


def _resolve_uncached(manifest: Manifest, entry: ModelEntry) -> ResolvedModel:
    name = entry.name
    override = override_for(name)
    settings = hub.HubSettings.from_env()
    repo = override.repo_id or manifest.repo_for(entry)
    revision = override.revision or entry.revision
    expected = override.sha256 or entry.sha256
    accept_hint = f"; to trust it anyway set CCTV_MODEL_{env_key(name)}_SHA256 to its hash"
    hub_notes: list[str] = []
    base = dict(name=name, repo_id=repo, revision=revision, format=entry.format, stage=entry.stage)

    # 1. An explicit local file: the user asked for exactly this one, so no fallback.
    if override.path:
        path = Path(override.path).expanduser()
        if not path.is_file():
            raise ModelUnavailable(name, f"local file {path} not found (set by CCTV_MODEL_{env_key(name)}_PATH "
                                   "or --model-path)")
        actual = verify_file(name, path, expected, accept_hint)
        notes = () if expected else ("no sha256 pinned for this model: the file was not verified",)
        return ResolvedModel(path=path, source="local", sha256=actual, verified=expected is not None,
                             size=path.stat().st_size, notes=notes, **base)

    # 2. The Hugging Face cache, then the Hub itself, at the pinned revision.
    hub_filename = entry.hub_filename or entry.bundled_file
    user_pointed_at_hub = bool(override.repo_id or override.revision)
    if not repo or not hub_filename:
        hub_notes.append("no Hub repo in the manifest")
    elif not (entry.published or user_pointed_at_hub):
        how = ("import it with `python -m hub_utils import-vggface FILE.h5 --repo ORG/NAME`, or "
               if entry.layout and entry.layout.startswith("vggface") else "")
        hub_notes.append("not published on the Hub yet" + ("" if entry.bundled_file else
                         f" ({how}set CCTV_MODEL_{env_key(name)}_PATH to a local copy)"))
    elif not revision:
        hub_notes.append(f"no revision pinned for {repo}")
    else:
        if not is_commit_hash(revision):
            hub_notes.append(f"revision {revision!r} is not a pinned commit")
        hub_result = _from_hub(entry, repo, hub_filename, revision, expected, settings, base, hub_notes)
        if hub_result is not None:
            return hub_result

    # 3. The copy bundled in the repo (weights this project trains itself).
    bundle_note = None
    if entry.bundled_file:
        wdir = weights_dir()
        path = wdir / entry.bundled_file
        shown = f"weights/{entry.bundled_file}" if wdir.resolve() == DEFAULT_WEIGHTS_DIR.resolve() else str(path)
        if not path.is_file():
            bundle_note = f"not trained yet: {shown} missing"
        elif entry.sha256 is None:
            bundle_note = (f"{shown} is not registered (no sha256 in the manifest): run "
                           f"`python -m hub_utils register {name} {shown}`")
        else:
            try:
                actual = verify_file(name, path, entry.sha256,
                                     f"; re-register it with `python -m hub_utils register {name} {shown}` "
                                     "if you retrained it")
            except ModelUnavailable as exc:
                bundle_note = exc.reason
            else:
                return ResolvedModel(path=path, source="bundled", sha256=actual, verified=True,
                                     size=path.stat().st_size, notes=tuple(hub_notes), **base)

    # 4. Nothing usable: say why, most relevant first.
    reasons = ([bundle_note] if bundle_note else []) + hub_notes
    raise ModelUnavailable(name, "; ".join(reasons) or "no source configured")


def _from_hub(entry: ModelEntry, repo: str, filename: str, revision: str, expected: str | None,
              settings: hub.HubSettings, base: dict, notes: list[str]) -> ResolvedModel | None:
    """The Hub step: cache first (no network), then probe + download.  Appends why it failed to ``notes``."""
    name = entry.name
    redo_hint = f"; `python -m hub_utils download --force {name}` fetches it again"
    if expected is None:  # only possible for a model the user pointed at a repo/revision of their choice
        notes.append(f"no sha256 pinned for this model: not verified (set CCTV_MODEL_{env_key(name)}_SHA256)")
    cached = hub.cached_file(repo, filename, revision, settings)
    if cached is not None:
        try:
            actual = verify_file(name, cached, expected, redo_hint)
        except ModelUnavailable as exc:
            notes.append(f"Hub cache: {exc.reason}")
            return None
        return ResolvedModel(path=cached, source="cache", sha256=actual, verified=expected is not None,
                             size=cached.stat().st_size, notes=tuple(notes), **base)
    try:
        size = hub.probe(repo, filename, revision, settings)
    except hub.HubStepError as exc:
        if exc.kind == "offline":
            notes.append(f"HF_HUB_OFFLINE is set and {repo}@{revision[:12]} is not in the Hub cache")
        else:
            notes.append(exc.reason)
        return None
    status = _status_for(entry, repo, revision)
    status.state, status.progress = "downloading", 0.0
    _publish_state(status)
    total_hint = size or entry.size

    def on_progress(done: int, total: int | None) -> None:
        total = total or total_hint
        _publish_state(_copy_status(status, progress=min(1.0, done / total) if total else None))

    try:
        path = hub.download(repo, filename, revision, settings, on_progress=on_progress)
    except hub.HubStepError as exc:
        notes.append(exc.reason)
        return None
    try:
        actual = verify_file(name, path, expected, redo_hint)
    except ModelUnavailable as exc:
        notes.append(f"Hub download: {exc.reason}")
        return None
    return ResolvedModel(path=path, source="hub", sha256=actual, verified=expected is not None,
                         size=path.stat().st_size, notes=tuple(notes), **base)


def _copy_status(status: ModelStatus, **changes: Any) -> ModelStatus:
    data = asdict(status)
    data.update(changes)
    return ModelStatus(**data)


def _fingerprint(manifest: Manifest, entry: ModelEntry) -> tuple:
    settings = hub.HubSettings.from_env()
    return (repr(entry), manifest.org, override_for(entry.name), settings.endpoint, settings.offline,
            str(settings.cache_dir), str(weights_dir()))


def _still_valid(result: ResolvedModel | ModelUnavailable) -> bool:
    if isinstance(result, ModelUnavailable):
        return True
    try:
        return result.path.stat().st_size == result.size
    except OSError:
        return False


def resolve(name: str, *, refresh: bool = False, manifest: Manifest | None = None) -> ResolvedModel:
    """A verified weights file for model ``name`` (see the module docstring for the order).

    Thread-safe; resolving the same model concurrently waits for the first
    call.  The result (or the failure) is cached until the settings change or
    ``refresh=True``.

    Raises:
        ModelUnavailable: no usable file; ``.reason`` says why, for the UI.
            :class:`ChecksumMismatch` when a file has the wrong hash.
        ManifestError: unknown model name or invalid manifest entry.
    """
    manifest = manifest or load_manifest()
    try:
        entry = manifest.get(name)
    except ManifestError as exc:
        if name in manifest.names:  # a broken entry: show it as unavailable, like any other failure
            _publish_state(ModelStatus(name=name, state="unavailable", reason=str(exc)))
        raise
    with _name_lock(name):
        key = _fingerprint(manifest, entry)
        with _TABLE_LOCK:
            cached = _RESULTS.get(name)
        if cached is not None and cached[0] == key and not refresh and _still_valid(cached[1]):
            result = cached[1]
        else:
            status = _status_for(entry, *key_repo_revision(manifest, entry))
            status.state = "resolving"
            _publish_state(status)
            try:
                result = _resolve_uncached(manifest, entry)
            except ModelUnavailable as exc:
                result = exc
            with _TABLE_LOCK:
                _RESULTS[name] = (key, result)
            if isinstance(result, ModelUnavailable):
                failed = _status_for(entry, *key_repo_revision(manifest, entry))
                failed.state, failed.reason = "unavailable", result.reason
                _publish_state(failed)
            else:
                _publish_state(_ready_status(entry, result))
    if isinstance(result, ModelUnavailable):
        raise result
    return result


def key_repo_revision(manifest: Manifest, entry: ModelEntry) -> tuple[str | None, str | None]:
    """The Hub repo and revision a model uses now, overrides applied."""
    override = override_for(entry.name)
    return (override.repo_id or manifest.repo_for(entry), override.revision or entry.revision)


def status(names: list[str] | None = None, *, resolve_missing: bool | None = None) -> list[ModelStatus]:
    """Every model's current state, in manifest order.

    Args:
        names: only these models (default: all in the manifest).
        resolve_missing: resolve models not resolved yet (blocking; at most one
            short Hub probe when offline).  ``False`` returns at once, showing
            those as ``pending`` -- what a UI polls while
            :func:`start_background_resolution` works.  The default (``None``)
            resolves unless a background resolution was started in this
            process, so the app's panel and API never wait.
    """
    if resolve_missing is None:
        resolve_missing = not _BACKGROUND_STARTED.is_set()
    manifest = load_manifest()
    wanted = names or manifest.names
    out = []
    for name in wanted:
        with _TABLE_LOCK:
            known = _STATES.get(name)
        if resolve_missing and (known is None or known.state in ("pending",)):
            try:
                resolve(name, manifest=manifest)
            except (ModelUnavailable, ManifestError):
                pass
        with _TABLE_LOCK:
            known = _STATES.get(name)
        if known is None:
            try:
                entry = manifest.get(name)
                repo, revision = key_repo_revision(manifest, entry)
                known = _status_for(entry, repo, revision)
            except ManifestError as exc:
                known = ModelStatus(name=name, state="unavailable", reason=str(exc))
        out.append(_copy_status(known))
    return out


def mark_background_started() -> None:
    """Record that models resolve in the background (the app): :func:`unavailable_reason` stops blocking."""
    _BACKGROUND_STARTED.set()


def unavailable_reason(name: str, *, block: bool | None = None) -> str | None:
    """``None`` when model ``name`` is ready, else a short reason -- what a ``StageSpec.unavailable`` returns.

    With ``block=False`` it never waits: a model being resolved gives
    ``"resolving"`` or ``"downloading 42%"``, one not reached yet ``"not
    resolved yet"``.  With ``block=True`` a model not resolved yet is resolved
    now (at most one short Hub probe when offline).  The default (``None``)
    blocks unless a background resolution was started in this process -- so
    the same callable suits the CLI and the app.
    """
    if block is None:
        block = not _BACKGROUND_STARTED.is_set()
    with _TABLE_LOCK:
        known = _STATES.get(name)
    if known is not None and known.state == "ready":
        return None
    if known is not None and known.state == "unavailable":
        return known.reason
    if known is not None and not block:
        return known.label
    if not block:
        return "not resolved yet"
    try:
        resolve(name)
    except (ModelUnavailable, ManifestError) as exc:
        return getattr(exc, "reason", None) or str(exc)
    return None


def snapshot_states() -> dict[str, ModelStatus]:
    """A copy of the state table (name -> status) without resolving anything."""
    with _TABLE_LOCK:
        return {name: _copy_status(s) for name, s in _STATES.items()}


__all__ = ["STATUS_COLUMNS", "ModelStatus", "ResolvedModel", "add_listener", "clear_cache", "resolve", "sha256_file",
           "snapshot_states", "status", "unavailable_reason", "verify_file"]
