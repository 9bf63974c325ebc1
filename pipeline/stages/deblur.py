"""Motion-deblurring stage: a DeblurGAN-v2 FPN-MobileNet generator trained here.

``deblur(rgb)`` returns a same-size sharper image.  The network is fully
convolutional: the input is reflect-padded to a multiple of 32 (the
backbone's total stride) and the output cropped back -- no resizing, so small
face crops keep their pixels.  Large frames are processed in overlapping
tiles so memory stays bounded; tile seams fall inside a 64-pixel overlap that
is discarded.

Inference runs the ``.tflite`` conversion shipped next to the Keras weights
(``python -m pipeline.export_tflite deblurgan-v2`` makes it) on LiteRT with
XNNPACK; without ``ai-edge-litert``, or when the ``.tflite`` was converted from
other weights than the Keras file in use, the Keras model runs instead.

The weights were trained from scratch on synthetic camera-shake blur + noise
+ JPEG (see :mod:`pipeline.train.blur`); the official DeblurGAN-v2 files are
PyTorch pickles and are not used.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import weights_path
from ..imaging import variance_of_laplacian
from ..io import ensure_rgb

WEIGHTS_NAME = "deblurgan-v2"
WEIGHTS_FILE = "deblurgan_v2_fpn_mobilenet.weights.h5"
FPN_FILTERS, HEAD_FILTERS = 64, 32
"""Width of the shipped generator (the paper's is 128 / 64; halved for CPU speed)."""
MIN_SIDE = 9
"""Smallest accepted side in pixels."""
MAX_PIXELS = 40_000_000
"""Largest accepted image; larger ones are refused (tiling them would take minutes)."""
TILE = 512
"""Images with a side above this are processed as ``TILE``-sized tiles ..."""
HALO = 64
"""... each with this much context on every side, cut away afterwards."""
_STRIDE = 32

TFLITE_NAME = "deblurgan-v2-tflite"
ENGINES = ("auto", "tflite", "keras")
"""``tflite``: the shipped ``.tflite`` on LiteRT/XNNPACK (fast); ``keras``: TensorFlow;
``auto``: TFLite when usable, else Keras."""

_lock = threading.Lock()
_runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
_log = logging.getLogger(__name__)


def unavailable() -> str | None:
    """For the stage registry: why the deblurrer cannot run, or ``None``."""
    try:
        path = weights_path(WEIGHTS_NAME)
    except Exception as exc:  # hub_utils explains what is missing
        return str(exc)
    return None if path.is_file() else f"weights not found: {WEIGHTS_NAME}"


def generator_widths() -> tuple[int, int]:
    """``(fpn_filters, head_filters)`` of the shipped generator: its settings JSON next to the weights, else the defaults."""
    settings = Path(__file__).resolve().parents[2] / "weights" / WEIGHTS_FILE.replace(".weights.h5", ".json")
    try:
        data = json.loads(settings.read_text())
        return int(data.get("fpn_filters", FPN_FILTERS)), int(data.get("head_filters", HEAD_FILTERS))
    except (OSError, ValueError, TypeError):
        return FPN_FILTERS, HEAD_FILTERS


def build_keras_net():
    """The Keras generator with its weights loaded (what :mod:`pipeline.export_tflite` converts)."""
    from ..models import build_fpn_mobilenet

    path = weights_path(WEIGHTS_NAME)
    if not path.is_file():
        raise FileNotFoundError(f"{WEIGHTS_NAME} weights not found at {path}")
    net = build_fpn_mobilenet(*generator_widths())
    net.load_weights(str(path))
    return net


def _tflite_net():
    """A :class:`~pipeline.tflite_runtime.TFLiteNet` of the generator, or the reason there is none.

    A ``.tflite`` converted from other weights than the Keras file in use
    (retrained, or a user's own) is refused as stale.
    """
    from .. import tflite_runtime

    return tflite_runtime.load_converted(lambda: weights_path(TFLITE_NAME), lambda: weights_path(WEIGHTS_NAME),
                                         "python -m pipeline.export_tflite deblurgan-v2")


def _build_runner(engine: str = "auto") -> Callable[[np.ndarray], np.ndarray]:
    if engine in ("auto", "tflite"):
        net, reason = _tflite_net()
        if net is not None:
            return net
        if engine == "tflite":
            raise FileNotFoundError(f"TFLite deblurring unavailable: {reason}")
        _log.warning("deblurring runs on Keras (slower): %s", reason)
    import keras

    net = build_keras_net()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # One graph for every size (no XLA: per-shape compilation would stall new crop sizes).
        fn = tf.function(lambda x: net(x, training=False),
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        return lambda x: fn(x).numpy()
    return lambda x: keras.ops.convert_to_numpy(net(x, training=False))


def engine_in_use() -> str:
    """``"tflite"`` or ``"keras"``: what :func:`deblur` runs in this process."""
    net, _ = _tflite_net()
    return "keras" if net is None else "tflite"


def _get_runner(engine: str = "auto") -> Callable[[np.ndarray], np.ndarray]:
    runner = _runners.get(engine)
    if runner is None:
        with _lock:
            runner = _runners.get(engine)
            if runner is None:
                runner = _runners[engine] = _build_runner(engine)
    return runner


def _pad_to_stride(x: np.ndarray) -> tuple[np.ndarray, int, int]:
    h, w = x.shape[-3:-1]
    ph, pw = (-h) % _STRIDE, (-w) % _STRIDE
    pad = [(0, 0)] * (x.ndim - 3) + [(0, ph), (0, pw), (0, 0)]
    return np.pad(x, pad, mode="symmetric"), h, w


def _restore_batch(batch: np.ndarray, engine: str = "auto") -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> same shape uint8, one network call."""
    x = batch.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    x, h, w = _pad_to_stride(x)
    y = _get_runner(engine)(x)[:, :h, :w]
    return np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _restore_tiled(rgb: np.ndarray, engine: str = "auto") -> np.ndarray:
    h, w = rgb.shape[:2]
    if h <= TILE and w <= TILE:
        return _restore_batch(rgb[None], engine)[0]
    out = np.empty_like(rgb)
    for y0 in range(0, h, TILE):
        for x0 in range(0, w, TILE):
            y1, x1 = min(h, y0 + TILE), min(w, x0 + TILE)
            ty0, tx0 = max(0, y0 - HALO), max(0, x0 - HALO)
            ty1, tx1 = min(h, y1 + HALO), min(w, x1 + HALO)
            tile = _restore_batch(rgb[ty0:ty1, tx0:tx1][None], engine)[0]
            out[y0:y1, x0:x1] = tile[y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0]
    return out


def _checked(rgb: np.ndarray) -> np.ndarray:
    rgb = ensure_rgb(rgb, max_pixels=MAX_PIXELS)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InputError(f"image is {w} x {h} px; deblurring needs at least {MIN_SIDE} px per side")
    return rgb


def deblur(rgb: np.ndarray) -> np.ndarray:
    """Remove camera-shake / motion blur from an image or face crop.

    Args:
        rgb: ``H x W x 3`` uint8 RGB (grey and RGBA are converted); each side
            at least 9 px, at most 40 megapixels.

    Returns:
        ``H x W x 3`` uint8 RGB, same size as the input.

    Raises:
        InputError: image too small, too large or not an image array.
        FileNotFoundError: the weights are missing.
    """
    return _restore_tiled(_checked(rgb))


def deblur_many(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """:func:`deblur` over several face crops, batched: crops padded to a common size run as one call."""
    checked = [_checked(c) for c in crops]
    out: list[np.ndarray | None] = [None] * len(checked)
    small = [i for i, c in enumerate(checked) if max(c.shape[:2]) <= TILE]
    for i, c in enumerate(checked):
        if i not in small:
            out[i] = _restore_tiled(c)
    if small:
        side_h = max(checked[i].shape[0] for i in small)
        side_w = max(checked[i].shape[1] for i in small)
        side_h, side_w = int(math.ceil(side_h / _STRIDE) * _STRIDE), int(math.ceil(side_w / _STRIDE) * _STRIDE)
        batch = np.stack([np.pad(checked[i], ((0, side_h - checked[i].shape[0]),
                                              (0, side_w - checked[i].shape[1]), (0, 0)), mode="symmetric")
                          for i in small])
        restored = _restore_batch(batch)
        for k, i in enumerate(small):
            out[i] = restored[k, :checked[i].shape[0], :checked[i].shape[1]]
    return [o for o in out if o is not None]


BLUR_THRESHOLD = 400.0
"""Variance of the Laplacian of the luma below which a crop counts as blurred (auto mode)."""


def needs_deblur(rgb: np.ndarray) -> tuple[bool, str]:
    """Auto-mode test for a face crop: fire when the variance of the Laplacian is low."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        return False, f"crop {w}x{h} px is too small to restore"
    sharpness = variance_of_laplacian(rgb)
    if sharpness >= BLUR_THRESHOLD:
        return False, f"sharp enough (Laplacian variance {sharpness:.0f})"
    return True, f"blurred (Laplacian variance {sharpness:.0f} < {BLUR_THRESHOLD:.0f})"


__all__ = ["BLUR_THRESHOLD", "ENGINES", "build_keras_net", "deblur", "engine_in_use", "generator_widths", "deblur_many", "needs_deblur", "unavailable"]
