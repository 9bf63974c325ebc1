"""Blurred/sharp training pairs made on the accelerator (PyTorch), batch at a time.

The CPU path (:class:`pipeline.train.data.BlurPairs`) spends ~5 ms per crop
in ``filter2D`` with a 31 x 31 kernel and JPEG; a GPU then waits for data.
Here the same degradation runs on whole batches on the device:

1. sharp crops of ``patch + 2 * margin`` px, cut from an image pyramid
   (area-downsampled 1x..3x, so faces of many sizes are seen) with random
   rotations / flips (:class:`CropSampler`);
2. camera-shake blur by FFT with a PSF drawn from a pre-made bank of
   Boracchi & Foi trajectories (:func:`pipeline.train.blur.random_psf`),
   randomly rotated / flipped; 10 % of the pairs stay sharp (the network
   must learn to leave sharp inputs alone);
3. Gaussian noise (sigma 0..6 in 8-bit units), 8-bit quantisation;
4. JPEG-like compression (:func:`jpeg_like`): BT.601 YCbCr, 4:2:0 chroma,
   8 x 8 DCT quantised with the IJG tables at quality 35..95 (70 % of the
   pairs, as the CPU path), whose block grid lands at a random offset in
   the crop;
5. the margin (>= the PSF radius, so FFT wrap-around never shows) is cut.

Training code only; needs ``torch``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# IJG (libjpeg) standard quantisation tables, Annex K of ITU T.81.
_LUMA_Q = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float32).reshape(8, 8)
_CHROMA_Q = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, np.float32).reshape(8, 8)


def ijg_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(B, 8, 8)`` luma and chroma tables for IJG ``quality`` 1..100 (libjpeg's scaling)."""
    q = quality.float().clamp(1, 100)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)[:, None, None]
    tables = []
    for base in (_LUMA_Q, _CHROMA_Q):
        t = torch.as_tensor(base, device=quality.device)[None]
        tables.append(torch.floor((t * scale + 50.0) / 100.0).clamp(1, 255))
    return tables[0], tables[1]


def _dct_matrix(device: torch.device) -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float32, device=device)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d  # rows are basis functions: coef = D @ block @ D.T


