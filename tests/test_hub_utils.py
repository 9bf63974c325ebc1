"""Tests for hub_utils: manifest, resolution order, sha256 checks, offline behaviour, CLI, publish, VGGFace import.

Everything runs against a fake Hub on 127.0.0.1 (tests/fake_hub.py) with a
temporary manifest, weights folder and HF cache; nothing touches the network
or ../shared.  Keras is imported only by the tests marked slow.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import hub_utils
from hub_utils import vggface
from hub_utils.__main__ import main as cli
from hub_utils.errors import ChecksumMismatch, ManifestError, ModelLoadError, ModelUnavailable
from hub_utils.keras_io import read_legacy_h5, write_legacy_h5
from hub_utils.manifest import DEFAULT_MANIFEST, load_manifest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import FakeHub, closed_port, commit_id, fake_hub, hub_env  # noqa: E402,F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
REPO = "test-org/cctv-face-models"
WEIGHTS_A = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 40   # stand-in weight bytes (not loaded as Keras)
WEIGHTS_B = b"\x89HDF\r\n\x1a\n" + bytes(range(255, -1, -1)) * 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(name: str, **fields: object) -> dict:
    base = {"name": name, "stage": "superres", "format": "keras-weights-h5", "license": "mit",
            "bundled_file": f"{name.replace('-', '_')}.weights.h5", "repo_id": "{org}/cctv-face-models",
            "hub_filename": f"{name}/{name.replace('-', '_')}.weights.h5", "revision": None,
            "published": False, "sha256": None, "size": None}
    base.update(fields)
    return base


@pytest.fixture
def env(tmp_path: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch):
    """A temporary manifest + weights folder; returns a helper to write the manifest."""
    weights = tmp_path / "weights"
    weights.mkdir()
    manifest = weights / "models.json"
    monkeypatch.setenv("CCTV_MODELS_MANIFEST", str(manifest))
    monkeypatch.setenv("CCTV_WEIGHTS_DIR", str(weights))

    class Env:
        root = tmp_path
        weights_dir = weights
        manifest_path = manifest
        cache = hub_env

        @staticmethod
        def write(*models: dict, org: str = "test-org") -> Path:
            manifest.write_text(json.dumps({"schema": 1, "default_org": org, "models": list(models)}))
            hub_utils.clear_cache()
            return manifest

        @staticmethod
        def bundle(name: str, data: bytes) -> Path:
            path = weights / name
            path.write_bytes(data)
            return path

    return Env


# -- the repo's manifest ----------------------------------------------------------------------------


def test_repo_manifest_is_valid_and_lists_the_required_models():
    manifest = load_manifest(DEFAULT_MANIFEST, strict=True)
    for name in ("srcnn-x2", "srcnn-x3", "srcnn-x4", "fsrcnn-x2", "fsrcnn-x3", "fsrcnn-x4", "deblurgan-v2", "vggface",
                 "vggface2-resnet50"):
        entry_ = manifest.get(name)
        assert entry_.license and entry_.stage and entry_.format in hub_utils.FORMATS
        if entry_.published:
            assert len(entry_.revision or "") == 40 and entry_.sha256, f"{name}: published needs a pinned commit"
        else:
            assert entry_.revision is None, f"{name}: unpublished models must not pretend to have a revision"
    assert manifest.get("vggface").bundled_file is None  # Hub only: 500+ MB
    assert manifest.get("vggface").layout == "vggface-vgg16"
    assert manifest.get("srcnn-x3").bundled_file == "srcnn_x3.weights.h5"


def test_bad_manifest_entries_name_the_model_and_leave_the_others_working(env):
    env.bundle("good.weights.h5", WEIGHTS_A)
    env.write(entry("good", bundled_file="good.weights.h5", sha256=sha(WEIGHTS_A)),
              entry("bad-hash", sha256="1234"),
              entry("bad-format", format="pytorch-pickle"))
    assert hub_utils.resolve("good").source == "bundled"
    with pytest.raises(ManifestError, match="bad-hash.*sha256"):
        hub_utils.resolve("bad-hash")
    rows = {s.name: s for s in hub_utils.status()}
    assert rows["good"].state == "ready"
    assert rows["bad-format"].state == "unavailable" and "unknown format 'pytorch-pickle'" in rows["bad-format"].reason
    assert str(env.manifest_path) in rows["bad-hash"].reason
    with pytest.raises(ManifestError, match="bad-hash"):
        load_manifest(strict=True)


def test_published_entry_must_pin_a_commit(env):
    env.write(entry("x", published=True, revision="main", sha256=sha(WEIGHTS_A)))
    with pytest.raises(ManifestError, match="40-hex commit"):
        hub_utils.resolve("x")


# -- resolution order -------------------------------------------------------------------------------


def test_unpublished_and_untrained_model_is_unavailable_with_reason(env):
    env.write(entry("srcnn-x3", bundled_file="srcnn_x3.weights.h5"))
    with pytest.raises(ModelUnavailable) as info:
        hub_utils.resolve("srcnn-x3")
    assert info.value.reason.startswith("not trained yet:")
    assert "srcnn_x3.weights.h5 missing" in info.value.reason
    assert "not published on the Hub yet" in info.value.reason


def test_repo_manifest_reports_missing_bundled_file_relative_to_weights(hub_env, monkeypatch, tmp_path):
    # The real manifest with an empty weights folder: the reason reads like the issue asks.
    monkeypatch.setenv("CCTV_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(ModelUnavailable, match=r"not trained yet: .*srcnn_x3\.weights\.h5 missing"):
        hub_utils.resolve("srcnn-x3")
    with pytest.raises(ModelUnavailable, match="import-vggface"):
        hub_utils.resolve("vggface")


def test_bundled_file_is_verified(env):
    path = env.bundle("m.weights.h5", WEIGHTS_A)
    env.write(entry("m", bundled_file="m.weights.h5", sha256=sha(WEIGHTS_A), size=len(WEIGHTS_A)))
    resolved = hub_utils.resolve("m")
    assert (resolved.source, resolved.path, resolved.verified) == ("bundled", path, True)
    assert resolved.sha256 == sha(WEIGHTS_A)
    assert "not published" in resolved.notes[0]


def test_bundled_checksum_mismatch_refuses_and_keeps_the_file(env):
    path = env.bundle("m.weights.h5", WEIGHTS_B)
    env.write(entry("m", bundled_file="m.weights.h5", sha256=sha(WEIGHTS_A)))
    with pytest.raises(ModelUnavailable) as info:
        hub_utils.resolve("m")
    assert "sha256 mismatch" in info.value.reason and str(path) in info.value.reason
    assert path.read_bytes() == WEIGHTS_B  # never deleted nor modified


def test_unregistered_bundled_file_is_not_loaded(env):
    env.bundle("m.weights.h5", WEIGHTS_A)
    env.write(entry("m", bundled_file="m.weights.h5"))
    with pytest.raises(ModelUnavailable, match="not registered.*python -m hub_utils register m"):
        hub_utils.resolve("m")


def test_local_path_override_wins_and_is_verified(env, monkeypatch, tmp_path):
    env.bundle("m.weights.h5", WEIGHTS_A)
    env.write(entry("m", bundled_file="m.weights.h5", sha256=sha(WEIGHTS_A)))
    mine = tmp_path / "mine.weights.h5"
    mine.write_bytes(WEIGHTS_A)
    monkeypatch.setenv("CCTV_MODEL_M_PATH", str(mine))
    resolved = hub_utils.resolve("m")
    assert (resolved.source, resolved.path) == ("local", mine)

    # Another file: refused (names the file, explains how to accept it), no silent fallback to the bundle.
    mine.write_bytes(WEIGHTS_B)
    os.utime(mine, ns=(1, 1))
    with pytest.raises(ChecksumMismatch) as info:
        hub_utils.resolve("m", refresh=True)
    assert str(mine) in info.value.reason and "CCTV_MODEL_M_SHA256" in info.value.reason
    hub_utils.set_override("m", sha256=sha(WEIGHTS_B))
    assert hub_utils.resolve("m").sha256 == sha(WEIGHTS_B)

    monkeypatch.setenv("CCTV_MODEL_M_PATH", str(tmp_path / "nope.h5"))
    with pytest.raises(ModelUnavailable, match="nope.h5 not found"):
        hub_utils.resolve("m")


# -- the Hub ---------------------------------------------------------------------------------------


def published(env, fake_hub, data: bytes = WEIGHTS_A, name: str = "m", bundled: bytes | None = None, **fields):
    """Publish ``data`` on the fake Hub and write a manifest pinning it; returns the commit."""
    rev = fake_hub.add(REPO, f"{name}/{name}.weights.h5", data)
    if bundled is not None:
        env.bundle(f"{name}.weights.h5", bundled)
    env.write(entry(name, bundled_file=f"{name}.weights.h5", hub_filename=f"{name}/{name}.weights.h5",
                    revision=rev, published=True, sha256=sha(data), size=len(data), **fields))
    return rev


def test_first_download_then_cache_hit_with_the_server_stopped(env, fake_hub):
    rev = published(env, fake_hub)
    events = []
    remove = hub_utils.add_listener(lambda s: events.append((s.state, s.progress)))
    resolved = hub_utils.resolve("m")
    remove()
    assert resolved.source == "hub" and resolved.revision == rev and resolved.sha256 == sha(WEIGHTS_A)
    assert resolved.path.read_bytes() == WEIGHTS_A and str(env.cache) in str(resolved.path)
    assert fake_hub.count("GET", "/resolve/") == 1
    assert ("downloading", 0.0) in events and events[-1] == ("ready", 1.0)

    fake_hub.stop()
    hub_utils.clear_cache()
    again = hub_utils.resolve("m")
    assert (again.source, again.path, again.sha256) == ("cache", resolved.path, sha(WEIGHTS_A))


def test_background_resolution_shows_download_progress(env, fake_hub):
    big = bytes(range(256)) * (80 * 1024)  # 20 MiB: huggingface_hub reports progress per 10 MiB chunk
    published(env, fake_hub, big)
    fake_hub.pause_after_bytes = len(big) // 2 + 1
    seen: list[str] = []
    resolver = hub_utils.start_background_resolution(on_progress=lambda s: seen.append(s.label))
    assert _wait(lambda: resolver.snapshot()["m"].label == "downloading 50%", 20), resolver.snapshot()["m"].label
    assert hub_utils.unavailable_reason("m", block=False) == "downloading 50%"
    fake_hub.resume.set()
    assert resolver.wait(20)
    assert resolver.snapshot()["m"].label == "ready (hub)"
    assert seen[0] == "resolving" and "downloading 0%" in seen and seen[-1] == "ready (hub)"


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_pinned_revision_is_used_not_the_branch_head(env, fake_hub):
    old_rev = published(env, fake_hub, WEIGHTS_A)
    new_rev = fake_hub.add(REPO, "m/m.weights.h5", WEIGHTS_B)  # main now points here
    assert new_rev != old_rev and fake_hub.branches[(REPO, "main")] == new_rev
    resolved = hub_utils.resolve("m")
    assert resolved.revision == old_rev and resolved.path.read_bytes() == WEIGHTS_A
    assert all(old_rev in path for method, path in fake_hub.requests if "/resolve/" in path)


def test_revision_override_needs_the_matching_hash(env, fake_hub, monkeypatch):
    published(env, fake_hub, WEIGHTS_A)
    new_rev = fake_hub.add(REPO, "m/m.weights.h5", WEIGHTS_B)
    monkeypatch.setenv("CCTV_MODEL_M_REVISION", new_rev)
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        hub_utils.resolve("m")
    monkeypatch.setenv("CCTV_MODEL_M_SHA256", sha(WEIGHTS_B))
    resolved = hub_utils.resolve("m")
    assert (resolved.source, resolved.revision, resolved.sha256) == ("cache", new_rev, sha(WEIGHTS_B))


def test_hub_checksum_mismatch_refuses_keeps_file_and_falls_back_to_bundled(env, fake_hub):
    rev = published(env, fake_hub, WEIGHTS_A, bundled=WEIGHTS_A)
    fake_hub.corrupt.add((REPO, rev, "m/m.weights.h5"))
    resolved = hub_utils.resolve("m")
    assert resolved.source == "bundled"
    assert any("sha256 mismatch" in note for note in resolved.notes)
    blobs = list((env.cache / "models--test-org--cctv-face-models" / "blobs").iterdir())
    assert len(blobs) == 1 and blobs[0].stat().st_size == len(WEIGHTS_A)  # left in place

    # Without a bundled copy the model is unavailable, and the reason says why and how to repair.
    (env.weights_dir / "m.weights.h5").unlink()
    with pytest.raises(ModelUnavailable) as info:
        hub_utils.resolve("m", refresh=True)
    assert "sha256 mismatch" in info.value.reason and "download --force m" in info.value.reason
    # The repair command fetches it again once the Hub serves the right bytes.
    fake_hub.corrupt.clear()
    assert cli(["download", "--force", "m"]) == 0
    assert hub_utils.resolve("m").sha256 == sha(WEIGHTS_A)


@pytest.mark.parametrize("what, expected", [
    ("repo", "Hub repo test-org/other not found"),
    ("file", "m/missing.h5 not found in Hub repo"),
    ("revision", "not found in Hub repo"),
])
def test_missing_repo_file_or_revision(env, fake_hub, what, expected):
    rev = fake_hub.add(REPO, "m/m.weights.h5", WEIGHTS_A)
    fields = {"repo": {"repo_id": "test-org/other"}, "file": {"hub_filename": "m/missing.h5"},
              "revision": {"revision": commit_id("nowhere")}}[what]
    env.write({**entry("m", revision=rev, published=True, sha256=sha(WEIGHTS_A)), **fields})
    with pytest.raises(ModelUnavailable, match=expected):
        hub_utils.resolve("m")


def test_hub_only_model_from_a_user_chosen_repo(env, fake_hub, monkeypatch):
    env.write(entry("vggface", bundled_file=None, format="keras-legacy-h5", repo_id="{org}/vggface",
                    hub_filename="vggface/vggface_vgg16.h5"))
    with pytest.raises(ModelUnavailable, match="not published on the Hub yet"):
        hub_utils.resolve("vggface")
    rev = fake_hub.add("mirror/vggface", "vggface/vggface_vgg16.h5", WEIGHTS_A)
    monkeypatch.setenv("CCTV_MODEL_VGGFACE_REPO", "mirror/vggface")
    monkeypatch.setenv("CCTV_MODEL_VGGFACE_REVISION", rev)
    resolved = hub_utils.resolve("vggface")
    assert (resolved.source, resolved.repo_id, resolved.verified) == ("hub", "mirror/vggface", False)
    assert "not verified" in resolved.notes[0]
    monkeypatch.setenv("CCTV_MODEL_VGGFACE_SHA256", sha(WEIGHTS_A))
    assert hub_utils.resolve("vggface").verified


def test_hf_home_locates_the_cache(env, fake_hub, monkeypatch, tmp_path):
    published(env, fake_hub)
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    resolved = hub_utils.resolve("m")
    assert resolved.path.is_relative_to(tmp_path / "home" / "hub")


def test_token_is_sent(env, fake_hub, monkeypatch):
    published(env, fake_hub)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    hub_utils.resolve("m")
    assert any(h.get("authorization") == "Bearer hf_test_token" for h in fake_hub.headers)


def test_offline_mode_uses_cache_or_bundled_and_sends_nothing(env, fake_hub, monkeypatch):
    published(env, fake_hub, WEIGHTS_A, bundled=WEIGHTS_A)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = hub_utils.resolve("m")
    assert resolved.source == "bundled" and any("HF_HUB_OFFLINE" in n for n in resolved.notes)
    assert fake_hub.requests == []

    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert hub_utils.resolve("m").source == "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    count = len(fake_hub.requests)
    assert hub_utils.resolve("m").source == "cache"
    assert len(fake_hub.requests) == count


def test_interrupted_download_resumes(env, fake_hub):
    published(env, fake_hub)
    fake_hub.truncate_gets = 1  # the first GET breaks half-way
    resolved = hub_utils.resolve("m")
    assert resolved.source == "hub" and resolved.path.read_bytes() == WEIGHTS_A
    assert fake_hub.count("GET", "/resolve/") == 2  # retried (resumed with Range when bytes had arrived)


def test_corrupt_partial_files_in_the_cache(env, fake_hub):
    published(env, fake_hub)
    # A stale partial download left by a crash: ignored, the file is downloaded afresh and verified.
    blobs = env.cache / "models--test-org--cctv-face-models" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha(WEIGHTS_A)}.incomplete").write_bytes(b"garbage!" * 10)
    resolved = hub_utils.resolve("m")
    assert resolved.path.read_bytes() == WEIGHTS_A

    # A cached file cut short later (disk full, killed copy): caught by the sha256, reported, left in place.
    blob = resolved.path.resolve()
    blob.write_bytes(WEIGHTS_A[: len(WEIGHTS_A) // 2])
    hub_utils.clear_cache()
    with pytest.raises(ModelUnavailable) as info:
        hub_utils.resolve("m")
    assert "Hub cache: sha256 mismatch" in info.value.reason and "download --force m" in info.value.reason
    assert blob.stat().st_size == len(WEIGHTS_A) // 2


def test_unreachable_hub_falls_back_to_bundled_quickly(env, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    models = []
    for i in range(5):
        name = f"m{i}"
        env.bundle(f"{name}.weights.h5", WEIGHTS_A)
        models.append(entry(name, bundled_file=f"{name}.weights.h5", revision=commit_id(name), published=True,
                            sha256=sha(WEIGHTS_A)))
    env.write(*models)
    started = time.monotonic()
    rows = hub_utils.status()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert all(r.state == "ready" and r.source == "bundled" for r in rows)
    assert "unreachable" in " ".join(rows[0].notes)


class _BlackHole:
    """A port that accepts TCP connections (kernel backlog) and never answers: a firewall that drops."""

    def __enter__(self) -> str:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.slow
def test_silent_hub_costs_at_most_3_seconds_for_all_models(env, monkeypatch):
    models = [entry(f"m{i}", revision=commit_id(str(i)), published=True, sha256=sha(WEIGHTS_A)) for i in range(6)]
    env.write(*models)
    with _BlackHole() as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        started = time.monotonic()
        resolver = hub_utils.start_background_resolution()
        assert resolver.wait(10)
        elapsed = time.monotonic() - started
    assert elapsed <= 3.0, f"{elapsed:.2f} s"
    snap = resolver.snapshot()
    assert all(s.state == "unavailable" for s in snap.values())
    assert "unreachable" in snap["m0"].reason and "not trained yet" in snap["m0"].reason


def test_unwritable_cache_is_a_clear_error_and_bundled_still_works(env, fake_hub, monkeypatch):
    blocker = env.root / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HF_HUB_CACHE", str(blocker / "cache"))
    published(env, fake_hub, bundled=WEIGHTS_A)
    resolved = hub_utils.resolve("m")
    assert resolved.source == "bundled"
    assert any("cannot write the Hub cache" in n and "HF_HOME" in n for n in resolved.notes)


def test_read_only_file_system_is_reported(env, fake_hub, monkeypatch):
    published(env, fake_hub)
    import huggingface_hub.file_download as fd

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(args[0]) if args else "")

    monkeypatch.setattr(fd.os, "makedirs", read_only)
    with pytest.raises(ModelUnavailable, match="read-only file system"):
        hub_utils.resolve("m")


# -- status, background resolution and CLI agree ------------------------------------------------------


def test_status_cli_json_and_background_snapshot_agree(env, fake_hub, capsys):
    published(env, fake_hub, name="m")
    env_models = json.loads(env.manifest_path.read_text())["models"]
    env.write(*env_models, entry("srcnn-x3"))
    resolver = hub_utils.start_background_resolution()
    assert resolver.wait(10)
    snap = resolver.snapshot()
    assert snap["m"].label == "ready (hub)" and snap["srcnn-x3"].label.startswith("unavailable: not trained yet")

    assert cli(["status", "--json"]) == 0
    as_json = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert cli(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines[1:]}
    for name, state in snap.items():
        row = as_json[name]
        assert (row["state"], row["source"], row["sha256"], row["reason"]) == \
               (state.state, state.source, state.sha256, state.reason)
        assert row == state.to_dict()
    line = by_name["m"].split()
    assert line[1] == "hub" and line[2].startswith(REPO + "@") and line[3] == sha(WEIGHTS_A)[:12]
    assert by_name["srcnn-x3"].split()[1] == "missing" and "not trained yet" in by_name["srcnn-x3"]
    assert cli(["status", "--strict"]) == 1


def test_cli_override_flags(env, tmp_path, capsys):
    env.write(entry("m"))
    mine = tmp_path / "mine.weights.h5"
    mine.write_bytes(WEIGHTS_A)
    assert cli(["--model-path", f"m={mine}", "status", "m"]) == 0
    out = capsys.readouterr().out
    assert " local " in out and "no sha256 pinned" in out
    assert cli(["--model-repo", "m=not a repo", "status"]) == 2
    assert cli(["--model-path", f"srcnn-x9={mine}", "status"]) == 2
    assert "unknown model 'srcnn-x9'" in capsys.readouterr().err


def test_download_command(env, fake_hub, capsys):
    published(env, fake_hub)
    models = json.loads(env.manifest_path.read_text())["models"]
    env.write(*models, entry("unpublished"))
    assert cli(["download"]) == 2
    assert cli(["download", "--all"]) == 0  # a model with no Hub copy is not a failure (Dockerfile use)
    out = capsys.readouterr().out
    assert "m: hub" in out and "unpublished: not on the Hub, nothing to download" in out
    fake_hub.stop()
    hub_utils.clear_cache()
    assert cli(["download", "m"]) == 0
    assert "m: cache" in capsys.readouterr().out
    env.bundle("m.weights.h5", WEIGHTS_A)
    shutil.rmtree(env.cache)
    hub_utils.clear_cache()
    assert cli(["download", "--all"]) == 1  # the Hub copy could not be fetched: say so, even with a bundle
    assert "m: download failed, using the bundled copy" in capsys.readouterr().out


def test_status_command_in_a_fresh_process_is_fast_offline(tmp_path):
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    for m in manifest["models"]:  # pretend everything is published so every model tries the Hub
        m.update(revision=commit_id(m["name"]), published=True, sha256=sha(m["name"].encode()))
    path = tmp_path / "models.json"
    path.write_text(json.dumps(manifest))
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "CCTV_"))}
    env_vars.update(CCTV_MODELS_MANIFEST=str(path), CCTV_WEIGHTS_DIR=str(tmp_path),
                    HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HOME=str(tmp_path / "hf"))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "hub_utils", "status"], cwd=ROOT, env=env_vars,
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()[1:]
    assert [line.split()[0] for line in lines] == [m["name"] for m in manifest["models"]]
    assert all("unreachable" in line for line in lines)
    assert "keras" not in proc.stderr.lower()
    assert elapsed < 10  # interpreter start + imports; the Hub part is measured in-process above


# -- register and publish -------------------------------------------------------------------------------


def _keras3_like_weights(path: Path) -> bytes:
    """A small HDF5 file in the Keras 3 weights layout (random values, never loaded into a model here)."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layers/conv2d/vars/0", data=np.random.default_rng(1).standard_normal((3, 3, 1, 4)))
    return path.read_bytes()


