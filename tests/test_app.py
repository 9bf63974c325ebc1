"""The Blocks app started in-process and called through gradio_client, like a user's script."""

import hashlib
import json
import re
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file

from conftest import free_port, running_app, EXAMPLES, GROUP_FACE_CENTRES, ROOT

pytestmark = pytest.mark.slow



FIXTURES = ROOT / "tests" / "fixtures" / "faces"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("suspects")) as url:
        yield Client(url, verbose=False)


def test_detect_endpoint_needs_only_an_image(client, group_jpg):
    annotated, result = client.predict(handle_file(str(group_jpg)), api_name="/detect")
    assert len(result["faces"]) == len(GROUP_FACE_CENTRES)
    assert result["width"] == 1200
    assert annotated.endswith(".png")


def test_detect_endpoint_options(client, group_jpg):
    _, result = client.predict(handle_file(str(group_jpg)), "haar", 0.5, 24, api_name="/detect")
    assert result["faces"] and all(f["detector"] == "haar" for f in result["faces"])


@pytest.mark.parametrize("kind, message", [("text", "not an image"), ("bomb", "megapixel limit"),
                                           ("empty", "empty"), ("truncated", "truncated")])
def test_bad_input_is_a_readable_error_and_the_app_keeps_serving(client, bad_files, group_jpg, kind, message):
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(bad_files[kind])), api_name="/detect")
    _, result = client.predict(handle_file(str(group_jpg)), api_name="/detect")
    assert len(result["faces"]) == 6


def test_analyse_endpoint_runs_the_pipeline(client, group_jpg):
    outputs = client.predict(handle_file(str(group_jpg)), "blazeface", 0.35, 24, "off", "off", "off",
                             api_name="/analyse")
    annotated, enhanced_frame, raw_gallery, enhanced_gallery, summary, result = outputs
    assert len(raw_gallery) == 6 and not enhanced_gallery
    assert "6 face(s)" in summary and len(result["faces"]) == 6


def test_stage_status_endpoint(client):
    status = client.predict(api_name="/stages")
    assert {s["name"] for s in status} >= {"lowlight", "deblur", "superres"}
    assert all(s["ready"] or s["reason"] for s in status)


def test_watchlist_round_trip_and_identify(client):
    message, table = client.predict("Person A", [handle_file(str(FIXTURES / "person_a_1.jpg")),
                                                 handle_file(str(FIXTURES / "person_a_2.jpg"))], "test notes",
                                    api_name="/suspects_add")
    assert "Added **Person A**" in message
    people = client.predict(api_name="/suspects_list")
    assert [p["name"] for p in people] == ["Person A"] and len(people[0]["photos"]) == 2

    _, raw, enhanced, table_md, matches = client.predict(handle_file(str(FIXTURES / "person_a_3.jpg")), 0,
                                                         "off", "off", "off", api_name="/identify")
    assert matches[0]["decision"] == "match" and matches[0]["name"] == "Person A"
    assert matches[0]["score"] is not None and matches[0]["threshold"] > 0 and matches[0]["revision"]
    _, _, _, _, matches = client.predict(handle_file(str(FIXTURES / "stranger.jpg")), 0, "off", "off", "off",
                                         api_name="/identify")
    assert matches[0]["decision"] in ("no_match", "inconclusive")

    with pytest.raises(Exception, match="confirm"):
        client.predict("Person A", False, api_name="/suspects_remove")
    message, _ = client.predict("Person A", True, api_name="/suspects_remove")
    assert "Deleted" in message and client.predict(api_name="/suspects_list") == []


def test_adding_a_photo_without_a_face_is_refused_with_the_reason(client):
    with pytest.raises(Exception, match="no usable photo|no face"):
        client.predict("Nobody", [handle_file(str(EXAMPLES / "night_street.jpg"))], "", api_name="/suspects_add")


def test_scan_video_endpoint(client):
    video, gallery, timeline, downloads, summary, result = client.predict(
        handle_file(str(EXAMPLES / "arcade_clip.mp4")), 5, True, "off", "off", "off", api_name="/scan_video")
    assert video["video"].endswith(".mp4") if isinstance(video, dict) else str(video).endswith(".mp4")
    assert result["frames_processed"] == 10 and "sighting" in summary
    assert len(downloads) == 2 and timeline.endswith(".png")


def test_model_status_endpoint(client):
    status = client.predict(api_name="/models")
    assert any(s["kind"] == "stage" for s in status) and any(s["kind"] == "model" for s in status)


