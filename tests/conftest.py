"""Shared test fixtures.  Tests are offline and need nothing outside the repo."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

# One in-process server and port picker for the API, fuzz and browser tests and the browser benchmark.
from benchmarks._browser import free_port, serve_app as running_app  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Faces in examples/group.jpg (1200 x 630): centres of the six faces, checked by eye.
GROUP_FACE_CENTRES = [(759, 523), (594, 104), (468, 188), (896, 499), (657, 252), (263, 305)]


@pytest.fixture(scope="session")
def group_jpg() -> Path:
    return EXAMPLES / "group.jpg"


def png_bytes_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width x height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def bad_files(tmp_path: Path, group_jpg: Path) -> dict[str, Path]:
    """One file per kind of bad input the issue lists."""
    files = {
        "empty": tmp_path / "empty.jpg",
        "truncated": tmp_path / "truncated.jpg",
        "text": tmp_path / "notes.jpg",
        "bomb": tmp_path / "bomb.png",
    }
    files["empty"].write_bytes(b"")
    data = group_jpg.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["text"].write_text("this is not an image\n")
    files["bomb"].write_bytes(png_bytes_declaring(30000, 30000))
    return files


def moving_face_frames(face_rgb: np.ndarray, frames: int = 20, *, background: np.ndarray | None = None,
                       face_width: int = 140, start: tuple[int, int] = (40, 60), step: int = 8) -> list[np.ndarray]:
    """RGB frames of one face photo drifting right across ``background`` (default: grey 480 x 360).

    The face, resized to ``face_width`` px, starts at ``start`` (x, y) and
    moves ``step`` px per frame.
    """
    if background is None:
        background = np.full((360, 480, 3), 90, np.uint8)
    face = cv2.resize(face_rgb, (face_width, int(face_width * face_rgb.shape[0] / face_rgb.shape[1])),
                      interpolation=cv2.INTER_AREA)
    out = []
    for i in range(frames):
        canvas = background.copy()
        x, y = start[0] + step * i, start[1]
        h = min(face.shape[0], canvas.shape[0] - y)
        canvas[y : y + h, x : x + face.shape[1]] = face[:h]
        out.append(canvas)
    return out


def moving_face_clip(path: Path, face_rgb: np.ndarray, frames: int = 20, **placement) -> Path:
    """:func:`moving_face_frames` written as a 10 fps mp4 (made here, not shipped)."""
    images = moving_face_frames(face_rgb, frames, **placement)
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
