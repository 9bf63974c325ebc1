"""The video engine: detection every frame, tracking, recognition per track.

One engine serves the Video tab, the Webcam tab, the CLI ``scan`` command and
the API.  Per frame:

1. frame stages (e.g. low-light) and detection run through the
   :class:`~pipeline.Pipeline` (crop stages are *not* run on every face);
2. the tracker links detections into tracks;
3. a track is recognised when it is first confirmed, and again only when its
   face is clearly better than the best one recognised so far (bigger and
   more confident -- at most ``max_recognitions`` times); crop stages run on
   just those faces;
4. a track's identity is decided from all its recognitions together
   (:func:`decide_track`), never from one frame;
5. tracks become sightings; consecutive sightings of the same matched person
   less than ``merge_gap_s`` apart are merged, so one person walking past is
   one sighting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..annotate import draw_faces
from ..core import Pipeline
from ..errors import InputError
from ..types import Face, Toggle
from .reader import DEFAULT_MAX_DURATION_S, iter_frames, probe_video
from .tracker import FaceTracker, Track


class MatchLike(Protocol):
    decision: str
    name: str | None
    person_id: str | None
    score: float | None
    threshold: float
    reason: str
    backend: str
    revision: str


class Recogniser(Protocol):
    def match_faces(self, rgb: np.ndarray, faces: list[Face],
                    enhanced_crops: list[np.ndarray | None] | None = None,
                    crop_margin: float = 0.25) -> list[MatchLike]: ...


@dataclass
class Observation:
    """One recognition of a track's face."""

    frame_index: int
    time_s: float
    quality: float
    match: MatchLike


@dataclass
class TrackState:
    track_id: int
    first_frame: int
    last_frame: int
    first_seen_s: float
    last_seen_s: float
    frames_seen: int = 0
    best_proxy: float = 0.0          # quality proxy of the best face recognised so far
    best_crop: np.ndarray | None = None
    best_enhanced_crop: np.ndarray | None = None
    best_box: tuple[int, int, int, int] | None = None
    best_frame: int = 0
    observations: list[Observation] = field(default_factory=list)

    def decision(self) -> tuple[str, str | None, str | None, float | None, str]:
        return decide_track(self.observations)


def decide_track(observations: list[Observation]) -> tuple[str, str | None, str | None, float | None, str]:
    """Aggregate a track's recognitions: ``(decision, name, person_id, score, reason)``.

    Each recognition votes with its face quality as weight.  Two different
    people matched on one track make it ``inconclusive`` (a tracker swap or
    a doubtful match); otherwise the heaviest of match / no_match /
    inconclusive wins, and a match's score is the best of its votes.
    """
    if not observations:
        return "not_checked", None, None, None, "not recognised yet"
    matched = {o.match.person_id for o in observations if o.match.decision == "match"}
    if len(matched) > 1:
        names = sorted({o.match.name for o in observations if o.match.decision == "match"})
        return "inconclusive", None, None, None, f"track matched different people: {', '.join(names)}"
    weights: dict[str, float] = {}
    for o in observations:
        weights[o.match.decision] = weights.get(o.match.decision, 0.0) + max(o.quality, 1e-3)
    decision = max(weights, key=lambda d: (weights[d], d == "inconclusive"))
    votes = [o for o in observations if o.match.decision == decision]
    best = max(votes, key=lambda o: (o.match.score or 0.0))
    n = len(observations)
    reason = f"{len(votes)} of {n} recognition(s) say {decision.replace('_', ' ')}"
    if decision == "match":
        return decision, best.match.name, best.match.person_id, best.match.score, reason
    return decision, None, None, best.match.score, reason


