"""Time chunks of long videos: planning, scanning one chunk, merging chunks back into sightings.

A chunk owns the frames ``[own_start, stop)`` of one file and is scanned by a
fresh :class:`~pipeline.video.VideoEngine`.  Every chunk but the first also
reads a *lead-in* of ``overlap`` frames before ``own_start`` (not counted, not
written to the video) so that its tracker already knows the faces crossing the
border.  In that overlap both neighbouring chunks see the same decoded frames
and so the same detection boxes: tracks that share a ``(frame, box)`` there are
one person and are merged (:func:`merge_chunk_records`).

A file no longer than the chunk length is one chunk that runs exactly like
:func:`~pipeline.video.scan_video` (same frames, same tracker, same
recognitions), and its merge rebuilds exactly the engine's track states, so
the sightings are identical to a plain scan.

Chunk results are plain data (:class:`ChunkResult`): a JSON record, the crops
as ``.npz`` and the annotated segment as H.264 MP4 bytes, so they can travel
from a Ray worker to the driver and be stored in the work folder.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Pipeline
from ..types import Toggle
from .engine import Observation, Recogniser, Sighting, TrackState, VideoEngine, tracks_to_sightings
from .outputs import H264Writer
from .reader import iter_frames

# Track ids of chunk k start at k * TRACK_ID_STRIDE + 1, so ids are unique in a
# merged file and the labels drawn in each segment match the merged sightings.
TRACK_ID_STRIDE = 100_000
RECORD_VERSION = 1


@dataclass(frozen=True)
class ChunkSpec:
    """One unit of work: frames ``[start, stop)`` of ``path``, of which ``[own_start, stop)`` are its own.

    ``stop`` is ``None`` for a file's last chunk (read to the end: frame counts
    in containers are sometimes estimates).  ``start``, ``own_start`` and
    ``stop`` are multiples of ``stride``.
    """

    path: str
    file_key: str
    index: int
    count: int
    start: int
    own_start: int
    stop: int | None
    fps: float
    tail_from: int | None = None  # the next chunk's lead-in starts here: boxes are kept from here on
    stride: int = 1
    stages: Mapping[str, Toggle] | list[str] | None = None
    fault: str | None = None  # fault injection for tests, see _maybe_fault

    @property
    def name(self) -> str:
        return f"chunk-{self.index:04d}"

    @property
    def label(self) -> str:
        return f"{Path(self.path).name} [{self.index + 1}/{self.count}]"


@dataclass
class ChunkResult:
    """What one chunk produced: ``record`` (JSON-able), crops (``.npz`` bytes), segment (MP4 bytes or ``None``)."""

    record: dict[str, Any]
    crops_npz: bytes
    video_mp4: bytes | None

    @property
    def frames(self) -> int:
        return int(self.record["frames_processed"])


def plan_chunks(frame_count: int, fps: float, *, stride: int = 1, chunk_seconds: float | None = None,
                overlap_s: float = 2.0) -> list[tuple[int, int, int | None]]:
    """Split a file of ``frame_count`` frames into ``(start, own_start, stop)`` chunks.

    Files no longer than ``chunk_seconds`` (or any file when it is ``None``)
    are one chunk ``(0, 0, None)``.  Overlaps are capped at half a chunk.
    """
    if chunk_seconds is None or chunk_seconds <= 0 or frame_count <= chunk_seconds * fps:
        return [(0, 0, None)]
    step = max(stride, round(chunk_seconds * fps) // stride * stride)
    overlap = min(round(overlap_s * fps) // stride * stride, step // 2 // stride * stride)
    chunks = []
    own_start = 0
    while own_start < frame_count:
        stop: int | None = own_start + step
        if stop >= frame_count - stride:  # no tiny tail chunk; the last one reads to the end
            stop = None
        chunks.append((max(0, own_start - overlap), own_start, stop))
        if stop is None:
            break
        own_start = stop
    return chunks


class SegmentWriter(H264Writer):
    """H.264 segment without B-frames: pts equal dts, so segments concatenate by shifting timestamps."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int) -> None:
        super().__init__(path, fps, width, height)
        self._stream.codec_context.max_b_frames = 0


def concat_segments(segments: Iterable[Path], out_path: Path) -> Path:
    """Join H.264 MP4 segments (same size and rate, no B-frames) into one MP4 without re-encoding."""
    import av

    segments = list(segments)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(segments[0])) as first:
        template = first.streams.video[0]
        output = av.open(str(out_path), mode="w", options={"movflags": "+faststart"})
        out_stream = output.add_stream_from_template(template)
    offset = 0
    try:
        for segment in segments:
            with av.open(str(segment)) as container:
                stream = container.streams.video[0]
                end = offset
                for packet in container.demux(stream):
                    if packet.dts is None:
                        continue
                    duration = packet.duration or 0
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, packet.pts + duration)
                    packet.stream = out_stream
                    output.mux(packet)
                offset = end
    finally:
        output.close()
    return out_path


