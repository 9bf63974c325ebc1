"""Image arithmetic shared by the learned enhancement stages and their evaluation.

* :func:`imresize` -- MATLAB-compatible bicubic resizing (``imresize(x, s,
  'bicubic')``: cubic kernel with ``a = -0.5``, antialiasing when shrinking,
  symmetric border padding, the dimension with the smaller scale resized
  first, uint8 inputs rounded after each 1-D pass).  Every super-resolution
  paper makes its low-resolution inputs with it; OpenCV's or PIL's bicubic
  give PSNR numbers 1-5 dB off, so the protocol depends on this function.
* :func:`rgb_to_ycbcr` / :func:`ycbcr_to_rgb` -- MATLAB ``rgb2ycbcr``
  (BT.601, limited range).
* :func:`psnr` and :func:`ssim` -- the metrics of the SR and deblurring
  literature.

All functions are plain numpy; shapes and dtypes are stated per function.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from scipy import ndimage


# ---------------------------------------------------------------------------
# MATLAB-compatible bicubic resize
# ---------------------------------------------------------------------------
def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=128)
def _resize_taps(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``imresize>contributions``: ``(indices, weights)``, each ``out_length x taps``.

    Antialiasing widens the kernel by ``1/scale`` when shrinking; out-of-range
    taps are mirrored (symmetric padding); taps whose weight is zero for
    every output are dropped, as MATLAB does.
    """
    kernel_width = 4.0
    if scale < 1:
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731 -- antialiasing
        kernel_width = kernel_width / scale
    else:
        kernel = _cubic
    out_index = np.arange(1, out_length + 1, dtype=np.float64)
    # Output pixel centres in input coordinates (1-based, as in MATLAB).
    u = out_index / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    indices, weights = indices[:, keep], weights[:, keep]
    # Symmetric padding: 1..n, n..1, repeated.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, mirror.size)]
    return indices, weights


def _resize_axis0(x: np.ndarray, out_length: int, scale: float) -> np.ndarray:
    """Resize along the first axis: a weighted sum of a few gathered rows (no BLAS, cheap on small crops)."""
    indices, weights = _resize_taps(x.shape[0], out_length, scale)
    w = weights.astype(x.dtype).reshape(weights.shape + (1,) * (x.ndim - 1))
    out = np.zeros((out_length,) + x.shape[1:], dtype=x.dtype)
    for k in range(indices.shape[1]):
        out += w[:, k] * x[indices[:, k]]
    return out