@pytest.fixture
def start_app(tmp_path):
    """Start the app with some settings changed; returns its URL. Restores the settings afterwards."""
    import dataclasses

    import app

    saved = dataclasses.replace(app.CONFIG)
    demos = []

    def start(**settings):
        for key, value in {"suspects": str(tmp_path / "suspects"), "port": free_port(), **settings}.items():
            setattr(app.CONFIG, key, value)
        app._watchlist.cache_clear()
        demo = app.build_app()
        app.launch(demo, app.CONFIG, prevent_thread_lock=True, quiet=True)
        demos.append(demo)
        return f"http://127.0.0.1:{app.CONFIG.port}/"

    yield start
    for demo in demos:
        demo.close()
    for field in dataclasses.fields(saved):
        setattr(app.CONFIG, field.name, getattr(saved, field.name))
    app._watchlist.cache_clear()


def _add_person(client, **kwargs):
    return client.predict("Person A", [handle_file(str(FIXTURES / "person_a_1.jpg"))], "", kwargs.get("token", ""),
                          api_name="/suspects_add")


def test_log_in_required_and_only_admins_edit_the_watchlist(start_app, group_jpg):
    url = start_app(auth="alice:a-pass,bob:b-pass", admins="alice")
    with pytest.raises(Exception):
        Client(url, verbose=False).predict(handle_file(str(group_jpg)), api_name="/detect")
    bob = Client(url, auth=("bob", "b-pass"), verbose=False)
    assert len(bob.predict(handle_file(str(group_jpg)), api_name="/detect")[1]["faces"]) == 6
    with pytest.raises(Exception, match="only watchlist admins"):
        _add_person(bob)
    alice = Client(url, auth=("alice", "a-pass"), verbose=False)
    assert "Added" in _add_person(alice)[0]


def test_edit_token_and_read_only_watchlist(start_app):
    client = Client(start_app(edit_token="s3cret"), verbose=False)
    with pytest.raises(Exception, match="edit token"):
        _add_person(client)
    assert "Added" in _add_person(client, token="s3cret")[0]


def test_read_only_watchlist(start_app):
    client = Client(start_app(read_only_watchlist=True), verbose=False)
    with pytest.raises(Exception, match="read-only"):
        _add_person(client)
    assert client.predict(api_name="/suspects_list") == []


def test_image_and_upload_limits_give_clear_messages(start_app, group_jpg):
    client = Client(start_app(max_image_megapixels=0.5), verbose=False)
    with pytest.raises(Exception, match="megapixel limit"):
        client.predict(handle_file(str(group_jpg)), api_name="/detect")
    small = Client(start_app(max_upload_mb=0.05), verbose=False)
    with pytest.raises(Exception, match="(?i)too large|size|limit"):
        small.predict(handle_file(str(group_jpg)), api_name="/detect")


def test_one_job_per_user_at_a_time():
    import gradio as gr

    import app

    request = type("R", (), {"username": None, "session_hash": "abc"})()
    with app._user_slot(request):
        with pytest.raises(gr.Error, match="Busy"):
            with app._user_slot(request):
                pass
    with app._user_slot(request):  # released again
        pass


def test_one_users_job_does_not_make_another_user_busy(client, group_jpg):
    other = Client(client.src, verbose=False)
    job = client.submit(handle_file(str(EXAMPLES / "arcade_clip.mp4")), 1, True, "off", "off", "off",
                        api_name="/scan_video")
    # Each client is its own browser session: its jobs count against its own limit only.
    for _ in range(2):
        outputs = other.predict(handle_file(str(group_jpg)), "blazeface", 0.35, 24, "off", "off", "off",
                                api_name="/analyse")
        assert len(outputs[-1]["faces"]) == 6
    assert job.result(timeout=300)[-1]["frames_processed"] == 50


