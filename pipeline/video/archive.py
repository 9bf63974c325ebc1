"""Scanning a whole camera archive: files and time chunks, in-process or on a Ray cluster, resumable.

    from pipeline.video.archive import ArchiveSettings, scan_archive

    summary = scan_archive(["/footage/cam*/"], "results/", ArchiveSettings(suspects="suspects"), use_ray=True)
    summary.failed   # [(what, why), ...]

The plan: every video of the archive (files, folders searched recursively,
globs) is probed on the driver; unreadable files are reported at once.  Files
longer than ``chunk_seconds`` are cut into time chunks with an overlap
(:mod:`pipeline.video.chunks`).  Each chunk runs in a worker that loaded the
models once -- the current process, or a pool of Ray actors (``num_gpus=1``
each when the cluster has GPUs).  A finished chunk is stored atomically in
``OUT/.work/<video>-<key>/`` (record JSON last, so a half-written chunk never
counts); a re-run with the same settings skips stored chunks.  A failed chunk
(error, worker process killed, disk full) is retried once, then reported; the
other chunks and files go on.  When all chunks of a file are stored they are
merged into the plain scan's layout: ``annotated.mp4``, ``sightings.json``,
``sightings.csv``, ``timeline.png``, ``crops/`` (in ``OUT/<video name>/`` when
there are several videos).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import atomic_write_bytes
from .chunks import (ChunkResult, ChunkSpec, concat_segments, load_npz, merge_chunk_records, plan_chunks, record_bytes,
                     scan_chunk)
from .engine import ScanResult
from .outputs import write_scan_outputs
from .reader import DEFAULT_MAX_DURATION_S, VIDEO_EXTENSIONS, VideoInfo, probe_video

WORK_DIR = ".work"
FAULT_ENV = "CCTV_ARCHIVE_FAULT"  # fault injection for tests, see chunks._maybe_fault
DEFAULT_CHUNK_SECONDS = 1800.0
DEFAULT_OVERLAP_S = 2.0


@dataclass(frozen=True)
class ArchiveSettings:
    """What decides a scan's results; a change means new work keys (stored chunks are not reused)."""

    suspects: str | None = None          # watchlist folder; None or "": track faces only
    backend: str = "dlib"
    stages: str = "auto"                 # as the CLI's --stages: auto, none, or comma-separated names
    stride: int = 1
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS
    overlap_s: float = DEFAULT_OVERLAP_S
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S


def parse_stage_list(text: str | None) -> list[str] | None:
    """``auto`` -> ``None`` (video defaults), ``none`` -> ``[]``, else the named stages."""
    text = (text or "auto").strip().lower()
    if text == "auto":
        return None
    if text == "none":
        return []
    return [n.strip() for n in text.split(",") if n.strip()]


def expand_videos(items: Sequence[str], *, recursive: bool = False) -> list[Path]:
    """Video files from files, folders and globs, in the given order (each folder and glob sorted).

    Raises:
        InputError: a glob matches nothing, or no video file at all.
    """
    paths: list[Path] = []
    for item in items:
        matches = sorted(glob.glob(item, recursive=True)) if any(c in item for c in "*?[") else [item]
        if not matches:
            raise InputError(f"{item}: no files match")
        for match in map(Path, matches):
            if match.is_dir():
                found = match.rglob("*") if recursive else match.iterdir()
                paths += sorted(p for p in found if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
                                and WORK_DIR not in p.parts)
            else:
                paths.append(match)
    if not paths:
        raise InputError("no video files found")
    return paths


def output_dirs(videos: Sequence[Path], out_root: Path) -> list[Path]:
    """``out_root`` for one video, else one subfolder per video named after it.

    Two videos with the same name (``cam1/0001.mp4``, ``cam2/0001.mp4``) get
    their parent folder's name prefixed, so one never overwrites the other.
    """
    if len(videos) == 1:
        return [out_root]
    stems = [v.stem for v in videos]
    names = []
    for video in videos:
        name = video.stem
        if stems.count(name) > 1:
            name = f"{video.parent.name}_{name}" if video.parent.name else name
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return [out_root / name for name in names]