def test_register_records_hash_and_drops_a_stale_pin(env, tmp_path):
    env.write(entry("m", bundled_file="m.weights.h5", repo_id=REPO, revision=commit_id("old"), published=True,
                    sha256=sha(WEIGHTS_A)))
    trained = tmp_path / "out.weights.h5"
    data = _keras3_like_weights(trained)
    assert cli(["register", "m", str(trained), "--training-command", "python -m pipeline.train.srcnn"]) == 0
    new = load_manifest().get("m")
    assert (new.sha256, new.size, new.format) == (sha(data), len(data), "keras-weights-h5")
    assert (new.published, new.revision) == (False, None)
    assert new.card.training_command == "python -m pipeline.train.srcnn"
    assert (env.weights_dir / "m.weights.h5").read_bytes() == data
    assert hub_utils.resolve("m").source == "bundled"
    not_hdf5 = tmp_path / "x.weights.h5"
    not_hdf5.write_bytes(b"hello")
    assert cli(["register", "m", str(not_hdf5)]) == 2
    legacy = tmp_path / "legacy.weights.h5"
    write_legacy_h5(legacy, {"conv": [("kernel:0", np.zeros((1, 1), np.float32))]})
    with pytest.raises(ManifestError, match="not a Keras 3 weights file"):
        hub_utils.register("m", legacy)
    pickle = tmp_path / "trained.pt"
    pickle.write_bytes(b"x")
    with pytest.raises(ManifestError, match="pickled PyTorch"):
        hub_utils.register("m", pickle)
    assert (env.weights_dir / "m.weights.h5").read_bytes() == data  # nothing overwritten