# ------------------------------------------------------------------ outputs never rewritten in place
def test_an_output_in_gradios_cache_is_never_rewritten_in_place(client, group_jpg, monkeypatch):
    """Regression (bench_load, 8 clients): an image returned as an array was stored by Gradio under a name made
    from its content and rewritten in place by the next request with the same picture, truncating it while the
    first answer was being downloaded ("peer closed connection without sending complete message body")."""
    import builtins
    import io
    import os

    from gradio.utils import get_upload_folder

    cache = os.path.realpath(get_upload_folder()) + os.sep
    rewrites: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def existing_cache_file(path) -> bool:
        if isinstance(path, int):
            return False
        full = os.path.realpath(os.fsdecode(os.fspath(path)))
        # Hidden names are Gradio's own staging files (mkstemp, then renamed): private to one writer.
        return full.startswith(cache) and not os.path.basename(full).startswith(".") and os.path.exists(full)

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & (os.O_WRONLY | os.O_RDWR) and dir_fd is None and existing_cache_file(path):
            rewrites.append(os.fspath(path))
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def file_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wa+") and existing_cache_file(file):
            rewrites.append(os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", file_open)
    monkeypatch.setattr(io, "open", file_open)
    answers = [client.predict(handle_file(str(group_jpg)), "blazeface", 0.35, 24, "off", "off", "off",
                              api_name="/analyse") for _ in range(2)]
    answers += [client.predict(handle_file(str(group_jpg)), api_name="/detect") for _ in range(2)]
    monkeypatch.undo()
    assert not rewrites, f"cached outputs rewritten in place: {rewrites[:3]}"
    assert answers[0][-1]["faces"] == answers[1][-1]["faces"] and len(answers[0][2]) == 6, "same input, same answer"


def test_image_outputs_are_files_with_unique_names_per_request(group_jpg):
    """Handlers hand Gradio PNG files in a new folder per request, never arrays (see the test above)."""
    import app

    first, second = (app.detect(str(group_jpg)) for _ in range(2))
    assert isinstance(first[0], str) and first[0] != second[0]
    assert Path(first[0]).parent.parent == app.OUTPUT_ROOT and Path(first[0]).parent.name.startswith("out-")
    assert Path(first[0]).read_bytes() == Path(second[0]).read_bytes(), "same picture, separate files"


# ------------------------------------------------------------------ evidence reports
def _unzip(path: str, into: Path) -> tuple[dict, str]:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
        names = set(archive.namelist())
    audit = json.loads((into / "audit.json").read_text(encoding="utf-8"))
    for item in audit.get("faces") or audit.get("sightings") or []:
        for variant in ("raw", "enhanced"):
            entry = item["crops"][variant]
            if entry is not None:
                assert entry["file"] in names, "every crop the audit names is in the zip"
                assert hashlib.sha256((into / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    return audit, (into / "evidence.html").read_text(encoding="utf-8")


def _sections_raw_first(page: str) -> list[list[str]]:
    sections = page.split('<section class="item">')[1:]
    classes = [re.findall(r'<img class="(\w+)"', s) for s in sections]
    assert all(c and c[0] == "raw" for c in classes), classes
    return classes


def _stable(audit: dict) -> dict:
    from pipeline.report import VOLATILE_KEYS

    return {k: v for k, v in audit.items() if k not in VOLATILE_KEYS}


def test_report_before_any_result_is_a_clear_message(client):
    fresh = Client(client.src, verbose=False)  # a new browser session: nothing shown yet
    with pytest.raises(Exception, match="no result to report yet: run Identify first"):
        fresh.predict(api_name="/report")
    with pytest.raises(Exception, match="no result to report yet: run a video scan first"):
        fresh.predict(api_name="/scan_report")


def test_identify_report_describes_the_result_shown(client, tmp_path, bad_files):
    import app

    session = Client(client.src, verbose=False)
    session.predict("Person A", [handle_file(str(FIXTURES / "person_a_1.jpg")),
                                 handle_file(str(FIXTURES / "person_a_2.jpg"))], "", "", api_name="/suspects_add")
    try:
        image = FIXTURES / "two_faces.jpg"
        *_, matches = session.predict(handle_file(str(image)), 0, "on", "off", "off", api_name="/identify")
        zip_path = session.predict(api_name="/report")
        assert Path(zip_path).name.startswith("report-") and zip_path.endswith(".zip")
        assert list(app.OUTPUT_ROOT.glob(f"report-*/{Path(zip_path).name}")), "written under the app's output root"
        audit, page = _unzip(zip_path, tmp_path / "first")
        data = image.read_bytes()
        assert audit["input"] == {"name": image.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert [(f["box"], f["decision"], f["name"]) for f in audit["faces"]] == \
            [(m["box"], m["decision"], m["name"]) for m in matches]
        assert [f["score"] for f in audit["faces"]] == pytest.approx([m["score"] for m in matches], abs=1e-5)
        lowlight = next(s for s in audit["stages"] if s["name"] == "lowlight")
        assert lowlight["toggle"] is True and lowlight["fired"] is True and lowlight["parameters"]
        assert audit["settings"]["endpoint"] == "identify"
        assert [c for c in _sections_raw_first(page)] == [["raw", "enhanced"]] * len(matches)
        assert "AI-enhanced \u2014 for investigative lead only" in page

        # A failed request leaves the result on screen, and the report, as they were.
        with pytest.raises(Exception, match="not an image"):
            session.predict(handle_file(str(bad_files["text"])), 0, "on", "off", "off", api_name="/identify")
        again, _ = _unzip(session.predict(api_name="/report"), tmp_path / "again")
        assert _stable(again) == _stable(audit)
        # A new result: the report follows it.
        session.predict(handle_file(str(FIXTURES / "stranger.jpg")), 0, "off", "off", "off", api_name="/identify")
        other, _ = _unzip(session.predict(api_name="/report"), tmp_path / "other")
        assert other["input"]["name"] == "stranger.jpg" and other["faces"][0]["decision"] != "match"
    finally:
        session.predict("Person A", True, "", api_name="/suspects_remove")


def test_scan_report_of_the_example_video(client, tmp_path):
    """The report of the example clip: input hash, per-sighting frame and time, stages with parameters, models
    with repo/revision/sha256, thresholds, raw crop first; scanning again gives the same report except time."""
    video = EXAMPLES / "arcade_clip.mp4"
    audits, pages = [], []
    for run in range(2):
        *_, result = client.predict(handle_file(str(video)), 5, False, "off", "off", "off", api_name="/scan_video")
        audit, page = _unzip(client.predict(api_name="/scan_report"), tmp_path / f"run{run}")
        audits.append(audit)
        pages.append(page.replace(audit["generated_at"], "TIME"))
    audit = audits[0]
    data = video.read_bytes()
    assert audit["kind"] == "video"
    assert audit["input"] == {"name": video.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    fps = audit["video"]["fps"]
    assert fps > 0 and audit["video"]["frames_processed"] == result["frames_processed"] == 10
    assert [(s["track_id"], s["decision"]) for s in audit["sightings"]] == \
        [(s["track_id"], s["decision"]) for s in result["sightings"]], "exactly the sightings shown"
    for sighting in audit["sightings"]:
        assert sighting["frame_index"] % 5 == 0 and sighting["timestamp_s"] == pytest.approx(sighting["frame_index"] / fps)
        assert sighting["first_frame"] <= sighting["frame_index"] <= sighting["last_frame"]
        assert sighting["decision"] != "match", "strangers only (the watchlist is empty)"
    stages = {s["name"]: s for s in audit["stages"]}
    assert {"lowlight", "deblur", "superres"} <= set(stages)
    assert all(s["toggle"] is False for s in stages.values()) and stages["lowlight"]["parameters"]["alpha"] == 0.15
    models = {m["name"]: m for m in audit["models"]}
    for name in ("blazeface-full-range", "embedder-dlib"):
        assert models[name]["repo"] and models[name]["revision"], name
        assert re.fullmatch(r"[0-9a-f]{64}", models[name]["sha256"]), name
    assert audit["thresholds"]["backend"] == "dlib" and audit["thresholds"]["threshold"] > 0
    assert audit["settings"] == {"endpoint": "scan_video", "only_track": False, "stride": 5}
    assert len(_sections_raw_first(pages[0])) == len(audit["sightings"]) > 0
    assert _stable(audits[1]) == _stable(audit) and audits[1]["content_sha256"] == audit["content_sha256"]
    assert pages[1] == pages[0], "the same evidence sheet except the time"


def test_output_folders_of_every_kind_are_purged_after_the_retention_period(monkeypatch):
    import os

    import app

    monkeypatch.setattr(app, "_last_purge", [0.0])
    old = [app._request_folder(kind) for kind in app.OUTPUT_KINDS]
    for folder in old:
        os.utime(folder, (0, 0))  # made in 1970: far past any retention period
    app._last_purge[0] = 0.0
    fresh = app._request_folder("report")
    assert not any(folder.exists() for folder in old) and fresh.exists()
    os.utime(fresh, (0, 0))
    app._request_folder("out")
    assert fresh.exists(), "the folder scan runs at most once a minute"


def test_live_frame_sends_the_gallery_only_when_it_changes(tmp_path, monkeypatch):
    import gradio as gr
    import numpy as np

    import app
    from pipeline import load_image

    monkeypatch.setattr(app.CONFIG, "suspects", tmp_path / "suspects")  # empty watchlist: nobody to show
    app._watchlist.cache_clear()
    frame = np.ascontiguousarray(load_image(EXAMPLES / "group.jpg")[:480, :640])
    annotated, gallery, stats, session, key = app.live_frame(frame, None, None)
    assert annotated.shape == frame.shape and gallery == [] and key == () and "fps" in stats
    annotated, gallery, stats, session, key = app.live_frame(frame, session, key)
    assert isinstance(gallery, type(gr.skip())) and key == ()  # unchanged: not re-sent
    assert session.engine.frames == 2


def test_face_crop_galleries_keep_tile_size_with_few_crops():
    # Gradio 6 stretches a lone image over the whole row unless fit_columns is off (seen in headless Chromium).
    import app

    galleries = [b for b in app.build_app().blocks.values() if isinstance(b, gr.Gallery)]
    assert len(galleries) == 7
    assert all(g.fit_columns is False and g.object_fit == "contain" for g in galleries)