def _fingerprint_folder(folder: str | None) -> str:
    """Names, sizes and times of the watchlist's files: a changed watchlist means new results."""
    if not folder or not Path(folder).is_dir():
        return ""
    digest = hashlib.sha1()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _file_key(path: Path, settings: ArchiveSettings, watchlist: str) -> str:
    stat = path.stat()
    # Numbers as floats: 180 * 60 from the CLI and 3 * 3600.0 from Python are the same setting.
    values = {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
              for k, v in asdict(settings).items()}
    text = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, values, watchlist], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"disk full: {exc.filename or ''} ({exc.strerror})".replace(":  (", ": (")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}" if not isinstance(exc, InputError) else str(exc)


@dataclass
class FileJob:
    """One video of the archive: its plan, where its chunks and outputs go."""

    path: Path
    out_dir: Path
    work_dir: Path
    info: VideoInfo | None
    specs: list[ChunkSpec] = field(default_factory=list)
    done: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    result: ScanResult | None = None

    def chunk_path(self, spec: ChunkSpec, suffix: str) -> Path:
        return self.work_dir / f"{spec.name}{suffix}"


@dataclass
class ArchiveSummary:
    """The outcome of :func:`scan_archive`."""

    files: list[FileJob]
    chunks_total: int = 0
    chunks_skipped: int = 0   # stored by an earlier run
    chunks_run: int = 0       # finished in this run
    retries: int = 0
    frames: int = 0           # frames processed in this run
    seconds: float = 0.0

    @property
    def failed(self) -> list[tuple[str, str]]:
        out = []
        for job in self.files:
            if job.error:
                out.append((str(job.path), job.error))
        return out

    @property
    def ok(self) -> bool:
        return not self.failed

    def lines(self) -> list[str]:
        done = sum(1 for j in self.files if j.result is not None)
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines = [(f"archive: {done}/{len(self.files)} video(s) done, {self.chunks_run} chunk(s) run, "
                 f"{self.chunks_skipped} reused from an earlier run, {self.retries} retried, "
                 f"{self.frames} frames in {self.seconds:.1f} s ({fps:.1f} fps)")]
        for what, why in self.failed:
            lines.append(f"failed: {what}: {why}")
        return lines


class ChunkWorker:
    """Loads the pipeline and the watchlist once, then scans chunks (in-process or as a Ray actor)."""

    def __init__(self, settings: ArchiveSettings, threads: int | None = None) -> None:
        from ..core import Pipeline

        if threads:  # a Ray actor's share of the cores, read when the detector starts (stages/detect.py)
            os.environ["CCTV_THREADS"] = str(threads)
        self.pipeline = Pipeline.default()
        self.recogniser = None
        if settings.suspects:
            from ..recognition import Identifier, Watchlist

            self.recogniser = Identifier(Watchlist.load(settings.suspects), backend=settings.backend)

    def run(self, spec: ChunkSpec, progress: Callable[[int], None] | None = None) -> ChunkResult:
        return scan_chunk(spec, self.pipeline, self.recogniser, progress=progress)

    def ping(self) -> bool:
        return True

    def warm_up(self) -> float:
        """Load the lazily loaded models now (a black frame, a blank face chip); returns the seconds it took."""
        import numpy as np

        t0 = time.perf_counter()
        self.pipeline.run(np.zeros((64, 64, 3), np.uint8), crop_stages=False)
        if self.recogniser is not None:
            self.recogniser.embedder.embed_chips([np.zeros((150, 150, 3), np.uint8)])
        return time.perf_counter() - t0


class ArchiveProgress:
    """One line on stderr for the whole archive: videos and chunks done, frames/s, ETA."""

    def __init__(self, summary: ArchiveSummary, frames_todo: int, enabled: bool = True) -> None:
        self.summary, self.frames_todo, self.enabled = summary, max(frames_todo, 1), enabled
        self.t0 = time.perf_counter()
        self.partial = 0  # frames of chunks still running (in-process only)
        self._last = 0.0
        self._on_line = False  # a progress line is showing (other messages start a new line)

    def show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        s = self.summary
        frames = s.frames + self.partial
        elapsed = now - self.t0
        fps = frames / elapsed if elapsed > 0 else 0.0
        eta = max(self.frames_todo - frames, 0) / fps if fps > 0 else None
        videos = sum(1 for j in s.files if j.result is not None or j.error)
        chunks = s.chunks_skipped + s.chunks_run + sum(len(j.failed) for j in s.files)
        eta_text = "ETA ?" if eta is None else f"ETA {eta:.0f} s"
        print(f"\rarchive: videos {videos}/{len(s.files)}  chunks {chunks}/{s.chunks_total}  "
              f"{frames} frames  {fps:.1f} fps  {eta_text} ", end="", file=sys.stderr, flush=True)
        self._on_line = True

    def break_line(self) -> None:
        """End the progress line so that the next message starts on its own line."""
        if self._on_line:
            print(file=sys.stderr, flush=True)
            self._on_line = False

    def close(self) -> None:
        if self.enabled:
            self.show(force=True)
            self.break_line()


