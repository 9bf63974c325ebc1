"""Face quality: is this crop good enough to name someone from?

Four measurements, each mapped to a sub-score in ``[0, 1]``:

* **size** -- the face box's shorter side in pixels of the frame it was found
  in.  The dlib descriptor is trained on 150 px chips and is weak below
  ~100 px; below ~24 px identity is mostly gone.
* **blur** -- variance of the Laplacian of the grey face over the variance
  of the grey face itself, measured after resizing the face to a fixed
  64 px: the number depends neither on the face's size nor on its contrast
  (a dark but sharp face is not called blurry; exposure judges darkness).
  Clean faces from ``../shared/datasets/faces`` score 1.3-6.5 (5th-75th
  percentile), a 100 px face blurred with a Gaussian of sigma 1.5 about 0.9,
  sigma 3 about 0.2.
* **exposure** -- mean luma and the share of clipped (black or white) pixels.
* **pose** -- yaw from landmarks: how far the nose sits from the midpoint of
  the eyes, relative to the distance between the eyes (0 = frontal).

The overall ``score`` is the smallest sub-score: one bad property is enough
to make a face unreliable.  Matching calls a face ``inconclusive`` when the
score is under :data:`MIN_QUALITY`; enrolment refuses photos whose face is
too small or too blurry (:func:`enrolment_problem`).

The anchor points below were set on the labelled faces in
``../shared/datasets/faces`` (clean photos score ~1, the ``heavy`` synthetic
CCTV level of ``benchmarks/bench_recognition.py`` mostly under 0.3); see
BENCHMARKS.md, section "recognition".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

MIN_QUALITY = 0.25
"""Below this overall score a face is ``inconclusive`` whatever its distance."""

# (value at which the sub-score is 0, value at which it is 1)
SIZE_PX = (16.0, 64.0)
BLUR_SHARPNESS = (0.2, 1.3)
DARK_LUMA = (20.0, 60.0)
BRIGHT_LUMA = (245.0, 200.0)
CLIPPED_SHARE = (0.5, 0.15)
YAW_RATIO = (0.75, 0.25)

ENROL_MIN_FACE_PX = 40
"""Enrolment photos need a face at least this many pixels wide."""
ENROL_MIN_BLUR_SCORE = 0.35
"""Enrolment photos need at least this blur sub-score (sharp enough)."""

_BLUR_SIDE = 64


@dataclass(frozen=True)
class FaceQuality:
    """Quality of one face, with the raw measurements behind it.

    Attributes:
        score: overall quality in ``[0, 1]`` (the smallest sub-score).
        size_px: shorter side of the face box, in frame pixels.
        sharpness: contrast-normalised Laplacian variance at 64 px (higher = sharper).
        brightness: mean luma of the face, 0..255.
        yaw: nose offset from the eye midpoint over the eye distance
            (0 frontal, ~1 profile), or ``None`` without landmarks.
        parts: the sub-scores ``size``, ``blur``, ``exposure``, ``pose``.
        problems: short human reasons for low sub-scores
            (e.g. ``"too small (18 px)"``).
    """

    score: float
    size_px: int
    sharpness: float
    brightness: float
    yaw: float | None
    parts: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.score >= MIN_QUALITY

    def summary(self) -> str:
        """One line for people: ``"0.82"`` or ``"0.12: too small (18 px)"``."""
        text = f"{self.score:.2f}"
        return f"{text}: {'; '.join(self.problems)}" if self.problems else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 3),
            "size_px": int(self.size_px),
            "sharpness": round(self.sharpness, 3),
            "brightness": round(self.brightness, 1),
            "yaw": None if self.yaw is None else round(self.yaw, 3),
            "parts": {k: round(v, 3) for k, v in self.parts.items()},
            "problems": list(self.problems),
        }


def _ramp(value: float, zero: float, one: float) -> float:
    """Linear ramp from 0 (at ``zero``) to 1 (at ``one``); works both ways round."""
    t = (value - zero) / (one - zero)
    return float(min(1.0, max(0.0, t)))


def _grey(face_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(face_rgb, cv2.COLOR_RGB2GRAY)


def sharpness(face_rgb: np.ndarray) -> float:
    """Contrast-normalised sharpness of ``face_rgb`` (uint8 RGB) at 64 x 64.

    ``var(Laplacian(grey)) / (var(grey) + 25)``; the constant keeps flat,
    noise-free patches from dividing by ~0.
    """
    grey = cv2.resize(_grey(face_rgb), (_BLUR_SIDE, _BLUR_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=3).var() / (grey.var() + 25.0))


def yaw_from_landmarks(points: Mapping[str, Sequence[float]]) -> float | None:
    """Yaw proxy from named landmarks: ``|nose_x - mid_eyes_x| / eye distance``.

    Needs ``right_eye``, ``left_eye`` and ``nose_tip`` (BlazeFace names; the
    dlib 5-point shape is converted to them by the embedder).
    """
    try:
        right, left, nose = (np.asarray(points[k], dtype=np.float64) for k in ("right_eye", "left_eye", "nose_tip"))
    except KeyError:
        return None
    eye_dist = float(np.linalg.norm(left - right))
    if eye_dist < 1e-6:
        return None
    axis = (left - right) / eye_dist
    offset = float(np.dot(nose - (left + right) / 2.0, axis))
    return abs(offset) / eye_dist


def face_quality(
    face_rgb: np.ndarray,
    size_px: float | None = None,
    landmarks: Mapping[str, Sequence[float]] | None = None,
) -> FaceQuality:
    """Score one face crop.

    Args:
        face_rgb: the face, ``h x w x 3`` uint8 RGB, cut tightly to the face
            box (no margin), at the resolution it was found in.
        size_px: shorter side of the face box in frame pixels; defaults to
            the crop's shorter side.
        landmarks: named points (``right_eye``, ``left_eye``, ``nose_tip``) in
            any coordinates; without them pose is not judged.

    Returns:
        A :class:`FaceQuality`.
    """
    if face_rgb.ndim != 3 or face_rgb.shape[0] < 2 or face_rgb.shape[1] < 2:
        return FaceQuality(0.0, 0, 0.0, 0.0, None, {"size": 0.0}, ("no face pixels",))
    size = float(min(face_rgb.shape[:2]) if size_px is None else size_px)
    grey = _grey(face_rgb)
    sharp = sharpness(face_rgb)
    luma = float(grey.mean())
    clipped = float(np.mean((grey <= 5) | (grey >= 250)))
    yaw = yaw_from_landmarks(landmarks) if landmarks else None

    parts = {
        "size": _ramp(size, *SIZE_PX),
        "blur": _ramp(sharp, *BLUR_SHARPNESS),
        "exposure": min(_ramp(luma, *DARK_LUMA), _ramp(luma, *BRIGHT_LUMA), _ramp(clipped, *CLIPPED_SHARE)),
        "pose": 1.0 if yaw is None else _ramp(yaw, *YAW_RATIO),
    }
    problems = []
    if parts["size"] < 0.5:
        problems.append(f"too small ({size:.0f} px)")
    if parts["blur"] < 0.5:
        problems.append(f"blurry (sharpness {sharp:.2f})")
    if parts["exposure"] < 0.5:
        problems.append(f"badly exposed (mean luma {luma:.0f}, {clipped:.0%} clipped)")
    if parts["pose"] < 0.5:
        problems.append(f"turned away (yaw ratio {yaw:.2f})")
    return FaceQuality(
        score=min(parts.values()),
        size_px=int(round(size)),
        sharpness=sharp,
        brightness=luma,
        yaw=yaw,
        parts=parts,
        problems=tuple(problems),
    )


def enrolment_problem(quality: FaceQuality) -> str | None:
    """Why a face cannot be enrolled (``"too small ..."``, ``"too blurry ..."``), or ``None``."""
    if quality.size_px < ENROL_MIN_FACE_PX:
        return f"face too small ({quality.size_px} px, need at least {ENROL_MIN_FACE_PX} px)"
    if quality.parts.get("blur", 1.0) < ENROL_MIN_BLUR_SCORE:
        return f"face too blurry (sharpness {quality.sharpness:.2f})"
    if quality.parts.get("exposure", 1.0) < 0.25:
        return f"face too dark or too bright (mean luma {quality.brightness:.0f})"
    return None