@dataclass
class Sighting:
    """One person seen once (a track, or merged tracks of one matched person).

    ``score`` is the cosine similarity of the deciding recognition (higher is
    closer); ``threshold`` is on the L2 distance of unit embeddings (a match
    needs ``distance <= threshold``), so :meth:`to_dict` gives that distance too.
    """

    track_ids: list[int]
    decision: str
    name: str | None
    person_id: str | None
    score: float | None
    threshold: float | None
    reason: str
    first_seen_s: float
    last_seen_s: float
    first_frame: int
    last_frame: int
    best_frame: int
    best_box: tuple[int, int, int, int] | None
    frames_seen: int
    recognitions: int
    backend: str | None
    revision: str | None
    best_crop: np.ndarray | None = field(default=None, repr=False)
    enhanced_crop: np.ndarray | None = field(default=None, repr=False)
    best_crop_path: str | None = None
    enhanced_crop_path: str | None = None

    @property
    def track_id(self) -> int:
        return self.track_ids[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id, "track_ids": self.track_ids, "name": self.name, "id": self.person_id,
            "decision": self.decision, "score": None if self.score is None else round(float(self.score), 4),
            # score = 1 - distance**2 / 2 (unit embeddings): the distance the threshold applies to.
            "distance": None if self.score is None else round(math.sqrt(max(0.0, 2.0 * (1.0 - float(self.score)))), 4),
            "threshold": None if self.threshold is None else round(float(self.threshold), 4),
            "reason": self.reason, "first_seen_s": round(self.first_seen_s, 3),
            "last_seen_s": round(self.last_seen_s, 3), "first_frame": self.first_frame,
            "last_frame": self.last_frame, "best_frame": self.best_frame,
            "best_box": None if self.best_box is None else [int(v) for v in self.best_box],
            "frames_seen": self.frames_seen, "recognitions": self.recognitions,
            "backend": self.backend, "revision": self.revision,
            "best_crop": self.best_crop_path, "enhanced_crop": self.enhanced_crop_path,
        }


@dataclass
class FrameOutput:
    frame_index: int
    time_s: float
    annotated: np.ndarray
    faces: list[Face]
    seconds: float


def _quality_proxy(face: Face) -> float:
    # Cheap and monotone in what recognition needs: pixels on the face and detector confidence.
    return float(min(face.width, face.height) * face.score)


def video_default_toggles(pipeline: Pipeline) -> dict[str, Toggle]:
    """Default stages for video: frame stages in auto mode, crop stages off.

    Crop enhancement costs tens to hundreds of ms per face on a CPU and, in
    ``benchmarks/bench_recognition.py``, never made recognition better than
    the raw crop; switch it on explicitly (``--stages``) for review.
    """
    return {s.name: ("auto" if s.target == "frame" else False) for s in pipeline.stages}


class VideoEngine:
    """Stateful per-stream processor.  Not thread-safe: one engine per stream.

    Args:
        pipeline: detector and enhancement stages.
        recogniser: matches faces against the watchlist; ``None`` tracks faces only.
        stages: toggles for the pipeline's stages; ``None``: :func:`video_default_toggles`.
        max_recognitions: recognitions per track at most.
        improve_factor: a face is recognised again when its quality proxy
            beats the best recognised one by this factor.
        merge_gap_s: matched sightings of one person closer than this merge.
        fps: frame rate, used to scale how long a lost track is kept.
    """

    def __init__(self, pipeline: Pipeline, recogniser: Recogniser | None = None, *,
                 stages: Mapping[str, Toggle] | Iterable[str] | None = None, max_recognitions: int = 4,
                 improve_factor: float = 1.25, merge_gap_s: float = 2.0, fps: float = 25.0,
                 stride: int = 1) -> None:
        self.pipeline = pipeline
        self.recogniser = recogniser
        self.toggles = pipeline.parse_toggles(stages if stages is not None else video_default_toggles(pipeline))
        self.max_recognitions = max_recognitions
        self.improve_factor = improve_factor
        self.merge_gap_s = merge_gap_s
        keep_frames = max(2, int(round(0.5 * fps / max(stride, 1))))
        self.tracker = FaceTracker(max_missed=keep_frames)
        self.states: dict[int, TrackState] = {}
        self.frames = 0

    def process(self, rgb: np.ndarray, frame_index: int | None = None, time_s: float | None = None) -> FrameOutput:
        """Run one frame; returns the annotated raw frame and this frame's faces."""
        t0 = time.perf_counter()
        frame_index = self.frames if frame_index is None else frame_index
        time_s = float(frame_index) if time_s is None else time_s
        self.frames += 1
        result = self.pipeline.run(rgb, self.toggles, crop_stages=False)
        pairs = self.tracker.update(result.faces, frame_index, time_s)
        to_recognise: list[tuple[Face, TrackState]] = []
        for face, track in pairs:
            state = self._state(track)
            state.frames_seen += 1
            state.last_frame, state.last_seen_s = frame_index, time_s
            proxy = _quality_proxy(face)
            first = not state.observations and state.best_crop is None
            better = proxy > state.best_proxy * self.improve_factor
            if first or (better and len(state.observations) < self.max_recognitions):
                state.best_proxy = max(state.best_proxy, proxy)
                state.best_crop = face.crop(result.raw, self.pipeline.crop_margin)
                state.best_box, state.best_frame = face.box, frame_index
                if self.recogniser is not None:
                    to_recognise.append((face, state))
        if to_recognise:
            self._recognise(result.raw, result.frame, to_recognise, frame_index, time_s)
        labels = [self._label(track) for _, track in pairs]
        annotated = draw_faces(result.raw, [f for f, _ in pairs], labels)
        return FrameOutput(frame_index, time_s, annotated, [f for f, _ in pairs], time.perf_counter() - t0)

    def _state(self, track: Track) -> TrackState:
        if track.track_id not in self.states:
            self.states[track.track_id] = TrackState(track.track_id, track.first_frame, track.last_frame,
                                                     track.first_seen_s, track.last_seen_s)
        return self.states[track.track_id]

    def _recognise(self, raw: np.ndarray, frame: np.ndarray, items: list[tuple[Face, TrackState]],
                   frame_index: int, time_s: float) -> None:
        faces = [f for f, _ in items]
        crops = [f.crop(frame, self.pipeline.crop_margin) for f in faces]
        enhanced, stage_results = self.pipeline.enhance_crops(crops, self.toggles)
        changed = any(r.fired for r in stage_results) or frame is not raw
        matches = self.recogniser.match_faces(raw, faces, enhanced if changed else None,
                                              crop_margin=self.pipeline.crop_margin)
        for (face, state), match, crop in zip(items, matches, enhanced):
            quality = getattr(getattr(match, "quality", None), "score", None)
            quality = float(quality) if quality is not None else _quality_proxy(face) / 100.0
            state.observations.append(Observation(frame_index, time_s, quality, match))
            if changed:
                state.best_enhanced_crop = crop

    def _label(self, track: Track) -> str:
        state = self.states.get(track.track_id)
        decision, name, _, score, _ = state.decision() if state else ("not_checked", None, None, None, "")
        if decision == "match":
            return f"#{track.track_id} {name} {score:.2f}"
        if decision == "not_checked":
            return f"#{track.track_id}"
        return f"#{track.track_id} {decision.replace('_', ' ')}"

    def sightings(self) -> list[Sighting]:
        """Sightings so far (confirmed tracks), merged per matched person, by first-seen time."""
        return tracks_to_sightings(self.states.values(), self.merge_gap_s)