def _two_bundled(env):
    env.bundle("a.weights.h5", WEIGHTS_A)
    env.bundle("b.weights.h5", WEIGHTS_B)
    env.write(entry("a", bundled_file="a.weights.h5", hub_filename="a/a.weights.h5", sha256=sha(WEIGHTS_A),
                    card={"architecture": "ARCH-A", "benchmark_section": "superres"}),
              entry("b", stage="deblur", bundled_file="b.weights.h5", hub_filename="b/b.weights.h5",
                    sha256=sha(WEIGHTS_B)),
              entry("c", bundled_file="c.weights.h5"),
              entry("v", bundled_file=None, format="keras-legacy-h5", repo_id="{org}/vggface",
                    hub_filename="v/v.h5", layout="vggface-vgg16"))


def test_publish_dry_run_lists_exactly_the_files_and_cards(env, tmp_path, capsys):
    from hub_utils.publish import plan_publish

    _two_bundled(env)
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\n\n<!-- BEGIN superres -->\nSet5 x3: 32.1 dB (measured)\n<!-- END superres -->\n")
    plan = plan_publish("me/models", benchmarks_md=bench)
    assert set(plan.files) == {"a/a.weights.h5", "a/README.md", "b/b.weights.h5", "b/README.md", "README.md"}
    assert plan.files["a/a.weights.h5"] == env.weights_dir / "a.weights.h5"
    card_a = plan.files["a/README.md"].decode()
    for text in ("ARCH-A", sha(WEIGHTS_A), "Set5 x3: 32.1 dB (measured)", "## Intended use", "## Limitations",
                 "## Training data", "## Training command", "license: mit"):
        assert text in card_a
    card_b = plan.files["b/README.md"].decode()
    assert "No measured numbers yet" in card_b and "_not recorded_" in card_b
    assert [name for name, _why in plan.skipped] == ["c"]

    assert cli(["publish", "--repo", "me/models", "--dry-run", "--print-cards"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing uploaded" in out and "a/a.weights.h5" in out and "skipped c" in out
    assert "===== a/README.md =====" in out and "ARCH-A" in out


def test_publish_to_fake_hub_and_pin(env, fake_hub, monkeypatch, capsys):
    # huggingface_hub uploads through Xet when hf_xet is installed; the fake Hub speaks the LFS protocol only.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    _two_bundled(env)
    assert cli(["publish", "--repo", "me/models", "--private", "--pin"]) == 0
    out = capsys.readouterr().out
    repo, revision, paths = fake_hub.commits[-1]
    assert repo == "me/models" and f"new revision: {revision}" in out
    assert set(paths) == {"a/a.weights.h5", "a/README.md", "b/b.weights.h5", "b/README.md", "README.md"}
    assert ("me/models", True) in fake_hub.created_repos
    assert fake_hub.validated_cards >= 1  # the root README.md's YAML front matter parsed
    assert fake_hub.files[("me/models", revision, "a/a.weights.h5")] == WEIGHTS_A

    pinned = load_manifest().get("a")
    assert (pinned.repo_id, pinned.revision, pinned.published) == ("me/models", revision, True)

    fake_hub.reject_uploads = True  # a read-only token: a clear one-line error, exit 1
    assert cli(["publish", "--repo", "me/models"]) == 1
    assert "upload to me/models failed: HTTP 403" in capsys.readouterr().err
    (env.weights_dir / "a.weights.h5").unlink()  # now it must come from the Hub
    hub_utils.clear_cache()
    resolved = hub_utils.resolve("a")
    assert (resolved.source, resolved.revision, resolved.sha256) == ("hub", revision, sha(WEIGHTS_A))


# -- VGGFace import ------------------------------------------------------------------------------------


def _tiny_vggface(path: Path, layout_id: str = "vggface-vgg16", width: int = 32, drop: str | None = None,
                  theano: bool = False, extra_layers: bool = True) -> Path:
    """A RANDOM-weights file in the keras-vggface layout with channel counts divided by ``width``."""
    rng = np.random.default_rng(0)
    layers: dict[str, list] = {}
    if extra_layers:
        layers["input_1"] = []  # Keras 2 files list weightless layers too
    for layer, weights in vggface.expected_layout(layout_id, width).items():
        if layer == drop:
            continue
        arrays = []
        for kind, shape in weights:
            if theano and kind == "kernel" and len(shape) == 4:
                shape = (shape[3], shape[2], shape[0], shape[1])
            arrays.append((f"{kind}:0", rng.standard_normal(shape).astype(np.float32)))
        layers[layer] = arrays
    if extra_layers:
        layers["pool5"] = []
    return write_legacy_h5(path, layers)


@pytest.mark.parametrize("layout_id", ["vggface-vgg16", "vggface-resnet50"])
def test_vggface_validator_accepts_the_layout_and_converts(tmp_path, layout_id):
    src = _tiny_vggface(tmp_path / "random_vggface.h5", layout_id)
    assert src.stat().st_size < 3_000_000
    assert vggface.validate_file(src, None, 32) == (layout_id, True)
    out = tmp_path / "clean.h5"
    assert vggface.convert(src, out, None, 32) == (layout_id, True)
    clean, original = read_legacy_h5(out), read_legacy_h5(src)
    assert list(clean) == list(vggface.expected_layout(layout_id, 32))  # weightless layers dropped
    first = next(iter(clean))
    np.testing.assert_array_equal(clean[first][0][1], original[first][0][1])
    with h5py.File(out) as handle:
        assert handle.attrs["cctv_layout"] == layout_id
        assert handle.attrs["cctv_source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_vggface_real_layout_tables_have_the_published_sizes():
    vgg = vggface.expected_layout("vggface-vgg16")
    assert sum(int(np.prod(s)) for w in vgg.values() for _k, s in w) == 145_002_878  # VGG-16 with 2622 classes
    assert vgg["fc8"][0][1] == (4096, 2622) and vgg["fc6"][0][1] == (25088, 4096)
    res = vggface.expected_layout("vggface-resnet50")
    assert res["classifier"][0][1] == (2048, 8631) and res["conv5_3_1x1_increase/bn"][0][1] == (2048,)
    assert len([k for k in res if not k.endswith("/bn")]) == 1 + 16 * 3 + 4 + 1


@pytest.mark.parametrize("layout_id", ["vggface-vgg16", "vggface-resnet50"])
def test_vggface_validator_on_full_size_shapes(tmp_path, layout_id):
    # Real shapes, no data: HDF5 allocates dataset storage lazily, so this 145 M-parameter file is tiny.
    path = tmp_path / "full_size_no_data.h5"
    layout = vggface.expected_layout(layout_id)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in layout], dtype="S")
        for layer, weights in layout.items():
            group = handle.require_group(layer)
            names = [f"{layer}/{kind}:0" for kind, _s in weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for name, (_kind, shape) in zip(names, weights):
                group.create_dataset(name, shape=shape, dtype="float32")
    assert path.stat().st_size < 2_000_000
    started = time.monotonic()
    assert vggface.validate_file(path) == (layout_id, True)
    assert time.monotonic() - started < 2.0


def test_vggface_validator_rejects_wrong_files(tmp_path):
    missing = _tiny_vggface(tmp_path / "missing.h5", drop="conv3_2")
    with pytest.raises(ModelLoadError, match="missing layer 'conv3_2'"):
        vggface.validate_file(missing, None, 32)
    theano = _tiny_vggface(tmp_path / "th.h5", theano=True)
    with pytest.raises(ModelLoadError, match="Theano-ordered"):
        vggface.validate_file(theano, None, 32)
    with pytest.raises(ModelLoadError, match="does not match"):  # right names, real-size table
        vggface.validate_file(_tiny_vggface(tmp_path / "ok.h5"), None, 1)
    notop = _tiny_vggface(tmp_path / "notop.h5", drop="fc8")
    with pytest.raises(ModelLoadError, match="fc8"):  # part of a head is an error, all of it is fine
        vggface.validate_file(notop, None, 32)
    other = tmp_path / "other.h5"
    write_legacy_h5(other, {"dense": [("kernel:0", np.zeros((2, 2), np.float32))]})
    with pytest.raises(ModelLoadError, match="not a Keras VGGFace file"):
        vggface.validate_file(other)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="not an HDF5 file"):
        vggface.validate_file(text)


def test_vggface_notop_file_is_valid(tmp_path):
    path = tmp_path / "notop.h5"
    layers = {k: [(f"{kind}:0", np.zeros(s, np.float32)) for kind, s in w]
              for k, w in vggface.expected_layout("vggface-vgg16", 32).items() if not k.startswith("fc")}
    write_legacy_h5(path, layers)
    assert vggface.validate_file(path, None, 32) == ("vggface-vgg16", False)


def test_import_vggface_publishes_to_fake_hub_and_resolves(env, fake_hub, monkeypatch, capsys, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    real_entry = next(m for m in json.loads(DEFAULT_MANIFEST.read_text())["models"] if m["name"] == "vggface")
    env.write(real_entry)
    with pytest.raises(ModelUnavailable, match="not published"):
        hub_utils.resolve("vggface")
    src = _tiny_vggface(tmp_path / "random_vggface.h5")
    assert cli(["import-vggface", str(src), "--dry-run", "--layout-width", "32"]) == 0
    assert "valid vggface-vgg16 layout" in capsys.readouterr().out and not fake_hub.commits

    assert cli(["import-vggface", str(src), "--repo", "me/vggface", "--pin", "--layout-width", "32"]) == 0
    repo, revision, paths = fake_hub.commits[-1]
    assert set(paths) == {"vggface/vggface_vgg16.h5", "vggface/README.md", "README.md"}
    assert "2,622 identities" in fake_hub.files[(repo, revision, "vggface/README.md")].decode()
    entry_ = load_manifest().get("vggface")
    assert (entry_.repo_id, entry_.revision, entry_.published) == ("me/vggface", revision, True)
    resolved = hub_utils.resolve("vggface")
    assert resolved.source == "hub" and resolved.format == "keras-legacy-h5"
    assert vggface.validate_file(resolved.path, None, 32) == ("vggface-vgg16", True)

    other = _tiny_vggface(tmp_path / "other.h5")  # another file replaces the first one (new hash, new pin)
    with h5py.File(other, "a") as handle:
        handle.attrs["note"] = "another copy"
    assert cli(["import-vggface", str(other), "--repo", "me/vggface", "--pin", "--layout-width", "32"]) == 0
    assert load_manifest().get("vggface").revision == fake_hub.commits[-1][1] != revision

    bad = _tiny_vggface(tmp_path / "bad.h5", drop="conv1_1")
    assert cli(["import-vggface", str(bad), "--repo", "me/vggface", "--layout-width", "32"]) == 1
    assert "missing layer 'conv1_1'" in capsys.readouterr().err


# -- Keras loading (slow: imports TensorFlow) -------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras as keras_module

    return keras_module


def _tiny_sr(keras, filters: int = 8, extra: bool = False):
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(filters, 3, padding="same", name="conv1")(inputs)
    if extra:
        x = keras.layers.Conv2D(filters, 1, name="conv_extra")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", name="conv2")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.slow
def test_load_keras_weights_verifies_and_refuses_the_wrong_architecture(env, keras):
    random_weights_model = _tiny_sr(keras)
    path = env.weights_dir / "m.weights.h5"
    random_weights_model.save_weights(path)
    env.write(entry("m", bundled_file="m.weights.h5", sha256=hub_utils.sha256_file(path)))

    target = _tiny_sr(keras)
    resolved = hub_utils.load_keras_weights(target, "m")
    assert resolved.source == "bundled"
    for a, b in zip(random_weights_model.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)

    for wrong in (_tiny_sr(keras, filters=16), _tiny_sr(keras, extra=True)):
        with pytest.raises(ModelLoadError, match=r"model 'm': .*m\.weights\.h5 does not fit the model"):
            hub_utils.load_keras_weights(wrong, "m")
    fewer = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3, name="only")])
    with pytest.raises(ModelLoadError, match="holds 4 arrays, the model has 2"):
        hub_utils.load_keras_weights(fewer, "m")
    (row,) = hub_utils.status(["m"])  # the status panel shows it too
    assert row.state == "unavailable" and "does not fit the model" in row.reason
    assert "does not fit" in hub_utils.unavailable_reason("m", block=False)
    hub_utils.load_keras_weights(target, "m")
    assert hub_utils.unavailable_reason("m", block=False) is None  # ready again after a good load

    # Changed on disk after resolution: the re-check before loading refuses it.
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        hub_utils.load_keras_weights(target, "m")