def plan_archive(videos: Sequence[Path], out_root: Path, settings: ArchiveSettings) -> list[FileJob]:
    """Probe every video and cut it into chunks; unreadable ones get ``error`` set."""
    watchlist = _fingerprint_folder(settings.suspects)
    stages = parse_stage_list(settings.stages)
    fault = os.environ.get(FAULT_ENV) or None
    jobs = []
    for video, out_dir in zip(videos, output_dirs(videos, out_root)):
        try:
            info = probe_video(video, max_duration_s=settings.max_duration_s)
            key = _file_key(video, settings, watchlist)
        except (InputError, OSError) as exc:
            jobs.append(FileJob(video, out_dir, out_root / WORK_DIR, None, error=_why(exc)))
            continue
        job = FileJob(video, out_dir, out_root / WORK_DIR / f"{video.stem[:40]}-{key}", info)
        plan = plan_chunks(info.frame_count, info.fps, stride=settings.stride,
                           chunk_seconds=settings.chunk_seconds, overlap_s=settings.overlap_s)
        for k, (start, own_start, stop) in enumerate(plan):
            tail_from = plan[k + 1][0] if k + 1 < len(plan) else None
            job.specs.append(ChunkSpec(str(video), key, k, len(plan), start, own_start, stop, info.fps, tail_from,
                                       settings.stride, stages, fault))
        jobs.append(job)
    return jobs


