"""Writing scan results: browser-playable H.264 video, sightings JSON/CSV, timeline plot, crops."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..io import encode_png
from .engine import ScanResult, Sighting

CSV_FIELDS = ["track_id", "name", "id", "decision", "score", "distance", "threshold", "first_seen_s", "last_seen_s",
              "first_frame", "last_frame", "frames_seen", "recognitions", "backend", "revision", "reason",
              "best_crop", "enhanced_crop"]
DECISION_COLOURS = {"match": "#d62728", "inconclusive": "#ff7f0e", "no_match": "#7f7f7f", "not_checked": "#bbbbbb"}


class H264Writer:
    """Streams RGB frames into an H.264 (yuv420p) MP4 that browsers play.

    OpenCV's pip wheels cannot encode H.264 and browsers do not play its
    ``mp4v``; PyAV bundles FFmpeg with libx264.  Odd frame sizes are cropped
    by one pixel (yuv420p needs even sides).  ``preset``: libx264's speed /
    size trade-off (``veryfast`` by default; see BENCHMARKS.md, video).
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int, *, preset: str = "veryfast") -> None:
        import av
        from fractions import Fraction

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height = width - width % 2, height - height % 2
        self._container = av.open(str(self.path), mode="w")
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": preset, "movflags": "+faststart"}

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: self.height, : self.width]), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write frames (``H x W x 3`` uint8 RGB, all one size) as browser-playable MP4."""
    writer = None
    for rgb in frames:
        if writer is None:
            writer = H264Writer(path, fps, rgb.shape[1], rgb.shape[0])
        writer.write(rgb)
    if writer is None:
        raise ValueError("no frames to write")
    writer.close()
    return Path(path)


def save_crops(sightings: Sequence[Sighting], folder: str | Path) -> None:
    """Save each sighting's best raw crop (and enhanced crop, labelled) as PNG; set their paths."""
    folder = Path(folder)
    for s in sightings:
        if s.best_crop is not None:
            path = folder / f"track{s.track_id:04d}_raw.png"
            atomic_write_bytes(path, encode_png(s.best_crop))
            s.best_crop_path = str(path)
        if s.enhanced_crop is not None:
            path = folder / f"track{s.track_id:04d}_AI-enhanced.png"
            atomic_write_bytes(path, encode_png(s.enhanced_crop))
            s.enhanced_crop_path = str(path)


def sightings_json(result: ScanResult) -> bytes:
    return json.dumps(result.to_dict(), indent=2).encode()


def sightings_csv(sightings: Sequence[Sighting]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for s in sightings:
        writer.writerow(s.to_dict())
    return buffer.getvalue().encode()


def timeline_png(sightings: Sequence[Sighting], duration_s: float, title: str = "") -> bytes:
    """A timeline: one row per sighting, a bar from first to last seen, coloured by decision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(sightings)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.35 * max(len(rows), 1)), dpi=100)
    for i, s in enumerate(rows):
        colour = DECISION_COLOURS.get(s.decision, "#bbbbbb")
        ax.barh(i, max(s.last_seen_s - s.first_seen_s, 0.04), left=s.first_seen_s, color=colour, height=0.6)
        score = f" {s.score:.2f}" if s.score is not None else ""
        label = (s.name if s.decision == "match" else s.decision.replace("_", " ")) + score
        ax.text(s.last_seen_s, i, f"  {label}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"#{s.track_id}" for s in rows], fontsize=8)
    ax.set_xlim(0, max(duration_s, max((s.last_seen_s for s in rows), default=0)) * 1.15 + 0.1)
    ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("time in video (s)")
    ax.set_title(title or "Sightings (red: match, orange: inconclusive, grey: no match)", fontsize=9)
    if not rows:
        ax.text(0.5, 0.5, "no faces seen", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_scan_outputs(result: ScanResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``annotated.mp4``, ``sightings.json``, ``sightings.csv``, ``timeline.png`` and crops into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    save_crops(result.sightings, out / "crops")
    if result.annotated_frames:
        paths["video"] = write_video(out / "annotated.mp4", result.annotated_frames, result.fps)
    paths["json"] = out / "sightings.json"
    atomic_write_bytes(paths["json"], sightings_json(result))
    paths["csv"] = out / "sightings.csv"
    atomic_write_bytes(paths["csv"], sightings_csv(result.sightings))
    paths["timeline"] = out / "timeline.png"
    atomic_write_bytes(paths["timeline"], timeline_png(result.sightings, result.duration_s, Path(result.path).name))
    return paths