def tracks_to_sightings(states: Iterable[TrackState], merge_gap_s: float) -> list[Sighting]:
    """Sightings from track states, merged per matched person, by first-seen time.

    One function for the engine and for archive scans that rebuild track
    states from saved chunks (:mod:`pipeline.video.archive`), so both decide
    and merge the same way.
    """
    out: list[Sighting] = []
    for state in sorted(states, key=lambda s: (s.first_seen_s, s.track_id)):
        decision, name, person_id, score, reason = state.decision()
        last = state.observations[-1].match if state.observations else None
        out.append(Sighting(
            track_ids=[state.track_id], decision=decision, name=name, person_id=person_id, score=score,
            threshold=getattr(last, "threshold", None), reason=reason, first_seen_s=state.first_seen_s,
            last_seen_s=state.last_seen_s, first_frame=state.first_frame, last_frame=state.last_frame,
            best_frame=state.best_frame, best_box=state.best_box, frames_seen=state.frames_seen,
            recognitions=len(state.observations), backend=getattr(last, "backend", None),
            revision=getattr(last, "revision", None), best_crop=state.best_crop,
            enhanced_crop=state.best_enhanced_crop))
    return merge_sightings(out, merge_gap_s)


def merge_sightings(sightings: list[Sighting], gap_s: float) -> list[Sighting]:
    """Merge matched sightings of the same person that follow each other within ``gap_s``."""
    merged: list[Sighting] = []
    open_by_person: dict[str, Sighting] = {}
    for s in sorted(sightings, key=lambda s: s.first_seen_s):
        previous = open_by_person.get(s.person_id) if s.decision == "match" and s.person_id else None
        if previous is not None and s.first_seen_s - previous.last_seen_s <= gap_s:
            previous.track_ids += s.track_ids
            previous.last_seen_s = max(previous.last_seen_s, s.last_seen_s)
            previous.last_frame = max(previous.last_frame, s.last_frame)
            previous.frames_seen += s.frames_seen
            previous.recognitions += s.recognitions
            if (s.score or 0) > (previous.score or 0):
                previous.score, previous.best_crop, previous.enhanced_crop = s.score, s.best_crop, s.enhanced_crop
                previous.best_frame, previous.best_box = s.best_frame, s.best_box
            continue
        merged.append(s)
        if s.decision == "match" and s.person_id:
            open_by_person[s.person_id] = s
    return merged


