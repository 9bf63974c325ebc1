"""Training data: SR patch pairs from T91, blurred/sharp pairs from sharp photos.

Everything is numpy (no framework), seeded, and produced in batches by
:class:`Prefetcher` threads so the accelerator does not wait for patches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..imaging import imresize, modcrop, rgb_to_y
from .blur import degrade, random_psf

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def list_images(folders: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        files.extend(sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    return files


# ---------------------------------------------------------------------------
# super-resolution
# ---------------------------------------------------------------------------
class SRPatches:
    """Random aligned (LR, bicubic, HR) luma patches, flips and rotations, for one scale.

    Each training image is also used downscaled by 0.9 ... 0.6 (FSRCNN's data
    augmentation), which multiplies T91's 91 images into ~450.
    All arrays are float32 in ``Y/255 - 0.5`` units.
    """

    def __init__(self, files: Sequence[Path], scale: int, hr_patch: int = 48,
                 aug_scales: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6)) -> None:
        if hr_patch % scale:
            raise ValueError("hr_patch must be a multiple of scale")
        self.scale, self.hr_patch, self.lr_patch = scale, hr_patch, hr_patch // scale
        self.items: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for path in files:
            with Image.open(path) as img:
                y = rgb_to_y(np.asarray(img.convert("RGB"))) / 255.0
            for factor in aug_scales:
                ys = y if factor == 1.0 else imresize(y, factor)
                hr = modcrop(ys, scale)
                if min(hr.shape) < hr_patch:
                    continue
                lr = imresize(hr, 1.0 / scale)
                up = imresize(lr, scale)
                self.items.append(tuple(np.clip(a, 0, 1).astype(np.float32) - 0.5 for a in (lr, up, hr)))
        if not self.items:
            raise FileNotFoundError("no usable training images")
        areas = np.array([it[0].size for it in self.items], dtype=np.float64)
        self.weights = areas / areas.sum()

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lr, bicubic, hr)``: ``(size, p, p, 1)``, ``(size, P, P, 1)``, ``(size, P, P, 1)``."""
        s, lp, hp = self.scale, self.lr_patch, self.hr_patch
        lr_b = np.empty((size, lp, lp, 1), np.float32)
        up_b = np.empty((size, hp, hp, 1), np.float32)
        hr_b = np.empty((size, hp, hp, 1), np.float32)
        for k, idx in enumerate(rng.choice(len(self.items), size=size, p=self.weights)):
            lr, up, hr = self.items[idx]
            i = int(rng.integers(0, lr.shape[0] - lp + 1))
            j = int(rng.integers(0, lr.shape[1] - lp + 1))
            patches = [lr[i:i + lp, j:j + lp], up[i * s:(i + lp) * s, j * s:(j + lp) * s],
                       hr[i * s:(i + lp) * s, j * s:(j + lp) * s]]
            rot, flip = int(rng.integers(4)), bool(rng.integers(2))
            for out, p in zip((lr_b, up_b, hr_b), patches):
                p = np.rot90(p, rot)
                out[k, :, :, 0] = p[:, ::-1] if flip else p
        return lr_b, up_b, hr_b


# ---------------------------------------------------------------------------
# deblurring
# ---------------------------------------------------------------------------
def load_sharp_images(files: Sequence[Path], max_side: int = 640) -> list[np.ndarray]:
    """Decode sharp training photos as uint8 RGB, shrunk (area) so the longer side is <= ``max_side``."""
    images = []
    for path in files:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        scale = max_side / max(rgb.shape[:2])
        if scale < 1:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        if min(rgb.shape[:2]) >= 64:
            images.append(np.ascontiguousarray(rgb))
    if not images:
        raise FileNotFoundError("no usable sharp images")
    return images


class BlurPairs:
    """Random (blurred, sharp) RGB patch pairs in [-1, 1]: camera shake + noise + JPEG.

    Crops come at random scales (area-downsampled 1x..3x) so faces of many
    sizes are seen; 10 % of pairs are not blurred, so the network learns to
    leave sharp inputs alone.
    """

    def __init__(self, images: Sequence[np.ndarray], patch: int = 128, kernel_size: int = 31,
                 bank_size: int = 4000, seed: int = 0) -> None:
        self.images, self.patch, self.kernel_size = list(images), patch, kernel_size
        # A bank of PSFs made once: trajectory generation is a Python loop that
        # would hold the GIL in the producer threads; rotations/flips add variety.
        bank_rng = np.random.default_rng([seed, 31])
        self.bank = [random_psf(bank_rng, size=kernel_size) for _ in range(bank_size)]
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.weights = areas / areas.sum()

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One ``(blurred, sharp)`` pair of ``patch x patch x 3`` uint8 images."""
        p, margin = self.patch, self.kernel_size
        img = self.images[int(rng.choice(len(self.images), p=self.weights))]
        h, w = img.shape[:2]
        zoom = float(np.exp(rng.uniform(0, np.log(3.0))))
        zoom = min(zoom, (min(h, w) - 1) / (p + 2 * margin))
        zoom = max(zoom, 1e-3)
        side = int((p + 2 * margin) * zoom)
        if side > min(h, w) or side < 8:
            side = min(h, w)
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        region = cv2.resize(img[y0:y0 + side, x0:x0 + side], (p + 2 * margin, p + 2 * margin),
                            interpolation=cv2.INTER_AREA if side > p + 2 * margin else cv2.INTER_CUBIC)
        rot, flip = int(rng.integers(4)), bool(rng.integers(2))
        region = np.rot90(region, rot)
        region = np.ascontiguousarray(region[:, ::-1] if flip else region)
        if rng.random() < 0.1:
            psf = np.zeros((self.kernel_size, self.kernel_size), np.float32)
            psf[self.kernel_size // 2, self.kernel_size // 2] = 1.0
        else:
            psf = np.rot90(self.bank[int(rng.integers(len(self.bank)))], int(rng.integers(4)))
            psf = np.ascontiguousarray(psf[:, ::-1] if rng.integers(2) else psf)
        blurred = degrade(region, psf, rng)
        return blurred[margin:-margin, margin:-margin], region[margin:-margin, margin:-margin]

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(blurred, sharp)`` float32 ``(size, patch, patch, 3)`` in [-1, 1]."""
        pairs = [self.pair(rng) for _ in range(size)]
        blurred = np.stack([b for b, _ in pairs]).astype(np.float32) / 127.5 - 1.0
        sharp = np.stack([s for _, s in pairs]).astype(np.float32) / 127.5 - 1.0
        return blurred, sharp


class Prefetcher:
    """Background threads that call ``make(rng)`` and queue the batches.

    Each thread has its own generator seeded from ``seed`` and its index, so
    a run is reproducible for a fixed number of threads (batch order between
    threads may interleave differently; with ``threads=1`` it is exact).
    """

    def __init__(self, make: Callable[[np.random.Generator], object], seed: int,
                 threads: int = 2, depth: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._threads = []
        for k in range(threads):
            rng = np.random.default_rng([seed, k])
            t = threading.Thread(target=self._work, args=(make, rng), daemon=True)
            t.start()
            self._threads.append(t)

    def _work(self, make, rng) -> None:
        while not self._stop.is_set():
            item = make(rng)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def get(self):
        return self._queue.get()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
