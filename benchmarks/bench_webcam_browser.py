"""Webcam tab in a real browser: the frame rate a user actually sees.

    python -m benchmarks.bench_webcam_browser [--seconds 30] [--no-write]

The app is served in-process; Debian's headless Chromium gets a fake camera
that plays the real arcade clip (``../shared/datasets/video``, centre-cropped
to 4:3, 640x480, 25 fps, looped) and streams it through the Webcam tab
(``gr.Image(streaming=True).stream(..., stream_every=app.STREAM_EVERY_S)``).
In the page, a poller counts how often the annotated output image changes:
that is the fps the browser shows.  The server's own numbers (processed fps,
latency, dropped frames) are read from the tab's status line at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._browser import chromium_path, fake_camera_args, serve_app, start_webcam_stream, write_y4m
from benchmarks._report import ROOT, machine, write_section
from benchmarks.bench_video import _frames, _watchlist

OUTPUT_LABEL = "Live (raw frame, boxes drawn)"

# Records a timestamp each time the output image's source changes (a new frame shown).
WATCH_OUTPUT_JS = """(label) => {
  const blocks = [...document.querySelectorAll('.block')]
      .filter(b => b.innerText.includes(label) && b.querySelector('img, [data-testid="image"]') !== null)
      .sort((a, b) => a.innerText.length - b.innerText.length);
  const block = blocks.length ? blocks[0] : null;
  window.__frames = [];
  let last = null;
  setInterval(() => {
    const img = (block || document).querySelector('img');
    const src = img ? img.src : null;
    if (src && src !== last && block) { last = src; window.__frames.push(performance.now()); }
  }, 5);
  return block !== null;
}"""


def run(seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    import app

    browser_path = chromium_path()
    if browser_path is None:
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")
    frames = _frames((640, 480), 4 / 3)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        camera = write_y4m(work / "arcade.y4m", frames, fps=25)
        _watchlist(work / "suspects")
        with serve_app(work / "suspects") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=fake_camera_args(camera))
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start_webcam_stream(page, url)
            page.get_by_text("fps ·").first.wait_for(timeout=120_000)  # first processed frame
            time.sleep(5)  # warm-up: models loaded, first tracks recognised
            found = page.evaluate(WATCH_OUTPUT_JS, OUTPUT_LABEL)
            time.sleep(seconds)
            shown = page.evaluate("window.__frames")
            status = page.get_by_text("fps ·").first.inner_text()
            page.screenshot(path=str(ROOT / ".pytest_cache" / "bench_webcam_browser.png"), full_page=True)
            page.locator("button.capture-button").first.click()
            browser.close()
    if not found or len(shown) < 2:
        raise SystemExit(f"could not watch the output image (found={found}, updates={len(shown)})")
    gaps = sorted((b - a) / 1000 for a, b in zip(shown, shown[1:]))
    return {"seconds": seconds, "frames_shown": len(shown), "fps_shown": (len(shown) - 1) / ((shown[-1] - shown[0]) / 1000),
            "gap_median_ms": 1000 * statistics.median(gaps), "gap_p95_ms": 1000 * gaps[int(0.95 * (len(gaps) - 1))],
            "server_status": status.strip(), "stream_every_s": app.STREAM_EVERY_S}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    r = run(args.seconds)
    print(r, flush=True)
    busy = " (other work shared the 2 cores: pessimistic)" if load > 1.5 else ""
    md = f"""## Webcam tab in a real browser (`benchmarks/bench_webcam_browser.py`)

Machine: {machine()}; 1-minute load average at the start: {load:.1f}{busy}; the browser (headless Chromium) and the
server share the same 2 cores. Command: `python -m benchmarks.bench_webcam_browser --seconds {args.seconds:.0f}`.

Fake camera: the real arcade clip, 640x480 at 25 fps, looped; the tab sends a frame every
{r['stream_every_s']:.2f} s (`app.STREAM_EVERY_S`, set from the live-path time measured in the video section), two
people enrolled, default live stages.

| frames shown in {r['seconds']:.0f} s | fps the browser shows | gap between shown frames, median | p95 |
|---|---|---|---|
| {r['frames_shown']} | {r['fps_shown']:.1f} | {r['gap_median_ms']:.0f} ms | {r['gap_p95_ms']:.0f} ms |

The server's status line at the end: "{r['server_status']}".

The browser cannot show more than one frame per `stream_every` (10 fps at 0.1 s) however fast the pipeline is; the
gap includes the round trip (encode in the browser, upload, queue, processing, download, decode).
"""
    if args.no_write:
        print(md)
    else:
        write_section("webcam-browser", md)


if __name__ == "__main__":
    main()
