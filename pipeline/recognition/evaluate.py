"""Recognition evaluation: synthetic CCTV degradation, open-set metrics.

Used by ``python -m pipeline.eval recognition`` and
``benchmarks/bench_recognition.py``.

**Degradation generator** (:func:`degrade`).  The probe is first scaled so
that its face is :data:`NORMALISED_FACE_PX` wide (celebrity photos have
300-1000 px faces, CCTV does not), then, in this order:

============  =========  ===========  =============  ==========  ============
level         downscale  motion blur  light (gain)   noise sigma JPEG quality
============  =========  ===========  =============  ==========  ============
``light``     x2         3 px         0.70           3           70
``medium``    x3         5 px         0.45           6           50
``heavy``     x4         7 px         0.25           10          30
============  =========  ===========  =============  ==========  ============

Downscale with area averaging; a straight motion-blur line at a random
angle; pixel values multiplied by the gain (a darker scene); Gaussian sensor
noise added after darkening (so it weighs more in the dark); JPEG
re-encoding.  Randomness (angle, noise) comes from ``seed``; the same
``(image, level, seed)`` always gives the same pixels.  With the 160 px
normalisation the faces end up 80 / 53 / 40 px wide.

**Metrics** (:func:`summarise`), over probes whose identity is or is not on
the watchlist:

* ``rank1``: enrolled probes whose nearest identity is the right one (a probe
  whose face is not found counts as a miss);
* ``recognised``: enrolled probes with decision ``match`` and the right name;
* ``tar_at_far_1`` / ``tar_at_far_0.1``: genuine acceptance at the distance
  threshold where 1 % / 0.1 % of impostor comparisons (probe vs each wrong
  identity) are accepted; undetected probes count as rejected;
* ``inconclusive``: share of all probes decided ``inconclusive``;
* ``false_match_non_enrolled``: non-enrolled probes decided ``match``
  (must be 0) and ``wrong_match_enrolled``: enrolled probes matched to
  someone else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .matching import Candidate, CropDecision, Identifier, Match, combine, decide

NORMALISED_FACE_PX = 160
LEVELS: dict[str, dict[str, float]] = {
    "light": {"scale": 2, "motion_px": 3, "gain": 0.70, "noise": 3.0, "jpeg": 70},
    "medium": {"scale": 3, "motion_px": 5, "gain": 0.45, "noise": 6.0, "jpeg": 50},
    "heavy": {"scale": 4, "motion_px": 7, "gain": 0.25, "noise": 10.0, "jpeg": 30},
}
LEVEL_NAMES = ("none",) + tuple(LEVELS)


def normalise_face_size(rgb: np.ndarray, face_width: float, target: int = NORMALISED_FACE_PX) -> np.ndarray:
    """Rescale ``rgb`` so a face ``face_width`` px wide becomes ``target`` px wide."""
    scale = target / max(face_width, 1.0)
    if abs(scale - 1.0) < 1e-3:
        return rgb
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised straight-line blur kernel ``length`` px long at ``angle_deg``."""
    size = int(length) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, num=max(2, 4 * length)):
        kernel[int(round(c + t * dy)), int(round(c + t * dx))] = 1.0
    return kernel / kernel.sum()


