"""Open-set matching against the watchlist: ``match``, ``no_match`` or ``inconclusive``.

For each face found in an image:

1. Align and embed the raw face (and, when enhancement stages changed it,
   the enhanced crop too).
2. Distance to each watchlist identity = the smallest L2 distance between
   the face's embedding and that person's photos (rows are unit vectors).
3. Decide, in this order:

   * ``inconclusive`` when the raw face's quality score is under
     ``min_quality`` (too small, blurry, dark or turned away to name anyone);
   * ``no_match`` when the best identity is farther than the threshold;
   * ``inconclusive`` when it is not at least ``band + quality_slope * (1 -
     quality)`` under the threshold (a reject option: distances just under
     the threshold are where look-alike impostors land, e.g. two actresses at
     0.387 with dlib, and a poorer face needs a closer distance);
   * ``inconclusive`` when the second-best identity is within ``margin`` of
     the best one (two people on the watchlist look alike for this face);
   * ``match`` otherwise.

4. Identity-drift guard, when an enhanced crop was matched too --
   super-resolved or denoised faces can drift towards someone else (Wu et
   al. 2016; Grm et al. 2019), so enhancement may help us *find* a face but
   never alone *names* it:

   * raw ``match`` A, enhanced crop's nearest identity is someone else ->
     ``inconclusive`` (the crops disagree on who it is);
   * raw not a match, enhanced ``match`` -> ``inconclusive`` (only the
     enhanced crop names someone: a person must look);
   * raw ``match`` A and the enhanced crop's nearest is also A (even if
     farther) -> ``match``: the raw evidence stands, enhancement did not
     point elsewhere;
   * otherwise the raw decision.

Scores: ``distance`` is the L2 distance of unit embeddings (0 identical,
lower is closer); ``score = 1 - distance**2 / 2`` is the cosine similarity,
shown to people.  The threshold is on the distance: a face matches when
``distance <= threshold``.  Per-backend defaults live on the embedder and
were calibrated on ``deepface/master.csv`` (BENCHMARKS.md, "recognition").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..io import ensure_rgb
from ..types import Face
from .embedders import DEFAULT_BACKEND, Embedder, get_embedder
from .quality import MIN_QUALITY, FaceQuality, face_quality
from .watchlist import Detector, Gallery, Watchlist, default_detector

Decision = Literal["match", "no_match", "inconclusive"]
DECISIONS: tuple[Decision, ...] = ("match", "no_match", "inconclusive")


def similarity(distance: float) -> float:
    """Cosine similarity of two unit vectors at L2 ``distance``."""
    return float(1.0 - distance * distance / 2.0)


@dataclass(frozen=True)
class Candidate:
    """One watchlist identity ranked for a face.

    Attributes:
        person_id, name: who.
        distance: smallest L2 distance to any of their photos.
        score: cosine similarity (``1 - distance**2 / 2``), higher is closer.
        photo: which of their photos was closest.
    """

    person_id: str
    name: str
    distance: float
    score: float
    photo: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.person_id, "name": self.name, "distance": round(self.distance, 4),
                "score": round(self.score, 4), "photo": self.photo}


@dataclass(frozen=True)
class CropDecision:
    """The decision for one version of a face crop (``"raw"`` or ``"enhanced"``)."""

    variant: str
    decision: Decision
    reason: str
    candidates: tuple[Candidate, ...]
    quality: FaceQuality

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"decision": self.decision, "reason": self.reason,
                "name": best.name if best and self.decision == "match" else None,
                "score": None if best is None else round(best.score, 4),
                "distance": None if best is None else round(best.distance, 4),
                "quality": round(self.quality.score, 3),
                "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class Match:
    """The recognition result for one face.

    Attributes:
        face: the detected face (box in pixels of the input image).
        decision: ``"match"``, ``"no_match"`` or ``"inconclusive"``.
        reason: why, in one line for people.
        name, person_id: the matched person for ``"match"``, else ``None``.
        score, distance: of the best candidate (``None`` when the watchlist
            is empty).
        threshold, margin, band: the settings used (distances).
        quality: quality of the raw face.
        candidates: the top-k identities of the raw crop, best first.
        backend, revision: the embedder that made the decision.
        raw: the raw crop's decision.
        enhanced: the enhanced crop's decision when enhancement changed the
            face, else ``None``.
        raw_crop, enhanced_crop: the crops (uint8 RGB) for display.
    """

    face: Face
    decision: Decision
    reason: str
    name: str | None
    person_id: str | None
    score: float | None
    distance: float | None
    threshold: float
    margin: float
    band: float
    quality: FaceQuality
    candidates: list[Candidate]
    backend: str
    revision: str
    raw: CropDecision
    enhanced: CropDecision | None = None
    raw_crop: np.ndarray | None = field(default=None, repr=False)
    enhanced_crop: np.ndarray | None = field(default=None, repr=False)

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.face.box

    def label(self) -> str:
        """Short text for drawing on the frame: ``"Jane Doe 0.93"``, ``"no match"``, ``"inconclusive"``."""
        if self.decision == "match":
            return f"{self.name} {self.score:.2f}"
        return self.decision.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (no pixels): the CLI's ``--json`` output per face."""
        return {
            "box": [int(v) for v in self.face.box],
            "decision": self.decision,
            "reason": self.reason,
            "name": self.name,
            "id": self.person_id,
            "score": None if self.score is None else round(self.score, 4),
            "distance": None if self.distance is None else round(self.distance, 4),
            "threshold": round(self.threshold, 4),
            "margin": round(self.margin, 4),
            "band": round(self.band, 4),
            "quality": round(self.quality.score, 3),
            "quality_detail": self.quality.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "backend": self.backend,
            "revision": self.revision,
            "detector_score": round(float(self.face.score), 4),
            "raw": self.raw.to_dict(),
            "enhanced": None if self.enhanced is None else self.enhanced.to_dict(),
        }


