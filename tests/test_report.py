"""Evidence reports: hashes, fields, raw-first layout, watermark on the pixels, determinism, write failures."""

from __future__ import annotations

import base64
import datetime as dt
import errno
import hashlib
import json
import os
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "faces"
# A name with markup: the sheet must show it as text, never run it.
ENROLLED = "Person A <script>alert(1)</script>"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable(audit: dict) -> dict:
    from pipeline.report import VOLATILE_KEYS

    return {k: v for k, v in audit.items() if k not in VOLATILE_KEYS}


def data_uris(page: str) -> list[tuple[str, bytes]]:
    """``(img class, decoded PNG bytes)`` of every embedded image, in page order."""
    found = re.findall(r'<img class="(\w+)"[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [(cls, base64.b64decode(b64)) for cls, b64 in found]


# ------------------------------------------------------------------ fast: the watermark alone
def test_watermark_is_drawn_on_a_copy_and_enlarges_small_crops():
    from pipeline.report import DISPLAY_SIDE, watermark

    crop = np.full((30, 24, 3), 128, np.uint8)
    marked = watermark(crop)
    assert np.all(crop == 128), "the input must not be modified"
    assert marked.shape[1] >= DISPLAY_SIDE and marked.shape[1] % 24 == 0
    band = marked[-marked.shape[0] // 5:, 10:-10]
    assert (band > 200).all(axis=2).sum() > 100, "white watermark text in the bottom band"
    assert (band < 60).all(axis=2).sum() > band.shape[0] * band.shape[1] * 0.3, "the band is darkened"
    assert (marked[0, :, 0] > 180).all() and (marked[0, :, 1] < 40).all(), "a red frame"
    big = watermark(np.full((400, 300, 3), 90, np.uint8))
    assert big.shape == (400, 300, 3), "large crops keep their size"


# ------------------------------------------------------------------ with the real models


@pytest.fixture(scope="module")
def identifier(tmp_path_factory):
    from pipeline import Pipeline
    from pipeline.recognition import Identifier, Watchlist

    watchlist = Watchlist.load(tmp_path_factory.mktemp("suspects"))
    watchlist.add_person(ENROLLED, [str(FIXTURES / "person_a_1.jpg"), str(FIXTURES / "person_a_2.jpg")])
    # Low-light forced on: the enhanced frame differs from the raw one, so every face has an enhanced crop.
    return Identifier(watchlist, pipeline=Pipeline.default(), stages={"lowlight": True})


def image_report(identifier, path, now=None):
    import pipeline
    from pipeline.report import report_for_matches

    rgb = pipeline.load_image(path)
    result = identifier.pipeline.run(rgb, identifier.stages)
    matches = identifier.match_faces(rgb, result.faces, result.enhanced_crops,
                                     crop_margin=identifier.pipeline.crop_margin)
    return matches, report_for_matches(path, matches, identifier, stage_results=result.stages, now=now,
                                       settings={"source": "test"})


@pytest.fixture(scope="module")
def two_faces(identifier, tmp_path_factory):
    from pipeline.report import write_report

    matches, report = image_report(identifier, FIXTURES / "two_faces.jpg")
    paths = write_report(report, tmp_path_factory.mktemp("report"))
    return matches, report, paths


@pytest.mark.slow
def test_image_report_records_input_faces_stages_models_and_software(two_faces):
    import pipeline

    matches, report, _ = two_faces
    a = report.audit
    data = (FIXTURES / "two_faces.jpg").read_bytes()
    assert a["input"] == {"name": "two_faces.jpg", "size": len(data), "sha256": sha256(data)}
    assert a["kind"] == "image" and len(a["faces"]) == len(matches) == 2
    assert sorted(f["decision"] for f in a["faces"]) == ["match", "no_match"]
    for face, match in zip(a["faces"], matches):
        assert face["frame_index"] == 0 and face["timestamp_s"] is None
        assert face["box"] == list(match.face.box) and face["decision"] == match.decision
        assert face["threshold"] == pytest.approx(match.threshold) and face["score"] == pytest.approx(match.score, abs=1e-4)
        assert face["candidates"] and face["candidates"][0]["name"] == ENROLLED
        assert face["revision"] == match.revision and face["reason"]
    assert a["thresholds"]["backend"] == "dlib" and a["thresholds"]["threshold"] == pytest.approx(0.4)
    assert a["thresholds"]["revision"] == matches[0].revision
    lowlight = next(s for s in a["stages"] if s["name"] == "lowlight")
    assert lowlight["toggle"] is True and lowlight["fired"] is True and lowlight["parameters"]["alpha"] == 0.15
    assert {s["name"] for s in a["stages"]} >= {"lowlight", "deblur", "superres", "detect"}
    assert a["detector"]["method"] == "blazeface" and a["detector"]["score_threshold"] > 0
    models = {m["name"]: m for m in a["models"]}
    for name in ("blazeface-full-range", "embedder-dlib"):
        assert re.fullmatch(r"[0-9a-f]{64}", models[name]["sha256"]), name
    assert models["embedder-dlib"]["revision"] == matches[0].revision
    assert models["embedder-dlib"]["sha256"].startswith(matches[0].revision.split("@")[1][:12])
    import hub_utils

    assert {s.name for s in hub_utils.status()} <= set(models)
    for m in a["models"]:
        assert {"repo", "revision", "sha256", "state"} <= set(m)
    assert a["software"]["pipeline"] == pipeline.__version__ and "numpy" in a["software"]
    assert a["settings"] == {"source": "test"}
    dt.datetime.fromisoformat(a["generated_at"])


@pytest.mark.slow
def test_written_files_match_the_audit_hashes(two_faces):
    _, report, paths = two_faces
    on_disk = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert on_disk == report.audit
    body = json.dumps(stable({k: v for k, v in on_disk.items() if k != "content_sha256"}), sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    assert sha256(body.encode("utf-8")) == on_disk["content_sha256"]
    page = paths["html"].read_text(encoding="utf-8")
    embedded = {sha256(png) for _, png in data_uris(page)}
    for face in on_disk["faces"]:
        for variant in ("raw", "enhanced"):
            entry = face["crops"][variant]
            file = paths["json"].parent / entry["file"]
            assert sha256(file.read_bytes()) == entry["sha256"], entry["file"]
            assert entry["sha256"] in embedded, f"{entry['file']} is embedded in the sheet"
            assert entry["sha256"] in page, "the hash is printed under the image"
    assert oct(paths["json"].stat().st_mode & 0o777) != oct(0o600), "ordinary file permissions, not mkstemp's"


@pytest.mark.slow
def test_raw_crop_comes_first_and_the_enhanced_crop_is_labelled(two_faces):
    _, report, paths = two_faces
    page = paths["html"].read_text(encoding="utf-8")
    sections = page.split('<section class="item">')[1:]
    assert len(sections) == 2
    for section in sections:
        classes = [cls for cls, _ in data_uris(section)]
        assert classes == ["raw", "enhanced"], "raw crop first, enhanced beside it"
        caption = section[section.index('class="enhanced"'):]
        assert "AI-enhanced \u2014 for investigative lead only" in caption
        assert section.index("Raw crop") < section.index("AI-enhanced")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page, "names are escaped"


@pytest.mark.slow
def test_watermark_is_on_the_enhanced_pixels(two_faces):
    matches, report, paths = two_faces
    for face, match in zip(report.audit["faces"], matches):
        entry = face["crops"]["enhanced"]
        shown = np.asarray(Image.open(paths["json"].parent / entry["file"]).convert("RGB"))
        source = match.enhanced_crop
        assert entry["source_pixels_sha256"] == sha256(np.ascontiguousarray(source).tobytes())
        assert (entry["source_width"], entry["source_height"]) == (source.shape[1], source.shape[0])
        factor = shown.shape[1] // source.shape[1]
        plain = cv2.resize(source, (source.shape[1] * factor, source.shape[0] * factor),
                           interpolation=cv2.INTER_NEAREST)
        assert shown.shape == plain.shape
        diff = np.abs(shown.astype(int) - plain.astype(int)).max(axis=2)
        bottom, top = diff[-shown.shape[0] // 6:], diff[shown.shape[0] // 4: shown.shape[0] // 2, 10:-10]
        assert (bottom > 40).mean() > 0.5, "the bottom band is changed"
        assert (top == 0).mean() > 0.95, "the face above the band is left as it is"
        # the raw crop is stored untouched
        raw = np.asarray(Image.open(paths["json"].parent / face["crops"]["raw"]["file"]).convert("RGB"))
        assert np.array_equal(raw, match.raw_crop)


@pytest.mark.slow
def test_same_input_and_settings_give_the_same_report_except_time(identifier, two_faces, tmp_path):
    from pipeline.report import render_html, write_report

    _, first, _ = two_faces
    later = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    _, second = image_report(identifier, FIXTURES / "two_faces.jpg", now=later)
    assert second.audit["generated_at"] == "2031-01-02T03:04:05+00:00"
    assert stable(second.audit) == stable(first.audit)
    assert second.content_sha256 == first.content_sha256
    assert render_html(second).replace(second.audit["generated_at"], "T") == \
        render_html(first).replace(first.audit["generated_at"], "T")
    paths = write_report(second, tmp_path)
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == sorted(
        os.path.basename(name) for name in first.images)
    assert paths["html"].exists()


@pytest.fixture(scope="module")
def person_video(tmp_path_factory):
    """A 2 s, 10 fps clip of an enrolled person (their held-out photo) entering a grey frame at 0.5 s."""
    photo = cv2.imread(str(FIXTURES / "person_a_3.jpg"))
    h, w = photo.shape[:2]
    path = tmp_path_factory.mktemp("video") / "person.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w + 80, h + 40))
    for i in range(20):
        frame = np.full((h + 40, w + 80, 3), 110, np.uint8)
        if i >= 5:
            frame[20:20 + h, 40:40 + w] = photo
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.slow
def test_video_report_has_frame_indices_timestamps_and_raw_first_crops(identifier, person_video, tmp_path):
    from pipeline.report import report_for_scan, write_report
    from pipeline.video import scan_video

    scan = scan_video(str(person_video), identifier.pipeline, identifier, stages={"lowlight": True}, stride=2)
    report = report_for_scan(scan, identifier, pipeline=identifier.pipeline, stages={"lowlight": True},
                             settings={"stride": 2})
    a = report.audit
    assert a["kind"] == "video" and a["input"]["sha256"] == sha256(person_video.read_bytes())
    assert a["video"]["fps"] == pytest.approx(10.0) and a["video"]["frames_processed"] == 10
    match = next(s for s in a["sightings"] if s["decision"] == "match")
    assert match["name"] == ENROLLED and match["first_frame"] >= 4 and match["first_seen_s"] >= 0.4
    assert match["frame_index"] % 2 == 0 and match["timestamp_s"] == pytest.approx(match["frame_index"] / 10)
    assert match["threshold"] == pytest.approx(0.4) and match["best_box"]
    assert match["crops"]["raw"] and match["crops"]["enhanced"]
    assert "best_crop" not in match, "paths of other output folders are not part of the record"
    lowlight = next(s for s in a["stages"] if s["name"] == "lowlight")
    assert lowlight["toggle"] is True and lowlight["fired"] is None  # per frame: not a single yes/no
    paths = write_report(report, tmp_path)
    page = paths["html"].read_text(encoding="utf-8")
    for section in page.split('<section class="item">')[1:]:
        classes = [cls for cls, _ in data_uris(section)]
        assert classes[0] == "raw"
    assert "Sighting 1" in page and a["input"]["sha256"] in page


@pytest.mark.slow
def test_example_video_report(identifier, tmp_path):
    """The shipped example clip: strangers only, so no sighting may be a match."""
    from pipeline.report import report_for_scan, write_report
    from pipeline.video import scan_video

    all_off = {name: False for name in identifier.pipeline.stage_names}
    scan = scan_video(str(EXAMPLES / "arcade_clip.mp4"), identifier.pipeline, identifier, stages=all_off, stride=5)
    report = report_for_scan(scan, identifier, pipeline=identifier.pipeline, stages=all_off)
    assert report.audit["sightings"] and all(s["decision"] != "match" for s in report.audit["sightings"])
    assert all(s["crops"]["enhanced"] is None for s in report.audit["sightings"]), "no stage ran: raw only"
    paths = write_report(report, tmp_path)
    assert "No enhancement stage changed this face" in paths["html"].read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only")])
def test_a_failed_write_is_a_clear_error_and_leaves_no_partial_files(two_faces, tmp_path, monkeypatch, code, words):
    from pipeline.report import ReportWriteError, write_report

    _, report, _ = two_faces
    real_replace = os.replace
    calls = {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if str(dst).endswith("audit.json"):
            raise OSError(code, os.strerror(code))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ReportWriteError, match=words) as info:
        write_report(report, tmp_path / "out")
    assert str(tmp_path / "out") in str(info.value)
    assert not (tmp_path / "out" / "audit.json").exists() and not (tmp_path / "out" / "evidence.html").exists()
    assert not [p for p in (tmp_path / "out").rglob(".*.tmp")], "temporary files are removed"


@pytest.mark.slow
def test_report_without_a_pipeline_records_the_default_detector(identifier, tmp_path):
    import pipeline
    from pipeline.recognition import Identifier
    from pipeline.report import report_for_matches, write_report

    plain = Identifier(identifier.watchlist)  # no enhancement stages: raw crops only
    path = FIXTURES / "person_a_3.jpg"
    matches = plain.identify(pipeline.load_image(path))
    report = report_for_matches(path, matches, plain)
    a = report.audit
    assert a["stages"] == [] and a["detector"]["method"] == "blazeface" and a["detector"]["crop_margin"] == 0.25
    assert a["faces"][0]["decision"] == "match" and a["faces"][0]["crops"]["enhanced"] is None
    page = write_report(report, tmp_path)["html"].read_text(encoding="utf-8")
    assert [cls for cls, _ in data_uris(page)] == ["raw"]


@pytest.mark.slow
def test_identify_with_stages_gives_the_same_matches_as_identify(identifier):
    import pipeline
    from pipeline.report import identify_with_stages

    rgb = pipeline.load_image(FIXTURES / "two_faces.jpg")
    matches, stage_results = identify_with_stages(identifier, rgb)
    plain = identifier.identify(rgb)
    assert [(m.face.box, m.decision, m.name) for m in matches] == [(m.face.box, m.decision, m.name) for m in plain]
    assert [m.score for m in matches] == pytest.approx([m.score for m in plain])
    assert next(s for s in stage_results if s.name == "lowlight").fired is True


@pytest.mark.slow
def test_report_zip_holds_the_audit_the_sheet_and_every_crop(two_faces, tmp_path):
    import zipfile

    from pipeline.report import write_report_zip, zip_name

    _, report, paths = two_faces
    path = write_report_zip(report, tmp_path / "out")
    assert path == tmp_path / "out" / zip_name(report) and path.name == f"report-{report.content_sha256[:12]}.zip"
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names[:2] == ["audit.json", "evidence.html"] and sorted(names[2:]) == sorted(report.images)
        assert json.loads(archive.read("audit.json")) == report.audit
        assert archive.read("evidence.html") == paths["html"].read_bytes()
        for name in report.images:
            assert archive.read(name) == (paths["json"].parent / name).read_bytes()
    assert (tmp_path / "out" / "audit.json").exists(), "the unzipped report is next to it"
    assert not list((tmp_path / "out").glob(".*.tmp"))


@pytest.mark.slow
def test_report_zip_on_a_full_disk_is_a_clear_error(two_faces, tmp_path, monkeypatch):
    from pipeline.report import ReportWriteError, write_report_zip

    _, report, _ = two_faces
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".zip"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ReportWriteError, match="no space left on device"):
        write_report_zip(report, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.zip")) and not list((tmp_path / "out").glob(".*.tmp"))
