"""Gradio web app for the open CCTV face pipeline.

UI only: layout and event wiring.  All image work happens in ``pipeline``;
model resolution in ``hub_utils``.  User errors from the library become a
visible message here (``_user_errors``) and never a traceback.

Run ``python app.py --help`` for options.
"""

from __future__ import annotations

import os

import sys

# No phoning home: the app must start and run with no network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _select_device_before_tensorflow_loads() -> None:
    """``--device cpu`` must hide GPUs before TensorFlow is imported (by the pipeline)."""
    device = os.environ.get("CCTV_DEVICE", "auto")
    for i, arg in enumerate(sys.argv):
        if arg == "--device" and i + 1 < len(sys.argv):
            device = sys.argv[i + 1]
        elif arg.startswith("--device="):
            device = arg.split("=", 1)[1]
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"


_select_device_before_tensorflow_loads()

import argparse
import contextlib
import errno
import hmac
import functools
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

import hub_utils
import pipeline
from pipeline import InputError, Pipeline, StageUnavailable, config, report
from pipeline.recognition import Identifier, Watchlist
from pipeline.stages.detect import DEFAULT_SCORE_THRESHOLD, METHODS
from pipeline.video import LiveSession, VideoEngine, scan_video, write_scan_outputs

ROOT = Path(__file__).resolve().parent
IMAGE_EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
VIDEO_EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.mp4"))
TOGGLE_CHOICES = ["off", "auto", "on"]
TOGGLE_VALUES = {"off": False, "auto": "auto", "on": True}
ENHANCED_NOTE = "AI-enhanced, for investigative lead only"


BACKEND = "dlib"
STREAM_EVERY_S = 0.1
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "cctv-face-pipeline"
BUSY = "Busy: you already have a job running here; wait for it to finish (or cancel it) and try again."
NO_RESULT = "no result to report yet: run {what} first, then press 'Evidence report' (it describes that result)"
OUTPUT_KINDS = ("scan", "out", "report")
"""Prefixes of the per-request folders under OUTPUT_ROOT (all purged after the retention period)."""

CONFIG = config.Settings(suspects=str(ROOT / "suspects"))
PIPELINE = Pipeline.default()
_USER_JOBS: dict[str, int] = {}
_USER_JOBS_LOCK = threading.Lock()


@contextlib.contextmanager
def _user_slot(request: gr.Request | None):
    """At most ``CONFIG.per_user_jobs`` jobs per user (log-in name, else browser session)."""
    key = (getattr(request, "username", None) or getattr(request, "session_hash", None) or "anonymous")
    with _USER_JOBS_LOCK:
        if _USER_JOBS.get(key, 0) >= CONFIG.per_user_jobs:
            raise gr.Error(BUSY, print_exception=False)
        _USER_JOBS[key] = _USER_JOBS.get(key, 0) + 1
    try:
        yield
    finally:
        with _USER_JOBS_LOCK:
            _USER_JOBS[key] -= 1


def _check_can_edit(request: gr.Request | None, token: str | None) -> None:
    """Watchlist edits: refused when read-only, else admins only (log-in) or the edit token."""
    if CONFIG.read_only_watchlist:
        raise InputError("the watchlist is read-only on this server")
    if CONFIG.credentials():
        admins = CONFIG.admin_names()
        user = getattr(request, "username", None)
        if admins and user not in admins:
            raise InputError(f"only watchlist admins can change the watchlist (you are {user or 'not logged in'})")
    elif CONFIG.edit_token and not hmac.compare_digest((token or "").encode(), CONFIG.edit_token.encode()):
        raise InputError("editing the watchlist needs the edit token (ask whoever runs this server)")


def _load_image(path: str):
    return pipeline.load_image(path, max_pixels=int(CONFIG.max_image_megapixels * 1e6),
                               max_bytes=int(CONFIG.max_upload_mb * 2**20))


def storage_message(exc: OSError) -> str:
    """A message for people about a failed read or write on the server's disk."""
    if exc.errno == errno.ENOSPC:
        return "cannot save: the server's disk is full (no space left); nothing was changed"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "cannot save: the server's storage is read-only or not writable; nothing was changed"
    return f"storage error on the server: {exc.strerror or exc}"


def _user_errors(fn):
    """Turn errors people can cause into a message in the UI (the one place)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, StageUnavailable, hub_utils.HubUtilsError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except OSError as exc:
            raise gr.Error(storage_message(exc), print_exception=False) from None

    return wrapper


def _file_path(file: Any, what: str = "image") -> str:
    if file is None or file == "":
        raise InputError(f"no {what} given: upload a file first")
    return file if isinstance(file, str) else getattr(file, "name", str(file))


def _request_folder(kind: str = "out") -> Path:
    """A new folder under OUTPUT_ROOT for one request's files (old ones are purged first)."""
    _purge_old_outputs()
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=OUTPUT_ROOT))


