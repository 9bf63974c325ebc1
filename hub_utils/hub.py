"""The one module that talks to the Hugging Face Hub (and its local cache).

Everything network-related in the project goes through here, via
``huggingface_hub``.  The environment is read on every call (not at import),
so ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``, ``HF_HOME`` and
``HF_HUB_CACHE`` set after start-up are honoured.

Why a probe before downloading: when the Hub is unreachable and the file is
not cached, ``hf_hub_download`` retries its metadata request with a 60 s
timeout and exponential back-off -- tens of seconds at start-up.  We first
send one HEAD request with a short timeout and no retries, and remember an
unreachable endpoint for a minute, so that an offline start costs at most one
probe (``CCTV_HUB_TIMEOUT``, default 2.5 s) for all models together.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_PROBE_TIMEOUT_S = 2.5
UNREACHABLE_TTL_S = 60.0

ProgressFn = Callable[[int, "int | None"], None]
"""``(bytes_done, bytes_total or None)``."""

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubSettings:
    """Hub connection settings, read from the environment at call time."""

    endpoint: str
    offline: bool
    cache_dir: Path
    token: str | None
    timeout_s: float

    @classmethod
    def from_env(cls) -> HubSettings:
        if os.environ.get("HF_HUB_CACHE"):
            cache = Path(os.environ["HF_HUB_CACHE"])
        elif os.environ.get("HF_HOME"):
            cache = Path(os.environ["HF_HOME"]) / "hub"
        else:
            cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface" / "hub"
        try:
            timeout = float(os.environ.get("CCTV_HUB_TIMEOUT") or DEFAULT_PROBE_TIMEOUT_S)
        except ValueError:
            timeout = DEFAULT_PROBE_TIMEOUT_S
        return cls(
            endpoint=(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            offline=os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE,
            cache_dir=cache.expanduser(),
            token=os.environ.get("HF_TOKEN") or None,
            timeout_s=max(0.1, timeout),
        )


class HubStepError(Exception):
    """The Hub step could not give a file; ``kind`` is ``unreachable``, ``missing``, ``offline`` or ``error``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


_UNREACHABLE: dict[str, tuple[float, str]] = {}
_UNREACHABLE_LOCK = threading.Lock()


def forget_unreachable() -> None:
    """Forget which endpoints were found unreachable (a "retry" button calls this)."""
    with _UNREACHABLE_LOCK:
        _UNREACHABLE.clear()


def _known_unreachable(endpoint: str) -> str | None:
    with _UNREACHABLE_LOCK:
        until, reason = _UNREACHABLE.get(endpoint, (0.0, ""))
    return reason if time.monotonic() < until else None


def _mark_unreachable(endpoint: str, reason: str) -> None:
    with _UNREACHABLE_LOCK:
        _UNREACHABLE[endpoint] = (time.monotonic() + UNREACHABLE_TTL_S, reason)


_PREPARED = False


def _prepare_hub_client() -> None:
    """Switch off huggingface_hub's telemetry before its first request (unless the user set it).

    Why: with telemetry on, the first request made by huggingface_hub first
    fetches an "agent harnesses" list from huggingface.co with a 3 s timeout
    -- even when HF_ENDPOINT points elsewhere -- which alone would spend the
    whole offline start-up budget behind a firewall.  CCTV deployments should
    not phone home anyway.  The library reads the environment at import (and
    gradio imports it early), so the module constant is set as well.
    """
    global _PREPARED
    if _PREPARED:
        return
    if os.environ.get("HF_HUB_DISABLE_TELEMETRY", "").strip().lower() not in {"0", "false", "no", "off"}:
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        from huggingface_hub import constants

        constants.HF_HUB_DISABLE_TELEMETRY = True
    _PREPARED = True


