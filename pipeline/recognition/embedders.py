"""Face embeddings: one interface, several backends.

``embed_faces(rgb, faces) -> (N, D) float32`` with L2-normalised rows, so
that the Euclidean distance between two rows is in ``[0, 2]`` and
``1 - d**2 / 2`` is their cosine similarity.

Backends (:data:`BACKENDS`):

* ``"dlib"`` (default, offline): dlib's ResNet face descriptor (99.38 % on
  LFW, its authors' claim) on 150 x 150 chips aligned with dlib's 5-point
  shape predictor.  Weights ship in the ``face_recognition_models`` package;
  the network runs on TensorFlow from those weights (``dlib_tf.py``) when it
  can, on dlib's own (single-core, BLAS-less) code otherwise.
* ``"vggface"``: the VGG-16 network of Parkhi et al. (BMVC 2015), ``fc7``
  features, 224 x 224 input, BGR with VGGFace v1 means subtracted.
* ``"vggface2-resnet50"``: the ResNet-50 of VGGFace2 (Cao et al. 2018),
  2048-d average-pooled features, BGR with VGGFace2 means subtracted.

The two VGGFace networks are rebuilt in Keras 3 with the layer names of the
Keras ``keras-vggface`` weight files (that package does not import on modern
Keras) and load their weights from ``hub_utils.resolve(name).path``.

All backends share the alignment: dlib's 5-point shape predictor run on a
box derived from the detector's box, then ``dlib.get_face_chip``.  The box
mapping was fitted on the labelled faces in ``../shared/datasets/faces``: the
box dlib's own HOG detector (which the shape predictor was trained with)
draws is 0.93 times as wide as BlazeFace's and its centre sits 1.6 % of the
box height lower.

Models are loaded once per process and cached; dlib networks keep per-call
state, so each model's forward pass runs under its own lock.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, StageUnavailable
from ..files import sha256_file
from ..io import ensure_rgb
from ..types import Face

DEFAULT_BACKEND = "dlib"
BACKENDS = ("dlib", "vggface", "vggface2-resnet50")

ALIGNMENT_VERSION = "sp5-box0.93-v1"
"""Part of every model revision: changing the alignment invalidates cached embeddings."""

# Fitted BlazeFace box -> dlib HOG box (see module docstring).
_BOX_WIDTH_RATIO = 0.93
_BOX_CENTRE_DY = 0.016

# dlib 5-point shape: 0-1 corners of the eye on the image's left, 2-3 of the
# other eye, 4 under the nose.
_SP5_IMAGE_LEFT_EYE = (0, 1)
_SP5_IMAGE_RIGHT_EYE = (2, 3)
_SP5_NOSE = 4


@dataclass(frozen=True)
class AlignedFace:
    """A face warped to the embedder's canonical chip.

    Attributes:
        chip: ``S x S x 3`` uint8 RGB aligned face.
        landmarks: ``right_eye``, ``left_eye``, ``nose_tip`` in pixels of the
            source image (dlib's 5 points: eye centres and under-nose point).
            "right" is the subject's right eye, which appears on the image's left.
    """

    chip: np.ndarray
    landmarks: dict[str, tuple[float, float]]


# --------------------------------------------------------------------------- dlib
def _face_recognition_models_dir() -> Path:
    """The model folder of ``face_recognition_models``, located without importing it.

    Its ``__init__`` imports ``pkg_resources``, which new setuptools no longer
    ships, so we only ask where the package lives.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise StageUnavailable("embed", "face_recognition_models is not installed (pip install face_recognition_models)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass
class _DlibModels:
    shape_predictor: Any
    recogniser: Any
    revision: str
    lock: threading.Lock


_DLIB_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _dlib_models_cached() -> _DlibModels:
    try:
        import dlib
    except ImportError as exc:
        raise StageUnavailable("embed", f"dlib is not installed (pip install dlib-bin): {exc}") from None
    folder = _face_recognition_models_dir()
    sp_path = folder / "shape_predictor_5_face_landmarks.dat"
    net_path = folder / "dlib_face_recognition_resnet_model_v1.dat"
    for path in (sp_path, net_path):
        if not path.is_file():
            raise StageUnavailable("embed", f"dlib model file missing: {path}")
    revision = f"dlib-resnet-v1@{sha256_file(net_path)[:12]}+{ALIGNMENT_VERSION}"
    try:
        shape_predictor = dlib.shape_predictor(str(sp_path))
        recogniser = dlib.face_recognition_model_v1(str(net_path))
    except Exception as exc:  # dlib raises RuntimeError (or worse) on a truncated or corrupt file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise StageUnavailable("embed", f"cannot load dlib's model files in {folder} ({first}); "
                                        "reinstall face_recognition_models") from None
    return _DlibModels(shape_predictor, recogniser, revision, threading.Lock())


def _dlib_models() -> _DlibModels:
    with _DLIB_LOCK:  # lru_cache alone may build twice under races
        return _dlib_models_cached()


def dlib_box(face: Face) -> tuple[float, float, float, float]:
    """The box dlib's shape predictor expects for ``face``: ``(left, top, right, bottom)``."""
    x, y, w, h = face.box
    side = _BOX_WIDTH_RATIO * max(w, h) if face.detector == "blazeface" else float(max(w, h))
    cx, cy = x + w / 2.0, y + h / 2.0 + (_BOX_CENTRE_DY * h if face.detector == "blazeface" else 0.0)
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def align_faces(rgb: np.ndarray, faces: Sequence[Face], chip_size: int = 150, padding: float = 0.25) -> list[AlignedFace]:
    """Align each face with dlib's 5-point shape predictor.

    Args:
        rgb: ``H x W x 3`` uint8 RGB image the faces were found in.
        faces: faces with boxes in pixels of ``rgb``.
        chip_size: side of the output chips in pixels.
        padding: context around the face, relative to its size (dlib's
            descriptor was trained with 0.25).

    Returns:
        One :class:`AlignedFace` per input face, in order.
    """
    import dlib

    models = _dlib_models()
    rgb = np.ascontiguousarray(ensure_rgb(rgb))
    out = []
    for face in faces:
        left, top, right, bottom = (int(round(v)) for v in dlib_box(face))
        shape = models.shape_predictor(rgb, dlib.rectangle(left, top, right, bottom))
        chip = dlib.get_face_chip(rgb, shape, size=chip_size, padding=padding)
        pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)
        image_left_eye = pts[list(_SP5_IMAGE_LEFT_EYE)].mean(axis=0)
        image_right_eye = pts[list(_SP5_IMAGE_RIGHT_EYE)].mean(axis=0)
        landmarks = {
            "right_eye": tuple(float(v) for v in image_left_eye),
            "left_eye": tuple(float(v) for v in image_right_eye),
            "nose_tip": tuple(float(v) for v in pts[_SP5_NOSE]),
        }
        out.append(AlignedFace(np.asarray(chip, dtype=np.uint8), landmarks))
    return out


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder:
    """Interface of a face embedding backend.

    Attributes:
        name: backend key (``"dlib"``, ``"vggface"``, ...).
        revision: model file identity + alignment version; keys the
            watchlist's embedding cache.
        dim: embedding length.
        chip_size: side of the aligned chip the network reads.
        chip_padding: dlib ``get_face_chip`` padding used for this network.
        threshold: default distance threshold (L2 distance of normalised
            embeddings) at or under which two faces are the same person.
        margin: smallest distance gap between the best and the second-best
            identity for a ``match``; under it the decision is inconclusive.
        band: distances in ``(threshold - band, threshold]`` are inconclusive.
        quality_slope: a face of quality ``q`` needs a distance another
            ``quality_slope * (1 - q)`` under ``threshold - band`` to match.
    """

    name: str = ""
    revision: str = ""
    dim: int = 0
    chip_size: int = 150
    chip_padding: float = 0.25
    threshold: float = 0.4
    margin: float = 0.03
    band: float = 0.0
    quality_slope: float = 0.0

    def align(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[AlignedFace]:
        """Aligned chips (``chip_size`` square, uint8 RGB) for ``faces`` in ``rgb``."""
        return align_faces(rgb, faces, self.chip_size, self.chip_padding)

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, dim)`` float32 L2-normalised embeddings of aligned chips."""
        raise NotImplementedError

    def embed(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Align then embed: ``(len(faces), dim)`` float32, L2-normalised rows."""
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_chips([a.chip for a in self.align(rgb, faces)])