class _Outputs:
    """Images of one request written as PNG files with unique names, handed to Gradio as paths.

    Why not numpy arrays: Gradio stores an array output under a name made from its content hash and
    rewrites that file in place each time, so two requests with the same picture (the same image
    analysed twice) truncate the file while the first answer is still being downloaded ("peer closed
    connection without sending complete message body").  A file path is copied into Gradio's cache
    under a temporary name and renamed, or reused as it is: never rewritten while being sent.
    """

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._count = 0

    def png(self, rgb: Any, stem: str) -> str:
        if self._folder is None:
            self._folder = _request_folder("out")
        self._count += 1
        path = self._folder / f"{self._count:03d}-{stem}.png"
        path.write_bytes(pipeline.io.encode_png(rgb))
        return str(path)

    def gallery(self, items: list[tuple[Any, str]], stem: str) -> list[tuple[str, str]]:
        return [(self.png(rgb, stem), caption) for rgb, caption in items]


# Handlers take one explicit argument per stage (Gradio injects gr.Request only into fixed
# signatures, not after *args); this check fails loudly when the registry changes.
STAGE_ARGS = ("lowlight", "deblur", "superres")
assert tuple(PIPELINE.stage_names) == STAGE_ARGS, f"update the handlers' stage arguments: {PIPELINE.stage_names}"


def _toggles(values: list[str]) -> dict[str, Any]:
    return {info.name: TOGGLE_VALUES.get(v, "auto") for info, v in zip(PIPELINE.describe(), values)}


def _default_toggle(info) -> str:
    if not info.ready:
        return "off"
    configured = CONFIG.stage_toggles().get(info.name, "auto")
    return {True: "on", False: "off"}.get(configured, "auto")


@functools.lru_cache(maxsize=1)
def _watchlist() -> Watchlist:
    return Watchlist.load(CONFIG.suspects)


def _identifier(threshold: float | None = None) -> Identifier:
    return Identifier(_watchlist(), backend=BACKEND, threshold=threshold or CONFIG.match_threshold or None,
                      pipeline=PIPELINE)


# ------------------------------------------------------------------ image tab
@_user_errors
def detect(image: str, method: str = "blazeface", threshold: float = DEFAULT_SCORE_THRESHOLD,
           min_face: float = 24, request: gr.Request = None) -> tuple[Any, dict]:
    """Find faces in an image file. Returns the annotated image and the faces as JSON."""
    with _user_slot(request):
        rgb = _load_image(_file_path(image))
        detector = pipeline.FaceDetector(method, score_threshold=threshold, min_face_px=min_face)
        faces = detector(rgb)
    annotated = _Outputs().png(pipeline.annotate.draw_faces(rgb, faces), "annotated")
    return annotated, {"width": rgb.shape[1], "height": rgb.shape[0], "faces": [f.to_dict() for f in faces]}


def _stage_table(stages) -> str:
    lines = ["| stage | ran | time | note |", "|---|---|---|---|"]
    for s in stages:
        lines.append(f"| {s.name} | {'yes' if s.fired else 'no'} | {s.seconds * 1000:.0f} ms | {s.note} |")
    return "\n".join(lines)


@_user_errors
def analyse(image: str, method: str, threshold: float, min_face: float, lowlight: str = "auto",
            deblur: str = "auto", superres: str = "auto", request: gr.Request = None):
    """Run the whole pipeline (stages as toggled) and lay out the evidence."""
    with _user_slot(request):
        rgb = _load_image(_file_path(image))
        run = Pipeline(stages=PIPELINE.stages,
                       detector=pipeline.FaceDetector(method, score_threshold=threshold, min_face_px=min_face))
        result = run.run(rgb, enabled=_toggles([lowlight, deblur, superres]))
    raw_gallery = [(crop, f"face {i + 1} · raw · score {f.score:.2f}")
                   for i, (crop, f) in enumerate(zip(result.raw_crops, result.faces))]
    enhanced_fired = any(s.fired for s in result.stages if s.target == "crop")
    enhanced_gallery = ([(crop, f"face {i + 1} · {ENHANCED_NOTE}") for i, crop in enumerate(result.enhanced_crops)]
                        if enhanced_fired else [])
    frame_fired = result.frame is not result.raw  # a frame stage changed what the detector saw
    out = _Outputs()
    enhanced_frame = gr.Image(value=out.png(result.frame, "enhanced-frame") if frame_fired else None,
                              visible=frame_fired)
    summary = (f"**{len(result.faces)} face(s)** in {result.timings['total'] * 1000:.0f} ms\n\n"
               + _stage_table(result.stages))
    return (out.png(result.annotated, "annotated"), enhanced_frame, out.gallery(raw_gallery, "raw"),
            out.gallery(enhanced_gallery, "AI-enhanced"), summary, result.to_dict())


