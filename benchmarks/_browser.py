"""Headless-browser helpers shared by the browser tests and the browser benchmark.

Chromium is Debian's package (Playwright cannot download browsers here); its
fake camera plays a Y4M file, which it reads as TV-range 4:2:0.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The system Chromium, or ``None`` when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def fake_camera_args(y4m: Path) -> list[str]:
    """Chromium flags that make ``y4m`` the webcam and grant access without asking."""
    return CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-video-capture={y4m}"]


def start_webcam_stream(page, url: str) -> None:
    """Open the app at ``url`` in a Playwright ``page``, go to the Webcam tab and start streaming."""
    page.goto(url)
    page.get_by_role("tab", name="Webcam").click()
    grant = page.locator('[title="grant webcam access"] button')
    if grant.count():
        grant.first.click()
    page.locator("button.capture-button").first.click(timeout=30_000)


def write_y4m(path: Path, frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """Write RGB frames (``H x W x 3`` uint8, even sides) as a 4:2:0 Y4M clip in TV range."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).astype(np.float32)
            y, uv = yuv[:h], yuv[h:]
            y = 16 + y * (219 / 255)
            uv = 128 + (uv - 128) * (224 / 255)
            out.write(b"FRAME\n" + np.clip(np.rint(np.vstack([y, uv])), 0, 255).astype(np.uint8).tobytes())
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(suspects: str | Path) -> Iterator[str]:
    """The Blocks app served in-process on a free port with ``suspects`` as its watchlist; yields its URL."""
    import app

    app.CONFIG.suspects = suspects
    app._watchlist.cache_clear()
    demo = app.build_app()
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