def degrade(rgb: np.ndarray, level: str, seed: int = 0) -> np.ndarray:
    """Synthetic CCTV degradation of a uint8 RGB image (see the module docstring)."""
    if level == "none":
        return rgb
    if level not in LEVELS:
        raise ValueError(f"unknown degradation level {level!r}; choose one of: {', '.join(LEVEL_NAMES)}")
    p = LEVELS[level]
    rng = np.random.default_rng(seed)
    scale = int(p["scale"])
    small = cv2.resize(rgb, (max(1, rgb.shape[1] // scale), max(1, rgb.shape[0] // scale)), interpolation=cv2.INTER_AREA)
    blurred = cv2.filter2D(small.astype(np.float32), -1, motion_kernel(int(p["motion_px"]), rng.uniform(0, 180)),
                           borderType=cv2.BORDER_REFLECT)
    dark = blurred * p["gain"] + rng.normal(0.0, p["noise"], blurred.shape)
    out = np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(p["jpeg"])])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------ records and metrics
@dataclass
class ProbeRecord:
    """The outcome for one probe image.

    Attributes:
        label: the probe's true identity (watchlist id).
        enrolled: whether that identity is on the watchlist for this probe.
        found: whether a face was found.
        decision: the final decision (``"not_found"`` when no face).
        name_id: the matched id for ``"match"``.
        distances: identity id -> distance of the raw crop.
        quality: raw face quality score.
        enhanced_changed: whether an enhanced crop was matched too.
    """

    label: str
    enrolled: bool
    found: bool
    decision: str
    name_id: str | None = None
    distances: dict[str, float] = field(default_factory=dict)
    quality: float = 0.0
    enhanced_changed: bool = False


def _filtered(crop: CropDecision, exclude: str, identifier: Identifier) -> CropDecision:
    candidates = tuple(c for c in crop.candidates if c.person_id != exclude)
    decision, reason = decide(candidates, crop.quality, identifier.threshold, identifier.margin,
                              identifier.min_quality, identifier.band, identifier.quality_slope)
    return CropDecision(crop.variant, decision, reason, candidates, crop.quality)


def record_for(match: Match | None, label: str, identifier: Identifier, *, enrolled: bool = True,
               exclude: str | None = None, variant: str = "final") -> ProbeRecord:
    """A :class:`ProbeRecord` for the probe's face, optionally as if ``exclude`` were not enrolled.

    Args:
        match: the probe's face (``None`` when no face was found), computed
            with ``top_k`` covering every identity so that removing one
            identity leaves the right runner-up.
        label: the probe's true identity.
        identifier: the settings to re-decide with.
        enrolled: whether ``label`` is on the watchlist.
        exclude: decide as if this identity were not enrolled.
        variant: ``"final"`` (the pipeline's decision: raw + enhanced with
            the drift guard) or ``"enhanced"`` (the enhanced crop alone, as
            if its decision were trusted; the raw crop where nothing was
            enhanced) -- to show what enhancement does to recognition.
    """
    enrolled = enrolled and exclude != label
    if match is None:
        return ProbeRecord(label, enrolled, False, "not_found")
    raw, enhanced = match.raw, match.enhanced
    if exclude is not None:
        raw = _filtered(raw, exclude, identifier)
        enhanced = None if enhanced is None else _filtered(enhanced, exclude, identifier)
    if variant == "enhanced":
        raw, enhanced = (enhanced or raw), None
    decision, _ = combine(raw, enhanced)
    best: Candidate | None = raw.best
    return ProbeRecord(label, enrolled, True, decision,
                       name_id=best.person_id if decision == "match" and best else None,
                       distances={c.person_id: c.distance for c in raw.candidates},
                       quality=raw.quality.score, enhanced_changed=enhanced is not None)


def probe_face(matches: Sequence[Match]) -> Match | None:
    """The probe's subject: the largest face found (probe photos show one person)."""
    return max(matches, key=lambda m: m.face.width * m.face.height) if matches else None


def _tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """``(TAR, threshold)`` at the largest distance threshold whose impostor acceptance is <= ``far``."""
    if genuine.size == 0:
        return float("nan"), float("nan")
    if impostor.size == 0:
        return float(np.mean(np.isfinite(genuine))), float("inf")
    imp = np.sort(impostor)
    allowed = int(math.floor(far * imp.size))  # impostor comparisons we may accept
    threshold = imp[allowed] - 1e-9 if allowed < imp.size else float("inf")
    return float(np.mean(genuine <= threshold)), float(threshold)


def summarise(records: Sequence[ProbeRecord]) -> dict[str, Any]:
    """Open-set metrics over probe records (see the module docstring)."""
    enrolled = [r for r in records if r.enrolled]
    strangers = [r for r in records if not r.enrolled]
    genuine = np.array([r.distances.get(r.label, np.inf) if r.found else np.inf for r in enrolled], np.float64)
    impostor = np.array([d for r in records if r.found for pid, d in r.distances.items() if pid != r.label],
                        np.float64)
    tar1, thr1 = _tar_at_far(genuine, impostor, 0.01)
    tar01, thr01 = _tar_at_far(genuine, impostor, 0.001)

    def share(items: Sequence[ProbeRecord], test) -> float:
        return float(np.mean([bool(test(r)) for r in items])) if items else float("nan")

    def rank1(r: ProbeRecord) -> bool:
        return r.found and bool(r.distances) and min(r.distances, key=r.distances.get) == r.label

    return {
        "probes": len(records),
        "enrolled_probes": len(enrolled),
        "non_enrolled_probes": len(strangers),
        "face_found": share(records, lambda r: r.found),
        "rank1": share(enrolled, rank1),
        "recognised": share(enrolled, lambda r: r.decision == "match" and r.name_id == r.label),
        "tar_at_far_1": tar1, "threshold_at_far_1": thr1,
        "tar_at_far_0.1": tar01, "threshold_at_far_0.1": thr01,
        "impostor_comparisons": int(impostor.size),
        "inconclusive": share(records, lambda r: r.decision == "inconclusive"),
        "false_match_non_enrolled": sum(r.decision == "match" for r in strangers),
        "wrong_match_enrolled": sum(r.decision == "match" and r.name_id != r.label for r in enrolled),
        "mean_quality": float(np.mean([r.quality for r in records if r.found])) if any(r.found for r in records) else 0.0,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for a :func:`summarise` result."""
    def pct(v: float) -> str:
        return "n/a" if v != v else f"{100 * v:.1f} %"

    return "\n".join([
        f"probes: {summary['probes']} ({summary['enrolled_probes']} enrolled, "
        f"{summary['non_enrolled_probes']} not enrolled); face found in {pct(summary['face_found'])}",
        f"rank-1:                 {pct(summary['rank1'])}",
        f"recognised (match, right name): {pct(summary['recognised'])}",
        f"TAR at FAR 1 %:         {pct(summary['tar_at_far_1'])} (distance <= {summary['threshold_at_far_1']:.3f})",
        f"TAR at FAR 0.1 %:       {pct(summary['tar_at_far_0.1'])} (distance <= {summary['threshold_at_far_0.1']:.3f}; "
        f"{summary['impostor_comparisons']} impostor comparisons)",
        f"inconclusive:           {pct(summary['inconclusive'])}",
        f"false matches of non-enrolled people: {summary['false_match_non_enrolled']}",
        f"enrolled people matched to someone else: {summary['wrong_match_enrolled']}",
    ])