# ------------------------------------------------------------------ identify tab
@_user_errors
def identify(image: str, threshold: float = 0.0, lowlight: str = "auto", deblur: str = "off", superres: str = "off",
             request: gr.Request = None):
    """Match every face in an image against the watchlist (raw and enhanced crops)."""
    with _user_slot(request):
        path = _file_path(image)
        rgb = _load_image(path)
        identifier = _identifier(threshold)
        identifier.stages = _toggles([lowlight, deblur, superres])
        matches, stage_results = report.identify_with_stages(identifier, rgb)
    labels = [m.label() for m in matches]
    annotated = pipeline.annotate.draw_faces(rgb, [m.face for m in matches], labels)
    raw = [(m.raw_crop, f"face {i + 1} · raw · {m.label()}") for i, m in enumerate(matches) if m.raw_crop is not None]
    enhanced = [(m.enhanced_crop, f"face {i + 1} · {ENHANCED_NOTE}") for i, m in enumerate(matches)
                if m.enhanced_crop is not None]
    lines = ["| face | decision | best candidate | score | threshold | quality | why |", "|---|---|---|---|---|---|---|"]
    for i, m in enumerate(matches):
        cands = ", ".join(f"{c.name} {c.score:.2f}" for c in m.candidates[:3]) or "watchlist empty"
        lines.append(f"| {i + 1} | **{m.decision.replace('_', ' ')}** | {cands} | "
                     f"{'' if m.score is None else f'{m.score:.3f}'} | {m.threshold:.3f} (distance) | "
                     f"{m.quality.score:.2f} | {m.reason} |")
    header = (f"**{len(matches)} face(s)** · backend `{identifier.backend}` revision `{identifier.embedder.revision}`"
              f" · {len(_watchlist())} on the watchlist\n\n")
    # The report button describes exactly this result: the matches (with their crops) and settings are kept
    # in the session, not recomputed (the watchlist may have changed since).
    source = functools.partial(report.report_for_matches, path, matches, identifier, stages=identifier.stages,
                               stage_results=stage_results, settings={"endpoint": "identify",
                                                                      "threshold_requested": float(threshold or 0)})
    out = _Outputs()
    return (out.png(annotated, "annotated"), out.gallery(raw, "raw"), out.gallery(enhanced, "AI-enhanced"),
            header + "\n".join(lines), [m.to_dict() for m in matches], source)


def _report_zip(source: Any, what: str) -> str:
    """Build the report kept for the result on screen and write it as a zip under OUTPUT_ROOT."""
    if not callable(source):
        raise InputError(NO_RESULT.format(what=what))
    return str(report.write_report_zip(source(), _request_folder("report")))


@_user_errors
def identify_report(source: Any) -> str:
    """Evidence report of the identification shown: a zip of audit.json, evidence.html and the crops."""
    return _report_zip(source, "Identify")


@_user_errors
def scan_report(source: Any) -> str:
    """Evidence report of the video scan shown: a zip of audit.json, evidence.html and the crops."""
    return _report_zip(source, "a video scan")


# ------------------------------------------------------------------ watchlist tab
def _people_table() -> list[list[Any]]:
    wl = _watchlist()
    wl.reload()
    return [[p.id, p.name, p.status, len(p.photos), p.updated[:19], "; ".join(p.problems)] for p in wl]


@_user_errors
def suspects_list() -> list[dict]:
    """Everyone on the watchlist (id, name, status, notes, photos, problems)."""
    wl = _watchlist()
    wl.reload()
    return [p.to_dict() for p in wl]


def _photo_paths(files: Any) -> list[str]:
    if not files:
        raise InputError("give at least one photo")
    files = files if isinstance(files, list) else [files]
    return [_file_path(f, "photo") for f in files]


@_user_errors
def suspects_add(name: str, photos: Any, notes: str = "", token: str = "",
                 request: gr.Request = None) -> tuple[str, list[list[Any]]]:
    """Add a person with photos (each must show exactly one usable face), or add photos to them."""
    _check_can_edit(request, token)
    wl = _watchlist()
    paths = _photo_paths(photos)
    if not (name or "").strip():
        raise InputError("give the person's name")
    existing = wl.find(name.strip())
    if existing is not None:
        reports = wl.add_photos(existing.id, paths, backend=BACKEND)
        head = f"Added photos to **{existing.name}**:"
    else:
        person, reports = wl.add_person(name.strip(), paths, notes=notes or "", backend=BACKEND)
        head = f"Added **{person.name}** (id `{person.id}`):"
    return head + "\n" + "\n".join(f"- {r.line()}" for r in reports), _people_table()


