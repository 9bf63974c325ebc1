"""Synthetic CCTV-like frames with known face positions, built from real photos.

Protocol (used by ``bench_detect.py`` and reusable by other benchmarks):

1. **Faces**: the single-person photos of ``../shared/datasets/faces`` (deepface
   and facenet-pytorch sets; group photos skipped).  The face box in each
   source photo is found once with the default detector on the full-size
   photo (faces there are hundreds of pixels wide, where every detector
   agrees), and the head is cut out with a 60 % margin.
2. **Backgrounds**: real scenes without people from ``../shared/datasets``
   (``lowlight/DICM``; the 11 images showing people or statues are excluded
   by hand, list below),
   centre-cropped to the frame's aspect ratio, resized, and gamma-brightened
   to a mean luma of about 0.4 when darker (these are day-time frames).
3. **Pasting**: per frame, faces of random identity are scaled so that the
   face box is ``w`` pixels wide (``w`` uniform in each size bucket), flipped
   at random, given a feathered elliptical alpha mask and pasted at random
   non-overlapping places.  The ground-truth box is the scaled source box.
4. **Camera**: the whole frame then gets a Gaussian blur (sigma 0.7, optics),
   Gaussian noise (sigma 3 levels, sensor) and JPEG compression at quality
   70 (the recorder) -- so small faces are as soft as on real footage.

A detection matches a ground-truth face when its centre lies inside the
ground-truth box and its width is within a factor 2 of it (box conventions
differ between detectors; this is fair to all of them).  Unmatched detections
are false positives.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks._report import require_shared

# Backgrounds whose content includes people, faces, statues or masks (checked by eye).
EXCLUDED_BACKGROUNDS = {
    "DICM/02.jpg", "DICM/03.jpg", "DICM/10.jpg", "DICM/12.jpg", "DICM/13.jpg", "DICM/14.jpg",
    "DICM/25.jpg", "DICM/39.jpg", "DICM/41.jpg", "DICM/42.jpg", "DICM/65.jpg",
}

SIZE_BUCKETS = {"small": (24, 40), "large": (60, 120)}


@dataclass
class Frame:
    rgb: np.ndarray
    boxes: np.ndarray  # (N, 4) x, y, w, h
    buckets: list[str]


@functools.lru_cache(maxsize=1)
def face_sources() -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """``[(head_rgb, face_box_in_head)]`` for every single-face photo."""
    from pipeline import detect_faces, load_image

    root = require_shared("faces")
    paths = sorted((root / "deepface").glob("img*.jpg")) + sorted((root / "facenet_pytorch").glob("*/1.jpg"))
    sources = []
    for path in paths:
        if "reflection" in path.name:
            continue
        rgb = load_image(path)
        scale = min(1.0, 1200 / max(rgb.shape[:2]))
        if scale < 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = detect_faces(rgb, min_face_px=80)
        if len(faces) != 1:
            continue
        x, y, w, h = faces[0].box
        m = 0.6
        x0, y0 = max(0, int(x - m * w)), max(0, int(y - m * h))
        x1, y1 = min(rgb.shape[1], int(x + w + m * w)), min(rgb.shape[0], int(y + h + m * h))
        sources.append((rgb[y0:y1, x0:x1].copy(), (x - x0, y - y0, w, h)))
    return sources


@functools.lru_cache(maxsize=1)
def background_paths() -> list[Path]:
    root = require_shared()
    paths = sorted((root / "lowlight" / "DICM").glob("*.jpg"))
    keep = []
    for p in paths:
        rel = f"{p.parent.name}/{p.name}"
        if rel not in EXCLUDED_BACKGROUNDS:
            keep.append(p)
    return keep


def _background(path: Path, width: int, height: int) -> np.ndarray:
    bgr = cv2.imread(str(path))
    h, w = bgr.shape[:2]
    target = width / height
    if w / h > target:
        cw = int(h * target)
        bgr = bgr[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = int(w / target)
        bgr = bgr[(h - ch) // 2 : (h - ch) // 2 + ch]
    rgb = cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    mean = rgb.mean() / 255.0
    if mean < 0.35:
        gamma = np.log(0.4) / np.log(max(mean, 0.02))
        rgb = (255.0 * (rgb / 255.0) ** gamma).astype(np.uint8)
    return rgb


def _paste(frame: np.ndarray, head: np.ndarray, face_box, face_w: int, x: int, y: int, rng) -> tuple:
    fx, fy, fw, fh = face_box
    s = face_w / fw
    hw, hh = max(2, round(head.shape[1] * s)), max(2, round(head.shape[0] * s))
    patch = cv2.resize(head, (hw, hh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
        fx = head.shape[1] - fx - fw
    yy, xx = np.mgrid[0:hh, 0:hw]
    r = ((xx - hw / 2) / (hw / 2)) ** 2 + ((yy - hh / 2) / (hh / 2)) ** 2
    alpha = np.clip((1.0 - r) / 0.3, 0, 1)[:, :, None]
    # Match the scene's light a little: CCTV faces are never studio-lit.
    gain = rng.uniform(0.6, 1.1)
    region = frame[y : y + hh, x : x + hw].astype(np.float32)
    frame[y : y + hh, x : x + hw] = np.clip(alpha * patch * gain + (1 - alpha) * region, 0, 255).astype(np.uint8)
    return (x + fx * s, y + fy * s, fw * s, fh * s)


def make_frame(seed: int, width: int = 1280, height: int = 720, counts=None) -> Frame:
    """One frame; ``counts`` maps size bucket -> number of faces."""
    counts = counts or {"small": 4, "large": 2}
    rng = np.random.default_rng(seed)
    sources = face_sources()
    backgrounds = background_paths()
    frame = _background(backgrounds[rng.integers(len(backgrounds))], width, height)
    boxes, buckets, taken = [], [], []
    for bucket, n in counts.items():
        lo, hi = SIZE_BUCKETS[bucket]
        for _ in range(n):
            head, fbox = sources[rng.integers(len(sources))]
            face_w = int(rng.integers(lo, hi + 1))
            s = face_w / fbox[2]
            hw, hh = int(head.shape[1] * s) + 2, int(head.shape[0] * s) + 2
            for _attempt in range(50):
                x, y = int(rng.integers(0, width - hw)), int(rng.integers(0, height - hh))
                if all(x + hw < tx or tx + tw < x or y + hh < ty or ty + th < y for tx, ty, tw, th in taken):
                    break
            else:
                continue
            taken.append((x, y, hw, hh))
            boxes.append(_paste(frame, head, fbox, face_w, x, y, rng))
            buckets.append(bucket)
    frame = cv2.GaussianBlur(frame, (0, 0), 0.7)
    frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    frame = cv2.imdecode(jpg, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return Frame(frame, np.array(boxes, float).reshape(-1, 4), buckets)


def match(pred_boxes: np.ndarray, gt_boxes: np.ndarray) -> tuple[np.ndarray, int]:
    """Greedy matching: ``(matched flag per gt, number of false positives)``."""
    matched = np.zeros(len(gt_boxes), bool)
    fp = 0
    for px, py, pw, ph in pred_boxes:
        cx, cy = px + pw / 2, py + ph / 2
        hit = -1
        for i, (gx, gy, gw, gh) in enumerate(gt_boxes):
            if not matched[i] and gx <= cx <= gx + gw and gy <= cy <= gy + gh and 0.5 <= pw / gw <= 2.0:
                hit = i
                break
        if hit >= 0:
            matched[hit] = True
        else:
            fp += 1
    return matched, fp
