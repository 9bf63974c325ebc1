"""Drawing results onto frames (boxes, scores).  Returns new arrays."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .types import Face

BOX_COLOUR = (0, 255, 0)
LANDMARK_COLOUR = (255, 64, 64)


def draw_faces(rgb: np.ndarray, faces: Sequence[Face], labels: Sequence[str] | None = None) -> np.ndarray:
    """Draw each face's box, score (or label) and landmarks on a copy of ``rgb``.

    Args:
        rgb: ``H x W x 3`` uint8 RGB frame.
        faces: faces in the pixel coordinates of ``rgb``.
        labels: optional text per face; defaults to the detector score.

    Returns:
        A new ``H x W x 3`` uint8 array; ``rgb`` is not modified.
    """
    out = rgb.copy()
    thickness = max(1, round(max(rgb.shape[:2]) / 640))
    font_scale = 0.4 * thickness
    for i, face in enumerate(faces):
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), BOX_COLOUR, thickness, cv2.LINE_AA)
        text = labels[i] if labels is not None else f"{face.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        ty = y - 3 if y - th - base - 3 >= 0 else y + h + th + 3
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 2, ty + base - 1), BOX_COLOUR, -1)
        cv2.putText(out, text, (x + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
        if face.landmarks is not None:
            for px, py in face.landmarks:
                cv2.circle(out, (int(round(px)), int(round(py))), thickness, LANDMARK_COLOUR, -1, cv2.LINE_AA)
    return out
