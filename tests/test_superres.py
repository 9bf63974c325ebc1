"""Super-resolution stage (pipeline/stages/superres.py) with the shipped weights.

Fast, CPU-only, offline: a small generated scene shipped in tests/fixtures
(sr_scene_96.png: gradients, shapes and text drawn with OpenCV).  The real
Set5/Set14 protocol checks run only when ../shared/datasets exists (they are
skipped for users who do not have it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import InputError
from pipeline.files import sha256_file
from pipeline.imaging import imresize, psnr_y
from pipeline.stages import superres
from pipeline.stages.superres import choose_scale, needs_super_resolution, super_resolve

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_SR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sr"


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / "sr_scene_96.png").convert("RGB"))


def test_shipped_weights_are_available():
    assert superres.weights_missing("srcnn") is None
    assert superres.weights_missing("fast") is None
    assert superres.unavailable() is None


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_srcnn_architecture_matches_its_metadata(scale):
    import json

    from pipeline.models.srcnn import macs_per_pixel, map_rank_of

    meta = json.loads((Path(__file__).parents[1] / "weights" / f"srcnn_x{scale}.json").read_text())
    rank = map_rank_of(superres.weights_path(f"srcnn-x{scale}"))
    assert rank == meta.get("map_rank")
    if scale == 4:  # the 64x64 crop x4 speed target needs the light mapping layer
        assert rank is not None and macs_per_pixel(rank) < 0.4 * macs_per_pixel()
        assert meta["macs_per_output_pixel"] == macs_per_pixel(rank)


@pytest.mark.parametrize("model", ["srcnn", "fast"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape_dtype_and_determinism(model, scale):
    rng = np.random.default_rng(scale)
    lr = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    out = super_resolve(lr, scale, model)
    assert out.shape == (17 * scale, 23 * scale, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, super_resolve(lr, scale, model))


@pytest.mark.parametrize("model", ["srcnn", "fast"])
def test_beats_bicubic_on_the_shipped_fixture(scene, model):
    for scale, margin in ((2, 0.5), (3, 0.5), (4, 0.3)):
        hr = scene[: 96 // scale * scale, : 96 // scale * scale]
        lr = imresize(hr, 1.0 / scale)
        bicubic = psnr_y(hr, imresize(lr, scale), scale)
        ours = psnr_y(hr, super_resolve(lr, scale, model), scale)
        assert ours > bicubic + margin, (model, scale, ours, bicubic)


def test_tiling_matches_a_single_pass(scene, monkeypatch):
    lr = imresize(scene, 1 / 2)  # 48 x 48 -> 96 x 96 output
    whole = super_resolve(lr, 2)
    monkeypatch.setattr(superres, "TILE", 40)  # 3 x 3 tiles with halos
    tiled = super_resolve(lr, 2)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_grey_and_rgba_inputs_are_converted(scene):
    grey = scene[:30, :30, 0]
    out = super_resolve(grey, 2)
    assert out.shape == (60, 60, 3)
    assert np.abs(out[..., 0].astype(int) - out[..., 2].astype(int)).max() <= 2  # stays grey
    rgba = np.dstack([scene[:30, :30], np.full((30, 30), 255, np.uint8)])
    assert super_resolve(rgba, 2).shape == (60, 60, 3)


@pytest.mark.parametrize("scale", [1, 5, 2.5, True, "3", None])
def test_wrong_scale_is_refused(scale):
    with pytest.raises(InputError, match="scale must be 2, 3 or 4"):
        super_resolve(np.zeros((20, 20, 3), np.uint8), scale)


def test_wrong_model_tiny_and_huge_inputs_are_refused():
    with pytest.raises(InputError, match="model must be"):
        super_resolve(np.zeros((20, 20, 3), np.uint8), 2, "esrgan")
    with pytest.raises(InputError, match="at least 9 px"):
        super_resolve(np.zeros((8, 40, 3), np.uint8), 2)
    with pytest.raises(InputError, match="megapixel limit"):
        super_resolve(np.zeros((3000, 2100, 3), np.uint8), 4)
    with pytest.raises(InputError):
        super_resolve(np.zeros((20, 20, 5), np.uint8), 2)


def test_auto_mode_and_scale_choice():
    assert needs_super_resolution(np.zeros((40, 36, 3), np.uint8))[0]
    assert not needs_super_resolution(np.zeros((140, 120, 3), np.uint8))[0]
    assert not needs_super_resolution(np.zeros((6, 6, 3), np.uint8))[0]
    assert choose_scale(np.zeros((28, 30, 3), np.uint8)) == 4
    assert choose_scale(np.zeros((40, 50, 3), np.uint8)) == 3
    assert choose_scale(np.zeros((80, 90, 3), np.uint8)) == 2


def test_pipeline_runs_the_stage_on_face_crops(scene):
    from pipeline.core import Pipeline
    from pipeline.stages import STAGES
    from pipeline.types import Face

    frame = np.zeros((200, 200, 3), np.uint8)
    frame[50:98, 60:108] = scene[::2, ::2]
    pipe = Pipeline(stages=STAGES, detector=lambda rgb: [Face(box=(60, 50, 48, 48), score=0.9)], crop_margin=0.0)
    result = pipe.run(frame, enabled={"lowlight": False, "deblur": False, "superres": "auto"})
    assert result.enhanced_crops[0].shape == (144, 144, 3)  # 48 px -> x3
    sr = next(s for s in result.stages if s.name == "superres")
    assert sr.fired and "x3" in sr.note


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_SR / "Set5").is_dir(), reason="needs ../shared/datasets/sr (developers only)")
def test_bicubic_baseline_reproduces_the_literature():
    from pipeline.train.evaluate import bicubic, evaluate_sr

    assert evaluate_sr(bicubic, SHARED_SR / "Set5", 3)["mean"] == pytest.approx(30.39, abs=0.05)
    assert evaluate_sr(bicubic, SHARED_SR / "Set14", 3)["mean"] == pytest.approx(27.54, abs=0.05)


# -- the TFLite/XNNPACK inference path -------------------------------------------------------------
TFLITE_SPECS = [f"{m}-x{s}-tflite" for m in ("srcnn", "fsrcnn") for s in (2, 3, 4)]


def test_bicubic_upscale_is_matlab_imresize():
    plane = np.random.default_rng(1).random((13, 21)).astype(np.float32) - 0.5
    for scale in (2, 3, 4):
        np.testing.assert_allclose(superres.bicubic_upscale(plane, scale), imresize(plane, scale), atol=1e-5)


@pytest.mark.parametrize("name", TFLITE_SPECS)
def test_shipped_tflite_matches_manifest_and_its_keras_weights(name):
    import hub_utils
    from pipeline import tflite_runtime
    from pipeline.export_tflite import SPECS, max_difference

    spec = SPECS[name]
    path = Path(hub_utils.resolve(name).path)  # raises on a sha256 mismatch with weights/models.json
    model_bytes = path.read_bytes()
    keras_weights = Path(hub_utils.resolve(spec.source).path)
    assert tflite_runtime.source_sha256(model_bytes) == sha256_file(keras_weights), (
        f"{path.name} was converted from other weights: rerun python -m pipeline.export_tflite {name}")
    _, reference = spec.build()
    assert max_difference(model_bytes, reference, spec, seed=7) <= 1e-4


@pytest.mark.parametrize("model", ["srcnn", "fast"])
def test_tflite_is_used_and_agrees_with_the_keras_fallback(scene, model, monkeypatch):
    from pipeline import tflite_runtime

    assert superres.engine_in_use(model, 3) == "tflite"
    lr = scene[:40, :44]
    fast = superres.upscale_with(superres._build_runner(model, 3, "auto"), lr, 3)
    # Without ai-edge-litert the stage falls back to Keras; same pixels to one grey level.
    monkeypatch.setattr(tflite_runtime, "interpreter_class", lambda: None)
    assert superres.engine_in_use(model, 3) == "keras"
    slow = superres.upscale_with(superres._build_runner(model, 3, "auto"), lr, 3)
    assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 1


def test_a_stale_tflite_is_refused(monkeypatch):
    from pipeline import tflite_runtime

    monkeypatch.setattr(tflite_runtime, "source_sha256", lambda model_bytes: "0" * 64)
    net, reason = superres._tflite_net("srcnn", 2)
    assert net is None and "rerun python -m pipeline.export_tflite" in reason
    with pytest.raises(FileNotFoundError, match="TFLite srcnn x2 unavailable"):
        superres._build_runner("srcnn", 2, "tflite")


def test_tflite_net_caches_one_interpreter_per_shape():
    from pipeline.tflite_runtime import TFLiteNet

    net = TFLiteNet((Path(__file__).parents[1] / "weights" / "fsrcnn_x2.tflite").read_bytes(), max_shapes=2)
    outs = [net(np.zeros((1, h, 12, 1), np.float32)) for h in (10, 11, 12, 10)]
    assert [o.shape for o in outs] == [(1, 10, 12, 4), (1, 11, 12, 4), (1, 12, 12, 4), (1, 10, 12, 4)]
    assert len(net._cache) == 2
