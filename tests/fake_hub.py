"""A tiny fake Hugging Face Hub on 127.0.0.1 for offline tests.

It serves just enough of the Hub protocol for ``huggingface_hub.hf_hub_download``:
``HEAD``/``GET /{org}/{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``,
``ETag`` (the sha256, like LFS files) and ``Content-Length``; ``Range`` requests
(resumed downloads); and ``404``/``401`` answers with ``X-Error-Code``
(``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) like the real Hub.
It also accepts the upload calls ``HfApi.create_repo`` / ``create_commit`` make
for small files and LFS files (``POST /api/repos/create``, ``preupload``,
the LFS batch API with the ``basic`` transfer, ``PUT`` of the object, and
``commit`` as NDJSON), and records each new commit so it can be downloaded.

Usage in a test (other test modules may import the fixture too)::

    from fake_hub import FakeHub, fake_hub, commit_id   # noqa: F401  (fixture)

    def test_download(fake_hub):
        rev = fake_hub.add("org/models", "a/b.h5", b"...")  # returns the commit id
        ...  # HF_ENDPOINT and HF_HUB_CACHE already point at the server and a temp cache

or without pytest fixtures::

    with FakeHub({("org/models", rev, "a/b.h5"): b"..."}) as hub:
        hub.url  # "http://127.0.0.1:PORT"

Fault injection: ``hub.truncate_gets = n`` cuts the next ``n`` downloads
half-way (a broken connection), ``hub.corrupt.add((repo, rev, path))`` serves
other bytes of the same length, ``hub.hang = True`` accepts connections and
never answers, ``hub.pause_after_bytes = n`` holds downloads after ``n``
bytes until ``hub.resume.set()``.  ``hub.requests`` lists ``(method, path)`` of every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

FileKey = tuple[str, str, str]
"""(repo_id, revision (40-hex commit), path in repo)."""


def commit_id(seed: str) -> str:
    """A deterministic 40-hex commit id for tests."""
    return hashlib.sha1(seed.encode("utf8")).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeHub:
    """A threaded HTTP server on 127.0.0.1 pretending to be the Hub; see the module docstring."""

    def __init__(self, files: dict[FileKey, bytes] | None = None, *,
                 branches: dict[tuple[str, str], str] | None = None) -> None:
        self.files: dict[FileKey, bytes] = dict(files or {})
        self.branches: dict[tuple[str, str], str] = dict(branches or {})
        self.truncate_gets = 0
        self.pause_after_bytes: int | None = None  # GET bodies stop here until ``resume`` is set
        self.resume = threading.Event()
        self.corrupt: set[FileKey] = set()
        self.hang = False
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []  # request headers, same order as ``requests``
        self.commits: list[tuple[str, str, list[str]]] = []  # (repo, commit, paths)
        self.created_repos: list[tuple[str, bool]] = []  # (repo, private)
        self.validated_cards = 0  # README.md front matters checked by /api/validate-yaml
        self.reject_uploads = False  # answer uploads like the Hub does for a read-only token
        self._lfs: dict[str, bytes] = {}  # uploaded LFS objects by sha256
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content --------------------------------------------------------------------------------
    def add(self, repo_id: str, path: str, data: bytes, revision: str | None = None,
            branch: str | None = "main") -> str:
        """Add a file; returns its commit id (a new one unless ``revision`` is given)."""
        revision = revision or commit_id(f"{repo_id}/{path}/{_sha256(data)}/{len(self.files)}")
        with self._lock:
            self.files[(repo_id, revision, path)] = data
            if branch:
                self.branches[(repo_id, branch)] = revision
        return revision

    def repos(self) -> set[str]:
        return {r for r, _rev, _p in self.files} | {r for r, _b in self.branches} | {r for r, _p in self.created_repos}

    def count(self, method: str, contains: str = "") -> int:
        """How many requests of ``method`` whose path contains ``contains``."""
        return sum(1 for m, p in self.requests if m == method and contains in p)

    # -- life cycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the FakeHub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port: later connections are refused."""
        self.resume.set()  # release any download held by ``pause_after_bytes``
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Also drop kept-alive connections, or clients would still reach a "stopped" Hub.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    # -- helpers --------------------------------------------------------------------------------
    def _record(self) -> bool:
        with self.fake._lock:
            self.fake.requests.append((self.command, urlparse(self.path).path))
            self.fake.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.fake.hang:
            time.sleep(30)  # a Hub that accepts the connection and never answers
            return False
        return True

    def _send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, headers, json.dumps({"error": message}).encode())

    def _json(self, payload: object, status: int = 200) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- downloads ------------------------------------------------------------------------------
    _RESOLVE = re.compile(r"^/(?:models/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")

    def _resolve(self) -> None:
        if not self._record():
            return
        match = self._RESOLVE.match(unquote(urlparse(self.path).path))
        if not match:
            self._error(404, "EntryNotFound", "not a resolve URL")
            return
        repo, revision, path = match.groups()
        fake = self.fake
        if repo not in fake.repos():
            self._error(401, "RepoNotFound", "Repository not found")
            return
        commit = fake.branches.get((repo, revision), revision)
        if not any(r == repo and rev == commit for r, rev, _p in fake.files) and \
                commit not in {c for r, c, _p in fake.commits if r == repo}:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        key = (repo, commit, path)
        if key not in fake.files:
            self._error(404, "EntryNotFound", "Entry not found", commit=commit)
            return
        data = fake.files[key]
        etag = f'"{_sha256(data)}"'
        if key in fake.corrupt:
            data = bytes(b ^ 0xFF for b in data)  # same length, other bytes
        headers = {"X-Repo-Commit": commit, "ETag": etag, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start = 0
        range_header = self.headers.get("Range")
        if self.command == "GET" and range_header:
            m = re.match(r"bytes=(\d+)-$", range_header.strip())
            start = int(m.group(1)) if m else 0
        body = data[start:]
        if self.command == "HEAD":
            self._send(200, {**headers, "Content-Length": str(len(data))})
            return
        with fake._lock:
            truncate = fake.truncate_gets > 0
            if truncate:
                fake.truncate_gets -= 1
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if truncate:
            # Half of the body, then a dropped connection.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fake.pause_after_bytes is not None:
            # A slow link: send part of the body, wait until the test lets it finish.
            self.wfile.write(body[: fake.pause_after_bytes])
            self.wfile.flush()
            fake.resume.wait(30)
            body = body[fake.pause_after_bytes:]
        self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self._resolve()

    def do_GET(self) -> None:  # noqa: N802
        path = urlparse(self.path).path
        if path.startswith("/lfs-objects/"):
            self._record()
            self._send(404, {}, b"")
            return
        self._resolve()

    # -- uploads (HfApi.create_repo / create_commit) ---------------------------------------------
    _PREUPLOAD = re.compile(r"^/api/models/([^/]+/[^/]+)/preupload/(.+)$")
    _COMMIT = re.compile(r"^/api/models/([^/]+/[^/]+)/commit/(.+)$")
    _LFS_BATCH = re.compile(r"^/([^/]+/[^/]+)\.git/info/lfs/objects/batch$")

    def do_POST(self) -> None:  # noqa: N802
        if not self._record():
            return
        path = unquote(urlparse(self.path).path)
        body = self._body()
        fake = self.fake
        if fake.reject_uploads and path != "/api/validate-yaml":
            self._error(403, "Forbidden", "You don't have the rights to create a model under this namespace")
            return
        if path == "/api/repos/create":
            payload = json.loads(body or b"{}")
            repo = f"{payload.get('organization') or 'user'}/{payload['name']}"
            with fake._lock:
                private = bool(payload.get("private")) or payload.get("visibility") == "private"
                fake.created_repos.append((repo, private))
            self._json({"url": f"{fake.url}/{repo}", "name": repo})
            return
        if path == "/api/validate-yaml":
            # Like the Hub: a README's YAML front matter must parse (and be a mapping).
            import yaml

            content = json.loads(body).get("content", "")
            parts = content.split("---\n", 2)
            try:
                meta = yaml.safe_load(parts[1]) if content.startswith("---\n") and len(parts) == 3 else {}
                ok = isinstance(meta, dict)
            except yaml.YAMLError:
                ok = False
            with fake._lock:
                fake.validated_cards += 1
            if ok:
                self._json({"errors": [], "warnings": []})
            else:
                self._json({"errors": [{"message": "invalid YAML front matter"}], "warnings": []}, status=400)
            return
        if m := self._PREUPLOAD.match(path):
            files = json.loads(body)["files"]
            # Everything that is not small text goes to LFS, like the real Hub (which uses .gitattributes).
            modes = [{"path": f["path"], "uploadMode": "regular" if f["path"].endswith(".md") else "lfs",
                      "shouldIgnore": False} for f in files]
            self._json({"files": modes, "commitOid": fake.branches.get((m.group(1), "main"))})
            return
        if m := self._LFS_BATCH.match(path):
            payload = json.loads(body)
            objects = []
            for obj in payload.get("objects", []):
                oid, size = obj["oid"], obj["size"]
                if oid in fake._lfs:
                    objects.append({"oid": oid, "size": size})
                else:
                    objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                        "upload": {"href": f"{fake.url}/lfs-objects/{oid}", "header": {}, "expires_in": 3600}}})
            self._send(200, {"Content-Type": "application/vnd.git-lfs+json"},
                       json.dumps({"transfer": "basic", "objects": objects}).encode())
            return
        if m := self._COMMIT.match(path):
            repo, branch = m.group(1), unquote(m.group(2))
            commit = commit_id(f"{repo}/{len(fake.commits)}/{hashlib.sha1(body).hexdigest()}")
            added: list[str] = []
            with fake._lock:
                parent = fake.branches.get((repo, branch))
                if parent:  # a commit keeps the files of its parent
                    for (r, rev, p), data in list(fake.files.items()):
                        if r == repo and rev == parent:
                            fake.files[(repo, commit, p)] = data
                for line in body.decode("utf8").splitlines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if item["key"] == "file":
                        value = item["value"]
                        data = base64.b64decode(value["content"]) if value.get("encoding") == "base64" \
                            else value["content"].encode()
                        fake.files[(repo, commit, value["path"])] = data
                        added.append(value["path"])
                    elif item["key"] == "lfsFile":
                        value = item["value"]
                        fake.files[(repo, commit, value["path"])] = fake._lfs[value["oid"]]
                        added.append(value["path"])
                fake.branches[(repo, branch)] = commit
                fake.commits.append((repo, commit, added))
            self._json({"commitUrl": f"{fake.url}/{repo}/commit/{commit}", "commitOid": commit,
                        "commitMessage": "", "pullRequestUrl": None})
            return
        self._error(404, "NotFound", f"fake hub does not implement POST {path}")

    def do_PUT(self) -> None:  # noqa: N802
        if not self._record():
            return
        path = urlparse(self.path).path
        body = self._body()
        if path.startswith("/lfs-objects/"):
            oid = path.rsplit("/", 1)[1]
            if _sha256(body) != oid:
                self._error(400, "BadRequest", "sha256 of the uploaded object does not match its oid")
                return
            with self.fake._lock:
                self.fake._lfs[oid] = body
            self._send(200)
            return
        self._error(404, "NotFound", f"fake hub does not implement PUT {path}")


def closed_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated Hub environment: empty HF cache in ``tmp_path``, no token, no offline flag,
    no model overrides, and ``hub_utils``' caches cleared before and after.  Yields the cache dir."""
    import hub_utils

    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("CCTV_HUB_ORG", raising=False)
    import os

    for key in [k for k in os.environ if k.startswith("CCTV_MODEL_")]:
        monkeypatch.delenv(key)
    # As in a fresh process: no background resolution started yet (status() and stage toggles block).
    monkeypatch.setattr(sys.modules["hub_utils.resolve"], "_BACKGROUND_STARTED", threading.Event())
    hub_utils.clear_cache()
    hub_utils.clear_overrides()
    yield cache
    hub_utils.clear_cache()
    hub_utils.clear_overrides()


@pytest.fixture
def fake_hub(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A started :class:`FakeHub` with ``HF_ENDPOINT`` pointing at it and an empty temp HF cache."""
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub
