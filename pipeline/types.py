"""Small data classes shared across the pipeline.  No logic beyond geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Box = tuple[int, int, int, int]
"""``(x, y, w, h)`` in pixels of the image the face was found in."""

StageTarget = Literal["frame", "crop"]
Toggle = bool | Literal["auto"]
"""A stage is switched on, off, or left to decide for itself (``"auto"``)."""


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: ``(x, y, w, h)`` in pixels of the input image, clipped to it.
        score: detector confidence in ``[0, 1]``.
        landmarks: ``(K, 2)`` float array of ``(x, y)`` pixel positions, or
            ``None`` when the detector gives none (Haar).  BlazeFace gives
            the six points named in ``landmark_names``.
        landmark_names: names of the rows of ``landmarks``.
        detector: which detector found it (``"blazeface"`` or ``"haar"``).
    """

    box: Box
    score: float
    landmarks: np.ndarray | None = None
    landmark_names: tuple[str, ...] = ()
    detector: str = ""

    @property
    def width(self) -> int:
        return self.box[2]

    @property
    def height(self) -> int:
        return self.box[3]

    def expanded_box(self, image_shape: tuple[int, ...], margin: float = 0.0) -> Box:
        """The box grown by ``margin`` times its size on every side, clipped to the image."""
        x, y, w, h = self.box
        img_h, img_w = image_shape[:2]
        dx, dy = int(round(w * margin)), int(round(h * margin))
        x0, y0 = max(0, x - dx), max(0, y - dy)
        x1, y1 = min(img_w, x + w + dx), min(img_h, y + h + dy)
        return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def crop(self, rgb: np.ndarray, margin: float = 0.2) -> np.ndarray:
        """Cut this face out of ``rgb`` (``H x W x 3`` uint8) with a relative margin.

        Returns a copy, so that later stages never write into the frame.
        """
        x, y, w, h = self.expanded_box(rgb.shape, margin)
        return rgb[y : y + h, x : x + w].copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, used by the CLI and the API."""
        out: dict[str, Any] = {
            "box": [int(v) for v in self.box],
            "score": round(float(self.score), 4),
            "detector": self.detector,
        }
        if self.landmarks is not None:
            out["landmarks"] = {
                name: [round(float(px), 1), round(float(py), 1)]
                for name, (px, py) in zip(self.landmark_names, self.landmarks)
            }
        return out


@dataclass
class StageResult:
    """What one stage did during a :meth:`Pipeline.run`.

    Attributes:
        name: registry name of the stage (``"lowlight"``, ``"detect"`` ...).
        target: ``"frame"`` or ``"crop"``.
        fired: whether the stage changed anything (auto mode may skip it).
        seconds: wall time spent in the stage, all crops together.
        note: why it fired or not, for the UI (``"frame is dark (mean luma 31)"``).
        outputs: the stage's output images: one frame, or one per face crop.
    """

    name: str
    target: StageTarget
    fired: bool
    seconds: float
    note: str = ""
    outputs: list[np.ndarray] = field(default_factory=list)


@dataclass
class Result:
    """Everything one :meth:`Pipeline.run` produced.

    ``raw`` is the input frame, untouched; ``frame`` is what detection saw
    (equal to ``raw`` unless a frame stage fired); ``annotated`` is ``raw``
    with the boxes drawn on it -- evidence is shown on the raw frame.
    """

    raw: np.ndarray
    frame: np.ndarray
    annotated: np.ndarray
    faces: list[Face]
    raw_crops: list[np.ndarray]
    enhanced_crops: list[np.ndarray]
    stages: list[StageResult]
    timings: dict[str, float]

    @property
    def enhanced(self) -> bool:
        """True when any enhancement stage changed the frame or a crop."""
        return any(s.fired for s in self.stages if s.name != "detect")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no pixels)."""
        return {
            "faces": [f.to_dict() for f in self.faces],
            "stages": [
                {"name": s.name, "target": s.target, "fired": s.fired,
                 "ms": round(s.seconds * 1000, 1), "note": s.note}
                for s in self.stages
            ],
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            "image_size": [int(self.raw.shape[1]), int(self.raw.shape[0])],
        }
