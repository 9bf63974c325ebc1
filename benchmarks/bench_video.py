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


def _scan_once(args: tuple[str, str]) -> dict:
    """One scan the way the CLI runs it (annotated H.264 written), timed inside this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    from pipeline import Pipeline
    from pipeline.recognition import Identifier, Watchlist
    from pipeline.video import H264Writer, scan_video

    path, suspects = args
    pipeline, identifier = Pipeline.default(), Identifier(Watchlist.load(suspects))
    pipeline.run(np.zeros((720, 1280, 3), np.uint8))  # load the detector
    identifier.embedder.embed_chips([np.zeros((150, 150, 3), np.uint8)])  # and the recogniser
    loaded = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, H264Writer(Path(out) / "annotated.mp4", 25, 1280, 720) as writer:
        result = scan_video(path, pipeline, identifier, keep_frames=False, on_frame=lambda o: writer.write(o.annotated))
    done = time.perf_counter()
    return {"load_s": loaded - t0, "scan_s": done - loaded, "frames": result.frames_processed}


def breakdown(frames: list[np.ndarray], suspects: str) -> dict:
    """Per-frame cost of each part of the offline scan at 720p, warm, in this process (ms)."""
    from pipeline import Pipeline
    from pipeline.recognition import Identifier, Watchlist
    from pipeline.video import H264Writer, VideoEngine

    pipeline = Pipeline.default()
    engine = VideoEngine(pipeline, Identifier(Watchlist.load(suspects)), fps=25)
    toggles = engine.toggles
    pipeline.run(frames[0], toggles, crop_stages=False)
    t = time.perf_counter()
    for rgb in frames:
        pipeline.run(rgb, toggles, crop_stages=False)
    detect = (time.perf_counter() - t) / len(frames)
    t = time.perf_counter()
    outs = [engine.process(rgb) for rgb in frames]
    engine_total = (time.perf_counter() - t) / len(frames)
    presets = {}
    with tempfile.TemporaryDirectory() as out:
        for preset in ("superfast", "ultrafast", "veryfast"):  # veryfast (the product's) last: read back below
            with H264Writer(Path(out) / "a.mp4", 25, 1280, 720, preset=preset) as writer:
                t = time.perf_counter()
                for o in outs:
                    writer.write(o.annotated)
            presets[preset] = ((time.perf_counter() - t) / len(frames), (Path(out) / "a.mp4").stat().st_size)
        encode = presets["veryfast"][0]
        # Decode: read the encoded clip back with OpenCV, as the reader does.
        capture = cv2.VideoCapture(str(Path(out) / "a.mp4"))
        t, n = time.perf_counter(), 0
        while capture.read()[0]:
            n += 1
        decode = (time.perf_counter() - t) / max(n, 1)
    return {"decode_ms": 1000 * decode, "detect_ms": 1000 * detect,
            "track_recognise_draw_ms": 1000 * max(engine_total - detect, 0.0), "encode_ms": 1000 * encode,
            "total_ms": 1000 * (decode + engine_total + encode),
            "presets": {k: (1000 * v[0], v[1] / presets["veryfast"][1]) for k, v in presets.items()}}


def bench_offline(work: Path) -> tuple[list[dict], dict, float]:
    base = _frames((1280, 720), None)
    frames = base + base[::-1] + base  # 3 passes: a 12 s clip, so steady-state speed is measurable
    path = work / "arcade_720p.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1280, 720))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    _watchlist(work / "offline")
    duration = len(frames) / 25
    parts = breakdown(base, str(work / "offline"))
    rows = []
    for parallel in (1, 2, 4):
        with mp.get_context("spawn").Pool(parallel) as pool:
            scans = pool.map(_scan_once, [(str(path), str(work / "offline"))] * parallel)
        load, scan = max(s["load_s"] for s in scans), max(s["scan_s"] for s in scans)
        rows.append({"parallel": parallel, "load_s": load, "scan_s": scan, "x_realtime_each": duration / scan,
                     "x_realtime_each_with_load": duration / (scan + load),
                     "x_realtime_total": parallel * duration / scan})
    return rows, parts, duration


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]  # before this benchmark adds its own processes
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        live = bench_live(work)
        print(live, flush=True)
        offline, parts, duration = bench_offline(work)
        print(offline, parts, flush=True)
    rows = "\n".join(f"| {r['parallel']} | {r['load_s']:.1f} | {r['scan_s']:.1f} | {r['x_realtime_each']:.2f}x | "
                     f"{r['x_realtime_each_with_load']:.2f}x | {r['x_realtime_total']:.2f}x |" for r in offline)
    busy = " (other work shared the 2 cores: timings are pessimistic)" if load > 1.5 else ""
    md = f"""## Video: live path and offline scan (`benchmarks/bench_video.py`)

