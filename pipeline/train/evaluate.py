"""Evaluation exactly as the super-resolution literature does it.

HR images are cropped to a multiple of the scale; the LR input is MATLAB
``imresize(HR, 1/s, 'bicubic')`` on the uint8 RGB image; PSNR is computed on
the MATLAB-rounded BT.601 luma with ``s`` pixels shaved from each border.
Greyscale test images (Set14's ``bridge``) are scored on their own intensity,
as the published tables do.  With ``upscale = bicubic`` this reproduces the
published bicubic baselines (Set5 x3 30.39 dB, Set14 x3 27.54 dB).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..imaging import imresize, modcrop, psnr, rgb_to_y

Upscaler = Callable[[np.ndarray, int], np.ndarray]
"""``(lr_rgb uint8 H x W x 3, scale) -> uint8 RGB (H*scale) x (W*scale) x 3``."""


def bicubic(lr_rgb: np.ndarray, scale: int) -> np.ndarray:
    """The baseline: MATLAB-compatible bicubic upscaling of uint8 RGB."""
    return imresize(lr_rgb, scale)


def load_test_image(path: Path) -> tuple[np.ndarray, bool]:
    """``(uint8 RGB H x W x 3, was_grey)`` for a test-set file."""
    with Image.open(path) as img:
        grey = img.mode in ("L", "I;16", "I")
        return np.asarray(img.convert("RGB")), grey


def intensity(rgb: np.ndarray, grey: bool) -> np.ndarray:
    """What PSNR is computed on: MATLAB-rounded luma, or the grey level of a grey image."""
    return rgb.astype(np.float64).mean(axis=2).round() if grey else rgb_to_y(rgb)


def evaluate_sr(upscale: Upscaler, folder: Path, scale: int) -> dict[str, float]:
    """PSNR (dB) of ``upscale`` on every image of ``folder``; key ``"mean"`` is the average."""
    scores: dict[str, float] = {}
    for path in sorted(Path(folder).glob("*.png")):
        hr, grey = load_test_image(path)
        hr = modcrop(hr, scale)
        lr = imresize(hr, 1.0 / scale)
        sr = upscale(lr, scale)
        scores[path.stem] = psnr(intensity(hr, grey), intensity(sr, grey), border=scale)
    if not scores:
        raise FileNotFoundError(f"no PNG images in {folder}")
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


# ---------------------------------------------------------------------------
# deblurring
# ---------------------------------------------------------------------------
def synthetic_blur_set(images: list[np.ndarray], seed: int = 2024, max_side: int = 512
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (blurred, sharp) uint8 pairs from sharp RGB images, for held-out evaluation.

    Each image is area-shrunk to ``max_side``, cropped to a multiple of 32 and
    degraded with its own seeded camera-shake PSF, noise and JPEG
    (:func:`pipeline.train.blur.degrade`), so every run sees the same pairs.
    """
    import cv2

    from .blur import degrade, random_psf

    pairs = []
    for k, rgb in enumerate(images):
        rng = np.random.default_rng([seed, k])
        f = max_side / max(rgb.shape[:2])
        if f < 1:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
        rgb = rgb[: rgb.shape[0] // 32 * 32, : rgb.shape[1] // 32 * 32]
        psf = random_psf(rng)
        pairs.append((degrade(rgb, psf, rng), np.ascontiguousarray(rgb)))
    return pairs


def evaluate_deblur(restore: Callable[[np.ndarray], np.ndarray],
                    pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean RGB PSNR/SSIM of the blurred inputs and of ``restore(blurred)`` against the sharp images."""
    from ..imaging import ssim

    rows = []
    for blurred, sharp in pairs:
        restored = restore(blurred)
        rows.append((psnr(sharp, blurred), ssim(sharp, blurred), psnr(sharp, restored), ssim(sharp, restored)))
    a = np.mean(np.array(rows), axis=0)
    return {"blurred_psnr": float(a[0]), "blurred_ssim": float(a[1]),
            "restored_psnr": float(a[2]), "restored_ssim": float(a[3]),
            "psnr_gain": float(a[2] - a[0]), "ssim_gain": float(a[3] - a[1]), "images": len(pairs)}


def deblur_split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Face photos split into (train, held-out): every 5th file, by sorted name, is held out."""
    files = sorted(files)
    held = [f for i, f in enumerate(files) if i % 5 == 4]
    return [f for f in files if f not in held], held