def imresize(image: np.ndarray, scale: float | None = None,
             output_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Resize like MATLAB's ``imresize(image, scale, 'bicubic')``.

    Args:
        image: ``H x W`` or ``H x W x C`` array.  ``uint8`` input gives
            ``uint8`` output rounded after each 1-D pass (as MATLAB does);
            float32 input is computed in float32, other input in float64;
            float results are not clipped.
        scale: resize factor for both dimensions (e.g. ``1/3`` or ``3``).
        output_shape: ``(out_h, out_w)`` instead of ``scale``; the per-axis
            scales are then ``out / in``.

    Returns:
        The resized array, same number of dimensions and dtype rule as above.
    """
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    in_h, in_w = image.shape[:2]
    if output_shape is None:
        scales = (float(scale), float(scale))
        out_h, out_w = int(math.ceil(in_h * scale)), int(math.ceil(in_w * scale))
    else:
        out_h, out_w = int(output_shape[0]), int(output_shape[1])
        scales = (out_h / in_h, out_w / in_w)
    is_uint8 = image.dtype == np.uint8
    out = image.astype(np.float32 if image.dtype == np.float32 else np.float64)
    # MATLAB resizes the dimension with the smaller scale first (rows on a tie).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        out_length = (out_h, out_w)[axis]
        if axis == 0:
            out = _resize_axis0(out, out_length, scales[0])
        else:
            out = np.swapaxes(_resize_axis0(np.swapaxes(out, 0, 1), out_length, scales[1]), 0, 1)
        if is_uint8:
            out = np.clip(np.rint(out), 0, 255)
    return out.astype(np.uint8) if is_uint8 else np.ascontiguousarray(out)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``image`` (``H x W [x C]``) so both sides are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


# ---------------------------------------------------------------------------
# Colour: MATLAB rgb2ycbcr / ycbcr2rgb (BT.601, limited range)
# ---------------------------------------------------------------------------
_RGB_TO_YCBCR = np.array([[65.481, 128.553, 24.966],
                          [-37.797, -74.203, 112.0],
                          [112.0, -93.786, -18.214]]) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 (or float in 0..255) RGB -> float64 YCbCr in 0..255 units.

    Y spans 16..235 and Cb/Cr 16..240, as MATLAB's ``rgb2ycbcr`` on uint8
    input (before its final rounding).
    """
    return rgb.astype(np.float64) @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET


def rgb_to_y(rgb: np.ndarray, *, rounded: bool = True) -> np.ndarray:
    """Luma of ``H x W x 3`` uint8 RGB as MATLAB ``rgb2ycbcr`` gives it: ``H x W`` float64.

    ``rounded=True`` rounds to integers like MATLAB does for uint8 images.
    """
    y = rgb.astype(np.float64) @ _RGB_TO_YCBCR[0] + 16.0
    return np.rint(y) if rounded else y


_YCBCR_TO_RGB_AFFINE = np.hstack([_YCBCR_TO_RGB, -(_YCBCR_TO_RGB @ _YCBCR_OFFSET)[:, None]]).astype(np.float32)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """``H x W x 3`` float YCbCr (0..255 units) -> ``H x W x 3`` uint8 RGB, rounded and clipped."""
    # cv2.transform: one affine pass in float32 (a numpy matmul here costs ~10x more on small images).
    rgb = cv2.transform(np.ascontiguousarray(ycbcr, dtype=np.float32), _YCBCR_TO_RGB_AFFINE)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------
def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels from every side of ``image`` (``H x W [x C]``)."""
    return image[border:-border, border:-border] if border > 0 else image


def psnr(reference: np.ndarray, estimate: np.ndarray, *, border: int = 0, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two same-shape arrays (0..peak units)."""
    if reference.shape != estimate.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {estimate.shape}")
    diff = shave(reference.astype(np.float64), border) - shave(estimate.astype(np.float64), border)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def psnr_y(reference_rgb: np.ndarray, estimate_rgb: np.ndarray, border: int) -> float:
    """The SR literature's PSNR: on MATLAB-rounded Y of two uint8 RGB images, ``border`` shaved."""
    return psnr(rgb_to_y(reference_rgb), rgb_to_y(estimate_rgb), border=border)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(ax * ax) / (2 * sigma * sigma))
    window = np.outer(g, g)
    return window / window.sum()


def ssim(reference: np.ndarray, estimate: np.ndarray, *, peak: float = 255.0) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5.

    Args:
        reference, estimate: same-shape ``H x W`` or ``H x W x C`` arrays in
            0..peak units; colour images are the mean over channels (as
            ``skimage.metrics.structural_similarity(channel_axis=-1,
            gaussian_weights=True)`` computes it).

    Returns:
        Mean SSIM over the window positions fully inside the image.
    """
    if reference.shape != estimate.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {estimate.shape}")
    if reference.ndim == 3:
        return float(np.mean([ssim(reference[..., c], estimate[..., c], peak=peak)
                              for c in range(reference.shape[2])]))
    x, y = reference.astype(np.float64), estimate.astype(np.float64)
    window = _gaussian_window()
    pad = window.shape[0] // 2

    def filt(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate(a, window, mode="reflect")[pad:-pad, pad:-pad]

    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x * mu_x
    syy = filt(y * y) - mu_y * mu_y
    sxy = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def variance_of_laplacian(rgb: np.ndarray) -> float:
    """Sharpness of a ``H x W x 3`` uint8 image: variance of the Laplacian of its luma.

    Low values (below ~100 for 8-bit faces) mean blur.  Used by auto modes.
    """
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if rgb.ndim == 3 else rgb.astype(np.float64)
    return float(ndimage.laplace(grey, mode="reflect").var())