def _maybe_fault(spec: ChunkSpec, frames_done: int, frames_planned: int) -> None:
    """Fault injection for tests: ``KIND:CHUNK_SUBSTRING:MARKER_FILE`` (``KIND`` is ``exit`` or ``raise``).

    Fires mid-chunk, once: the marker file is created first (atomically), so a
    retry of the same chunk runs normally.  ``exit`` ends the worker process
    the way the kernel's OOM killer would; ``raise`` fails the chunk.  A
    marker ``-`` fires every time.
    """
    if not spec.fault or frames_done < max(1, frames_planned // 2):
        return
    kind, pattern, marker = spec.fault.split(":", 2)
    if pattern not in f"{Path(spec.path).name}/{spec.name}":
        return
    if marker != "-":
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    if kind == "exit":
        os._exit(17)
    raise RuntimeError(f"injected fault in {spec.label}")


def scan_chunk(spec: ChunkSpec, pipeline: Pipeline, recogniser: Recogniser | None = None, *,
               progress: Callable[[int], None] | None = None) -> ChunkResult:
    """Scan one chunk: the engine's track states, the crops and the annotated segment.

    ``progress(frames)`` is called after each own frame.  Raises
    :class:`~pipeline.InputError` when the file cannot be read.
    """
    t0 = time.perf_counter()
    engine = VideoEngine(pipeline, recogniser, stages=spec.stages, fps=spec.fps, stride=spec.stride)
    engine.tracker._next_id = spec.index * TRACK_ID_STRIDE + 1  # unique ids across a file's chunks
    single = spec.count == 1
    # Own frames to come (a last chunk reads to the end: unknown); only fault injection uses it.
    planned = (spec.stop - spec.own_start) // spec.stride if spec.stop is not None else 2
    # Boxes of every reported track in the two overlap windows, keyed by frame: the lead-in
    # [start, own_start) and the tail [stop - (own_start - start), stop) that the next chunk reads again.
    tail_from = spec.tail_from
    windows: dict[int, dict[str, list[list[int]]]] = {}
    lead_in_seen: dict[int, int] = {}
    own_frames = 0
    with tempfile.TemporaryDirectory(prefix="cctv-chunk-") as tmp:
        segment = Path(tmp) / "segment.mp4"
        writer: H264Writer | None = None
        try:
            for index, t, rgb in iter_frames(spec.path, stride=spec.stride, start=spec.start, stop=spec.stop):
                out = engine.process(rgb, index, t)
                in_lead_in = index < spec.own_start
                in_tail = tail_from is not None and index >= tail_from and not single
                if in_lead_in or in_tail:
                    active = {track.track_id: track for track in engine.tracker.active}
                    for tid, state in engine.states.items():
                        if state.last_frame == index and tid in active:
                            x, y, w, h = active[tid].face.box
                            windows.setdefault(tid, {}).setdefault(str(index), [int(x), int(y), int(w), int(h)])
                            if in_lead_in:
                                lead_in_seen[tid] = lead_in_seen.get(tid, 0) + 1
                if in_lead_in:
                    continue
                if writer is None:
                    cls = H264Writer if single else SegmentWriter
                    writer = cls(segment, spec.fps, out.annotated.shape[1], out.annotated.shape[0])
                writer.write(out.annotated)
                own_frames += 1
                if progress is not None:
                    progress(own_frames)
                _maybe_fault(spec, own_frames, planned)
        finally:
            if writer is not None:
                writer.close()
        video = segment.read_bytes() if writer is not None else None
    crops: dict[str, np.ndarray] = {}
    tracks = []
    for tid, state in engine.states.items():
        if state.best_crop is not None:
            crops[f"{tid}_raw"] = state.best_crop
        if state.best_enhanced_crop is not None:
            crops[f"{tid}_enhanced"] = state.best_enhanced_crop
        tracks.append({
            "track_id": tid, "first_frame": state.first_frame, "last_frame": state.last_frame,
            "first_seen_s": state.first_seen_s, "last_seen_s": state.last_seen_s,
            "frames_seen": state.frames_seen, "lead_in_frames": lead_in_seen.get(tid, 0),
            "best_proxy": state.best_proxy, "best_frame": state.best_frame,
            "best_box": None if state.best_box is None else [int(v) for v in state.best_box],
            "observations": [_observation_record(o) for o in state.observations],
            "windows": windows.get(tid, {})})
    buffer = io.BytesIO()
    np.savez(buffer, **crops)
    record = {"version": RECORD_VERSION, "path": spec.path, "chunk": spec.index, "chunks": spec.count,
              "start": spec.start, "own_start": spec.own_start, "stop": spec.stop, "stride": spec.stride,
              "fps": spec.fps, "frames_processed": own_frames, "seconds": round(time.perf_counter() - t0, 3),
              "merge_gap_s": engine.merge_gap_s, "tracks": tracks}
    return ChunkResult(record, buffer.getvalue(), video)


@dataclass
class StoredMatch:
    """A recognition as saved in a chunk record: the fields the track decision and sightings use."""

    decision: str
    name: str | None
    person_id: str | None
    score: float | None
    threshold: float | None
    reason: str
    backend: str | None
    revision: str | None


def _observation_record(o: Observation) -> dict[str, Any]:
    m = o.match
    score = getattr(m, "score", None)
    threshold = getattr(m, "threshold", None)
    # float() of a numpy float is exact, and json round-trips Python floats exactly.
    return {"frame_index": o.frame_index, "time_s": o.time_s, "quality": float(o.quality),
            "decision": m.decision, "name": m.name, "person_id": m.person_id,
            "score": None if score is None else float(score),
            "threshold": None if threshold is None else float(threshold), "reason": getattr(m, "reason", ""),
            "backend": getattr(m, "backend", None), "revision": getattr(m, "revision", None)}


def _observation(d: Mapping[str, Any]) -> Observation:
    match = StoredMatch(d["decision"], d["name"], d["person_id"], d["score"], d["threshold"], d["reason"],
                        d["backend"], d["revision"])
    return Observation(d["frame_index"], d["time_s"], d["quality"], match)


@dataclass
class _Piece:
    chunk: int
    own_start: int
    track: dict[str, Any]
    crops: Mapping[str, np.ndarray] = field(repr=False, default_factory=dict)


def _border_pairs(before: list[_Piece], after: list[_Piece]) -> list[tuple[_Piece, _Piece]]:
    """One-to-one pairs of tracks that share ``(frame, box)`` in the overlap, most shared frames first."""
    counts = []
    for a in before:
        boxes_a = {(f, tuple(b)) for f, b in a.track["windows"].items()}
        if not boxes_a:
            continue
        for b in after:
            shared = sum(1 for f, box in b.track["windows"].items()
                         if int(f) < b.own_start and (f, tuple(box)) in boxes_a)
            if shared:
                counts.append((shared, a.track["track_id"], b.track["track_id"], a, b))
    counts.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_a, used_b, pairs = set(), set(), []
    for _, ida, idb, a, b in counts:
        if ida not in used_a and idb not in used_b:
            used_a.add(ida)
            used_b.add(idb)
            pairs.append((a, b))
    return pairs


def _state_from_pieces(pieces: list[_Piece]) -> TrackState | None:
    """One track state from a chain of pieces (chunk order); later pieces add only their own frames."""
    head = pieces[0].track
    if len(pieces) == 1 and pieces[0].chunk > 0 and head["frames_seen"] <= head["lead_in_frames"]:
        return None  # seen only in the lead-in, and not by the chunk that owns those frames: noise
    state = TrackState(head["track_id"], head["first_frame"], head["last_frame"], head["first_seen_s"],
                       head["last_seen_s"])
    best: _Piece | None = None
    for i, piece in enumerate(pieces):
        t = piece.track
        own_only = i > 0
        frames = t["frames_seen"] - (t["lead_in_frames"] if own_only else 0)
        observations = [_observation(o) for o in t["observations"]
                        if not own_only or o["frame_index"] >= piece.own_start]
        if own_only and frames <= 0 and not observations:
            continue
        state.frames_seen += frames
        state.observations += observations
        if t["last_frame"] >= state.last_frame:
            state.last_frame, state.last_seen_s = t["last_frame"], t["last_seen_s"]
        if best is None or t["best_proxy"] > best.track["best_proxy"]:
            best = piece
    if best is not None:
        t = best.track
        state.best_proxy, state.best_frame = t["best_proxy"], t["best_frame"]
        state.best_box = None if t["best_box"] is None else tuple(t["best_box"])
        state.best_crop = best.crops.get(f"{t['track_id']}_raw")
        # The enhanced crop belongs to the last recognition of the piece that holds the best crop.
        state.best_enhanced_crop = best.crops.get(f"{t['track_id']}_enhanced")
    return state


def merge_chunk_records(records: list[dict[str, Any]], crops: list[Mapping[str, np.ndarray]]
                        ) -> list[Sighting]:
    """Sightings of one file from its chunks' records (chunk order) and crops.

    Tracks that cross a chunk border are joined through their shared boxes in
    the overlap; then decisions and per-person merging run as in the engine
    (:func:`~pipeline.video.engine.tracks_to_sightings`).
    """
    pieces_by_chunk = [[_Piece(r["chunk"], r["own_start"], t, c) for t in r["tracks"]]
                       for r, c in zip(records, crops)]
    next_piece: dict[int, _Piece] = {}
    has_previous: set[int] = set()
    for before, after in itertools.pairwise(pieces_by_chunk):
        for a, b in _border_pairs(before, after):
            next_piece[id(a)] = b
            has_previous.add(id(b))
    states = []
    for chunk_pieces in pieces_by_chunk:
        for piece in chunk_pieces:
            if id(piece) in has_previous:
                continue
            chain = [piece]
            while id(chain[-1]) in next_piece:
                chain.append(next_piece[id(chain[-1])])
            state = _state_from_pieces(chain)
            if state is not None:
                states.append(state)
    gap = records[0]["merge_gap_s"] if records else 2.0
    return tracks_to_sightings(states, gap)


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def record_bytes(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, indent=1).encode()
