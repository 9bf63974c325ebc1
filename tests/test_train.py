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


# ---------------------------------------------------------------------------
# PyTorch path (deblur-gpu): only where torch is installed (GPU boxes, dev machines)
# ---------------------------------------------------------------------------
def test_torch_twin_computes_the_keras_generator():
    torch = pytest.importorskip("torch")
    from pipeline.models import build_fpn_mobilenet
    from pipeline.models.deblurgan import _MOBILENET_V2
    from pipeline.train.torch_fpn import MOBILENET_V2, FPNMobileNet, keras_weights, load_keras_weights

    assert MOBILENET_V2 == _MOBILENET_V2
    torch.manual_seed(0)
    twin = FPNMobileNet(16, 8, width=0.5)
    with torch.no_grad():  # non-trivial batch-norm statistics and output layer
        for module in twin.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        twin.m["final"].conv.weight.normal_(0, 0.05)
    twin.eval()
    model = build_fpn_mobilenet(16, 8, width=0.5)
    weights = keras_weights(twin)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 96, 3)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    got = twin(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    assert np.abs(expected - x).mean() > 1e-3  # the residual is not trivially zero
    np.testing.assert_allclose(got, expected, atol=1e-5)
    back = FPNMobileNet(16, 8, width=0.5)
    load_keras_weights(back, weights)
    back.eval()
    np.testing.assert_array_equal(back(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy(),
                                  got)


def test_jpeg_like_matches_libjpeg_and_fft_blur_matches_filter2d():
    torch = pytest.importorskip("torch")
    import cv2

    from pipeline.imaging import psnr
    from pipeline.train.gpu_blur import fft_blur, jpeg_like

    rng = np.random.default_rng(1)
    base = np.add.outer(np.linspace(0, 180, 64), np.linspace(0, 60, 64))[..., None] + np.array([0, 30, 60])
    img = np.clip(base + cv2.GaussianBlur(rng.normal(0, 40, (64, 64, 3)), (0, 0), 1.5), 0, 255).astype(np.uint8)
    for quality in (40, 90):
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        ref = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
        ours = jpeg_like(torch.from_numpy(img).permute(2, 0, 1)[None].float(), torch.tensor([quality]))
        ours = ours[0].permute(1, 2, 0).numpy().astype(np.uint8)
        assert psnr(ref, ours) > 38 and abs(psnr(img, ours) - psnr(img, ref)) < 1.0
    psf = random_psf(np.random.default_rng(5))
    ref = cv2.filter2D(img.astype(np.float32), -1, psf[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT)
    ours = fft_blur(torch.from_numpy(img).permute(2, 0, 1)[None].float(), torch.from_numpy(psf)[None])
    np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy()[16:-16, 16:-16], ref[16:-16, 16:-16], atol=1e-3)


def test_gpu_pairs_shapes_alignment_and_seed():
    torch = pytest.importorskip("torch")
    from pipeline.train.gpu_blur import GPUBlurPairs

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (120, 150, 3), dtype=np.uint8), rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)]
    bank = np.stack([random_psf(np.random.default_rng(k)) for k in range(4)])
    pairs = GPUBlurPairs(images, bank, patch=32, seed=3)
    blurred, sharp = pairs.batch(6)
    assert blurred.shape == sharp.shape == (6, 3, 32, 32) and blurred.dtype == torch.float32
    assert -1 <= float(blurred.min()) and float(blurred.max()) <= 1 and float((blurred - sharp).abs().mean()) > 0.01
    again = GPUBlurPairs(images, bank, patch=32, seed=3).batch(6)
    assert torch.equal(again[0], blurred) and torch.equal(again[1], sharp)
    # No blur, noise or JPEG: the input is the target exactly (the crops are aligned, nothing shifts).
    clean = GPUBlurPairs(images, bank, patch=32, seed=4, sharp_fraction=1.0, jpeg_fraction=0.0, max_noise=0.0)
    blurred, sharp = clean.batch(4)
    assert torch.equal(blurred, sharp)


@pytest.mark.slow
def test_gpu_training_path_on_cpu_packs_trains_and_imports(tmp_path):
    pytest.importorskip("torch")
    from pipeline.models import build_fpn_mobilenet
    from pipeline.train.__main__ import main

    _tiny_datasets(tmp_path / "data")
    faces = tmp_path / "data" / "faces" / "deepface"
    for k in (3, 4):  # 6 faces: deblur_split holds out the 5th by sorted name (deepface/img4)
        Image.open(faces / "img0.jpg").rotate(90 * (k - 2)).save(faces / f"img{k}.jpg")
    pack = tmp_path / "pack"
    assert main(["deblur-data", "--data", str(tmp_path / "data"), "--out", str(pack)]) == 0
    packed = sorted(p.name for p in (pack / "sharp").glob("face_*.jpg"))
    assert len(packed) == 5 and "face_deepface_img4.jpg" not in packed  # held-out faces never train
    assert not list((pack / "sharp").glob("Set14_*"))
    out = tmp_path / "out"
    assert main(["deblur-gpu", "--steps", "2", "--batch", "2", "--patch", "64", "--psf-bank", "8", "--device", "cpu",
                 "--data", str(pack), "--eval", str(pack / "eval.npz"), "--out", str(out),
                 "--work", str(tmp_path / "work")]) == 0
    run = json.loads((out / "deblurgan_v2_fpn_mobilenet.gpu.json").read_text())
    assert run["steps"] == 2 and "restored_psnr" in run["heldout_gpu"]["eval128"]
    assert main(["deblur-gpu", "--steps", "2", "--batch", "2", "--patch", "64", "--psf-bank", "8", "--device", "cpu",
                 "--data", str(pack), "--out", str(out), "--work", str(tmp_path / "work"), "--resume"]) == 0
    assert json.loads((out / "deblurgan_v2_fpn_mobilenet.gpu.json").read_text())["steps"] == 2
    weights = tmp_path / "weights"
    assert main(["deblur-import", str(out / "deblurgan_v2_fpn_mobilenet.keras.npz"), "--gpu-json",
                 str(out / "deblurgan_v2_fpn_mobilenet.gpu.json"), "--out", str(weights)]) == 0
    metrics = json.loads((weights / "deblurgan_v2_fpn_mobilenet.json").read_text())
    assert metrics["steps"] == 2 and metrics["twin_max_abs_diff"] <= 1e-4 and len(metrics["sha256"]) == 64
    build_fpn_mobilenet(64, 32).load_weights(str(weights / "deblurgan_v2_fpn_mobilenet.weights.h5"))