# ------------------------------------------------------------------ core decisions
def rank_identities(embedding: np.ndarray, gallery: Gallery, top_k: int = 3) -> list[Candidate]:
    """Watchlist identities ranked by their closest photo to ``embedding`` (``(D,)`` unit vector)."""
    if gallery.embeddings.shape[0] == 0:
        return []
    distances = np.linalg.norm(gallery.embeddings - embedding[None, :], axis=1)
    best: dict[int, int] = {}
    for row, owner in enumerate(gallery.owners):
        if owner not in best or distances[row] < distances[best[owner]]:
            best[int(owner)] = row
    ranked = sorted(best.items(), key=lambda item: distances[item[1]])[:max(1, top_k)]
    out = []
    for owner, row in ranked:
        person = gallery.people[owner]
        d = float(distances[row])
        out.append(Candidate(person.id, person.name, d, similarity(d), gallery.photos[row]))
    return out


def match_limit(threshold: float, band: float, quality_slope: float, quality: float) -> float:
    """Largest distance that may be called a ``match`` for a face of this quality."""
    return threshold - band - quality_slope * (1.0 - min(1.0, max(0.0, quality)))


def decide(candidates: Sequence[Candidate], quality: FaceQuality, threshold: float, margin: float,
           min_quality: float = MIN_QUALITY, band: float = 0.0, quality_slope: float = 0.0) -> tuple[Decision, str]:
    """The open-set decision for one crop; see the module docstring for the rules."""
    if not candidates:
        return "no_match", "the watchlist is empty"
    best = candidates[0]
    if quality.score < min_quality:
        why = "; ".join(quality.problems) or f"quality {quality.score:.2f}"
        return "inconclusive", f"face quality too low to decide ({why})"
    if best.distance > threshold:
        return "no_match", f"nearest is {best.name} at distance {best.distance:.3f} > threshold {threshold:.3f}"
    limit = match_limit(threshold, band, quality_slope, quality.score)
    if best.distance > limit:
        return "inconclusive", (f"{best.name} at distance {best.distance:.3f} is too close to the threshold "
                                f"{threshold:.3f} to be sure (a match needs <= {limit:.3f} at quality "
                                f"{quality.score:.2f})")
    if len(candidates) > 1 and candidates[1].distance - best.distance < margin:
        second = candidates[1]
        return "inconclusive", (f"{best.name} ({best.distance:.3f}) and {second.name} ({second.distance:.3f}) "
                                f"are closer than the margin {margin:.3f}")
    return "match", f"{best.name} at distance {best.distance:.3f} <= {limit:.3f} (threshold {threshold:.3f})"


def combine(raw: CropDecision, enhanced: CropDecision | None) -> tuple[Decision, str]:
    """Final decision from the raw crop and, when there is one, the enhanced crop (drift guard)."""
    if enhanced is None:
        return raw.decision, raw.reason
    same_person = (raw.best is not None and enhanced.best is not None
                   and raw.best.person_id == enhanced.best.person_id)
    if raw.decision == "match" and not same_person:
        return "inconclusive", (f"raw and enhanced crops disagree (identity-drift guard): raw says "
                                f"{_says(raw)}, enhanced says {_says(enhanced)}")
    if raw.decision != "match" and enhanced.decision == "match":
        return "inconclusive", (f"only the enhanced crop matches (identity-drift guard): raw says "
                                f"{_says(raw)}, enhanced says {_says(enhanced)}; a person must check")
    if raw.decision == "match":
        return "match", raw.reason + f" (enhanced crop agrees on the person: {_says(enhanced)})"
    return raw.decision, raw.reason


def _says(crop: CropDecision) -> str:
    if crop.decision == "match" and crop.best is not None:
        return f"match {crop.best.name} ({crop.best.score:.2f})"
    return crop.decision.replace("_", " ")


