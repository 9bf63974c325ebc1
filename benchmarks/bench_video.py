"""Video benchmark: the live (webcam) path and offline scans.

    python -m benchmarks.bench_video

* Live: frames of ``../shared/datasets/video/facenet_pytorch_video.mp4`` (a real
  arcade camera, centre-cropped to 4:3 and resized to 640x480) replayed through
  ``LiveSession.process`` -- the function the Webcam tab calls -- with two
  people enrolled and low-light enhancement in auto mode.  Reports sustained
  fps (1 / mean frame time) and median / p95 latency per frame.
* Offline: the same clip at 1280x720, 25 fps, scanned at stride 1 with default
  stages; speed as multiples of real time, for 1, 2 and 4 videos in parallel
  processes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._report import ROOT, machine, require_shared, write_section

FIXTURES = ROOT / "tests" / "fixtures" / "faces"


def _frames(size: tuple[int, int], aspect: float | None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(require_shared("video", "facenet_pytorch_video.mp4")))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if aspect:
            h, w = bgr.shape[:2]
            cw = int(h * aspect)
            bgr = bgr[:, (w - cw) // 2 : (w - cw) // 2 + cw]
        frames.append(cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    return frames


def _watchlist(folder: Path):
    from pipeline.recognition import Watchlist

    wl = Watchlist.load(folder)
    wl.add_person("Person A", [FIXTURES / "person_a_1.jpg", FIXTURES / "person_a_2.jpg"])
    wl.add_person("Person B", [FIXTURES / "person_b_1.jpg"])
    return wl


def bench_live(work: Path) -> dict:
    from pipeline import Pipeline
    from pipeline.recognition import Identifier
    from pipeline.video import LiveSession, VideoEngine

    frames = _frames((640, 480), 4 / 3)
    engine = VideoEngine(Pipeline.default(), Identifier(_watchlist(work / "live")), stages=None,
                         fps=10)
    session = LiveSession(engine)
    session.process(frames[0])  # warm-up: models and interpreters
    session = LiveSession(VideoEngine(Pipeline.default(), engine.recogniser, stages=None, fps=10))
    times, faces = [], []
    for rgb in frames:
        out = session.process(rgb)
        times.append(out.seconds)
        faces.append(len(out.faces))
    times.sort()
    return {"frames": len(frames), "faces_mean": float(np.mean(faces)), "fps": len(times) / sum(times),
            "median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * len(times)) - 1],
            "recognitions": sum(len(s.observations) for s in session.engine.states.values())}


def _scan_once(args: tuple[str, str]) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipeline import Pipeline
    from pipeline.recognition import Identifier, Watchlist
    from pipeline.video import scan_video

    path, suspects = args
    t0 = time.perf_counter()
    scan_video(path, Pipeline.default(), Identifier(Watchlist.load(suspects)), keep_frames=False)
    return time.perf_counter() - t0


def bench_offline(work: Path) -> list[dict]:
    frames = _frames((1280, 720), None)
    path = work / "arcade_720p.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1280, 720))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    _watchlist(work / "offline")
    duration = len(frames) / 25
    _scan_once((str(path), str(work / "offline")))  # warm-up in this process (fills caches on disk)
    rows = []
    for parallel in (1, 2, 4):
        with mp.get_context("spawn").Pool(parallel) as pool:
            # Each worker times its own scan (model loading included, process start-up not).
            scans = pool.map(_scan_once, [(str(path), str(work / "offline"))] * parallel)
            wall = max(scans)
        rows.append({"parallel": parallel, "wall_s": wall, "x_realtime_each": duration / wall,
                     "x_realtime_total": parallel * duration / wall})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        live = bench_live(work)
        print(live, flush=True)
        offline = bench_offline(work)
        print(offline, flush=True)
    load = os.getloadavg()[0]
    rows = "\n".join(f"| {r['parallel']} | {r['wall_s']:.1f} | {r['x_realtime_each']:.2f}x | {r['x_realtime_total']:.2f}x |"
                     for r in offline)
    md = f"""## Video: live path and offline scan (`benchmarks/bench_video.py`)

Machine: {machine()}; load average when it finished: {load:.1f} (other work was running on
the 2 cores, so these are pessimistic).  Command: `python -m benchmarks.bench_video`.

**Live path** (what the Webcam tab calls, `LiveSession.process`), 640x480 frames of a real
arcade camera clip ({live['frames']} frames, {live['faces_mean']:.1f} tracked faces per frame on
average), two people enrolled, low-light in auto mode and crop stages off (the video default), {live['recognitions']} recognitions in all:

| sustained fps | median latency | p95 latency |
|---|---|---|
| {live['fps']:.1f} | {live['median_ms']:.0f} ms | {live['p95_ms']:.0f} ms |

Targets: >= 15 fps sustained and p95 <= 100 ms.

**Offline scan**, the same clip at 1280x720, 25 fps, stride 1, default stages, N videos in
N processes at once, each timing its own scan including loading its models (speed per video as a
multiple of real time, and all together):

| videos in parallel | wall time (s) | speed per video | total throughput |
|---|---|---|---|
{rows}

Target: >= 2x real time for one 720p/25 fps video at stride 1.
"""
    print(md)
    if not args.no_write:
        write_section("video", md)


if __name__ == "__main__":
    main()
