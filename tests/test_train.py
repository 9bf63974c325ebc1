"""Training scripts (pipeline/train): blur synthesis and short CPU runs on generated data.

No ../shared needed: a tiny dataset tree is generated in a temporary folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.train.blur import degrade, random_psf, trajectory_psf, random_trajectory
from pipeline.train.loop import cosine_lr


def test_psfs_are_normalised_centred_and_reproducible():
    psf = random_psf(np.random.default_rng(3))
    assert psf.shape == (31, 31) and psf.dtype == np.float32
    assert psf.sum() == pytest.approx(1.0, abs=1e-5) and psf.min() >= 0
    ys, xs = np.indices(psf.shape)
    assert abs((psf * ys).sum() - 15) < 1.0 and abs((psf * xs).sum() - 15) < 1.0  # no image shift
    np.testing.assert_array_equal(psf, random_psf(np.random.default_rng(3)))
    path = random_trajectory(np.random.default_rng(0), length=10.0)
    assert np.abs(np.diff(path)).sum() == pytest.approx(10.0, rel=0.05)
    assert trajectory_psf(path, 1.0, 31).sum() == pytest.approx(1.0, abs=1e-5)


def test_degrade_keeps_size_and_blurs():
    rng = np.random.default_rng(0)
    sharp = np.zeros((64, 64, 3), np.uint8)
    sharp[:, 32:] = 255
    out = degrade(sharp, random_psf(rng, max_length=20), rng, noise_sigma=0, jpeg_quality=0)
    assert out.shape == sharp.shape and out.dtype == np.uint8
    assert 0 < (out[:, 24:40].astype(int) != sharp[:, 24:40]).mean()


def test_cosine_schedule():
    assert cosine_lr(1e-3, 0.0) < 1e-4  # warm-up
    assert cosine_lr(1e-3, 0.02) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 1.0) == pytest.approx(1e-5)


def _tiny_datasets(root):
    rng = np.random.default_rng(0)

    def save(path, h, w):
        path.parent.mkdir(parents=True, exist_ok=True)
        base = np.add.outer(np.linspace(0, 200, h), np.linspace(0, 55, w))
        img = np.clip(base[..., None] + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(path)

    for k in range(3):
        save(root / "sr" / "T91" / f"t{k}.png", 96, 120)
        save(root / "faces" / "deepface" / f"img{k}.jpg", 160, 128)
    save(root / "faces" / "facenet_pytorch" / "a" / "1.jpg", 140, 140)
    save(root / "sr" / "Set5" / "x_GT.png", 60, 66)
    save(root / "sr" / "Set14" / "y.png", 64, 64)


@pytest.mark.slow
def test_short_cpu_runs_write_weights_metrics_and_resume(tmp_path):
    from pipeline.train.__main__ import main

    _tiny_datasets(tmp_path / "data")
    common = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    assert main(["fsrcnn", "--scale", "3", "--steps", "3", "--batch", "4", "--threads", "1", *common]) == 0
    metrics = json.loads((tmp_path / "out" / "fsrcnn_x3.json").read_text())
    assert metrics["steps"] == 3 and len(metrics["sha256"]) == 64
    assert {"Set5_psnr", "Set14_psnr", "Set5_bicubic_psnr"} <= set(metrics)
    # Resuming a finished step budget trains no further and keeps the step count.
    assert main(["fsrcnn", "--scale", "3", "--steps", "3", "--batch", "4", "--threads", "1", "--resume",
                 "--no-eval", *common]) == 0
    assert json.loads((tmp_path / "out" / "fsrcnn_x3.json").read_text())["steps"] == 3
    assert main(["deblur", "--steps", "1", "--batch", "2", "--patch", "64", "--threads", "1", "--psf-bank", "20",
                 *common]) == 0
    metrics = json.loads((tmp_path / "out" / "deblurgan_v2_fpn_mobilenet.json").read_text())
    assert metrics["steps"] == 1 and "heldout_psnr_gain" in metrics

    from pipeline.models import build_fpn_mobilenet, build_fsrcnn

    build_fsrcnn(3).load_weights(str(tmp_path / "out" / "fsrcnn_x3.weights.h5"))
    build_fpn_mobilenet(64, 32).load_weights(str(tmp_path / "out" / "deblurgan_v2_fpn_mobilenet.weights.h5"))
