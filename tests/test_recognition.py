"""Embedding backends and face quality (pipeline/recognition/embedders.py, quality.py)."""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.errors import InputError, StageUnavailable
from pipeline.io import load_image
from pipeline.recognition import embedders
from pipeline.recognition.embedders import (
    VGGFACE_V1_MEANS_BGR,
    VGGFACE_V2_MEANS_BGR,
    VGGFaceEmbedder,
    embed_faces,
    get_embedder,
    vggface_preprocess,
)
from pipeline.recognition.quality import face_quality, yaw_from_landmarks
from pipeline.stages.detect import detect_faces

FACES = Path(__file__).parent / "fixtures" / "faces"


def _face(name: str):
    rgb = load_image(FACES / name)
    faces = detect_faces(rgb)
    assert len(faces) >= 1, name
    return rgb, max(faces, key=lambda f: f.width)


# ------------------------------------------------------------------ dlib (default)
def test_dlib_embeddings_are_unit_rows_and_separate_people():
    a1, fa1 = _face("person_a_1.jpg")
    a2, fa2 = _face("person_a_2.jpg")
    s, fs = _face("stranger.jpg")
    e_a1 = embed_faces(a1, [fa1])
    assert e_a1.shape == (1, 128) and e_a1.dtype == np.float32
    assert np.allclose(np.linalg.norm(e_a1, axis=1), 1.0, atol=1e-5)
    same = np.linalg.norm(e_a1[0] - embed_faces(a2, [fa2])[0])
    other = np.linalg.norm(e_a1[0] - embed_faces(s, [fs])[0])
    assert same < get_embedder().threshold < other


def test_dlib_embedding_is_deterministic_and_batched():
    rgb, face = _face("two_faces.jpg")
    faces = detect_faces(rgb)
    batch = embed_faces(rgb, faces)
    assert batch.shape == (len(faces), 128)
    one = embed_faces(rgb, [faces[0]])
    assert np.allclose(batch[0], one[0], atol=1e-5)


def test_no_faces_gives_empty_matrix():
    rgb = np.zeros((64, 64, 3), np.uint8)
    assert embed_faces(rgb, []).shape == (0, 128)


def test_unknown_backend_is_an_input_error():
    with pytest.raises(InputError, match="unknown recognition backend"):
        get_embedder("facenet-9000")


def test_embedder_revision_names_model_and_alignment():
    revision = get_embedder("dlib").revision
    assert revision.startswith("dlib-resnet-v1@") and embedders.ALIGNMENT_VERSION in revision


# ------------------------------------------------------------------ VGGFace (Keras 3)
def test_vggface_preprocessing_is_bgr_minus_means():
    chips = np.zeros((1, 2, 2, 3), np.uint8)
    chips[..., 0] = 200  # R
    out = vggface_preprocess(chips, 1)
    assert out.dtype == np.float32
    assert np.allclose(out[0, 0, 0], [0 - VGGFACE_V1_MEANS_BGR[0], 0 - VGGFACE_V1_MEANS_BGR[1],
                                      200 - VGGFACE_V1_MEANS_BGR[2]])
    assert np.allclose(vggface_preprocess(chips, 2)[0, 0, 0, 2], 200 - VGGFACE_V2_MEANS_BGR[2])


def test_vggface_layouts_match_keras_vggface_names():
    full, features = embedders.build_vggface_vgg16(input_size=32, width_divisor=32, classes=5)
    names = {layer.name for layer in full.layers}
    assert {"conv1_1", "conv5_3", "pool5", "fc6", "fc7", "fc8"} <= names
    assert features.output.shape[-1] == 4096 // 32
    full, features = embedders.build_vggface2_resnet50(input_size=32, width_divisor=32, classes=5)
    names = {layer.name for layer in full.layers}
    legacy = {embedders.legacy_layer_name(n) for n in names}
    assert {"conv1/7x7_s2", "conv2_1_1x1_proj", "conv5_3_1x1_increase/bn", "classifier"} <= legacy
    assert features.output.shape[-1] == 2048 // 32


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """hub_utils.resolve answering with small random weights saved in tmp_path (no network)."""
    import hub_utils

    files: dict[str, Path] = {}

    def make(name: str, builder, legacy: bool = False) -> Path:
        random_weights_model, _ = builder(input_size=32, width_divisor=32)
        path = tmp_path / (f"{name}.h5" if legacy else f"{name}.weights.h5")
        if legacy:
            _save_legacy_h5(random_weights_model, path)
        else:
            random_weights_model.save_weights(str(path))
        files[name] = path
        return path

    def fake_resolve(name: str, *args, **kwargs):
        if name not in files:
            raise hub_utils.ModelUnavailable(name, "offline and not in the cache") if hasattr(
                hub_utils, "ModelUnavailable") else RuntimeError("offline")
        return types.SimpleNamespace(path=files[name], sha256="ab" * 32, revision="main")

    monkeypatch.setattr(hub_utils, "resolve", fake_resolve)
    return make


def _save_legacy_h5(model, path: Path) -> None:
    """Write weights the way Keras 2 (keras-vggface releases) did: one group per layer."""
    import h5py

    with h5py.File(path, "w") as handle:
        layer_names = [embedders.legacy_layer_name(layer.name) for layer in model.layers if layer.weights]
        handle.attrs["layer_names"] = [n.encode() for n in layer_names]
        for layer in model.layers:
            if not layer.weights:
                continue
            legacy = embedders.legacy_layer_name(layer.name)
            group = handle.create_group(legacy)
            weight_names = [f"{legacy}/w{i}:0" for i in range(len(layer.weights))]
            group.attrs["weight_names"] = [n.encode() for n in weight_names]
            for wname, value in zip(weight_names, layer.get_weights()):
                group.create_dataset(wname, data=value)


