"""Synthetic camera-shake blur like CCTV footage: trajectories, PSFs, noise, JPEG.

Motion blur kernels follow Boracchi & Foi (2012, "Modeling the performance of
image restoration from motion blur"): a camera trajectory is a random walk of
constant speed with inertia (the previous velocity), Gaussian shake, a
centripetal pull back to the start and rare impulsive jerks; the PSF is the
trajectory sampled over an exposure fraction and splatted bilinearly.  The PSF
is centred on its centroid so that blurring does not shift the image (a shift
would be learned as a spurious translation).

Real CCTV adds sensor noise and compression after the blur: :func:`degrade`
applies blur, Gaussian noise, 8-bit quantisation and JPEG in that order.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def random_trajectory(rng: np.random.Generator, length: float, steps: int = 64) -> np.ndarray:
    """A camera-shake path: ``(steps*8,)`` complex positions in pixels, total length ~``length``."""
    centripetal = 0.7 * rng.random()
    big_shake_prob = 0.2 * rng.random()
    gaussian_shake = 10.0 * rng.random()
    angle = 2 * math.pi * rng.random()
    step = length / (steps - 1)
    v = complex(math.cos(angle), math.sin(angle)) * step
    pos = np.zeros(steps, dtype=np.complex128)
    expl = 0.1 + 0.2 * rng.random()  # how erratic the path is
    for t in range(steps - 1):
        jerk = 0j
        if rng.random() < big_shake_prob * expl:
            jerk = 2 * v * complex(math.cos(math.pi + rng.random() - 0.5), math.sin(math.pi + rng.random() - 0.5))
        dv = jerk + expl * (gaussian_shake * complex(rng.standard_normal(), rng.standard_normal())
                            - centripetal * pos[t]) * step
        v = v + dv
        v = v / (abs(v) + 1e-12) * step
        pos[t + 1] = pos[t] + v
    # Densify the polyline so the splatted PSF is continuous.
    fine = np.linspace(0, steps - 1, steps * 8)
    return np.interp(fine, np.arange(steps), pos.real) + 1j * np.interp(fine, np.arange(steps), pos.imag)


def trajectory_psf(path: np.ndarray, exposure: float, size: int) -> np.ndarray:
    """Rasterise the first ``exposure`` fraction of ``path`` into a ``size x size`` float32 PSF (sums to 1)."""
    n = max(2, int(round(len(path) * exposure)))
    pts = path[:n]
    pts = pts - pts.mean()  # centroid at the kernel centre: no image shift
    c = (size - 1) / 2.0
    x, y = pts.real + c, pts.imag + c
    keep = (x >= 0) & (x <= size - 1.001) & (y >= 0) & (y <= size - 1.001)
    x, y = x[keep], y[keep]
    psf = np.zeros((size, size), dtype=np.float64)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(psf, (y0 + dy, x0 + dx), w)
    total = psf.sum()
    if total <= 0:
        psf[int(c), int(c)] = 1.0
        total = 1.0
    return (psf / total).astype(np.float32)


def random_psf(rng: np.random.Generator, max_length: float = 25.0, size: int = 31) -> np.ndarray:
    """One random motion PSF, ``size x size`` float32; path length uniform in 3..max_length px."""
    length = 3.0 + (max_length - 3.0) * rng.random()
    path = random_trajectory(rng, length)
    return trajectory_psf(path, exposure=0.5 + 0.5 * rng.random(), size=size)


def degrade(sharp: np.ndarray, psf: np.ndarray, rng: np.random.Generator, *,
            noise_sigma: float | None = None, jpeg_quality: int | None = None) -> np.ndarray:
    """Blur a ``H x W x 3`` uint8 image with ``psf``, add noise, quantise and JPEG-compress.

    Args:
        sharp: uint8 RGB image.
        psf: float32 kernel summing to 1.
        rng: randomness for the noise level, the noise and the JPEG quality.
        noise_sigma: Gaussian noise std in 8-bit units (random 0..6 when ``None``).
        jpeg_quality: 1..100, or 0 for no JPEG (random: 30 % none, else 35..95).

    Returns:
        ``H x W x 3`` uint8, the degraded image (reflect borders).
    """
    blurred = cv2.filter2D(sharp.astype(np.float32), -1, psf[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT)
    sigma = 6.0 * rng.random() if noise_sigma is None else noise_sigma
    if sigma > 0:
        blurred = blurred + rng.standard_normal(blurred.shape).astype(np.float32) * sigma
    out = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    quality = (0 if rng.random() < 0.3 else int(rng.integers(35, 96))) if jpeg_quality is None else jpeg_quality
    if quality > 0:
        ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return out
