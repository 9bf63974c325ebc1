"""A small ByteTrack-style face tracker.

Why not ``supervision``'s ByteTrack: it requires ``opencv-python``, which
would shadow the ``opencv-contrib-python-headless`` build we need (guided
filter, Haar cascades) and pull GUI libraries into the Docker image.  This is
the same idea in ~100 lines: confident detections are associated with
tracks first (Hungarian assignment on IoU, with constant-velocity
prediction), weaker ones second; new tracks start from any detection but
count only once seen ``min_hits`` times; a track survives ``max_missed``
frames without a detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..types import Face


@dataclass
class Track:
    """A face followed over frames.  Boxes are ``x0, y0, x1, y1`` floats."""

    track_id: int
    box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    missed: int = 0
    first_frame: int = 0
    last_frame: int = 0
    first_seen_s: float = 0.0
    last_seen_s: float = 0.0
    face: Face | None = None  # the detection in the latest frame it was seen in

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity * (self.missed + 1)


def _xyxy(face: Face) -> np.ndarray:
    x, y, w, h = face.box
    return np.array([x, y, x + w, y + h], float)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class FaceTracker:
    """Links per-frame detections into tracks.

    Args:
        high_score: detections at or above this are associated first.
        min_iou: minimum overlap between a predicted track box and a detection.
        max_missed: frames a track may go undetected before it ends.
        min_hits: detections needed before a track is reported (suppresses
            one-frame false positives).
    """

    def __init__(self, *, high_score: float = 0.5, min_iou: float = 0.2, max_missed: int = 12,
                 min_hits: int = 2) -> None:
        self.high_score = high_score
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 1

    def update(self, faces: list[Face], frame_index: int, time_s: float) -> list[tuple[Face, Track]]:
        """Associate this frame's faces; returns ``(face, track)`` for reported tracks."""
        boxes = np.array([_xyxy(f) for f in faces]).reshape(-1, 4)
        scores = np.array([f.score for f in faces])
        unmatched_tracks = list(range(len(self.active)))
        assigned: dict[int, int] = {}  # detection -> track index
        for subset in (np.flatnonzero(scores >= self.high_score), np.flatnonzero(scores < self.high_score)):
            if len(subset) == 0 or not unmatched_tracks:
                continue
            predicted = np.array([self.active[t].predicted() for t in unmatched_tracks])
            iou = iou_matrix(boxes[subset], predicted)
            rows, cols = linear_sum_assignment(-iou)
            used = set()
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.min_iou:
                    assigned[int(subset[r])] = unmatched_tracks[c]
                    used.add(unmatched_tracks[c])
            unmatched_tracks = [t for t in unmatched_tracks if t not in used]

        for det, t in assigned.items():
            track = self.active[t]
            new_box = boxes[det]
            steps = track.missed + 1
            track.velocity = 0.5 * track.velocity + 0.5 * (new_box - track.box) / steps
            track.box = new_box
            track.hits += 1
            track.missed = 0
            track.last_frame, track.last_seen_s, track.face = frame_index, time_s, faces[det]
        for t in unmatched_tracks:
            self.active[t].missed += 1
        for det in range(len(faces)):
            if det not in assigned:
                self.active.append(Track(self._next_id, boxes[det], first_frame=frame_index,
                                         last_frame=frame_index, first_seen_s=time_s, last_seen_s=time_s,
                                         face=faces[det]))
                assigned[det] = len(self.active) - 1
                self._next_id += 1
        reported = [(faces[det], self.active[t]) for det, t in sorted(assigned.items())
                    if self.active[t].hits >= self.min_hits]
        still = []
        for track in self.active:
            if track.missed > self.max_missed:
                self.finished.append(track)
            else:
                still.append(track)
        self.active = still
        return reported
