"""Super-resolution stage: SRCNN for stills and evidence, a fast FSRCNN-style model for live video.

``super_resolve(rgb, scale, model)`` upscales a ``H x W x 3`` uint8 RGB image
by 2, 3 or 4.  Both models work on luma only, as in the papers: the image is
converted to YCbCr (BT.601, MATLAB ``rgb2ycbcr``), all three channels are
upscaled with MATLAB-compatible bicubic interpolation, the network restores
the luma, and Cb/Cr stay bicubic (the eye and the recogniser care about luma
detail; chroma is smooth).

* ``model="srcnn"`` -- SRCNN on the bicubic-upscaled luma (the card's model;
  best quality).  The shipped weights are the lighter variant whose 5x5
  mapping layer is factorised into 5x1 and 1x5 convolutions
  (:mod:`pipeline.models.srcnn`: about 1.4 GMAC per 256x256 output instead of
  9-5-5's 3.7); the architecture is read from each weights file, so a 9-5-5
  file (older weights, a user's own) still loads.
* ``model="fast"`` -- FSRCNN body with a sub-pixel output, working in
  low-resolution space (about 50 MMAC per 64x64 input at x4), for the live path.

Weights are resolved once per process and the built models are cached; a lock
makes the first load thread-safe.  Inference runs the ``.tflite`` conversions
shipped next to the Keras weights (``weights/*.tflite``, made by
``python -m pipeline.export_tflite``) on LiteRT with XNNPACK -- several times
faster on CPU.  When ``ai-edge-litert`` is missing, or a ``.tflite`` was
converted from other weights than the Keras file in use, the Keras model runs
instead: ``model(x, training=False)`` inside a compiled ``tf.function`` (XLA
for SRCNN, on square tiles padded to multiples of 32 px, so at most 17 shapes
are ever compiled).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Literal

import cv2
import numpy as np

from ..errors import InputError
from ..files import weights_path
from ..imaging import _resize_taps, rgb_to_ycbcr, ycbcr_to_rgb
from ..io import ensure_rgb

ModelName = Literal["srcnn", "fast"]
SCALES = (2, 3, 4)
MODELS = ("srcnn", "fast")
MIN_SIDE = 9
"""Smallest accepted input side in pixels: an 8 px crop holds no face detail to restore."""
MAX_OUTPUT_PIXELS = 24_000_000
"""Largest output (about 6000 x 4000); bigger requests are refused, not silently shrunk."""
TILE = 512
"""SRCNN runs on tiles of at most this many output pixels per side (bounded memory)."""
_SRCNN_HALO = 8  # receptive-field radius of 9-5-5 and of the separable variant: (9 + 5 + 5 - 3) / 2
_BUCKET = 32  # SRCNN tiles are padded to squares of a multiple of this: at most 17 XLA compilations

LumaFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(lr_luma, bicubic_luma) -> restored luma``: float32 arrays in ``Y/255 - 0.5`` units."""


# ---------------------------------------------------------------------------
# weights and models
# ---------------------------------------------------------------------------
def _model_key(model: str, scale: int) -> str:
    return f"{'srcnn' if model == 'srcnn' else 'fsrcnn'}-x{scale}"


def weights_missing(model: str = "srcnn", scales: Sequence[int] = SCALES) -> str | None:
    """Reason the weights for ``model`` at ``scales`` cannot be used, or ``None`` when all exist."""
    missing = []
    for scale in scales:
        key = _model_key(model, scale)
        try:
            path = weights_path(key)
        except Exception as exc:  # noqa: BLE001 -- any failure to resolve makes the stage unavailable, with its reason
            return f"{key}: {exc}"
        if not path.is_file():
            missing.append(key)
    return f"weights not found: {', '.join(missing)}" if missing else None


_lock = threading.Lock()
_runners: dict[tuple[str, int, str], LumaFn] = {}
_log = logging.getLogger(__name__)

ENGINES = ("auto", "tflite", "keras")
"""``tflite``: the shipped ``.tflite`` files on LiteRT/XNNPACK (fast); ``keras``: the Keras
weights on TensorFlow (XLA for SRCNN); ``auto``: TFLite when usable, else Keras."""
_TFLITE_BUCKET = 8  # TFLite tiles are padded to a multiple of this (few interpreters, little waste)


def build_keras_net(model: str, scale: int):
    """The Keras network for ``model`` at ``scale`` with its weights loaded (what the exporter converts)."""
    from ..models import build_fsrcnn
    from ..models.srcnn import build_srcnn_for

    key = _model_key(model, scale)
    path = weights_path(key)
    if not path.is_file():
        raise FileNotFoundError(f"{key} weights not found at {path}")
    if model == "srcnn":
        return build_srcnn_for(path)  # 9-5-5 or separable, whichever the file holds
    net = build_fsrcnn(scale)
    net.load_weights(str(path))
    return net