@_user_errors
def suspects_edit(who: str, new_name: str = "", status: str = "", notes: str = "", token: str = "",
                  request: gr.Request = None) -> tuple[str, list[list[Any]]]:
    """Change a person's name, status or notes (empty fields are left as they are)."""
    _check_can_edit(request, token)
    person = _watchlist().update(who, name=new_name or None, status=status or None, notes=notes or None)
    return f"Updated **{person.name}**.", _people_table()


@_user_errors
def suspects_remove_photo(who: str, photo: str, token: str = "",
                          request: gr.Request = None) -> tuple[str, list[list[Any]]]:
    """Delete one photo of a person."""
    _check_can_edit(request, token)
    wl = _watchlist()
    try:
        person = wl.remove_photo(who, photo)
    except OSError as exc:
        # A full disk still allows deletions: the photo can be gone although its record (suspect.json) could
        # not be rewritten.  The photos in the folder are the truth, so say what really happened.
        wl.reload()
        person = wl.find(who)
        name = Path(str(photo)).name
        if person is None or name in person.photos:
            raise
        return (f"Removed {name} from **{person.name}**: the photo is deleted and no longer used for matching. "
                f"The person's record (last-updated time) could not be rewritten: "
                f"{storage_message(exc).split('; ')[0].removeprefix('cannot save: ')}.", _people_table())
    return f"Removed {photo} from **{person.name}**.", _people_table()


@_user_errors
def suspects_remove(who: str, confirm: bool = False, token: str = "",
                    request: gr.Request = None) -> tuple[str, list[list[Any]]]:
    """Delete a person and their photos (needs confirm=True)."""
    _check_can_edit(request, token)
    if not confirm:
        raise InputError("tick 'yes, delete' to confirm: this deletes the person and their photos")
    person = _watchlist().remove(who)
    return f"Deleted **{person.name}** from the watchlist.", _people_table()


@_user_errors
def suspects_show(who: str) -> tuple[list[tuple[str, str]], dict]:
    """One person's details and photos."""
    wl = _watchlist()
    person = wl.get(who)
    # Pixels, not paths: the watchlist folder is never served as files.
    photos = _Outputs().gallery([(_load_image(str(person.folder / p)), p) for p in person.photos], "photo")
    return photos, person.to_dict()


# ------------------------------------------------------------------ video tab
def _sighting_gallery(sightings) -> list[tuple[Any, str]]:
    items = []
    for s in sightings:
        if s.best_crop is None:
            continue
        who = s.name if s.decision == "match" else s.decision.replace("_", " ")
        score = f" {s.score:.2f}" if s.score is not None else ""
        items.append((s.best_crop, f"#{s.track_id} {who}{score} · raw · {s.first_seen_s:.1f}-{s.last_seen_s:.1f} s"))
        if s.enhanced_crop is not None:
            items.append((s.enhanced_crop, f"#{s.track_id} · {ENHANCED_NOTE}"))
    return items


_PURGE_EVERY_S = 60.0
_last_purge = [0.0]


def _purge_old_outputs() -> None:
    """Delete result folders older than the retention period (privacy: nothing is kept for ever).

    Every request makes a folder, so the scan of OUTPUT_ROOT runs at most once a minute.
    """
    now = time.time()
    if now - _last_purge[0] < _PURGE_EVERY_S:
        return
    _last_purge[0] = now
    cutoff = now - CONFIG.retention_hours * 3600
    for folder in (f for kind in OUTPUT_KINDS for f in OUTPUT_ROOT.glob(f"{kind}-*")):
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def scan_video_ui(video: Any, stride: float = 1, only_track: bool = False, lowlight: str = "auto",
                  deblur: str = "auto", superres: str = "auto", request: gr.Request = None):
    """Scan a video: annotated H.264 video, sightings gallery, timeline and CSV/JSON downloads.

    A generator so that the Cancel button can stop it between progress updates.
    """
    try:
        with _user_slot(request):
            yield from _scan_video_steps(video, stride, only_track, [lowlight, deblur, superres])
    except (InputError, StageUnavailable) as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except OSError as exc:
        raise gr.Error(storage_message(exc), print_exception=False) from None