# ------------------------------------------------------------------ helpers on crops
def _tight_crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return rgb[max(0, y):y + h, max(0, x):x + w]


def _face_in_crop(face: Face, frame_shape: tuple[int, ...], margin: float, crop_shape: tuple[int, ...]) -> Face:
    """``face`` re-expressed in the pixels of a (possibly resized) crop cut with ``margin``."""
    x0, y0, cw, ch = face.expanded_box(frame_shape, margin)
    sx = crop_shape[1] / max(cw, 1)
    sy = crop_shape[0] / max(ch, 1)
    x, y, w, h = face.box
    box = (int(round((x - x0) * sx)), int(round((y - y0) * sy)), int(round(w * sx)), int(round(h * sy)))
    landmarks = None
    if face.landmarks is not None:
        landmarks = (np.asarray(face.landmarks, np.float32) - np.array([x0, y0], np.float32)) * np.array([sx, sy], np.float32)
    return Face(box=box, score=face.score, landmarks=landmarks, landmark_names=face.landmark_names,
                detector=face.detector)


def _crop_decision(variant: str, embedding: np.ndarray, quality: FaceQuality, gallery: Gallery,
                   settings: "Identifier") -> CropDecision:
    candidates = tuple(rank_identities(embedding, gallery, settings.top_k))
    decision, reason = decide(candidates, quality, settings.threshold, settings.margin, settings.min_quality,
                              settings.band, settings.quality_slope)
    return CropDecision(variant, decision, reason, candidates, quality)


# ------------------------------------------------------------------ public entry point
class Identifier:
    """Identify faces against one watchlist with fixed settings (models loaded once).

    Args:
        watchlist: the :class:`Watchlist` (its gallery is cached and rebuilt
            when the folder changes).
        backend: embedding backend (``"dlib"`` by default).
        threshold: distance threshold; the backend's calibrated default when ``None``.
        margin: best-vs-second identity margin; the backend's default when ``None``.
        band: width of the inconclusive band under the threshold; the
            backend's default when ``None``.
        top_k: candidates reported per face.
        min_quality: under this raw-face quality the decision is inconclusive.
        detector: ``rgb -> list[Face]``; BlazeFace by default.
        pipeline: a :class:`pipeline.core.Pipeline` to run enhancement stages;
            when given, ``stages`` are its toggles.
    """

    def __init__(self, watchlist: Watchlist, *, backend: str = DEFAULT_BACKEND, threshold: float | None = None,
                 margin: float | None = None, band: float | None = None, top_k: int = 3,
                 min_quality: float = MIN_QUALITY, detector: Detector | None = None, pipeline: Any = None,
                 stages: Mapping[str, Any] | Iterable[str] | None = None) -> None:
        if not isinstance(watchlist, Watchlist):
            raise InputError("identify needs a Watchlist (use pipeline.Watchlist.load(folder))")
        self.watchlist = watchlist
        self.embedder: Embedder = get_embedder(backend)
        self.backend = backend
        self.threshold = float(self.embedder.threshold if threshold is None else threshold)
        self.margin = float(self.embedder.margin if margin is None else margin)
        self.band = float(self.embedder.band if band is None else band)
        self.quality_slope = float(self.embedder.quality_slope)
        if not 0.0 < self.threshold <= 2.0:
            raise InputError(f"threshold must be a distance between 0 and 2, not {self.threshold}")
        if not 0.0 <= self.margin < 2.0:
            raise InputError(f"margin must be between 0 and 2, not {self.margin}")
        if not 0.0 <= self.band < self.threshold:
            raise InputError(f"band must be between 0 and the threshold ({self.threshold}), not {self.band}")
        if not 1 <= int(top_k) <= 50:
            raise InputError(f"top-k must be between 1 and 50, not {top_k}")
        self.top_k = int(top_k)
        self.min_quality = float(min_quality)
        self.detector = detector
        self.pipeline = pipeline
        self.stages = stages

    def __call__(self, rgb: np.ndarray) -> list[Match]:
        return self.identify(rgb)

    def identify(self, rgb: np.ndarray) -> list[Match]:
        """Every face in ``rgb`` (``H x W x 3`` uint8 RGB) with its decision, best detector score first."""
        raw = ensure_rgb(rgb)
        if self.pipeline is not None:
            result = self.pipeline.run(raw, self.stages)
            return self.match_faces(raw, result.faces, result.enhanced_crops, crop_margin=self.pipeline.crop_margin)
        return self.match_faces(raw, (self.detector or default_detector())(raw))

    def match_faces(self, rgb: np.ndarray, faces: Sequence[Face],
                    enhanced_crops: Sequence[np.ndarray | None] | None = None, *,
                    crop_margin: float = 0.25) -> list[Match]:
        """Match faces that were already detected in ``rgb`` (the video engine's tracks).

        Args:
            rgb: the raw frame, ``H x W x 3`` uint8 RGB.
            faces: faces in pixels of ``rgb``.
            enhanced_crops: per face, its enhanced crop (cut with
                ``crop_margin``) or ``None``; matched too (identity-drift guard).
            crop_margin: the margin the crops were cut with.
        """
        raw = ensure_rgb(rgb)
        faces = list(faces)
        enhanced_crops = list(enhanced_crops) if enhanced_crops is not None else [None] * len(faces)
        gallery = self.watchlist.gallery(self.backend)
        if not faces:
            return []
        aligned = self.embedder.align(raw, faces)
        embeddings = self.embedder.embed_chips([a.chip for a in aligned])
        matches = []
        for face, al, embedding, enhanced_crop in zip(faces, aligned, embeddings, enhanced_crops):
            quality = face_quality(_tight_crop(raw, face.box), min(face.width, face.height), al.landmarks)
            raw_decision = _crop_decision("raw", embedding, quality, gallery, self)
            raw_crop = face.crop(raw, crop_margin)
            enhanced_decision = None
            if enhanced_crop is not None and not (enhanced_crop.shape == raw_crop.shape
                                                  and np.array_equal(enhanced_crop, raw_crop)):
                enhanced_decision = self._match_enhanced(face, raw.shape, crop_margin, enhanced_crop, gallery)
            else:
                enhanced_crop = None
            decision, reason = combine(raw_decision, enhanced_decision)
            best = raw_decision.best
            matched = decision == "match" and best is not None
            matches.append(Match(
                face=face, decision=decision, reason=reason,
                name=best.name if matched else None, person_id=best.person_id if matched else None,
                score=None if best is None else best.score, distance=None if best is None else best.distance,
                threshold=self.threshold, margin=self.margin, band=self.band, quality=quality,
                candidates=list(raw_decision.candidates), backend=self.backend, revision=self.embedder.revision,
                raw=raw_decision, enhanced=enhanced_decision, raw_crop=raw_crop, enhanced_crop=enhanced_crop,
            ))
        return matches

    def _match_enhanced(self, face: Face, frame_shape: tuple[int, ...], crop_margin: float,
                        crop: np.ndarray, gallery: Gallery) -> CropDecision:
        """Align and match an enhanced crop (possibly upscaled) on its own pixels."""
        crop = ensure_rgb(crop)
        local = _face_in_crop(face, frame_shape, crop_margin, crop.shape)
        aligned = self.embedder.align(crop, [local])[0]
        embedding = self.embedder.embed_chips([aligned.chip])[0]
        # Quality of the enhanced face, judged at the size the camera saw it (upscaling adds no detail).
        quality = face_quality(_tight_crop(crop, local.box), min(face.width, face.height), aligned.landmarks)
        return _crop_decision("enhanced", embedding, quality, gallery, self)