@dataclass
class ScanResult:
    """Everything a scan of one video produced."""

    path: str
    fps: float
    frames_total: int
    frames_processed: int
    duration_s: float
    seconds: float
    sightings: list[Sighting]
    annotated_frames: list[np.ndarray] | None
    cancelled: bool = False
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.path, "fps": self.fps, "frames_total": self.frames_total,
                "frames_processed": self.frames_processed, "duration_s": round(self.duration_s, 3),
                "processing_s": round(self.seconds, 2), "cancelled": self.cancelled,
                "truncated": self.truncated, "warnings": self.warnings,
                "sightings": [s.to_dict() for s in self.sightings]}


ProgressFn = Callable[[int, int, float], None]


def scan_video(path: str, pipeline: Pipeline, recogniser: Recogniser | None = None, *,
               stages: Mapping[str, Toggle] | Iterable[str] | None = None, stride: int = 1,
               max_duration_s: float | None = DEFAULT_MAX_DURATION_S, keep_frames: bool = True,
               on_frame: Callable[[FrameOutput], None] | None = None,
               progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> ScanResult:
    """Process a whole video file.

    Args:
        path: the video file.
        pipeline, recogniser, stages: as for :class:`VideoEngine`.
        stride: process every ``stride``-th frame.
        max_duration_s: refuse longer videos (``None``: no limit).
        keep_frames: keep annotated frames in the result (for writing a video).
        on_frame: called with each frame's output (e.g. to stream to a writer).
        progress: ``(frames_done, frames_total, elapsed_s)`` after each frame.
        cancel: set it to stop early; the result holds what was done so far.

    Raises:
        InputError: unreadable, empty or too long video.
    """
    info = probe_video(path, max_duration_s=max_duration_s)
    engine = VideoEngine(pipeline, recogniser, stages=stages, fps=info.fps, stride=stride)
    frames_total = max(1, -(-info.frame_count // stride))
    annotated: list[np.ndarray] | None = [] if keep_frames else None
    t0 = time.perf_counter()
    done = 0
    cancelled = False
    for index, t, rgb in iter_frames(path, stride=stride):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        out = engine.process(rgb, index, t)
        done += 1
        if annotated is not None:
            annotated.append(out.annotated)
        if on_frame is not None:
            on_frame(out)
        if progress is not None:
            progress(done, max(frames_total, done), time.perf_counter() - t0)
    if done == 0 and not cancelled:
        raise InputError(f"{info.path}: no decodable frames")
    warnings = []
    truncated = not cancelled and done < frames_total * 0.9 and info.frame_count > 1
    if truncated:
        warnings.append(f"video ended after {done} of {frames_total} expected frames (truncated file?)")
    if cancelled:
        warnings.append(f"cancelled after {done} of {frames_total} frames; results cover that part")
    return ScanResult(info.path, info.fps, frames_total, done, info.duration_s, time.perf_counter() - t0,
                      engine.sightings(), annotated, cancelled, truncated, warnings)


class LiveSession:
    """A webcam stream: one engine, wall-clock time, frames dropped while busy.

    ``process`` returns ``None`` when a frame arrives while the previous one is
    still being processed (the caller keeps showing the last output), so
    latency stays bounded instead of a queue building up.
    """

    def __init__(self, engine: VideoEngine) -> None:
        self.engine = engine
        self.started = time.monotonic()
        self._busy = threading.Lock()
        self.latencies: list[float] = []
        self.dropped = 0
        self._times: list[float] = []

    def process(self, rgb: np.ndarray) -> FrameOutput | None:
        if not self._busy.acquire(blocking=False):
            self.dropped += 1
            return None
        try:
            now = time.monotonic()
            out = self.engine.process(rgb, time_s=round(now - self.started, 3))
            self.latencies.append(out.seconds)
            self._times.append(now)
            self._times = self._times[-30:]
            self.latencies = self.latencies[-300:]
            return out
        finally:
            self._busy.release()

    def stats(self) -> dict[str, float]:
        fps = (len(self._times) - 1) / (self._times[-1] - self._times[0]) if len(self._times) > 1 else 0.0
        lat = sorted(self.latencies)
        return {"frames": self.engine.frames, "fps": round(fps, 1),
                "latency_ms_median": round(1000 * lat[len(lat) // 2], 1) if lat else 0.0,
                "latency_ms_p95": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else 0.0,
                "dropped": self.dropped}