@pytest.mark.slow
def test_load_legacy_vggface_layout_by_layer_name(env, keras, tmp_path):
    # A tiny VGG-16-shaped model (width / 32, 32 x 32 input) with keras-vggface layer names.
    inputs = keras.Input((32, 32, 3))
    x = inputs
    layout = vggface.vgg16_layout(32, classes=8, image_size=32)
    for name, weights in layout.items():
        if name.startswith("conv"):
            x = keras.layers.Conv2D(weights[0][1][3], 3, padding="same", name=name)(x)
            if name.endswith(("1_2", "2_2", "3_3", "4_3", "5_3")):
                x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(layout["fc6"][0][1][1], name="fc6")(x)
    x = keras.layers.Dense(layout["fc7"][0][1][1], name="fc7")(x)  # no fc8: embeddings model
    model = keras.Model(inputs, x)
    random_file = tmp_path / "random_vggface.h5"
    write_legacy_h5(random_file, {k: [(f"{kind}:0", np.full(s, 0.5, np.float32)) for kind, s in w]
                                  for k, w in layout.items()})
    env.write(entry("vggface", stage="recognition", format="keras-legacy-h5", bundled_file=None,
                    repo_id="{org}/vggface", hub_filename="vggface/v.h5", layout="vggface-vgg16"))
    os.environ["CCTV_MODEL_VGGFACE_PATH"] = str(random_file)
    try:
        resolved = hub_utils.load_keras_weights(model, "vggface")
        assert resolved.source == "local" and not resolved.verified
        assert np.all(model.get_layer("fc7").get_weights()[0] == 0.5)
        # Keras 3 forbids "/" in layer names; "__" stands for it (as in pipeline.recognition.embedders).
        bn_file = tmp_path / "bn.h5"
        write_legacy_h5(bn_file, {"conv1/7x7_s2/bn": [(f"{k}:0", np.full(4, 2.0, np.float32)) for k in
                                                      ("gamma", "beta", "moving_mean", "moving_variance")]})
        bn_model = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.BatchNormalization(name="conv1__7x7_s2__bn")])
        hub_utils.load_weights_file(bn_model, bn_file, "keras-legacy-h5", "vggface2-resnet50")
        assert all(np.all(w == 2.0) for w in bn_model.get_weights())
        model_wrong = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc7")])
        with pytest.raises(ModelLoadError, match="layer 'fc7': file has shapes"):
            hub_utils.load_keras_weights(model_wrong, "vggface")
    finally:
        del os.environ["CCTV_MODEL_VGGFACE_PATH"]


def test_unavailable_reason_for_stage_toggles(env, fake_hub, monkeypatch):
    published(env, fake_hub, name="m")
    models = json.loads(env.manifest_path.read_text())["models"]
    env.write(*models, entry("srcnn-x3"))
    assert hub_utils.unavailable_reason("m", block=False) == "not resolved yet"  # never waits in the UI
    assert hub_utils.unavailable_reason("m") is None  # CLI: no background resolver, so it resolves on demand
    hub_utils.clear_cache()
    resolver = hub_utils.start_background_resolution(names=["srcnn-x3"])
    assert resolver.wait(10)
    assert hub_utils.unavailable_reason("m") == "not resolved yet"  # the app: never blocks once started
    rows = {s.name: s for s in hub_utils.status()}  # nor does status() (the app's panel and API)
    assert rows["m"].state == "pending" and rows["srcnn-x3"].state == "unavailable"
    assert hub_utils.unavailable_reason("srcnn-x3").startswith("not trained yet")