def _scan_video_steps(video: Any, stride: float, only_track: bool, toggle_values):
    if True:
        path = _file_path(video, "video")
        cancel = threading.Event()
        state: dict[str, Any] = {"done": 0, "total": 1}

        def progress(done: int, total: int, elapsed: float) -> None:
            state.update(done=done, total=total, elapsed=elapsed)

        def work() -> None:
            try:
                recogniser = None if only_track else _identifier()
                result = scan_video(path, PIPELINE, recogniser, stages=_toggles(list(toggle_values)) or None,
                                    stride=max(1, int(stride)), max_duration_s=CONFIG.max_video_minutes * 60,
                                    progress=progress, cancel=cancel)
                out_dir = _request_folder("scan")
                state["paths"] = write_scan_outputs(result, out_dir)
                state["result"], state["recogniser"] = result, recogniser
            except (InputError, StageUnavailable) as exc:
                state["error"] = str(exc)
            except OSError as exc:
                state["error"] = storage_message(exc)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.5)
                done, total = state["done"], state["total"]
                fps = done / state["elapsed"] if state.get("elapsed") else 0.0
                eta = (total - done) / fps if fps > 0 else 0.0
                yield (gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                       f"Scanning: {done}/{total} frames · {fps:.1f} fps · ETA {eta:.0f} s", gr.skip(), gr.skip())
        finally:
            cancel.set()  # also reached when the user presses Cancel (the generator is closed)
        if "error" in state:
            raise InputError(state["error"])
        result, paths = state["result"], state["paths"]
        matches = [s for s in result.sightings if s.decision == "match"]
        summary = (f"**{len(result.sightings)} sighting(s)**, {len(matches)} match(es) · "
                   f"{result.frames_processed} frames in {result.seconds:.1f} s")
        if result.warnings:
            summary += "\n\n" + "\n".join(f"- {w}" for w in result.warnings)
        toggles = _toggles(list(toggle_values)) or None
        source = functools.partial(report.report_for_scan, result, state["recogniser"], pipeline=PIPELINE,
                                   stages=toggles, settings={"endpoint": "scan_video", "stride": max(1, int(stride)),
                                                             "only_track": bool(only_track)})
        yield (str(paths["video"]) if "video" in paths else None,
               _Outputs().gallery(_sighting_gallery(result.sightings), "sighting"),
               str(paths["timeline"]), [str(paths["csv"]), str(paths["json"])], summary,
               result.to_dict(), source)


# ------------------------------------------------------------------ webcam tab
def live_frame(frame: Any, session: LiveSession | None, gallery_key: tuple | None = None):
    """Process one webcam frame; frames arriving while busy are dropped.

    The gallery is sent only when what it shows changes (a new person, a new decision, or a last-seen
    time moving by a second): re-sending every crop with every frame costs encoding and makes it flicker.
    """
    if frame is None:
        return gr.skip(), gr.skip(), gr.skip(), session, gallery_key
    if session is None:
        engine = VideoEngine(PIPELINE, _identifier(), stages=CONFIG.stage_toggles() or None, fps=1 / STREAM_EVERY_S)
        session = LiveSession(engine)
    out = session.process(pipeline.io.ensure_rgb(frame))
    if out is None:
        return gr.skip(), gr.skip(), gr.skip(), session, gallery_key
    seen = [s for s in session.engine.sightings() if s.decision in ("match", "inconclusive") and s.best_crop is not None]
    captions = [f"{s.name or 'inconclusive'} {'' if s.score is None else f'{s.score:.2f}'} · "
                f"last seen {s.last_seen_s:.0f} s" for s in seen]
    key = tuple(zip((s.track_id for s in seen), captions))
    gallery = [(s.best_crop, caption) for s, caption in zip(seen, captions)] if key != gallery_key else gr.skip()
    st = session.stats()
    stats = (f"{st['fps']} fps · latency median {st['latency_ms_median']} ms, p95 {st['latency_ms_p95']} ms · "
             f"{st['frames']} frames, {st['dropped']} dropped")
    return out.annotated, gallery, stats, session, key


# ------------------------------------------------------------------ models tab
def model_status() -> list[dict]:
    """Every model (source, repo, revision, sha256 or why unavailable) and every stage."""
    models = []
    for status in hub_utils.status():
        entry = status.to_dict()
        # Server paths stay on the server (and Gradio would try to serve a string that names a file).
        path = entry.pop("path", None)
        if path:
            path = Path(path)
            entry["file"] = f"{entry.get('source')}: " + (str(path.relative_to(ROOT)) if path.is_relative_to(ROOT)
                                                          else path.name)
        models.append(entry)
    stages = [info.__dict__ for info in PIPELINE.describe()]
    return [{"kind": "model", **m} for m in models] + [{"kind": "stage", **s} for s in stages]