_DLIB_TF: dict[str, Any] = {}
_DLIB_TF_LOCK = threading.Lock()


def _dlib_tf_network() -> tuple[Any, str | None]:
    """dlib's descriptor network rebuilt in TensorFlow (see ``dlib_tf.py``), or ``(None, why not)``."""
    with _DLIB_TF_LOCK:
        if "net" not in _DLIB_TF:
            try:
                from .dlib_tf import DlibDescriptorTF, read_weights

                weights = read_weights(_face_recognition_models_dir() / "dlib_face_recognition_resnet_model_v1.dat")
                _DLIB_TF["net"], _DLIB_TF["why"] = DlibDescriptorTF(weights), None
            except Exception as exc:  # no TensorFlow, or an unexpected file: dlib's own code still works
                _DLIB_TF["net"], _DLIB_TF["why"] = None, f"{type(exc).__name__}: {exc}"
        return _DLIB_TF["net"], _DLIB_TF["why"]


class DlibEmbedder(Embedder):
    """dlib's ResNet descriptor (128-d) on 150 px chips.

    Threshold 0.40 on normalised embeddings, calibrated on
    ``deepface/master.csv`` (see BENCHMARKS.md, section "recognition"): the
    largest genuine distance there is ~0.39, the smallest impostor ~0.41.

    Args:
        runtime: ``"tensorflow"`` runs dlib's weights with TensorFlow
            (batched, all cores; ~8x faster than the BLAS-less ``dlib-bin``
            wheel, same numbers to 1e-6); ``"dlib"`` uses dlib's own code;
            ``"auto"`` (default) takes TensorFlow when it loads.  Both give
            the same embeddings, so they share a revision and a cache.
    """

    name = "dlib"
    dim = 128
    chip_size = 150
    chip_padding = 0.25
    threshold = 0.40
    margin = 0.03
    band = 0.04
    quality_slope = 0.02

    def __init__(self, runtime: str = "auto") -> None:
        if runtime not in ("auto", "tensorflow", "dlib"):
            raise InputError(f"unknown dlib runtime {runtime!r}; choose auto, tensorflow or dlib")
        self._models = _dlib_models()
        self.revision = self._models.revision
        self._network = None
        self.runtime = "dlib"
        if runtime != "dlib":
            self._network, why = _dlib_tf_network()
            if self._network is not None:
                self.runtime = "tensorflow"
            elif runtime == "tensorflow":
                raise StageUnavailable("embed", f"dlib descriptor on TensorFlow failed to load: {why}")

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        for chip in batch:
            if chip.shape != (self.chip_size, self.chip_size, 3):
                raise ValueError(f"dlib chips must be {self.chip_size} x {self.chip_size} x 3, got {chip.shape}")
        if self._network is not None:
            return _l2_normalise(self._network(np.stack(batch)))
        with self._models.lock:  # the dlib net stores activations: one forward pass at a time
            vectors = self._models.recogniser.compute_face_descriptor(batch)
        return _l2_normalise(np.array([np.asarray(v) for v in vectors]))


