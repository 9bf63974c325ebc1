"""Reading video files frame by frame, with clear errors for bad files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts")
DEFAULT_MAX_DURATION_S = 3 * 3600.0


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (frame count may be an estimate)."""

    path: str
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def probe_video(path: str | Path, *, max_duration_s: float | None = DEFAULT_MAX_DURATION_S) -> VideoInfo:
    """Open ``path`` and read its size, frame rate and length.

    Raises:
        InputError: missing, empty, unreadable or undecodable file, no frames,
            or longer than ``max_duration_s``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: file is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(f"{path.name}: not a readable video (unknown format or unsupported codec)")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise InputError(f"{path.name}: no decodable frames (truncated file or unsupported codec)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if fps and 0 < fps < 1000 else 25.0  # some containers omit it
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        info = VideoInfo(str(path), frame.shape[1], frame.shape[0], fps, max(count, 1))
    finally:
        capture.release()
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise InputError(f"{path.name}: video is {info.duration_s / 60:.1f} min long, over the "
                         f"{max_duration_s / 60:.0f} min limit")
    return info


def iter_frames(path: str | Path, *, stride: int = 1, max_frames: int | None = None, start: int = 0,
                stop: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_index, time_s, rgb)`` for every ``stride``-th frame with ``start <= index < stop``.

    ``rgb`` is ``H x W x 3`` uint8.  Times come from the container when it
    gives them, else from the frame index and frame rate.  A truncated file
    simply ends early; callers compare the count with :func:`probe_video`.
    A ``start`` past 0 seeks with OpenCV (key frame, then decode forward);
    when the backend cannot land exactly on ``start`` it reads from the
    beginning and skips.
    """
    if stride < 1:
        raise InputError(f"stride must be 1 or more, not {stride}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{Path(path).name}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    yielded = 0
    try:
        if start > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, start)
            if round(capture.get(cv2.CAP_PROP_POS_FRAMES)) == start:
                index = start
            else:  # inexact seek: reopen and skip frame by frame
                capture.release()
                capture = cv2.VideoCapture(str(path))
        while stop is None or index < stop:
            if index >= start and index % stride == 0:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                pos_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                t = pos_ms / 1000.0 if pos_ms and pos_ms > 0 else index / fps
                # POS_MSEC is the time *after* the frame on some backends; the index is exact.
                t = index / fps if abs(t - index / fps) > 1.0 / fps else t
                yield index, round(t, 3), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    break
            elif not capture.grab():  # skip without decoding to RGB
                break
            index += 1
    finally:
        capture.release()