def _tflite_net(model: str, scale: int):
    """A :class:`~pipeline.tflite_runtime.TFLiteNet` for ``model``, or the reason there is none.

    Refuses a ``.tflite`` converted from other weights than the Keras file in
    use (a retrained or user-supplied model): that conversion would be stale.
    """
    from .. import tflite_runtime

    key = _model_key(model, scale)
    return tflite_runtime.load_converted(lambda: weights_path(f"{key}-tflite"), lambda: weights_path(key),
                                         "python -m pipeline.export_tflite")


def _build_runner(model: str, scale: int, engine: str) -> LumaFn:
    if engine in ("auto", "tflite"):
        net, reason = _tflite_net(model, scale)
        if net is not None:
            if model == "srcnn":
                return lambda lr, up: _srcnn_tiled_valid(net, up)

            def run_fast(lr: np.ndarray, up: np.ndarray) -> np.ndarray:
                # The file stops before the pixel shuffle: (1, h, w, r*r) -> (h*r, w*r), plus the bicubic luma.
                h, w = lr.shape
                sub = net(lr[None, :, :, None])[0]
                return up + sub.reshape(h, w, scale, scale).transpose(0, 2, 1, 3).reshape(h * scale, w * scale)
            return run_fast
        if engine == "tflite":
            raise FileNotFoundError(f"TFLite {model} x{scale} unavailable: {reason}")
        _log.warning("super-resolution %s x%d runs on Keras (slower): %s", model, scale, reason)
    return _build_keras_runner(model, scale)


def _build_keras_runner(model: str, scale: int) -> LumaFn:
    import keras

    net = build_keras_net(model, scale)
    if keras.backend.backend() != "tensorflow":
        def call(*xs):
            return keras.ops.convert_to_numpy(net(list(xs) if len(xs) > 1 else xs[0], training=False))
        compiled = call
    else:
        import tensorflow as tf

        if model == "srcnn":
            # XLA fuses the three convolutions (~1.6x faster on CPU); shapes are bucketed.
            fn = tf.function(lambda x: net(x, training=False), jit_compile=True)
            compiled = lambda x: fn(x).numpy()
        else:
            spec = tf.TensorSpec([None, None, None, 1], tf.float32)
            fn = tf.function(lambda lr, up: net([lr, up], training=False), input_signature=[spec, spec])
            compiled = lambda lr, up: fn(lr, up).numpy()

    if model == "srcnn":
        def run(lr: np.ndarray, up: np.ndarray) -> np.ndarray:
            return _srcnn_tiled(compiled, up, _BUCKET, square=True)
    else:
        def run(lr: np.ndarray, up: np.ndarray) -> np.ndarray:
            return compiled(lr[None, :, :, None], up[None, :, :, None])[0, :, :, 0]
    return run


def _runner(model: str, scale: int, engine: str = "auto") -> LumaFn:
    key = (model, scale, engine)
    runner = _runners.get(key)
    if runner is None:
        with _lock:
            runner = _runners.get(key)
            if runner is None:
                runner = _runners[key] = _build_runner(model, scale, engine)
    return runner


def engine_in_use(model: str = "srcnn", scale: int = 4) -> str:
    """``"tflite"`` or ``"keras"``: what ``super_resolve`` runs for ``model`` at ``scale`` in this process."""
    net, _ = _tflite_net(model, scale)
    return "keras" if net is None else "tflite"


def _srcnn_tiled(compiled: Callable[[np.ndarray], np.ndarray], up: np.ndarray,
                 bucket: int, square: bool) -> np.ndarray:
    """Run SRCNN over ``up`` (``H x W`` float32) in halo-padded tiles; exact up to the padding.

    Tiles are padded to multiples of ``bucket`` (and to squares when
    ``square``): every new shape costs an XLA compilation (~1 s) or a new
    TFLite interpreter (a few ms).
    """
    h, w = up.shape
    out = np.empty_like(up)
    for y0 in range(0, h, TILE):
        for x0 in range(0, w, TILE):
            y1, x1 = min(h, y0 + TILE), min(w, x0 + TILE)
            # Context from the image where it exists, reflection beyond its borders.
            ty0, ty1 = max(0, y0 - _SRCNN_HALO), min(h, y1 + _SRCNN_HALO)
            tx0, tx1 = max(0, x0 - _SRCNN_HALO), min(w, x1 + _SRCNN_HALO)
            tile = up[ty0:ty1, tx0:tx1]
            top, left = _SRCNN_HALO - (y0 - ty0), _SRCNN_HALO - (x0 - tx0)
            th, tw = tile.shape
            want_h = _round_up(th + top + _SRCNN_HALO, bucket)
            want_w = _round_up(tw + left + _SRCNN_HALO, bucket)
            if square:
                want_h = want_w = max(want_h, want_w)
            padded = np.pad(tile, ((top, want_h - th - top), (left, want_w - tw - left)), mode="reflect")
            result = compiled(padded[None, :, :, None])[0, :, :, 0]
            oy, ox = top + (y0 - ty0), left + (x0 - tx0)
            out[y0:y1, x0:x1] = result[oy:oy + (y1 - y0), ox:ox + (x1 - x0)]
    return out