def stage_status() -> list[dict]:
    """Every pipeline stage with whether it is ready and, if not, why."""
    return [info.__dict__ for info in PIPELINE.describe()]


def _status_markdown() -> str:
    lines = ["| stage | applies to | state |", "|---|---|---|"]
    for info in PIPELINE.describe():
        state = "ready" if info.ready else f"unavailable: {info.reason}"
        lines.append(f"| {info.label} | {info.target} | {state} |")
    lines += ["", "| model | state |", "|---|---|"]
    resolver = _RESOLVER
    if resolver is not None:
        for name, snap in resolver.snapshot().items():
            lines.append(f"| {name} | {snap.label} |")
    return "\n".join(lines)


_RESOLVER = None


def _stage_toggles(video: bool = False) -> list[gr.Radio]:
    """One off/auto/on radio per stage; for video, crop stages start off (see video_default_toggles)."""
    toggles = []
    with gr.Group():
        gr.Markdown("**Enhancement stages**")
        for info in PIPELINE.describe():
            toggles.append(gr.Radio(
                TOGGLE_CHOICES, value="off" if video and info.target == "crop" else _default_toggle(info),
                label=info.label,
                info=info.description if info.ready else f"Unavailable: {info.reason}",
                interactive=info.ready))
    return toggles


def crop_gallery(label: str, *, columns: int = 6, height: int = 260, **kwargs: Any) -> gr.Gallery:
    """A gallery of face crops: small tiles even when there are few of them.

    Gradio 6 widens the columns to fill the row when there are fewer images
    than ``columns`` (``fit_columns=True``): one crop then fills the whole
    width, upscaled and cut off.  Crops are evidence; show them at tile size.
    """
    return gr.Gallery(label=label, columns=columns, height=height, object_fit="contain", fit_columns=False,
                      **kwargs)


