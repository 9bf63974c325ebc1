"""Archive scans (pipeline.video.archive, pipeline.video.chunks): plan, merge, resume, failures, local Ray.

The example archive: ``walk.mp4`` (an enrolled person walking past, short:
one chunk), ``cam1.mp4`` (the arcade clip, cut into two chunks), a truncated
copy and a file that is not a video.
"""

import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLES, ROOT, moving_face_clip
from pipeline import Pipeline, load_image
from pipeline.video import iter_frames, scan_video
from pipeline.video.archive import FAULT_ENV, ArchiveSettings, actor_options, output_dirs, scan_archive
from pipeline.video.chunks import plan_chunks

CLIP = EXAMPLES / "arcade_clip.mp4"
FACES = ROOT / "tests" / "fixtures" / "faces"
CHUNK_S = 1.6  # the 2 s arcade clip becomes two chunks, the 1.5 s walk stays one


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from pipeline.recognition import Watchlist

    root = tmp_path_factory.mktemp("archive")
    footage = root / "footage"
    footage.mkdir()
    shutil.copyfile(CLIP, footage / "cam1.mp4")
    moving_face_clip(footage / "walk.mp4", load_image(FACES / "person_a_3.jpg"), frames=15)
    (footage / "cut.mp4").write_bytes(CLIP.read_bytes()[: CLIP.stat().st_size // 2])
    (footage / "notes.mp4").write_text("not a video")
    suspects = root / "suspects"
    Watchlist.load(suspects).add_person("Person A", [FACES / "person_a_1.jpg", FACES / "person_a_2.jpg"])
    settings = ArchiveSettings(suspects=str(suspects), chunk_seconds=CHUNK_S)  # as the CLI's --chunk-seconds
    return {"footage": footage, "settings": settings, "root": root}


@pytest.fixture(scope="module")
def plain(archive):
    """Plain single-process scans of the two good videos, as ``sightings.json`` would hold them."""
    from pipeline.recognition import Identifier, Watchlist

    identifier = Identifier(Watchlist.load(archive["settings"].suspects))
    return {name: scan_video(str(archive["footage"] / name), Pipeline.default(), identifier)
            for name in ("cam1.mp4", "walk.mp4")}


@pytest.fixture(scope="module")
def in_process(archive):
    out = archive["root"] / "out_in_process"
    summary = scan_archive([archive["footage"]], out, archive["settings"], show_progress=False)
    return summary, out


def _comparable(data: dict) -> dict:
    data = dict(data)
    data.pop("processing_s")
    # Crop paths name another output folder; the crops themselves are compared as files where it matters.
    data["sightings"] = [{k: v for k, v in s.items() if not k.endswith("crop")} for s in data["sightings"]]
    return data


def _spans(sightings: list[dict]) -> list[tuple]:
    return sorted((s["first_frame"], s["last_frame"], s["frames_seen"], s["decision"], s["name"])
                  for s in sightings)


def _outputs(out: Path, name: str) -> dict:
    return json.loads((out / Path(name).stem / "sightings.json").read_text())


def test_plan_chunks_overlap_and_stride():
    assert plan_chunks(50, 25.0, chunk_seconds=None) == [(0, 0, None)]
    assert plan_chunks(50, 25.0, chunk_seconds=2.0) == [(0, 0, None)]  # not longer than a chunk
    chunks = plan_chunks(1000, 25.0, stride=3, chunk_seconds=10, overlap_s=2)
    assert chunks[0] == (0, 0, 249) and chunks[-1][2] is None
    for (_, _, stop), (start, own, _) in itertools.pairwise(chunks):
        assert own == stop and own - start == 48 and start % 3 == 0 and own % 3 == 0
    assert len(chunks) == 5  # 4 x 249 frames, the last one reads to the end


def test_frame_range_decodes_the_same_frames_as_a_full_read():
    full = {i: (t, rgb) for i, t, rgb in iter_frames(CLIP, stride=2)}
    part = list(iter_frames(str(CLIP), stride=2, start=18, stop=36))
    assert [i for i, _, _ in part] == list(range(18, 36, 2))
    for i, t, rgb in part:
        assert t == full[i][0] and np.array_equal(rgb, full[i][1])


def test_output_folders_never_collide():
    videos = [Path("a/cam1/0001.mp4"), Path("a/cam2/0001.mp4"), Path("a/x.mp4")]
    assert [p.name for p in output_dirs(videos, Path("out"))] == ["cam1_0001", "cam2_0001", "x"]
    assert output_dirs(videos[:1], Path("out")) == [Path("out")]


def test_ray_actors_ask_for_a_gpu_each_and_their_share_of_the_cpus():
    assert actor_options({"CPU": 16.0, "GPU": 4.0}) == ({"num_cpus": 4, "num_gpus": 1}, 4)
    assert actor_options({"CPU": 2.0}) == ({"num_cpus": 1}, 2)
    assert actor_options({"CPU": 2.0}, workers=1) == ({"num_cpus": 2}, 1)
    # Never more CPUs than one node has: such an actor could not be placed.
    assert actor_options({"CPU": 64.0}, workers=2, node_cpus=[16.0] * 4) == ({"num_cpus": 16}, 2)


@pytest.mark.slow
def test_in_process_archive_equals_plain_scans_and_lists_bad_files(archive, plain, in_process):
    summary, out = in_process
    walk = _outputs(out, "walk.mp4")
    expected = json.loads(json.dumps(plain["walk.mp4"].to_dict()))
    assert _comparable(walk) == _comparable(expected)  # one chunk: identical to the plain scan
    assert any(s["decision"] == "match" and s["name"] == "Person A" for s in walk["sightings"])
    # Two chunks: tracks crossing the border are joined, nothing is lost or counted twice.
    cam1 = _outputs(out, "cam1.mp4")
    assert cam1["frames_processed"] == 50
    assert _spans(cam1["sightings"]) == _spans(plain["cam1.mp4"].to_dict()["sightings"])
    import av

    with av.open(str(out / "cam1" / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 50
    failed = dict(summary.failed)
    assert {Path(p).name for p in failed} == {"cut.mp4", "notes.mp4"} and not summary.ok
    assert all("readable" in why or "decodable" in why for why in failed.values())
    assert summary.chunks_total == 3 and summary.chunks_run == 3


@pytest.mark.slow
def test_rerun_reuses_chunks_and_a_failing_chunk_is_retried_then_reported(archive, in_process, tmp_path,
                                                                          monkeypatch):
    _, first = in_process
    out = tmp_path / "out"
    shutil.copytree(first, out)
    work = next(p for p in (out / ".work").iterdir() if p.name.startswith("cam1-"))
    (work / "chunk-0001.json").unlink()  # as if the run had been killed during that chunk
    monkeypatch.setenv(FAULT_ENV, "raise:cam1.mp4/chunk-0001:-")  # fails every time
    summary = scan_archive([archive["footage"]], out, archive["settings"], show_progress=False)
    assert summary.chunks_skipped == 2 and summary.chunks_run == 0 and summary.retries == 1
    why = dict(summary.failed)[str(archive["footage"] / "cam1.mp4")]
    assert "chunk 2/2" in why and "injected fault" in why
    monkeypatch.delenv(FAULT_ENV)
    summary = scan_archive([archive["footage"]], out, archive["settings"], show_progress=False)
    assert summary.chunks_skipped == 2 and summary.chunks_run == 1  # only what was missing
    assert _comparable(_outputs(out, "cam1.mp4")) == _comparable(_outputs(first, "cam1.mp4"))


@pytest.mark.slow
def test_disk_full_while_writing_outputs_is_reported_and_rerun_completes(archive, in_process, tmp_path,
                                                                         monkeypatch):
    from pipeline.video import outputs

    _, first = in_process
    out = tmp_path / "out"
    shutil.copytree(first / ".work", out / ".work")  # the chunks are stored: only the merge runs
    real_write = outputs.atomic_write_bytes

    def full_disk_for_walk(path, data):
        if "walk" in str(path):
            raise OSError(28, os.strerror(28), str(path))
        real_write(path, data)

    monkeypatch.setattr(outputs, "atomic_write_bytes", full_disk_for_walk)
    summary = scan_archive([archive["footage"]], out, archive["settings"], show_progress=False)
    failed = {Path(p).name: why for p, why in summary.failed}
    assert failed["walk.mp4"].startswith("disk full") and "cam1.mp4" not in failed
    assert (out / "cam1" / "sightings.json").is_file() and summary.chunks_run == 0
    monkeypatch.setattr(outputs, "atomic_write_bytes", real_write)
    summary = scan_archive([archive["footage"]], out, archive["settings"], show_progress=False)
    assert "walk.mp4" not in {Path(p).name for p, _ in summary.failed} and summary.chunks_run == 0
    assert _comparable(_outputs(out, "walk.mp4")) == _comparable(_outputs(first, "walk.mp4"))


@pytest.mark.slow
def test_cli_archive_scan_resumes_and_exits_non_zero_on_bad_files(archive, in_process, tmp_path, capsys):
    from pipeline.__main__ import main

    _, first = in_process
    out = tmp_path / "out"
    shutil.copytree(first / ".work", out / ".work")
    assert main(["scan", str(archive["footage"]), "--out", str(out), "--suspects", archive["settings"].suspects,
                 "--chunk-seconds", str(CHUNK_S), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "3 reused from an earlier run" in captured.err and "failed: " in captured.err
    assert "notes.mp4" in captured.err and "walk.mp4: 1 sighting(s), 1 match(es)" in captured.out
    assert {"annotated.mp4", "sightings.json", "sightings.csv", "timeline.png"} <= {p.name for p in (out / "cam1").iterdir()}
    assert main(["scan", str(CLIP), "--out", str(out), "--workers", "2"]) == 2
    assert "--workers needs --ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_archive_with_a_killed_worker_equals_the_in_process_scan(archive, in_process, local_ray, tmp_path,
                                                                     monkeypatch):
    _, expected = in_process
    out = tmp_path / "out"
    # The worker scanning cam1's second chunk exits mid-chunk once, like a process killed by the OOM killer.
    monkeypatch.setenv(FAULT_ENV, f"exit:cam1.mp4/chunk-0001:{tmp_path / 'killed-once'}")
    summary = scan_archive([archive["footage"]], out, archive["settings"], use_ray=True, workers=2,
                           show_progress=False)
    assert (tmp_path / "killed-once").exists() and summary.retries == 1 and summary.chunks_run == 3
    assert {Path(p).name for p, _ in summary.failed} == {"cut.mp4", "notes.mp4"}
    for name in ("walk.mp4", "cam1.mp4"):  # no loss, no duplicates: the same as in one process
        assert _comparable(_outputs(out, name)) == _comparable(_outputs(expected, name))