def _srcnn_tiled_valid(net: Callable[[np.ndarray], np.ndarray], up: np.ndarray) -> np.ndarray:
    """SRCNN exported with ``valid`` convolutions over ``up`` (``H x W`` float32), tile by tile.

    Each tile gets ``_SRCNN_HALO`` px of context: image where it exists,
    reflection beyond the borders (as :func:`_srcnn_tiled`, so both engines give
    the same pixels), plus reflection up to a multiple of ``_TFLITE_BUCKET`` so
    that few input shapes (interpreters) are needed; the net returns the tile.
    """
    h, w = up.shape
    out = np.empty_like(up)
    halo = _SRCNN_HALO
    for y0 in range(0, h, TILE):
        for x0 in range(0, w, TILE):
            y1, x1 = min(h, y0 + TILE), min(w, x0 + TILE)
            ty0, ty1 = max(0, y0 - halo), min(h, y1 + halo)
            tx0, tx1 = max(0, x0 - halo), min(w, x1 + halo)
            want_h, want_w = _round_up(y1 - y0, _TFLITE_BUCKET), _round_up(x1 - x0, _TFLITE_BUCKET)
            top, left = halo - (y0 - ty0), halo - (x0 - tx0)
            bottom = want_h + 2 * halo - (ty1 - ty0) - top
            right = want_w + 2 * halo - (tx1 - tx0) - left
            padded = np.pad(up[ty0:ty1, tx0:tx1], ((top, bottom), (left, right)), mode="reflect")
            out[y0:y1, x0:x1] = net(padded[None, :, :, None])[0, :y1 - y0, :x1 - x0, 0]
    return out


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def _check_scale(scale: object) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) not in SCALES:
        raise InputError(f"super-resolution scale must be 2, 3 or 4, not {scale!r}")
    return int(scale)


def _check_model(model: object) -> str:
    if model not in MODELS:
        raise InputError(f"super-resolution model must be 'srcnn' or 'fast', not {model!r}")
    return str(model)


def _check_size(rgb: np.ndarray, scale: int) -> None:
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InputError(f"image is {w} x {h} px; super-resolution needs at least {MIN_SIDE} px per side")
    if h * w * scale * scale > MAX_OUTPUT_PIXELS:
        raise InputError(f"image is {w} x {h} px; x{scale} would give {w * scale} x {h * scale} px, "
                         f"over the {MAX_OUTPUT_PIXELS / 1e6:.0f} megapixel limit for super-resolution")


@functools.lru_cache(maxsize=64)
def _bicubic_matrix(in_length: int, scale: int) -> np.ndarray:
    """``(in_length*scale) x in_length`` float32 matrix of MATLAB's bicubic upscale along one axis.

    The same taps as :func:`pipeline.imaging.imresize` (a = -0.5, symmetric
    borders), written as a dense matrix so the upscale is two small matrix
    products instead of a gather per tap.
    """
    indices, weights = _resize_taps(in_length, in_length * scale, float(scale))
    matrix = np.zeros((in_length * scale, in_length), np.float64)
    rows = np.repeat(np.arange(in_length * scale), indices.shape[1])
    np.add.at(matrix, (rows, indices.ravel()), weights.ravel())
    return matrix.astype(np.float32)