def build_app() -> gr.Blocks:
    """The Blocks app; importable by tests without launching a server."""
    retention_s = int(CONFIG.retention_hours * 3600)
    # delete_cache: Gradio's own copies of uploads and outputs go after the retention period too.
    with gr.Blocks(title="Open CCTV face pipeline", delete_cache=(min(3600, retention_s), retention_s)) as demo:
        gr.Markdown("# Open CCTV face pipeline\nFind faces in CCTV footage and photos and match them against "
                    "your watchlist. The raw frame is always shown first; enhanced images are labelled "
                    "**AI-enhanced** and are for investigative leads only. Below the threshold the answer is "
                    "*no match* or *inconclusive*, never a guess.")
        with gr.Tab("Image"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = gr.File(label="Image file", file_types=["image"], type="filepath")
                    if IMAGE_EXAMPLES:
                        gr.Examples(IMAGE_EXAMPLES, inputs=[image_in], label="Examples")
                    toggles = _stage_toggles()
                    with gr.Accordion("Detector", open=False):
                        method = gr.Dropdown(list(METHODS), value="blazeface", label="Method")
                        threshold = gr.Slider(0.05, 0.95, value=CONFIG.detect_threshold, step=0.05,
                                              label="Score threshold")
                        min_face = gr.Slider(8, 200, value=24, step=1, label="Smallest face (px)")
                    run_btn = gr.Button("Find faces", variant="primary")
                with gr.Column(scale=2):
                    annotated = gr.Image(label="Raw frame with detections", type="numpy", format="png",
                                         elem_id="raw-annotated")
                    enhanced_frame = gr.Image(label="AI-enhanced frame (what the detector saw)",
                                              type="numpy", format="png", visible=False, elem_id="enhanced-frame")
                    raw_crops = crop_gallery("Face crops (raw)")
                    enhanced_crops = crop_gallery(f"Face crops ({ENHANCED_NOTE})")
                    summary = gr.Markdown()
                    faces_json = gr.JSON(label="Result (JSON)")
            run_btn.click(analyse, [image_in, method, threshold, min_face, *toggles],
                          [annotated, enhanced_frame, raw_crops, enhanced_crops, summary, faces_json],
                          api_name="analyse")

        with gr.Tab("Identify"):
            with gr.Row():
                with gr.Column(scale=1):
                    id_image = gr.File(label="Image file", file_types=["image"], type="filepath")
                    if IMAGE_EXAMPLES:
                        gr.Examples(IMAGE_EXAMPLES, inputs=[id_image], label="Examples")
                    id_threshold = gr.Number(value=0, label="Distance threshold (0 = the backend's calibrated default)")
                    id_toggles = _stage_toggles()
                    id_btn = gr.Button("Identify", variant="primary")
                with gr.Column(scale=2):
                    id_annotated = gr.Image(label="Raw frame with decisions", type="numpy", format="png")
                    id_raw = crop_gallery("Face crops (raw)")
                    id_enh = crop_gallery(f"Face crops ({ENHANCED_NOTE})")
                    id_table = gr.Markdown()
                    id_json = gr.JSON(label="Matches (JSON)")
                    id_report_btn = gr.Button("Evidence report")
                    id_report = gr.File(label="Evidence report (zip: audit.json, evidence.html, crops)",
                                        interactive=False)
            id_source = gr.State(None, time_to_live=retention_s)
            id_btn.click(identify, [id_image, id_threshold, *id_toggles],
                         [id_annotated, id_raw, id_enh, id_table, id_json, id_source], api_name="identify")
            id_report_btn.click(identify_report, [id_source], [id_report], api_name="report")
            # A new run makes the last zip stale: clear it so the file shown always belongs to the result shown.
            id_btn.click(lambda: None, None, [id_report], api_visibility="private", queue=False)

        with gr.Tab("Watchlist"):
            people = gr.Dataframe(headers=["id", "name", "status", "photos", "updated", "problems"],
                                  value=_people_table, interactive=False, label="People on the watchlist")
            wl_msg = gr.Markdown()
            token = gr.Textbox(value="", label="Edit token", type="password", visible=bool(CONFIG.edit_token),
                               info="this server asks for a token before the watchlist can be changed")
            with gr.Row():
                with gr.Column():
                    gr.Markdown("**Add a person, or photos to someone already listed**")
                    add_name = gr.Textbox(label="Name")
                    add_photos = gr.File(label="Photos (one face each)", file_count="multiple",
                                         file_types=["image"], type="filepath")
                    add_notes = gr.Textbox(label="Notes", lines=2)
                    gr.Button("Add").click(suspects_add, [add_name, add_photos, add_notes, token], [wl_msg, people],
                                           api_name="suspects_add")
                with gr.Column():
                    gr.Markdown("**Show, edit or delete**")
                    who = gr.Textbox(label="Name or id")
                    show_gallery = crop_gallery("Photos", columns=4)
                    show_json = gr.JSON(label="Details")
                    gr.Button("Show").click(suspects_show, [who], [show_gallery, show_json], api_name="suspects_show")
                    new_name = gr.Textbox(label="New name (optional)")
                    new_status = gr.Dropdown(["", "active", "inactive"], value="", label="Status")
                    new_notes = gr.Textbox(label="Notes (optional)")
                    gr.Button("Save changes").click(suspects_edit, [who, new_name, new_status, new_notes, token],
                                                    [wl_msg, people], api_name="suspects_edit")
                    photo_name = gr.Textbox(label="Photo file name to delete")
                    gr.Button("Delete photo").click(suspects_remove_photo, [who, photo_name, token], [wl_msg, people],
                                                    api_name="suspects_remove_photo")
                    confirm = gr.Checkbox(label="yes, delete this person and their photos")
                    gr.Button("Delete person", variant="stop").click(suspects_remove, [who, confirm, token],
                                                                     [wl_msg, people], api_name="suspects_remove")
            list_json = gr.JSON(visible=False)
            gr.Button("Refresh").click(suspects_list, None, list_json, api_name="suspects_list").then(
                _people_table, None, people, api_visibility="private")

        with gr.Tab("Video"):
            with gr.Row():
                with gr.Column(scale=1):
                    video_in = gr.File(label="Video file (mp4, avi, mkv, mov)", file_types=["video"], type="filepath")
                    if VIDEO_EXAMPLES:
                        gr.Examples(VIDEO_EXAMPLES, inputs=[video_in], label="Examples")
                    stride = gr.Slider(1, 10, value=1, step=1, label="Process every N-th frame")
                    only_track = gr.Checkbox(label="Only track faces (no watchlist matching)")
                    video_toggles = _stage_toggles(video=True)
                    with gr.Row():
                        scan_btn = gr.Button("Scan", variant="primary")
                        cancel_btn = gr.Button("Cancel")
                with gr.Column(scale=2):
                    scan_status = gr.Markdown()
                    video_out = gr.Video(label="Annotated video (raw frames, boxes drawn)")
                    sightings_gallery = crop_gallery("Sightings: best raw crop per person seen")
                    timeline = gr.Image(label="Sightings timeline", type="filepath")
                    downloads = gr.File(label="Sightings (CSV, JSON)", file_count="multiple")
                    sightings_json = gr.JSON(label="Sightings (JSON)")
                    scan_report_btn = gr.Button("Evidence report")
                    scan_report_file = gr.File(label="Evidence report (zip: audit.json, evidence.html, crops)",
                                               interactive=False)
            scan_source = gr.State(None, time_to_live=retention_s)
            scan_event = scan_btn.click(scan_video_ui, [video_in, stride, only_track, *video_toggles],
                                        [video_out, sightings_gallery, timeline, downloads, scan_status,
                                         sightings_json, scan_source], api_name="scan_video")
            scan_report_btn.click(scan_report, [scan_source], [scan_report_file], api_name="scan_report")
            scan_btn.click(lambda: None, None, [scan_report_file], api_visibility="private", queue=False)
            cancel_btn.click(None, None, None, cancels=[scan_event], api_visibility="private")

        with gr.Tab("Webcam"):
            gr.Markdown("Live: faces are tracked and each new face is matched once (again when a better view "
                        "comes). The picture is not mirrored: it is what the camera sees.")
            with gr.Row():
                # JPEG, not Gradio's default WebP, wherever Gradio encodes a frame: ~2 ms for 640x480 on this
                # CPU against ~50 ms (the browser's frame rate did not change measurably: BENCHMARKS.md).
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", format="jpeg",
                               webcam_options=gr.WebcamOptions(mirror=False))
                cam_out = gr.Image(label="Live (raw frame, boxes drawn)", type="numpy", format="jpeg")
            cam_stats = gr.Markdown()
            cam_gallery = crop_gallery("Watchlist people seen since the stream started", columns=8, height=220,
                                       allow_preview=False, format="jpeg")
            session, gallery_key = gr.State(None), gr.State(None)
            cam.stream(live_frame, [cam, session, gallery_key], [cam_out, cam_gallery, cam_stats, session, gallery_key],
                       stream_every=STREAM_EVERY_S, concurrency_limit=4, api_name="live_frame")

        with gr.Tab("Stages & models"):
            status_md = gr.Markdown(_status_markdown())
            status_json = gr.JSON(label="Status (JSON)")
            with gr.Row():
                gr.Button("Refresh").click(model_status, None, status_json, api_name="models").then(
                    _status_markdown, None, status_md, api_visibility="private")
            gr.Button(visible=False).click(stage_status, None, status_json, api_name="stages")
            gr.Timer(2.0).tick(_status_markdown, None, status_md, api_visibility="private")

        # API-only endpoint: an image file in, faces out (options have defaults).
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath")
            api_method = gr.Dropdown(list(METHODS), value="blazeface")
            api_threshold = gr.Number(value=DEFAULT_SCORE_THRESHOLD)
            api_min_face = gr.Number(value=24)
            api_annotated = gr.Image(type="numpy", format="png")
            api_faces = gr.JSON()
        gr.Button(visible=False).click(detect, [api_image, api_method, api_threshold, api_min_face],
                                       [api_annotated, api_faces], api_name="detect")
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Open CCTV face pipeline web app. Every option can also be set with the environment "
                    "variable shown in brackets.")
    try:
        config.add_arguments(parser)
    except InputError as exc:
        parser.error(str(exc))
    hub_utils.add_override_arguments(parser)
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> config.Settings:
    """Apply the parsed options (settings, model overrides); exits with a message on bad values."""
    try:
        settings = config.from_args(args)
        hub_utils.apply_override_arguments(args)
    except (InputError, hub_utils.ManifestError) as exc:
        raise SystemExit(f"error: {exc}") from None
    for name in settings.__dataclass_fields__:
        setattr(CONFIG, name, getattr(settings, name))
    PIPELINE.detector = pipeline.FaceDetector(score_threshold=settings.detect_threshold)
    _watchlist.cache_clear()
    return settings


def launch(demo: gr.Blocks, settings: config.Settings, **kwargs: Any) -> Any:
    """Queue and launch with the configured limits, log-in and blocked paths."""
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    credentials = settings.credentials()
    return demo.launch(
        server_name=settings.host, server_port=settings.port, share=settings.share, show_error=False,
        auth=credentials or None, max_file_size=int(settings.max_upload_mb * 2**20),
        blocked_paths=[str(Path(settings.suspects).resolve())], **kwargs)


def main(argv: list[str] | None = None) -> None:
    global _RESOLVER
    settings = configure(parse_args(argv))
    if settings.device == "gpu":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            raise SystemExit("error: --device gpu, but TensorFlow sees no GPU")
    # Models resolve in the background: the UI is usable at once, the status tab shows progress.
    _RESOLVER = hub_utils.start_background_resolution()
    launch(build_app(), settings)


if __name__ == "__main__":
    main()