# ------------------------------------------------------------------------ VGGFace
VGGFACE_V1_MEANS_BGR = (93.5940, 104.7624, 129.1863)
VGGFACE_V2_MEANS_BGR = (91.4953, 103.8827, 131.0912)


def vggface_preprocess(chips: np.ndarray, version: int) -> np.ndarray:
    """Keras VGGFace preprocessing: RGB -> BGR, subtract the training means.

    Args:
        chips: ``(N, S, S, 3)`` uint8 RGB.
        version: 1 for VGG-16 (VGGFace), 2 for ResNet-50 (VGGFace2).

    Returns:
        ``(N, S, S, 3)`` float32 BGR with the per-channel means removed.
    """
    means = np.array(VGGFACE_V1_MEANS_BGR if version == 1 else VGGFACE_V2_MEANS_BGR, np.float32)
    bgr = np.asarray(chips, np.float32)[..., ::-1]
    return bgr - means


def keras_layer_name(legacy_name: str) -> str:
    """Keras 3 forbids ``/`` in layer names: ``conv1/7x7_s2/bn`` -> ``conv1__7x7_s2__bn``."""
    return legacy_name.replace("/", "__")


def legacy_layer_name(keras_name: str) -> str:
    """Inverse of :func:`keras_layer_name`: the name in the keras-vggface weight files."""
    return keras_name.replace("__", "/")