@pytest.mark.slow
@pytest.mark.parametrize("name,builder,legacy", [
    ("vggface", embedders.build_vggface_vgg16, False),
    ("vggface2-resnet50", embedders.build_vggface2_resnet50, True),
])
def test_vggface_loads_weights_through_the_hub(fake_hub, name, builder, legacy):
    path = fake_hub(name, builder, legacy)
    embedder = VGGFaceEmbedder(name, width_divisor=32, input_size=32)
    assert embedder.revision.startswith(f"{name}@abababab")
    rng = np.random.default_rng(0)
    chips = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    vectors = embedder.embed_chips(chips)
    assert vectors.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The loaded weights are the saved ones: same outputs as a model given them directly.
    reference, features = builder(input_size=32, width_divisor=32)
    embedders.load_weights_by_name(reference, path)
    expected = np.asarray(features(vggface_preprocess(np.stack(chips), embedder.version), training=False))
    expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-4)
    # Real faces go through the shared dlib alignment at the network's input size.
    rgb, face = _face("person_a_1.jpg")
    assert embedder.embed(rgb, [face]).shape == (1, embedder.dim)


def test_vggface_without_weights_is_unavailable_with_a_reason(fake_hub):
    with pytest.raises(StageUnavailable, match="vggface weights are not available"):
        VGGFaceEmbedder("vggface", width_divisor=32, input_size=32)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    small, _ = embedders.build_vggface_vgg16(input_size=32, width_divisor=32, classes=5)
    path = tmp_path / "other.h5"
    _save_legacy_h5(small, path)
    wider, _ = embedders.build_vggface_vgg16(input_size=32, width_divisor=16, classes=5)
    with pytest.raises(StageUnavailable, match="does not fit"):
        embedders.load_weights_by_name(wider, path)


# ------------------------------------------------------------------ quality
def test_quality_of_a_clean_face_is_high():
    rgb, face = _face("person_a_1.jpg")
    x, y, w, h = face.box
    q = face_quality(rgb[y:y + h, x:x + w], w)
    assert q.score > 0.8 and q.usable and not q.problems


def test_quality_flags_small_blurry_dark_and_turned_faces():
    rgb, face = _face("person_a_1.jpg")
    x, y, w, h = face.box
    crop = rgb[y:y + h, x:x + w]
    tiny = face_quality(cv2.resize(crop, (14, 14), interpolation=cv2.INTER_AREA))
    assert not tiny.usable and "too small" in tiny.summary()
    blurry = face_quality(cv2.GaussianBlur(crop, (0, 0), 6), w)
    assert blurry.parts["blur"] < 0.3 and "blurry" in blurry.summary()
    dark = face_quality((crop * 0.05).astype(np.uint8), w)
    assert not dark.usable and "exposed" in dark.summary()
    frontal = {"right_eye": (30, 40), "left_eye": (70, 40), "nose_tip": (50, 60)}
    turned = {"right_eye": (30, 40), "left_eye": (50, 40), "nose_tip": (68, 60)}
    assert yaw_from_landmarks(frontal) == pytest.approx(0.0)
    assert face_quality(crop, w, turned).parts["pose"] < 0.5
    assert yaw_from_landmarks({"nose_tip": (1, 1)}) is None


def test_quality_of_an_empty_crop_is_zero():
    assert face_quality(np.zeros((1, 1, 3), np.uint8)).score == 0.0


def test_tensorflow_runtime_equals_dlib_own_code():
    """dlib's weights run with TensorFlow give dlib's numbers (and are the default runtime)."""
    tf_embedder = get_embedder("dlib")
    assert tf_embedder.runtime == "tensorflow"
    plain = embedders.DlibEmbedder(runtime="dlib")
    rgb, face = _face("two_faces.jpg")
    chips = [a.chip for a in tf_embedder.align(rgb, detect_faces(rgb))]
    assert np.allclose(tf_embedder.embed_chips(chips), plain.embed_chips(chips), atol=1e-5)
    assert plain.revision == tf_embedder.revision  # same embeddings, same cache
    with pytest.raises(InputError):
        embedders.DlibEmbedder(runtime="cuda-please")


def test_dlib_weight_file_parser_refuses_other_files(tmp_path):
    from pipeline.recognition.dlib_tf import DlibFormatError, read_weights

    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x05con_4\x01\x03" + b"\x00" * 64)
    with pytest.raises(DlibFormatError):
        read_weights(other)


def test_corrupt_dlib_model_file_is_a_clear_error(tmp_path, monkeypatch):
    source = embedders._face_recognition_models_dir()
    models = tmp_path / "models"
    models.mkdir()
    (models / "shape_predictor_5_face_landmarks.dat").write_bytes(
        (source / "shape_predictor_5_face_landmarks.dat").read_bytes())
    (models / "dlib_face_recognition_resnet_model_v1.dat").write_bytes(
        (source / "dlib_face_recognition_resnet_model_v1.dat").read_bytes()[:100_000])
    monkeypatch.setattr(embedders, "_face_recognition_models_dir", lambda: models)
    embedders._dlib_models_cached.cache_clear()
    try:
        with pytest.raises(StageUnavailable, match="reinstall face_recognition_models"):
            embedders.DlibEmbedder(runtime="dlib")
    finally:
        embedders._dlib_models_cached.cache_clear()  # later tests load the real files again