def cached_file(repo_id: str, filename: str, revision: str, settings: HubSettings) -> Path | None:
    """The file from the local Hub cache for ``repo_id@revision``, without any network access."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(settings.cache_dir), revision=revision)
    except (OSError, ValueError):
        return None
    # try_to_load_from_cache returns a sentinel object for "known not to exist".
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def _describe_http_error(exc: Exception, repo_id: str, filename: str, revision: str) -> HubStepError:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return HubStepError("missing", f"{repo_id} is gated: accept its terms on the Hub and set HF_TOKEN")
    if isinstance(exc, RepositoryNotFoundError):
        return HubStepError("missing", f"Hub repo {repo_id} not found (or private: set HF_TOKEN)")
    if isinstance(exc, RevisionNotFoundError):
        return HubStepError("missing", f"revision {revision} not found in Hub repo {repo_id}")
    if isinstance(exc, EntryNotFoundError):
        return HubStepError("missing", f"{filename} not found in Hub repo {repo_id}@{revision[:12]}")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return HubStepError("error", f"Hub answered HTTP {status} for {repo_id}/{filename}")
    return HubStepError("error", f"Hub error for {repo_id}/{filename}: {type(exc).__name__}: {exc}")


def _with_deadline(fn: Callable[[], object], timeout_s: float) -> object:
    """Run ``fn`` in a daemon thread and give up after ``timeout_s`` (raises ``TimeoutError``).

    Why: httpx's timeouts are per phase (connect, write, read...), and header
    building, proxies or DNS can add to them; the start-up budget is a hard
    wall-clock limit.  An abandoned call ends on its own httpx timeout.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="hub_utils-probe", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:.1f} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def probe(repo_id: str, filename: str, revision: str, settings: HubSettings) -> int | None:
    """One short HEAD request, no retries: is the file there?  Returns its size if known.

    Raises:
        HubStepError: offline mode, endpoint unreachable (remembered for a
            minute), repo/revision/file missing, or another HTTP error.
    """
    if settings.offline:
        raise HubStepError("offline", "HF_HUB_OFFLINE is set")
    known = _known_unreachable(settings.endpoint)
    if known:
        raise HubStepError("unreachable", known)
    started = time.monotonic()

    def head() -> object:
        # Imports inside the deadline too: the first import of huggingface_hub takes ~0.4 s.
        _prepare_hub_client()
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
        return get_hf_file_metadata(url, token=settings.token, timeout=settings.timeout_s,
                                    endpoint=settings.endpoint)

    try:
        meta = _with_deadline(head, settings.timeout_s)
    except Exception as exc:
        # Imported only now: importing huggingface_hub must not come out of the probe's time budget.
        import httpx
        from huggingface_hub.errors import HfHubHTTPError

        if isinstance(exc, (TimeoutError, httpx.ConnectError, httpx.TimeoutException, httpx.NetworkError)):
            kind = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
            reason = f"Hub {settings.endpoint} unreachable ({kind} after {time.monotonic() - started:.1f} s)"
            _mark_unreachable(settings.endpoint, reason)
            raise HubStepError("unreachable", reason) from None
        if isinstance(exc, httpx.ProxyError):
            raise HubStepError("unreachable", f"proxy error reaching {settings.endpoint}: {exc}") from None
        if isinstance(exc, HfHubHTTPError):
            raise _describe_http_error(exc, repo_id, filename, revision) from None
        if isinstance(exc, (OSError, ValueError)):  # e.g. FileMetadataError: not a Hub endpoint
            raise HubStepError("error", f"Hub {settings.endpoint}: {exc}".splitlines()[0]) from None
        raise
    return meta.size  # type: ignore[attr-defined]


def _progress_class(on_progress: ProgressFn | None) -> type | None:
    """A tqdm subclass that forwards byte counts to ``on_progress``."""
    if on_progress is None:
        return None
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _ProgressBar(hf_tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)  # type: ignore[call-overload]
            self._total = kwargs.get("total")
            on_progress(self._done, self._total)  # type: ignore[arg-type]

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            try:
                on_progress(self._done, self._total)  # type: ignore[arg-type]
            except Exception:  # a broken UI callback must not break the download
                pass
            return super().update(n)

    return _ProgressBar