def _blockwise(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Quantise 8x8 DCT blocks of ``(B, H, W)`` (H, W multiples of 8) with per-sample ``(B, 8, 8)`` tables."""
    b, h, w = plane.shape
    d = _dct_matrix(plane.device)
    blocks = plane.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coef = d @ blocks @ d.T
    t = table[:, None, None]
    coef = torch.round(coef / t) * t
    blocks = d.T @ coef @ d
    return blocks.permute(0, 1, 3, 2, 4).reshape(b, h, w)


def jpeg_like(rgb: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG round trip of ``(B, 3, H, W)`` float RGB in 0..255 (H, W multiples of 16), per-sample quality.

    Baseline JFIF as libjpeg writes it by default: full-range BT.601 YCbCr,
    chroma averaged 2 x 2 (4:2:0), IJG tables scaled by ``quality``, and
    chroma upsampled bilinearly on decode ("fancy upsampling").  Returns
    rounded, clipped 0..255 float RGB.
    """
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    luma_t, chroma_t = ijg_tables(quality)
    y = _blockwise(y - 128.0, luma_t) + 128.0
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    cb_q = _blockwise(chroma[:, 0], chroma_t)
    cr_q = _blockwise(chroma[:, 1], chroma_t)
    chroma = F.interpolate(torch.stack([cb_q, cr_q], 1), scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, 0], chroma[:, 1]
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return out.round().clamp(0, 255)


def fft_blur(images: torch.Tensor, psfs: torch.Tensor) -> torch.Tensor:
    """Blur ``(B, C, S, S)`` with per-sample ``(B, k, k)`` PSFs (k odd), circularly, by FFT.

    Same orientation as ``cv2.filter2D(img, -1, psf[::-1, ::-1])`` (a true
    convolution); wrap-around touches only the outer ``k // 2`` pixels.
    """
    bsz, _, s, _ = images.shape
    k = psfs.shape[-1]
    kernel = torch.zeros(bsz, s, s, device=images.device, dtype=torch.float32)
    kernel[:, :k, :k] = psfs
    kernel = torch.roll(kernel, shifts=(-(k // 2), -(k // 2)), dims=(1, 2))  # PSF centre at the origin
    spectrum = torch.fft.rfft2(images.float()) * torch.fft.rfft2(kernel)[:, None]
    return torch.fft.irfft2(spectrum, s=(s, s))


class CropSampler:
    """Random sharp crops, on the device, from an area-downsampled pyramid of each image.

    Args:
        images: uint8 RGB ``H x W x 3`` arrays.
        side: crop side in pixels.
        device: where the pyramid lives.
        zooms: pyramid factors (``1`` = original); images smaller than ``side`` at a level are skipped.
    """

    def __init__(self, images: Sequence[np.ndarray], side: int, device: torch.device | str,
                 zooms: Sequence[float] = (1.0, 1.26, 1.59, 2.0, 2.52, 3.0)) -> None:
        import cv2

        self.side, self.device = side, torch.device(device)
        self.levels: list[torch.Tensor] = []
        for rgb in images:
            for zoom in zooms:
                h, w = round(rgb.shape[0] / zoom), round(rgb.shape[1] / zoom)
                if min(h, w) < side:
                    continue
                level = rgb if zoom == 1.0 else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
                self.levels.append(torch.from_numpy(np.array(level, copy=True)).to(self.device))
        if not self.levels:
            raise ValueError(f"no image is at least {side} px on its shorter side")
        # Sample levels by the number of distinct crop positions, like a uniform pick over all crops.
        areas = torch.tensor([(t.shape[0] - side + 1) * (t.shape[1] - side + 1) for t in self.levels],
                             dtype=torch.float64)
        self.weights = (areas / areas.sum()).float()

    def sample(self, size: int, generator: torch.Generator) -> torch.Tensor:
        """``(size, 3, side, side)`` float32 RGB 0..255 on the device, randomly rotated / mirrored."""
        picks = torch.multinomial(self.weights, size, replacement=True, generator=generator).tolist()
        u = torch.rand(size, 2, generator=generator).tolist()
        crops = []
        for k, (a, b) in zip(picks, u):
            level = self.levels[k]
            y0 = int(a * (level.shape[0] - self.side + 1))
            x0 = int(b * (level.shape[1] - self.side + 1))
            crops.append(level[y0:y0 + self.side, x0:x0 + self.side])
        x = torch.stack(crops)  # (B, S, S, 3) uint8
        # Transpose and the two flips generate all 8 rotations / mirror images.
        t, fh, fv = (torch.rand(3, size, 1, 1, 1, generator=generator) < 0.5).to(self.device)
        x = torch.where(t, x.transpose(1, 2), x)
        x = torch.where(fh, x.flip(2), x)
        x = torch.where(fv, x.flip(1), x)
        return x.permute(0, 3, 1, 2).float()


class GPUBlurPairs:
    """Whole batches of (blurred, sharp) pairs made on the device; see the module docstring.

    Args:
        images: sharp uint8 RGB training images.
        psf_bank: ``(N, k, k)`` float32 PSFs summing to 1 (k odd, e.g. 31).
        patch: output side (the network's crop), a multiple of 8.
        device: torch device.
        seed: seeds the sampling generator (CPU) and the noise generator (on the device).
    """

    def __init__(self, images: Sequence[np.ndarray], psf_bank: np.ndarray, patch: int = 128,
                 device: torch.device | str = "cpu", seed: int = 0, sharp_fraction: float = 0.1,
                 jpeg_fraction: float = 0.7, max_noise: float = 6.0) -> None:
        self.device = torch.device(device)
        self.patch, self.kernel = patch, int(psf_bank.shape[-1])
        # Margin: the PSF radius (FFT wrap-around) plus one 16 px JPEG macroblock of slack for the
        # grid offset, rounded up to a multiple of 8.
        self.margin = (self.kernel // 2 + 16 + 7) // 8 * 8
        self.side = patch + 2 * self.margin
        self.crops = CropSampler(images, self.side, self.device)
        bank = torch.from_numpy(np.ascontiguousarray(psf_bank, dtype=np.float32))
        # The 8 rotations / mirror images of every PSF, made once.
        variants = [torch.rot90(bank, r, dims=(1, 2)) for r in range(4)]
        self.bank = torch.cat(variants + [v.flip(2) for v in variants]).contiguous().to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        self.device_generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.sharp_fraction, self.jpeg_fraction, self.max_noise = sharp_fraction, jpeg_fraction, max_noise

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(blurred, sharp)``: ``(size, 3, patch, patch)`` float32 in [-1, 1] on the device."""
        g, dev, k = self.generator, self.device, self.kernel
        sharp = self.crops.sample(size, g)
        idx = torch.randint(len(self.bank), (size,), generator=g).to(dev)
        psfs = self.bank[idx]
        identity = torch.zeros(k, k, device=dev)
        identity[k // 2, k // 2] = 1.0
        keep = (torch.rand(size, generator=g) < self.sharp_fraction).to(dev)
        psfs = torch.where(keep[:, None, None], identity, psfs)
        blurred = fft_blur(sharp, psfs)
        sigma = (torch.rand(size, generator=g) * self.max_noise).to(dev)
        noise = torch.randn(blurred.shape, generator=self.device_generator, device=dev)
        blurred = (blurred + noise * sigma[:, None, None, None]).round().clamp(0, 255)
        quality = torch.randint(35, 96, (size,), generator=g).to(dev)
        use_jpeg = (torch.rand(size, generator=g) < self.jpeg_fraction).to(dev)
        # The JPEG block grid starts at a random offset inside the crop (face crops are not 8-aligned).
        oy, ox = (int(v) for v in torch.randint(8, (2,), generator=g))
        s = self.side - 16
        window = blurred[:, :, oy:oy + s, ox:ox + s]
        compressed = jpeg_like(window, quality)
        window = torch.where(use_jpeg[:, None, None, None], compressed, window)
        c0 = self.margin - oy, self.margin - ox
        p = self.patch
        blurred_out = window[:, :, c0[0]:c0[0] + p, c0[1]:c0[1] + p]
        sharp_out = sharp[:, :, self.margin:self.margin + p, self.margin:self.margin + p]
        return blurred_out / 127.5 - 1.0, sharp_out / 127.5 - 1.0