def bicubic_upscale(plane: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible bicubic upscale of an ``H x W`` float plane by an integer ``scale`` (float32 out).

    Equal to ``imresize(plane, scale)`` to float32 rounding (1e-6 on a 0..1 range).
    """
    h, w = plane.shape
    # cv2.gemm rather than numpy's matmul: OpenBLAS would spread these small products over
    # its own thread pool, which costs far more than it saves next to other busy threads.
    rows = cv2.gemm(_bicubic_matrix(h, scale), np.asarray(plane, np.float32), 1.0, None, 0.0)
    return cv2.gemm(rows, _bicubic_matrix(w, scale), 1.0, None, 0.0, flags=cv2.GEMM_2_T)


def upscale_with(luma_fn: LumaFn, rgb: np.ndarray, scale: int) -> np.ndarray:
    """Upscale ``rgb`` (``H x W x 3`` uint8) by ``scale`` with a luma network ``luma_fn``.

    The recipe shared by the stage, the training script's evaluation and the
    benchmark: YCbCr, MATLAB-bicubic upscale of all channels, the network on
    luma, back to uint8 RGB ``(H*scale) x (W*scale) x 3``.
    """
    ycbcr = rgb_to_ycbcr(rgb).astype(np.float32)
    h, w = rgb.shape[:2]
    lr_y = ycbcr[:, :, 0] / np.float32(255.0) - np.float32(0.5)
    # Luma: MATLAB-compatible bicubic, exactly what the networks were trained on.
    up_y = bicubic_upscale(lr_y, scale)
    # Chroma: OpenCV's bicubic (a = -0.75) -- visually the same, ~10x cheaper,
    # and the PSNR protocol only looks at luma.
    up = np.empty((h * scale, w * scale, 3), np.float32)
    up[:, :, 1:] = cv2.resize(ycbcr[:, :, 1:], (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    restored = np.asarray(luma_fn(lr_y, up_y), dtype=np.float32)
    up[:, :, 0] = np.clip((restored + 0.5) * 255.0, 0.0, 255.0)
    return ycbcr_to_rgb(up)


def super_resolve(rgb: np.ndarray, scale: int = 4, model: ModelName = "srcnn") -> np.ndarray:
    """Upscale a face crop or image ``scale`` times with a trained network.

    Args:
        rgb: ``H x W x 3`` uint8 RGB (grey ``H x W``, ``H x W x 1`` and RGBA
            are converted); each side at least 9 px.
        scale: 2, 3 or 4.
        model: ``"srcnn"`` (quality: stills, evidence) or ``"fast"`` (live video).

    Returns:
        ``(H*scale) x (W*scale) x 3`` uint8 RGB.

    Raises:
        InputError: wrong scale or model name, image too small or too large.
        FileNotFoundError: the model's weights are missing.
    """
    scale = _check_scale(scale)
    model = _check_model(model)
    rgb = ensure_rgb(rgb)
    _check_size(rgb, scale)
    return upscale_with(_runner(model, scale), rgb, scale)


def super_resolve_many(crops: Sequence[np.ndarray], scale: int = 4,
                       model: ModelName = "srcnn") -> list[np.ndarray]:
    """:func:`super_resolve` over several crops (models loaded once, same settings for all)."""
    return [super_resolve(crop, scale, model) for crop in crops]


# ---------------------------------------------------------------------------
# pipeline glue: auto mode and per-crop scale
# ---------------------------------------------------------------------------
TARGET_FACE_SIDE = 112
"""Crops whose shorter side reaches this many pixels are left alone in auto mode."""


def choose_scale(rgb: np.ndarray) -> int:
    """Smallest of 2/3/4 that brings the crop's shorter side to ~``TARGET_FACE_SIDE`` px."""
    side = min(rgb.shape[:2])
    return int(min(4, max(2, math.ceil(TARGET_FACE_SIDE / max(side, 1)))))


def needs_super_resolution(rgb: np.ndarray) -> tuple[bool, str]:
    """Auto-mode test for a face crop: fire when it is small, skip large or tiny ones."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    if side < MIN_SIDE:
        return False, f"crop {w}x{h} px is too small to restore"
    if side >= TARGET_FACE_SIDE:
        return False, f"crop {w}x{h} px is large enough"
    return True, f"crop {w}x{h} px is small: x{choose_scale(rgb)}"


def enhance_crop(rgb: np.ndarray) -> np.ndarray:
    """The pipeline's crop stage: SRCNN at the scale :func:`choose_scale` picks."""
    return super_resolve(rgb, choose_scale(rgb), "srcnn")


def enhance_crop_fast(rgb: np.ndarray) -> np.ndarray:
    """Live-path variant of :func:`enhance_crop` using the fast model."""
    return super_resolve(rgb, choose_scale(rgb), "fast")


def unavailable() -> str | None:
    """For the stage registry: why SRCNN cannot run (missing weights), or ``None``."""
    return weights_missing("srcnn")


__all__ = ["ENGINES", "MODELS", "SCALES", "bicubic_upscale", "build_keras_net", "choose_scale", "engine_in_use", "enhance_crop", "enhance_crop_fast",
           "needs_super_resolution", "super_resolve", "super_resolve_many", "unavailable",
           "upscale_with", "weights_missing"]