def _stored(job: FileJob, spec: ChunkSpec) -> dict[str, Any] | None:
    """The stored record of a finished chunk, or ``None`` (missing, unreadable or incomplete)."""
    try:
        record = json.loads(job.chunk_path(spec, ".json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("frames_processed", 0) > 0 and not job.chunk_path(spec, ".mp4").is_file():
        return None
    return record if job.chunk_path(spec, ".npz").is_file() else None


def _store(job: FileJob, spec: ChunkSpec, result: ChunkResult) -> None:
    # The record goes last: it is what marks the chunk finished.
    if result.video_mp4 is not None:
        atomic_write_bytes(job.chunk_path(spec, ".mp4"), result.video_mp4)
    atomic_write_bytes(job.chunk_path(spec, ".npz"), result.crops_npz)
    atomic_write_bytes(job.chunk_path(spec, ".json"), record_bytes(result.record))


def _place_video(job: FileJob, records: list[dict[str, Any]]) -> Path | None:
    """The annotated video in the output folder: the one segment linked, or the segments joined."""
    segments = [job.chunk_path(spec, ".mp4") for spec, r in zip(job.specs, records) if r["frames_processed"] > 0]
    if not segments:
        return None
    target = job.out_dir / "annotated.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".annotated.", suffix=".mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if len(segments) == 1:
            tmp.unlink()
            try:
                os.link(segments[0], tmp)  # same file system: no copy
            except OSError:
                shutil.copyfile(segments[0], tmp)
        else:
            concat_segments(segments, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def merge_file(job: FileJob, settings: ArchiveSettings) -> ScanResult:
    """Merge a file's stored chunks and write the plain scan's outputs into ``job.out_dir``."""
    records = [_stored(job, spec) for spec in job.specs]
    if any(r is None for r in records):
        raise InputError("chunks missing from the work folder")
    crops = [load_npz(job.chunk_path(spec, ".npz").read_bytes()) for spec in job.specs]
    info = job.info
    done = sum(r["frames_processed"] for r in records)
    if done == 0:
        raise InputError(f"{info.path}: no decodable frames")
    sightings = merge_chunk_records(records, crops)
    frames_total = max(1, -(-info.frame_count // settings.stride))
    warnings = []
    truncated = done < frames_total * 0.9 and info.frame_count > 1  # as scan_video
    if truncated:
        warnings.append(f"video ended after {done} of {frames_total} expected frames (truncated file?)")
    result = ScanResult(info.path, info.fps, frames_total, done, info.duration_s,
                        sum(r["seconds"] for r in records), sightings, None, False, truncated, warnings)
    _place_video(job, records)
    write_scan_outputs(result, job.out_dir)
    return result


class _InProcessPool:
    """Runs chunks one after another in this process (one worker, models loaded once)."""

    def __init__(self, settings: ArchiveSettings, progress: ArchiveProgress) -> None:
        self.worker = ChunkWorker(settings)
        self.progress = progress
        self.retry_queue: list[ChunkSpec] = []  # failed chunks to run once more

    def run(self, specs: Iterable[ChunkSpec], on_result: Callable[[ChunkSpec, ChunkResult | None, str | None], None]
            ) -> None:
        for spec in specs:
            def tick(frames: int) -> None:
                self.progress.partial = frames
                self.progress.show()
            try:
                result = self.worker.run(spec, progress=tick)
            except Exception as exc:  # noqa: BLE001 -- any chunk failure is reported, the others go on
                self.progress.partial = 0
                on_result(spec, None, _why(exc))
                continue
            self.progress.partial = 0
            on_result(spec, result, None)


def actor_options(resources: dict[str, float], workers: int | None = None,
                  node_cpus: Sequence[float] | None = None) -> tuple[dict[str, Any], int]:
    """Ray options of each actor and how many actors, from the cluster's resources.

    By default as many actors as GPUs, else as CPUs.  Each actor asks for one
    GPU when the cluster has GPUs (TensorFlow stages run on it) and for its
    share of the CPUs (at most one node's worth): the detector runs that many
    threads (:class:`ChunkWorker`), so actors never oversubscribe the cores.
    """
    gpus = int(resources.get("GPU", 0))
    size = max(1, workers or gpus or int(resources.get("CPU", 1)))
    share = int(resources.get("CPU", 1)) // size
    if node_cpus:
        share = min(share, int(max(node_cpus)))
    options: dict[str, Any] = {"num_cpus": max(1, share)}
    if gpus:
        options["num_gpus"] = 1
    return options, size


class _RayPool:
    """A pool of Ray actors, each with the models loaded once; a dead actor is replaced."""

    def __init__(self, settings: ArchiveSettings, workers: int | None, progress: ArchiveProgress) -> None:
        import ray

        self.ray = ray
        node_cpus = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
        self.options, self.size = actor_options(ray.cluster_resources(), workers, node_cpus)
        # Workers import this package. Local workers start in the driver's working directory and
        # inherit its PYTHONPATH; only when neither holds the checkout is it added (a runtime_env
        # costs a fresh worker process per actor). A cluster's image must have the package
        # (README: "Scanning an archive with Ray").
        root = str(Path(__file__).resolve().parents[2])
        search = [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        if not any(p and Path(p).resolve() == Path(root) for p in search):
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
            self.options["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
        self.remote_cls = ray.remote(ChunkWorker)
        self.settings = settings
        self.progress = progress
        self.retry_queue: list[ChunkSpec] = []  # failed chunks to run once more

    def _actor(self):
        return self.remote_cls.options(**self.options).remote(self.settings, self.options["num_cpus"])

    def run(self, specs: Iterable[ChunkSpec], on_result: Callable[[ChunkSpec, ChunkResult | None, str | None], None]
            ) -> None:
        ray = self.ray
        queue = deque(specs)
        actors = [self._actor() for _ in range(min(self.size, len(queue)))]
        idle = deque(range(len(actors)))
        running: dict[Any, tuple[int, ChunkSpec]] = {}
        try:
            while queue or running:
                while queue and idle:
                    slot = idle.popleft()
                    spec = queue.popleft()
                    running[actors[slot].run.remote(spec)] = (slot, spec)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                self.progress.show()
                for ref in ready:
                    slot, spec = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayActorError as exc:
                        actors[slot] = self._actor()  # the worker process died (killed, out of memory)
                        on_result(spec, None, f"worker died: {_short(exc)}")
                    except ray.exceptions.RayTaskError as exc:
                        on_result(spec, None, _why(exc.cause) if exc.cause is not None else _short(exc))
                    except Exception as exc:  # noqa: BLE001 -- object lost, etc.: report, go on
                        on_result(spec, None, _short(exc))
                    else:
                        on_result(spec, result, None)
                    idle.append(slot)
                    queue.extend(self.retry_queue)
                    self.retry_queue.clear()
        finally:
            for actor in actors:
                ray.kill(actor)


def _short(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def init_ray(address: str | None = None) -> None:
    """Connect to the Ray cluster at ``address`` (``None``: ``RAY_ADDRESS`` or a new local one)."""
    try:
        import ray
    except ImportError as exc:
        raise InputError("--ray needs the ray package: pip install -r requirements-ray.txt") from exc
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)


def scan_archive(items: Sequence[str | Path], out_dir: str | Path, settings: ArchiveSettings | None = None, *,
                 use_ray: bool = False, ray_address: str | None = None, workers: int | None = None,
                 show_progress: bool = True,
                 on_file: Callable[[FileJob], None] | None = None) -> ArchiveSummary:
    """Scan every video of ``items`` into ``out_dir``; see the module docstring.

    Args:
        items: video files, folders (searched recursively) and globs.
        out_dir: output folder; its ``.work`` subfolder keeps finished chunks for re-runs.
        settings: what to run (watchlist, stages, stride, chunk length).
        use_ray: run chunks on Ray actors (``ray.init`` is called when Ray is not initialised yet).
        ray_address: cluster address for ``ray.init`` (``None``: local or ``RAY_ADDRESS``).
        workers: number of Ray actors (default: the cluster's GPUs, else its CPUs).
        show_progress: one progress line on stderr.
        on_file: called with each file once it is merged (or failed).

    Raises:
        InputError: nothing to scan (no files match).
    """
    settings = settings or ArchiveSettings()
    out_root = Path(out_dir)
    t0 = time.perf_counter()
    videos = expand_videos([str(i) for i in items], recursive=True)
    inside = out_root.resolve()
    # Never scan our own outputs (an output folder inside the footage folder, then a re-run).
    unique: dict[Path, Path] = {}  # each file once, even when a folder and a glob both name it
    for video in videos:
        if inside not in video.resolve().parents:
            unique.setdefault(video.resolve(), video)
    videos = list(unique.values())
    if not videos:
        raise InputError(f"no video files found outside the output folder {out_root}")
    jobs = plan_archive(videos, out_root, settings)
    summary = ArchiveSummary(jobs)
    todo: list[tuple[FileJob, ChunkSpec]] = []
    for job in jobs:
        for spec in job.specs:
            summary.chunks_total += 1
            if _stored(job, spec) is not None:
                job.done.add(spec.index)
                summary.chunks_skipped += 1
            else:
                todo.append((job, spec))
    frames_todo = sum(_planned_frames(job, spec) for job, spec in todo)
    progress = ArchiveProgress(summary, frames_todo, show_progress)
    by_spec = {(spec.file_key, spec.index): job for job, spec in todo}
    attempts: dict[tuple[str, int], int] = {}

    def finish_file(job: FileJob) -> None:
        if job.error is None and job.failed:
            job.error = "; ".join(f"chunk {i + 1}/{len(job.specs)}: {why}" for i, why in sorted(job.failed.items()))
        if job.error is None and len(job.done) == len(job.specs):
            try:
                job.result = merge_file(job, settings)
            except (InputError, OSError, ValueError) as exc:
                job.error = _why(exc)
        if on_file is not None:
            progress.break_line()
            on_file(job)

    for job in jobs:  # unreadable files, and files whose chunks were all stored earlier
        if job.error or len(job.done) == len(job.specs):
            finish_file(job)

    pool: Any = None

    def on_result(spec: ChunkSpec, result: ChunkResult | None, error: str | None) -> None:
        job = by_spec[(spec.file_key, spec.index)]
        if result is not None:
            try:
                _store(job, spec, result)
            except OSError as exc:
                error = _why(exc)
        key = (spec.file_key, spec.index)
        if error is not None:
            attempts[key] = attempts.get(key, 0) + 1
            if attempts[key] < 2:  # retry once
                summary.retries += 1
                pool.retry_queue.append(spec)
                return
            job.failed[spec.index] = error
        else:
            job.done.add(spec.index)
            summary.chunks_run += 1
            summary.frames += result.frames
        if len(job.done) + len(job.failed) == len(job.specs):
            finish_file(job)
        progress.show(force=True)

    if todo and use_ray:
        init_ray(ray_address)
    if todo:
        pool = (_RayPool(settings, workers, progress) if use_ray else _InProcessPool(settings, progress))
        if use_ray:
            pool.run([spec for _, spec in todo], on_result)
        else:
            queue = deque(spec for _, spec in todo)
            while queue:
                pool.run([queue.popleft()], on_result)
                queue.extend(pool.retry_queue)
                pool.retry_queue.clear()
    progress.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _planned_frames(job: FileJob, spec: ChunkSpec) -> int:
    stop = spec.stop if spec.stop is not None else job.info.frame_count
    return max(0, -(-(stop - spec.own_start) // spec.stride))
