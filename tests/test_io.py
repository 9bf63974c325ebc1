import io

import numpy as np
import pytest
from PIL import Image

from pipeline import InputError, load_image
from pipeline.io import ensure_rgb


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_jpeg_loads_as_uint8_rgb(group_jpg):
    rgb = load_image(group_jpg)
    assert rgb.dtype == np.uint8 and rgb.shape == (630, 1200, 3)
    assert rgb.flags["C_CONTIGUOUS"]


def test_path_and_bytes_give_the_same_pixels(group_jpg):
    assert np.array_equal(load_image(group_jpg), load_image(group_jpg.read_bytes()))


def test_grayscale_is_converted_to_three_equal_channels():
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    rgb = load_image(_encode(grey))
    assert rgb.shape == (8, 8, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 2]) and rgb[0, 5, 1] == 5


def test_rgba_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom half transparent
    rgb = load_image(_encode(Image.fromarray(rgba, "RGBA")))
    assert rgb.shape == (4, 4, 3)
    assert tuple(rgb[0, 0]) == (200, 0, 0) and tuple(rgb[3, 3]) == (255, 255, 255)


def test_16_bit_greyscale_is_scaled_to_8_bits():
    values = np.array([[0, 257 * 100], [65535, 257 * 7]], np.uint16)
    image = Image.fromarray(values)  # mode I;16
    rgb = load_image(_encode(image))
    assert rgb[..., 0].tolist() == [[0, 100], [255, 7]]


def test_exif_rotation_is_applied():
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    rgb = load_image(_encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95))
    assert rgb.shape == (20, 10, 3)
    assert rgb[:5].mean() > 200 and rgb[-5:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize("kind, message", [
    ("empty", "empty"),
    ("truncated", "truncated or corrupt"),
    ("text", "not an image"),
    ("bomb", "megapixel limit"),
])
def test_bad_files_give_one_line_errors(bad_files, kind, message):
    with pytest.raises(InputError, match=message) as info:
        load_image(bad_files[kind])
    assert "\n" not in str(info.value)


def test_bomb_is_refused_from_the_header_without_decoding(bad_files, monkeypatch):
    def no_decode(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    with pytest.raises(InputError, match="declares 900 megapixels"):
        load_image(bad_files["bomb"])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_byte_limit(group_jpg):
    with pytest.raises(InputError, match="MiB limit"):
        load_image(group_jpg, max_bytes=1000)


def test_ensure_rgb_conversions():
    assert ensure_rgb(np.zeros((3, 4), np.uint8)).shape == (3, 4, 3)
    assert ensure_rgb(np.ones((2, 2, 4), np.uint8)).shape == (2, 2, 3)
    assert ensure_rgb(np.full((2, 2, 3), 1.0)).max() == 255
    assert ensure_rgb(np.full((2, 2), 65535, np.uint16)).max() == 255
    with pytest.raises(InputError, match="shape"):
        ensure_rgb(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(InputError, match="no pixels"):
        ensure_rgb(np.zeros((0, 5, 3), np.uint8))


def test_large_declared_size_is_refused_with_its_dimensions(tmp_path):
    from conftest import png_bytes_declaring

    path = tmp_path / "big.png"
    path.write_bytes(png_bytes_declaring(8000, 8000))
    with pytest.raises(InputError, match="8000 x 8000 = 64.0 megapixels"):
        load_image(path)
