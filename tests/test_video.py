"""The video engine: reading, tracking, per-track identity, outputs, CLI scan and bad files."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLES, ROOT, moving_face_clip
from pipeline import Face, InputError, Pipeline, load_image
from pipeline.video import (FaceTracker, LiveSession, VideoEngine, decide_track, probe_video, scan_video,
                            write_scan_outputs)
from pipeline.video.engine import Observation, Sighting, merge_sightings

CLIP = EXAMPLES / "arcade_clip.mp4"
FIXTURES = ROOT / "tests" / "fixtures" / "faces"


class FakeMatch:
    """A recognition result stand-in for the aggregation rules (not a product path)."""

    def __init__(self, decision, person_id=None, score=0.5):
        self.decision, self.person_id, self.name, self.score = decision, person_id, person_id, score
        self.threshold, self.reason, self.backend, self.revision = 0.4, "", "test", "test"


def obs(decision, person=None, quality=0.5, score=0.5):
    return Observation(0, 0.0, quality, FakeMatch(decision, person, score))


def test_decide_track_aggregates_by_quality_and_refuses_conflicts():
    assert decide_track([])[0] == "not_checked"
    assert decide_track([obs("match", "a", 0.8), obs("no_match", None, 0.3)])[:2] == ("match", "a")
    assert decide_track([obs("match", "a", 0.2), obs("no_match", None, 0.9)])[0] == "no_match"
    decision, *_, reason = decide_track([obs("match", "a"), obs("match", "b")])
    assert decision == "inconclusive" and "different people" in reason
    assert decide_track([obs("match", "a", 0.5, 0.6), obs("match", "a", 0.5, 0.9)])[3] == 0.9


def _sighting(tid, person, first, last, decision="match"):
    return Sighting([tid], decision, person, person, 0.8, 0.4, "", first, last, 0, 0, 0, None, 1, 1, "t", "t")


def test_sightings_of_one_person_close_in_time_merge():
    merged = merge_sightings([_sighting(1, "a", 0, 1), _sighting(2, "a", 2.5, 4), _sighting(3, "a", 10, 11),
                              _sighting(4, None, 0, 1, "no_match"), _sighting(5, None, 1.5, 2, "no_match")], 2.0)
    assert [s.track_ids for s in merged] == [[1, 2], [4], [5], [3]]


def test_tracker_keeps_ids_for_moving_faces_and_drops_one_frame_blips():
    tracker = FaceTracker(min_hits=2, max_missed=3)
    ids = []
    for i in range(6):
        faces = [Face((10 + 3 * i, 10, 30, 30), 0.9), Face((200, 50 + 2 * i, 40, 40), 0.8)]
        if i == 2:
            faces.append(Face((400, 300, 20, 20), 0.4))  # a one-frame false positive
        reported = tracker.update(faces, i, i / 25)
        ids.append(sorted(t.track_id for _, t in reported))
    assert ids[0] == [] and all(x == [1, 2] for x in ids[1:])


def test_probe_and_bad_video_files(tmp_path):
    info = probe_video(CLIP)
    assert (info.width, info.height, info.frame_count) == (640, 360, 50) and info.fps == pytest.approx(25)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for path, message in [(empty, "empty"), (text, "not a readable video|no decodable"),
                          (tmp_path / "missing.mp4", "no such file")]:
        with pytest.raises(InputError, match=message):
            probe_video(path)
    with pytest.raises(InputError, match="over the"):
        probe_video(CLIP, max_duration_s=1)


def test_truncated_video_keeps_partial_results(tmp_path):
    data = CLIP.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        result = scan_video(str(cut), Pipeline.default(), None)
    except InputError as exc:  # some containers cannot be opened at all without their index
        assert "readable" in str(exc) or "decodable" in str(exc)
    else:
        assert result.frames_processed >= 1


@pytest.mark.slow
def test_scan_tracks_faces_and_writes_browser_playable_outputs(tmp_path):
    progress = []
    result = scan_video(str(CLIP), Pipeline.default(), None, progress=lambda d, t, e: progress.append((d, t)))
    assert result.frames_processed == 50 and progress[-1] == (50, 50)
    assert len(result.sightings) >= 4
    long_tracks = [s for s in result.sightings if s.frames_seen >= 20]
    assert len(long_tracks) >= 3  # people walking through the whole clip keep one track
    assert all(s.decision == "not_checked" for s in result.sightings)
    paths = write_scan_outputs(result, tmp_path)
    import av

    with av.open(str(paths["video"])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(stream)) == 50
    data = json.loads(paths["json"].read_text())
    first = data["sightings"][0]
    assert {"name", "decision", "score", "first_seen_s", "last_seen_s", "track_id", "best_crop"} <= set(first)
    assert Path(first["best_crop"]).is_file()
    assert paths["csv"].read_text().startswith("track_id,name,id,decision,score")
    assert paths["timeline"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cancel_stops_early_and_keeps_what_was_done():
    cancel = threading.Event()

    def stop_after_five(done, total, elapsed):
        if done >= 5:
            cancel.set()

    result = scan_video(str(CLIP), Pipeline.default(), None, progress=stop_after_five, cancel=cancel)
    assert result.cancelled and result.frames_processed == 5 and "cancelled" in result.warnings[0]


@pytest.fixture(scope="module")
def enrolled_watchlist(tmp_path_factory):
    from pipeline.recognition import Watchlist

    folder = tmp_path_factory.mktemp("suspects")
    watchlist = Watchlist.load(folder)
    watchlist.add_person("Person A", [FIXTURES / "person_a_1.jpg", FIXTURES / "person_a_2.jpg"])
    return watchlist


@pytest.mark.slow
def test_an_enrolled_person_walking_past_is_one_matched_sighting(tmp_path, enrolled_watchlist):
    from pipeline.recognition import Identifier

    clip = moving_face_clip(tmp_path / "a.mp4", load_image(FIXTURES / "person_a_3.jpg"))
    result = scan_video(str(clip), Pipeline.default(), Identifier(enrolled_watchlist))
    matches = [s for s in result.sightings if s.decision == "match"]
    assert len(matches) == 1 and matches[0].name == "Person A"
    assert matches[0].recognitions <= 4 < matches[0].frames_seen  # not recognised on every frame
    assert matches[0].score is not None and matches[0].threshold is not None
    record = matches[0].to_dict()  # the score is a similarity; the threshold applies to the distance
    assert abs(1 - record["distance"] ** 2 / 2 - record["score"]) < 1e-3 and record["distance"] <= record["threshold"]


@pytest.mark.slow
def test_a_stranger_is_never_a_match(tmp_path, enrolled_watchlist):
    from pipeline.recognition import Identifier

    clip = moving_face_clip(tmp_path / "s.mp4", load_image(FIXTURES / "stranger.jpg"))
    result = scan_video(str(clip), Pipeline.default(), Identifier(enrolled_watchlist))
    assert result.sightings and all(s.decision != "match" for s in result.sightings)


def test_live_session_drops_frames_while_busy():
    gate = threading.Event()

    class SlowDetectorForTest:
        def __call__(self, rgb):
            gate.wait(5)
            return []

    session = LiveSession(VideoEngine(Pipeline(detector=SlowDetectorForTest())))
    frame = np.zeros((48, 64, 3), np.uint8)
    worker = threading.Thread(target=session.process, args=(frame,))
    worker.start()
    while not session._busy.locked():
        pass
    assert session.process(frame) is None and session.dropped == 1
    gate.set()
    worker.join()
    assert session.process(frame) is not None and session.stats()["frames"] == 2


@pytest.mark.slow
def test_cli_scan_writes_the_same_outputs(tmp_path, capsys):
    from pipeline.__main__ import main

    assert main(["scan", str(CLIP), "--out", str(tmp_path), "--suspects", "", "--quiet", "--stride", "2",
                 "--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "sighting(s)" in out and "evidence report" in out
    audit = json.loads((tmp_path / "report" / "audit.json").read_text())
    assert audit and (tmp_path / "report" / "evidence.html").stat().st_size > 1000
    assert {p.name for p in tmp_path.iterdir()} >= {"annotated.mp4", "sightings.json", "sightings.csv", "timeline.png"}
    assert json.loads((tmp_path / "sightings.json").read_text())["frames_processed"] == 25


def test_cli_scan_bad_file_exit_code(tmp_path, capsys):
    from pipeline.__main__ import main

    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    assert main(["scan", str(bad), "--out", str(tmp_path / "o"), "--suspects", ""]) == 2
    assert capsys.readouterr().err.startswith("error: ")
