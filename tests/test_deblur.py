"""Deblurring stage (pipeline/stages/deblur.py) with the shipped weights.

Fixtures are generated scenes shipped in tests/fixtures: deblur_sharp_128.png
and deblur_blurred_128.png (the same scene through one camera-shake PSF of
pipeline.train.blur, no noise, no JPEG).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import InputError
from pipeline.files import sha256_file
from pipeline.imaging import psnr, ssim
from pipeline.stages import deblur as deblur_stage
from pipeline.stages.deblur import deblur, deblur_many, needs_deblur

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / name).convert("RGB"))


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    return _load("deblur_blurred_128.png"), _load("deblur_sharp_128.png")


def test_shipped_weights_are_available():
    assert deblur_stage.unavailable() is None


def test_improves_on_the_blurred_fixture(pair):
    blurred, sharp = pair
    restored = deblur(blurred)
    assert restored.shape == sharp.shape and restored.dtype == np.uint8
    assert psnr(sharp, restored) > psnr(sharp, blurred) + 0.3
    assert ssim(sharp, restored) > ssim(sharp, blurred)


def test_any_size_same_size_out_and_deterministic(pair):
    crop = pair[0][:45, :70]  # not a multiple of 32
    out = deblur(crop)
    assert out.shape == crop.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, deblur(crop))


def test_batched_crops_match_single_crops(pair):
    crops = [pair[0][:64, :64], pair[0][10:58, 20:90], pair[0]]
    batched = deblur_many(crops)
    for crop, out in zip(crops, batched):
        assert out.shape == crop.shape
        assert np.abs(out.astype(int) - deblur(crop).astype(int)).mean() < 2.0


def test_large_images_are_tiled(pair, monkeypatch):
    image = np.tile(pair[0], (1, 3, 1))  # 128 x 384
    monkeypatch.setattr(deblur_stage, "TILE", 128)
    monkeypatch.setattr(deblur_stage, "HALO", 32)
    out = deblur(image)
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - image.astype(int)).mean() < 10  # no seams or garbage


def test_grey_rgba_tiny_and_huge_inputs(pair, monkeypatch):
    assert deblur(pair[0][:, :, 0]).shape == (128, 128, 3)
    rgba = np.dstack([pair[0], np.full((128, 128), 255, np.uint8)])
    assert deblur(rgba).shape == (128, 128, 3)
    with pytest.raises(InputError, match="at least 9 px"):
        deblur(np.zeros((8, 100, 3), np.uint8))
    monkeypatch.setattr(deblur_stage, "MAX_PIXELS", 10_000)
    with pytest.raises(InputError, match="megapixel limit"):
        deblur(np.zeros((200, 200, 3), np.uint8))


def test_auto_mode_skips_sharp_crops(pair):
    blurred, sharp = pair
    assert needs_deblur(blurred)[0]
    assert not needs_deblur(sharp)[0]
    assert not needs_deblur(np.zeros((5, 5, 3), np.uint8))[0]


# -- the TFLite/XNNPACK inference path -------------------------------------------------------------
def test_shipped_tflite_matches_manifest_and_the_current_keras_weights():
    """Fails when the generator is retrained without re-exporting: python -m pipeline.export_tflite deblurgan-v2."""
    import hub_utils

    from pipeline import tflite_runtime
    from pipeline.export_tflite import SPECS, max_difference

    spec = SPECS["deblurgan-v2-tflite"]
    model_bytes = Path(hub_utils.resolve(spec.name).path).read_bytes()  # sha256 checked against the manifest
    keras_weights = Path(hub_utils.resolve(spec.source).path)
    assert tflite_runtime.source_sha256(model_bytes) == sha256_file(keras_weights), (
        "weights/deblurgan_v2_fpn_mobilenet.tflite is stale: rerun python -m pipeline.export_tflite deblurgan-v2")
    _, reference = spec.build()
    assert max_difference(model_bytes, reference, spec, seed=7) <= 1e-4


def test_tflite_is_used_and_agrees_with_the_keras_fallback(pair, monkeypatch):
    from pipeline import tflite_runtime

    assert deblur_stage.engine_in_use() == "tflite"
    crop = pair[0][:50, :70]
    fast = deblur_stage._restore_batch(crop[None], "auto")[0]
    slow = deblur_stage._restore_batch(crop[None], "keras")[0]
    assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 1
    monkeypatch.setattr(tflite_runtime, "source_sha256", lambda model_bytes: "0" * 64)
    assert deblur_stage.engine_in_use() == "keras"  # a stale conversion is refused
    with pytest.raises(FileNotFoundError, match="rerun python -m pipeline.export_tflite"):
        deblur_stage._build_runner("tflite")
