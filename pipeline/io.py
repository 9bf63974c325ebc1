"""Decoding and validating images: the one way pixels enter the pipeline.

Everything past this module sees ``uint8`` RGB ``H x W x 3`` arrays.  Grayscale,
palette, RGBA, CMYK, 16-bit and EXIF-rotated inputs are converted here;
anything that is not a decodable image is refused with a one-line
:class:`~pipeline.errors.InputError`.  Image dimensions are checked from the
file header *before* decoding, so a decompression bomb (a tiny file that
declares 30000 x 30000 pixels) is refused without allocating its pixels.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest image accepted by default (40 megapixels, e.g. 7746 x 5164)."""
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
"""Largest encoded image file accepted by default (50 MiB)."""

ImageSource = str | os.PathLike | bytes | bytearray | np.ndarray | Image.Image


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Decode an image file, bytes, PIL image or array into uint8 RGB.

    Args:
        source: a path, the encoded bytes, a ``PIL.Image`` or a numpy array.
        max_pixels: refuse images with more pixels than this (checked from
            the header, before decoding).
        max_bytes: refuse encoded files larger than this.

    Returns:
        ``H x W x 3`` uint8 RGB array, EXIF orientation applied.

    Raises:
        InputError: the source is missing, empty, not an image, truncated,
            corrupt, or over a limit.  The message names the problem.
    """
    if isinstance(source, np.ndarray):
        return ensure_rgb(source, max_pixels=max_pixels)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, max_pixels)
    name, data = _read_bytes(source, max_bytes)
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        # PIL refuses this from the header alone; report the size it declared.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "far too many pixels"
        raise InputError(f"{name}: image declares {declared}, over the {max_pixels / 1e6:.0f} megapixel limit") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{name}: not a readable image ({exc})") from None
    try:
        return _pil_to_rgb(image, max_pixels, name=name)
    finally:
        image.close()


def _read_bytes(source: str | os.PathLike | bytes | bytearray, max_bytes: int) -> tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        name = "image"
    else:
        path = Path(source)
        name = path.name or str(path)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not an image file")
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{name}: file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise InputError(f"{name}: file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise InputError(f"{name}: {len(data) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit")
    return name, data


def _check_pixels(width: int, height: int, max_pixels: int, name: str) -> None:
    if width < 1 or height < 1:
        raise InputError(f"{name}: image has no pixels ({width} x {height})")
    if width * height > max_pixels:
        raise InputError(
            f"{name}: image is {width} x {height} = {width * height / 1e6:.1f} megapixels, "
            f"over the {max_pixels / 1e6:.0f} megapixel limit"
        )


def _pil_to_rgb(image: Image.Image, max_pixels: int, name: str = "image") -> np.ndarray:
    _check_pixels(image.width, image.height, max_pixels, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF oddities are not the user's problem
            image.load()
            image = ImageOps.exif_transpose(image)
        return _mode_to_rgb(image)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"{name}: truncated or corrupt image ({exc})") from None


def _mode_to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit / 32-bit greyscale: scale the full range to 8 bits.
        return ensure_rgb(np.asarray(image))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def ensure_rgb(array: np.ndarray, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Validate and convert an in-memory image to ``H x W x 3`` uint8 RGB.

    Accepts ``H x W`` (grey), ``H x W x 1``, ``H x W x 3`` and ``H x W x 4``
    (alpha dropped) arrays of dtype uint8, uint16 (scaled by 1/257), other
    integers (scaled by their dtype's range), float (assumed ``[0, 1]``) or bool.
    A uint8 RGB input is returned as is (no copy).

    Raises:
        InputError: wrong number of dimensions/channels, empty, or too large.
    """
    if not isinstance(array, np.ndarray):
        raise InputError(f"expected an image array, got {type(array).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(f"expected an H x W x 3 image, got an array of shape {array.shape}")
    _check_pixels(array.shape[1], array.shape[0], max_pixels, "image")
    if array.dtype != np.uint8:
        array = _to_uint8(array)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(np.rint(finite * 255.0), 0, 255).astype(np.uint8)
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        # A 32-bit 'I' image from PIL usually holds 16-bit data; scale by what it uses.
        top = 65535 if array.max(initial=0) <= 65535 and info.max > 65535 else info.max
        scaled = (array.astype(np.float64) - min(info.min, 0)) / (top - min(info.min, 0)) * 255.0
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    raise InputError(f"unsupported pixel type {array.dtype}")


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode a uint8 RGB array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(ensure_rgb(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()