def identify(
    rgb: np.ndarray,
    watchlist: Watchlist,
    *,
    backend: str = DEFAULT_BACKEND,
    threshold: float | None = None,
    margin: float | None = None,
    band: float | None = None,
    top_k: int = 3,
    min_quality: float = MIN_QUALITY,
    detector: Detector | None = None,
    pipeline: Any = None,
    stages: Mapping[str, Any] | Iterable[str] | None = None,
) -> list[Match]:
    """Find every face in ``rgb`` and match it against ``watchlist``.

    Args:
        rgb: ``H x W x 3`` uint8 RGB image (grey/RGBA arrays are converted).
        watchlist: from :meth:`Watchlist.load`.
        backend: embedding backend, ``"dlib"`` (default) or a VGGFace model.
        threshold: distance threshold (match when ``distance <= threshold``);
            the backend's calibrated default when ``None``.
        margin: minimum distance gap between the best and second-best
            identity for a ``match``.
        band: distances in ``(threshold - band, threshold]`` are ``inconclusive``.
        top_k: candidates reported per face.
        min_quality: raw-face quality under which the decision is ``inconclusive``.
        detector: ``rgb -> list[Face]``; BlazeFace by default.  Ignored when
            ``pipeline`` is given (the pipeline's detector is used).
        pipeline: a :class:`pipeline.Pipeline`; when given, its stages run
            (toggles from ``stages``) and raw and enhanced crops are both matched.
        stages: stage toggles for ``pipeline.run``.

    Returns:
        One :class:`Match` per face, in the detector's order (best score first).

    For many images, build an :class:`Identifier` once and call it: models
    and the watchlist gallery are loaded once either way (both are cached),
    but the settings are validated only once.
    """
    return Identifier(watchlist, backend=backend, threshold=threshold, margin=margin, band=band, top_k=top_k,
                      min_quality=min_quality, detector=detector, pipeline=pipeline, stages=stages).identify(rgb)
