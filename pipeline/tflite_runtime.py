"""Run the project's converted networks with the LiteRT (TFLite) interpreter and XNNPACK.

The super-resolution and deblurring stages ship a ``.tflite`` copy of each
Keras network (made by :mod:`pipeline.export_tflite`).  Timed taking turns
on the project's 2-core AVX2 CPU, XNNPACK needs about half the time of the
TensorFlow path (XLA for SRCNN): better convolution kernels for SRCNN, no
per-op dispatch overhead for the small FSRCNN and deblurring layers.

The files are fully convolutional with a dynamic input shape: one interpreter
is kept per input shape (a small LRU cache, bounded in shapes and pixels): resizing one
re-plans XNNPACK and would thrash when crops of two sizes alternate.

Every exported file records the sha256 of the Keras weights it was made from
(:data:`SOURCE_KEY` in the flatbuffer's metadata), so a stage can refuse a
stale conversion and fall back to Keras.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .files import sha256_file

SOURCE_KEY = "cctv_source_sha256"
"""Flatbuffer metadata entry: sha256 (hex, ASCII) of the ``.weights.h5`` file the model was converted from."""


def interpreter_class():
    """LiteRT's ``Interpreter``, or ``None`` when ``ai-edge-litert`` is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    return Interpreter


def read_metadata(model_bytes: bytes) -> dict[str, bytes]:
    """The flatbuffer's ``metadata`` entries, ``name -> raw bytes``."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - TensorFlow ships the same schema
        from tensorflow.lite.python import schema_py_generated as schema
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        out[entry.Name().decode()] = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    return out


def source_sha256(model_bytes: bytes) -> str | None:
    """The Keras weights hash recorded at export time, or ``None`` for a file without one."""
    value = read_metadata(model_bytes).get(SOURCE_KEY)
    return value.decode("ascii") if value else None


def load_converted(tflite_path: Callable[[], Path], weights_path: Callable[[], Path],
                   rerun: str) -> tuple["TFLiteNet | None", str | None]:
    """The ``.tflite`` network at ``tflite_path()``, or ``(None, why not)``.

    Refused when LiteRT is missing, a file cannot be resolved (missing, hash
    mismatch: hub_utils says which), or the file was converted from other
    weights than the Keras file at ``weights_path()`` (a retrained or
    user-supplied model: the conversion is stale; ``rerun`` says how to redo it).
    """
    if interpreter_class() is None:
        return None, "ai-edge-litert is not installed"
    try:
        tflite, weights = tflite_path(), weights_path()
        model_bytes = tflite.read_bytes()
        weights_sha = sha256_file(weights)
    except Exception as exc:
        return None, str(exc)
    recorded = source_sha256(model_bytes)
    if recorded != weights_sha:
        return None, (f"{tflite.name} was converted from weights {recorded} but {weights.name} is {weights_sha}; "
                      f"rerun {rerun}")
    return TFLiteNet(model_bytes), None


def _pixels(shape: tuple[int, ...]) -> int:
    """Batch x height x width of an NHWC shape."""
    return int(np.prod(shape[:-1]))


class TFLiteNet:
    """A single-input, single-output ``.tflite`` network callable on float32 arrays of any size.

    ``net(x)`` takes ``(N, H, W, C)`` float32 and returns the output tensor as
    a new float32 array.  Thread-safe: each cached interpreter has its own lock.
    """

    def __init__(self, model_bytes: bytes, num_threads: int | None = None, max_shapes: int = 8,
                 max_cached_pixels: int = 1_200_000) -> None:
        interpreter = interpreter_class()
        if interpreter is None:
            raise ImportError("ai-edge-litert is not installed (pip install ai-edge-litert)")
        self._interpreter = interpreter
        self._bytes = model_bytes
        self._num_threads = num_threads or os.cpu_count() or 1
        self._max_shapes = max_shapes
        self._max_cached_pixels = max_cached_pixels
        self._cache: OrderedDict[tuple[int, ...], tuple[object, threading.Lock]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _get(self, shape: tuple[int, ...]):
        with self._cache_lock:
            if shape in self._cache:
                self._cache.move_to_end(shape)
                return self._cache[shape]
        interpreter = self._interpreter(model_content=self._bytes, num_threads=self._num_threads)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(shape), strict=False)
        interpreter.allocate_tensors()
        item = (interpreter, threading.Lock())
        with self._cache_lock:
            self._cache[shape] = item
            # Each interpreter holds activation buffers for its shape (SRCNN: ~400 bytes per
            # pixel), so big stills are cached only while they fit the pixel budget.
            while len(self._cache) > 1 and (len(self._cache) > self._max_shapes
                                            or sum(map(_pixels, self._cache)) > self._max_cached_pixels):
                self._cache.popitem(last=False)
        return item

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        interpreter, lock = self._get(tuple(int(s) for s in x.shape))
        with lock:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


__all__ = ["SOURCE_KEY", "TFLiteNet", "interpreter_class", "load_converted", "read_metadata", "source_sha256"]