def download(repo_id: str, filename: str, revision: str, settings: HubSettings, *,
             on_progress: ProgressFn | None = None, force: bool = False) -> Path:
    """Download (or find in the cache) ``repo_id/filename@revision``; returns the cached path.

    Call :func:`probe` first: this is ``hf_hub_download``, which retries for
    a long time when the Hub does not answer.

    Raises:
        HubStepError: HTTP errors, an unwritable cache, or an interrupted download.
    """
    _prepare_hub_client()
    import httpx
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    extra: dict[str, object] = {}
    if on_progress is not None and "tqdm_class" in inspect.signature(hf_hub_download).parameters:
        extra["tqdm_class"] = _progress_class(on_progress)  # older huggingface_hub: no progress, still works
    try:
        path = hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=str(settings.cache_dir),
            endpoint=settings.endpoint, token=settings.token, etag_timeout=settings.timeout_s,
            local_files_only=settings.offline, force_download=force, **extra,
        )
    except HfHubHTTPError as exc:
        raise _describe_http_error(exc, repo_id, filename, revision) from None
    except LocalEntryNotFoundError as exc:
        raise HubStepError("unreachable", f"not in the Hub cache and the Hub could not be reached ({exc})"
                           .splitlines()[0]) from None
    except PermissionError as exc:
        raise HubStepError("error", f"Hub cache {settings.cache_dir} is not writable ({exc.strerror}); "
                           "set HF_HOME or HF_HUB_CACHE to a writable folder") from None
    except OSError as exc:
        if getattr(exc, "errno", None) == 30:  # EROFS: read-only file system (Docker)
            raise HubStepError("error", f"Hub cache {settings.cache_dir} is on a read-only file system; "
                               "set HF_HOME or HF_HUB_CACHE to a writable folder") from None
        if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError)) \
                or getattr(exc, "filename", None):
            raise HubStepError("error", f"cannot write the Hub cache {settings.cache_dir}: {exc}; set HF_HOME or "
                               "HF_HUB_CACHE to a writable folder".splitlines()[0]) from None
        raise HubStepError("error", f"download of {repo_id}/{filename} failed: {exc}".splitlines()[0]) from None
    except (httpx.HTTPError, ValueError) as exc:
        raise HubStepError("error", f"download of {repo_id}/{filename} failed: "
                           f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    return Path(path)


def upload(repo_id: str, files: Mapping[str, Path | bytes], *, message: str, private: bool,
           settings: HubSettings | None = None) -> str:
    """Create ``repo_id`` if needed and commit ``files`` (path in repo -> local file or bytes) in one commit.

    Returns the new commit id (the revision to pin).  Needs ``HF_TOKEN`` (or a
    stored login) on the real Hub.
    """
    _prepare_hub_client()
    from huggingface_hub import CommitOperationAdd, HfApi

    settings = settings or HubSettings.from_env()
    if settings.offline:
        raise HubStepError("offline", "HF_HUB_OFFLINE is set: cannot publish")
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=settings.endpoint, token=settings.token)
    ops = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=(str(src) if isinstance(src, Path) else src))
           for path, src in files.items()]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.create_commit(repo_id, operations=ops, commit_message=message, repo_type="model")
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise HubStepError("error", f"upload to {repo_id} failed: HTTP {status} (does HF_TOKEN have write "
                           f"access to it?): {str(exc).splitlines()[0]}") from None
    except (httpx.HTTPError, OSError) as exc:
        raise HubStepError("unreachable", f"upload to {repo_id} failed: {type(exc).__name__}: {exc}"
                           .splitlines()[0]) from None
    return str(info.oid)


__all__ = ["HubSettings", "HubStepError", "cached_file", "download", "forget_unreachable", "probe", "upload"]