Machine: {machine()}; 1-minute load average at the start: {load:.1f}{busy}.
Command: `python -m benchmarks.bench_video`.

**Live path** (what the Webcam tab calls, `LiveSession.process`), 640x480 frames of a real
arcade camera clip ({live['frames']} frames, {live['faces_mean']:.1f} tracked faces per frame on
average), two people enrolled, low-light in auto mode and crop stages off (the video default), {live['recognitions']} recognitions in all:

| sustained fps | median latency | p95 latency |
|---|---|---|
| {live['fps']:.1f} | {live['median_ms']:.0f} ms | {live['p95_ms']:.0f} ms |

Targets: >= 15 fps sustained and p95 <= 100 ms.

**Offline scan**, the same clip at 1280x720, 25 fps, played forward, backward and forward again
({duration:.1f} s), stride 1, default stages, annotated H.264 written (as `python -m pipeline scan` does); N videos in
N processes at once, each timing its own model loading and its scan (speed per video as a multiple of real time, and
all videos together):

| videos in parallel | model loading (s) | scan (s) | speed per video | with loading | total throughput |
|---|---|---|---|---|---|
{rows}

Where the time goes (one process, warm, per 720p frame, {parts['total_ms']:.0f} ms in all):
decode {parts['decode_ms']:.1f} ms, detection (with the low-light test) {parts['detect_ms']:.1f} ms, tracking +
recognition of new tracks + drawing {parts['track_recognise_draw_ms']:.1f} ms, H.264 encode {parts['encode_ms']:.1f} ms.

Target: >= 2x real time for one 720p/25 fps video at stride 1, i.e. <= 20 ms per frame for everything:
**{'met' if offline[0]['x_realtime_each'] >= 2 else 'missed'}** ({offline[0]['x_realtime_each']:.2f}x). Detection on every
frame alone costs {parts['detect_ms']:.0f} ms here (two BlazeFace passes so that 24 px faces are found, see the
detection section), and without any detection at all the rest (decode, tracking + recognition + drawing, encode)
still costs {parts['total_ms'] - parts['detect_ms']:.0f} ms, i.e. {40 / max(parts['total_ms'] - parts['detect_ms'], 1e-3):.2f}x real time. So the target
cannot be met on these 2 cores with the outputs #8 asks for, whatever the detector: it needs several times this CPU, or a GPU
for detection and encoding (BlazeFace runs on the CPU here), or `--stride`. **Blocked on hardware.**
Measured and not adopted: libx264 `superfast` / `ultrafast` instead of `veryfast` encode in
{parts['presets']['superfast'][0]:.1f} / {parts['presets']['ultrafast'][0]:.1f} ms per frame for
{parts['presets']['superfast'][1]:.1f}x / {parts['presets']['ultrafast'][1]:.1f}x larger files; the annotated video is
evidence people download, so it keeps `veryfast`.
"""
    print(md)
    if not args.no_write:
        write_section("video", md)


if __name__ == "__main__":
    main()