def build_vggface_vgg16(input_size: int = 224, width_divisor: int = 1, classes: int = 2622):
    """VGGFace VGG-16 (Parkhi et al. 2015) with keras-vggface layer names.

    Args:
        input_size: square input side (224 for the real weights).
        width_divisor: divide every layer width by this (tests use small
            random models of the same layout; the real model uses 1).
        classes: size of the ``fc8`` identity classifier (2622 in VGGFace).

    Returns:
        A Keras model ``(N, S, S, 3) BGR-minus-means -> (N, 4096 / width_divisor)``
        giving the ``fc7`` features (after ReLU); ``fc8`` is built so that
        full weight files load but is not an output.
    """
    import keras
    from keras import layers

    def width(n: int) -> int:
        return max(1, n // width_divisor)

    inputs = keras.Input((input_size, input_size, 3), name="input")
    x = inputs
    for block, (filters, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(width(filters), 3, padding="same", activation="relu", name=f"conv{block}_{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(width(4096), name="fc6")(x)
    x = layers.Activation("relu", name=keras_layer_name("fc6/relu"))(x)
    x = layers.Dense(width(4096), name="fc7")(x)
    features = layers.Activation("relu", name=keras_layer_name("fc7/relu"))(x)
    logits = layers.Dense(classes, name="fc8")(features)
    full = keras.Model(inputs, logits, name="vggface_vgg16")
    return full, keras.Model(inputs, features, name="vggface_vgg16_fc7")


def build_vggface2_resnet50(input_size: int = 224, width_divisor: int = 1, classes: int = 8631):
    """VGGFace2 ResNet-50 (Cao et al. 2018) with keras-vggface layer names.

    Returns:
        ``(full, features)``: the full classifier and the model giving the
        2048-d (``/ width_divisor``) average-pooled features.
    """
    import keras
    from keras import layers

    def width(n: int) -> int:
        return max(1, n // width_divisor)

    def block(x, filters, stage, index, strides=1, project=False):
        f1, f2, f3 = (width(f) for f in filters)
        base = f"conv{stage}_{index}"
        shortcut = x
        y = layers.Conv2D(f1, 1, strides=strides, use_bias=False, name=f"{base}_1x1_reduce")(x)
        y = layers.BatchNormalization(name=f"{base}_1x1_reduce__bn")(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(f2, 3, padding="same", use_bias=False, name=f"{base}_3x3")(y)
        y = layers.BatchNormalization(name=f"{base}_3x3__bn")(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(f3, 1, use_bias=False, name=f"{base}_1x1_increase")(y)
        y = layers.BatchNormalization(name=f"{base}_1x1_increase__bn")(y)
        if project:
            shortcut = layers.Conv2D(f3, 1, strides=strides, use_bias=False, name=f"{base}_1x1_proj")(x)
            shortcut = layers.BatchNormalization(name=f"{base}_1x1_proj__bn")(shortcut)
        y = layers.Add()([y, shortcut])
        return layers.Activation("relu")(y)

    inputs = keras.Input((input_size, input_size, 3), name="input")
    x = layers.Conv2D(width(64), 7, strides=2, padding="same", use_bias=False,
                      name=keras_layer_name("conv1/7x7_s2"))(inputs)
    x = layers.BatchNormalization(name=keras_layer_name("conv1/7x7_s2/bn"))(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    for stage, filters, blocks, strides in [(2, (64, 64, 256), 3, 1), (3, (128, 128, 512), 4, 2),
                                            (4, (256, 256, 1024), 6, 2), (5, (512, 512, 2048), 3, 2)]:
        x = block(x, filters, stage, 1, strides=strides, project=True)
        for index in range(2, blocks + 1):
            x = block(x, filters, stage, index)
    features = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = layers.Dense(classes, name="classifier")(features)
    full = keras.Model(inputs, logits, name="vggface2_resnet50")
    return full, keras.Model(inputs, features, name="vggface2_resnet50_features")


def load_weights_by_name(model, path: Path) -> int:
    """Load weights into ``model`` from a Keras 3 ``.weights.h5`` or a legacy Keras 2 ``.h5``.

    Legacy files (the keras-vggface releases, and what ``python -m hub_utils
    import-vggface`` writes) are matched by layer name (``/`` in the file is
    ``__`` in Keras 3), so files with or without the classifier both load;
    every model layer with weights except the classifier must be in the file.
    Returns the number of layers loaded.

    Raises:
        StageUnavailable: the file does not fit the model.
    """
    import h5py

    path = Path(path)
    if path.name.endswith(".weights.h5"):
        try:
            model.load_weights(str(path))
        except (ValueError, KeyError, OSError) as exc:
            raise StageUnavailable("embed", f"weights in {path.name} do not fit the model: {exc}") from None
        return sum(1 for layer in model.layers if layer.weights)
    loaded = 0
    with h5py.File(path, "r") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        for layer in model.layers:
            if not layer.weights:
                continue
            legacy = legacy_layer_name(layer.name)
            if legacy not in root:
                if layer.name in ("fc8", "classifier"):
                    continue  # the identity classifier is not used for embeddings
                raise StageUnavailable("embed", f"layer {legacy} is missing from {path.name}")
            group = root[legacy]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
            values = [np.asarray(group[n]) for n in names]
            if len(values) != len(layer.weights) or any(v.shape != tuple(w.shape) for v, w in zip(values, layer.weights)):
                raise StageUnavailable("embed", f"layer {layer.name} in {path.name} does not fit the model")
            layer.set_weights(values)
            loaded += 1
    if loaded == 0:
        raise StageUnavailable("embed", f"no layer of {model.name} found in {path.name}")
    return loaded


class VGGFaceEmbedder(Embedder):
    """VGGFace (VGG-16, ``fc7``) or VGGFace2 (ResNet-50, avg-pool) in Keras 3.

    Args:
        name: ``"vggface"`` or ``"vggface2-resnet50"``; also the name given
            to ``hub_utils.resolve`` for the weights.
        weights_path: use this file instead of resolving through the Hub.
        width_divisor: tests only -- a narrow random model of the same layout.
        input_size: network input side (224 for the real weights).
    """

    chip_padding = 0.4  # VGGFace was trained on loose crops that include hair and chin

    def __init__(self, name: str = "vggface", *, weights_path: str | Path | None = None,
                 width_divisor: int = 1, input_size: int = 224, threshold: float | None = None) -> None:
        if name not in ("vggface", "vggface2-resnet50"):
            raise InputError(f"unknown VGGFace model {name!r}")
        self.name = name
        self.version = 1 if name == "vggface" else 2
        revision = None
        if weights_path is None:
            weights_path, revision = _resolve_weights(name)
        weights_path = Path(weights_path)
        builder = build_vggface_vgg16 if self.version == 1 else build_vggface2_resnet50
        full, self._features = builder(input_size=input_size, width_divisor=width_divisor)
        load_weights_by_name(full, weights_path)
        self.chip_size = input_size
        self.dim = int(self._features.output.shape[-1])
        self.revision = f"{name}@{(revision or sha256_file(weights_path))[:12]}+{ALIGNMENT_VERSION}"
        # Uncalibrated here (no weights offline): cosine 0.5 is the usual VGGFace operating point.
        self.threshold = 1.0 if threshold is None else float(threshold)
        self.margin = 0.03
        self.band = 0.0
        self._lock = threading.Lock()

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        batch = vggface_preprocess(np.stack([np.asarray(c, np.uint8) for c in chips]), self.version)
        with self._lock:
            features = self._features(batch, training=False)
        return _l2_normalise(np.asarray(features))


def _resolve_weights(name: str) -> tuple[Path, str | None]:
    """Weights file and revision for ``name`` through ``hub_utils`` (the only network user)."""
    try:
        import hub_utils
    except ImportError as exc:
        raise StageUnavailable("embed", f"hub_utils is not available: {exc}") from None
    try:
        resolved = hub_utils.resolve(name)
    except Exception as exc:  # hub_utils reports offline / missing / bad checksum in its own types
        reason = getattr(exc, "reason", None) or str(exc)
        raise StageUnavailable("embed", f"{name} weights are not available: {reason}") from None
    path = getattr(resolved, "path", None)
    if path is None or not Path(path).is_file():
        reason = getattr(resolved, "reason", None) or "not downloaded and not reachable (offline?)"
        raise StageUnavailable("embed", f"{name} weights are not available: {reason}")
    # The file's sha256 identifies the weights exactly (a Hub revision may be a branch name).
    return Path(path), getattr(resolved, "sha256", None) or getattr(resolved, "revision", None)


# ------------------------------------------------------------------------ factory
_EMBEDDERS: dict[str, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(backend: str = DEFAULT_BACKEND) -> Embedder:
    """The process-wide embedder for ``backend`` (built on first use).

    Raises:
        InputError: unknown backend name.
        StageUnavailable: the backend's package or weights are missing; the
            reason says which (VGGFace weights need the Hub or a local copy).
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown recognition backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    with _EMBEDDERS_LOCK:
        if backend not in _EMBEDDERS:
            _EMBEDDERS[backend] = DlibEmbedder() if backend == "dlib" else VGGFaceEmbedder(backend)
        return _EMBEDDERS[backend]


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot be used now (for the UI), or ``None`` when it can."""
    try:
        get_embedder(backend)
    except (StageUnavailable, InputError) as exc:
        return getattr(exc, "reason", str(exc))
    return None


def embed_faces(rgb: np.ndarray, faces: Sequence[Face], backend: str = DEFAULT_BACKEND) -> np.ndarray:
    """Embed the faces found in one image.

    Args:
        rgb: ``H x W x 3`` uint8 RGB image.
        faces: faces with boxes (and optionally landmarks) in pixels of ``rgb``.
        backend: one of :data:`BACKENDS`.

    Returns:
        ``(len(faces), D)`` float32 array; each row has unit L2 norm.
    """
    return get_embedder(backend).embed(ensure_rgb(rgb), faces)
