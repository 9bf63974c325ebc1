"""Fuzzing the inputs: malformed images and videos through the loader, the video reader and the app's API.

Every case must end in one of two ways: a valid ``uint8`` RGB image / video
result, or an :class:`~pipeline.InputError` whose one-line message says what
is wrong.  Nothing else: no other exception type, no crash, no hang, and the
app keeps answering good requests afterwards.

The corpus is generated here from a seeded RNG and the repo's own small
files (no fixtures to ship, nothing from ``../shared``).
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import running_app, EXAMPLES, ROOT, png_bytes_declaring

FIXTURES = ROOT / "tests" / "fixtures" / "faces"
SEED = 20240917
# A "clear" message: one line, names the problem in words people use.
CLEAR = ("not an image", "not a readable", "unrecognised", "empty", "truncated", "corrupt", "megapixel", "limit",
         "no pixels", "no decodable", "unknown format", "unsupported", "no such file", "too long", "over the")


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(width: int, height: int, mode: int = 2, rows: bytes | None = None, bad_crc: bool = False) -> bytes:
    """A hand-made PNG (colour type ``mode``), optionally with a wrong IHDR checksum."""
    channels = {0: 1, 2: 3, 6: 4}[mode]
    raw = rows if rows is not None else b"".join(b"\x00" + bytes(width * channels) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr, 0xDEADBEEF if bad_crc else None)
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def _giant_png(width: int, height: int) -> bytes:
    """A real, fully decodable greyscale PNG with ``width x height`` black pixels (compressed: a few KB)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _gif_declaring(width: int, height: int) -> bytes:
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return header + image + b"\x3b"


def _webp_declaring(width: int, height: int) -> bytes:
    # VP8X extended header: canvas size minus one, 24 bits each.
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its SOF0/SOF2 frame header rewritten to declare ``width x height``."""
    data = bytearray(jpeg)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            data[at + 5:at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF marker")


def _tiff_declaring(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\x00\x00\x00\x00"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def image_corpus(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expectation): ``"error"`` (must be refused), ``"ok"`` (must load), ``"either"``."""
    rng = np.random.default_rng(SEED)
    jpeg = (FIXTURES / "person_a_1.jpg").read_bytes()
    small = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    png = _encode(small, "PNG")
    cases: dict[str, tuple[bytes, str, str]] = {
        "empty": (b"", ".jpg", "error"),
        "one_byte": (b"\xff", ".jpg", "error"),
        "text_as_jpg": (b"this is not an image\n" * 20, ".jpg", "error"),
        "html_as_png": (b"<html><body><img src=x onerror=alert(1)></body></html>", ".png", "error"),
        "svg_as_png": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9e9" height="9e9"/>', ".png", "error"),
        "random_jpg": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), ".jpg", "error"),
        "random_png": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), ".png", "error"),
        "random_gif": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), ".gif", "error"),
        "random_webp": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), ".webp", "error"),
        "random_tiff": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), ".tiff", "error"),
        "jpeg_wrong_magic": (b"\x00\x00" + jpeg[2:], ".jpg", "error"),
        "png_wrong_magic": (b"\x89PNX" + png[4:], ".png", "error"),
        "png_named_jpg": (png, ".jpg", "ok"),  # the content decides, not the extension
        "jpeg_truncated_5pct": (jpeg[: len(jpeg) // 20], ".jpg", "error"),
        "jpeg_truncated_60pct": (jpeg[: len(jpeg) * 3 // 5], ".jpg", "error"),
        "jpeg_header_only": (jpeg[:200], ".jpg", "error"),
        "jpeg_garbage_middle": (jpeg[:1000] + rng.integers(0, 256, len(jpeg) - 2000, dtype=np.uint8).tobytes()
                                + jpeg[-1000:], ".jpg", "either"),
        "png_truncated": (png[: len(png) // 2], ".png", "error"),
        "png_bad_ihdr_crc": (_png(16, 16, bad_crc=True), ".png", "error"),
        "png_idat_garbage": (png[:33] + _chunk(b"IDAT", b"\x78\x9c" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
                             + _chunk(b"IEND", b""), ".png", "error"),
        "png_zero_width": (_png(0, 16), ".png", "error"),
        "png_bomb_30k": (png_bytes_declaring(30000, 30000), ".png", "error"),
        "png_bomb_max_dims": (png_bytes_declaring(2**31 - 1, 2**31 - 1), ".png", "error"),
        "png_giant_valid_41mp": (_giant_png(8200, 5000), ".png", "error"),
        "png_1x1": (_png(1, 1), ".png", "ok"),
        "png_1x20000": (_png(1, 20000), ".png", "ok"),
        "png_20000x1": (_png(20000, 1), ".png", "ok"),
        "png_rgba": (_encode(Image.new("RGBA", (30, 20), (10, 20, 30, 0)), "PNG"), ".png", "ok"),
        "png_16bit_grey": (_encode(Image.fromarray(np.full((20, 30), 40000, np.uint16)), "PNG"), ".png", "ok"),
        "gif_bomb": (_gif_declaring(65535, 65535), ".gif", "error"),
        "gif_animated": (_encode(small.convert("P"), "GIF", save_all=True,
                                 append_images=[small.rotate(90).convert("P")], loop=0), ".gif", "ok"),
        "gif_transparent": (_encode(Image.new("P", (20, 20), 0), "GIF", transparency=0), ".gif", "ok"),
        "gif_truncated": (_encode(small.convert("P"), "GIF")[:40], ".gif", "either"),
        "webp_bomb": (_webp_declaring(16383, 16383), ".webp", "error"),
        "webp_valid": (_encode(small, "WEBP", quality=80), ".webp", "ok"),
        "webp_truncated": (_encode(small, "WEBP", quality=80)[:60], ".webp", "error"),
        "tiff_bomb": (_tiff_declaring(60000, 60000), ".tiff", "error"),
        "tiff_cmyk": (_encode(small.convert("CMYK"), "TIFF"), ".tiff", "ok"),
        "tiff_float": (_encode(Image.fromarray(np.full((10, 12), 0.5, np.float32)), "TIFF"), ".tiff", "ok"),
        "tiff_truncated": (_encode(small, "TIFF")[:300], ".tiff", "either"),
        "jpeg_declares_65500": (_jpeg_declaring(jpeg, 65500, 65500), ".jpg", "error"),
        "bmp_bomb": (b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 50000, -50000, 1, 24,
                                                                               0, 0, 0, 0, 0, 0), ".bmp", "error"),
        "jpeg_bad_exif": (jpeg[:2] + b"\xff\xe1\x00\x10Exif\x00\x00MM\x00*\xff\xff\xff\xff" + jpeg[2:], ".jpg", "either"),
    }
    out = {}
    for name, (data, ext, expect) in cases.items():
        path = tmp / f"{name}{ext}"
        path.write_bytes(data)
        out[name] = (path, expect)
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return image_corpus(tmp_path_factory.mktemp("fuzz_images"))


def _is_clear(message: str) -> bool:
    return "\n" not in message.strip() and any(word in message.lower() for word in CLEAR) and len(message) < 400


def test_every_malformed_image_is_refused_with_a_clear_error_or_loads_as_rgb(images):
    import pipeline

    problems = []
    for name, (path, expect) in images.items():
        try:
            rgb = pipeline.load_image(path)
        except pipeline.InputError as exc:
            if expect == "ok":
                problems.append(f"{name}: refused a valid image: {exc}")
            elif not _is_clear(str(exc)):
                problems.append(f"{name}: unclear message {str(exc)!r}")
            continue
        except Exception as exc:  # noqa: BLE001 -- anything else is the bug this test looks for
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if expect == "error":
            problems.append(f"{name}: accepted ({rgb.shape})")
        elif not (rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
            problems.append(f"{name}: bad array {rgb.dtype} {rgb.shape}")
    assert not problems, "\n".join(problems)


def test_bytes_input_behaves_like_files(images):
    import pipeline

    for name, (path, _) in images.items():
        data = path.read_bytes()
        outcomes = []
        for source in (path, data):
            try:
                outcomes.append(pipeline.load_image(source).shape)
            except pipeline.InputError:
                outcomes.append("error")
        assert outcomes[0] == outcomes[1], name


@pytest.mark.slow
def test_detection_on_every_image_that_loads(images):
    """Odd but valid images (1 x 1, 1 x 20000, 20000 x 1, animated GIF ...) go through detection."""
    import pipeline

    detector = pipeline.FaceDetector()
    for name, (path, _) in images.items():
        try:
            rgb = pipeline.load_image(path)
        except pipeline.InputError:
            continue
        try:
            faces = detector(rgb)
        except pipeline.InputError as exc:
            assert _is_clear(str(exc)), f"{name}: {exc}"
            continue
        assert isinstance(faces, list), name


# ------------------------------------------------------------------ videos
def video_corpus(tmp: Path) -> dict[str, Path]:
    import cv2

    rng = np.random.default_rng(SEED + 1)
    clip = (EXAMPLES / "arcade_clip.mp4").read_bytes()
    cases = {
        "empty.mp4": b"",
        "random.mp4": rng.integers(0, 256, 65536, dtype=np.uint8).tobytes(),
        "random.avi": rng.integers(0, 256, 65536, dtype=np.uint8).tobytes(),
        "text.mkv": b"not a video\n" * 100,
        "wrong_magic.mp4": b"\x00" * 12 + clip[12:],
        "header_only.mp4": clip[:2048],
        "truncated_10pct.mp4": clip[: len(clip) // 10],
        "truncated_60pct.mp4": clip[: len(clip) * 3 // 5],
        "garbage_middle.mp4": clip[:40000] + rng.integers(0, 256, len(clip) - 80000, dtype=np.uint8).tobytes()
        + clip[-40000:],
        "jpeg_named.mp4": (FIXTURES / "person_a_1.jpg").read_bytes(),
        "png_bomb_named.mov": png_bytes_declaring(30000, 30000),
    }
    out = {}
    for name, data in cases.items():
        (tmp / name).write_bytes(data)
        out[name] = tmp / name
    # A container with no frames at all.
    path = tmp / "no_frames.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    writer.release()
    out["no_frames.avi"] = path
    # A valid one-frame video of 1 x 2 pixels... codecs want even sizes: 2 x 2.
    path = tmp / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (2, 2))
    writer.write(np.zeros((2, 2, 3), np.uint8))
    writer.release()
    out["tiny.avi"] = path
    return out


_VIDEO_CHECK = r"""
import json, sys
import pipeline
from pipeline import InputError, Pipeline
from pipeline.video import probe_video, scan_video
out = {}
p = Pipeline.default()
for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1]
    try:
        probe_video(path, max_duration_s=600)
        result = scan_video(path, p, None, stages={"lowlight": False}, stride=5, max_duration_s=600, keep_frames=False)
        out[name] = ["ok", f"{result.frames_processed} frames; warnings: {result.warnings}"]
    except InputError as exc:
        out[name] = ["InputError", str(exc)]
    except Exception as exc:
        out[name] = [type(exc).__name__, str(exc)]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_malformed_videos_are_refused_with_clear_errors_in_a_separate_process(tmp_path):
    """In a child process, so that a crash in a decoder shows as a failed test, not a dead test run."""
    videos = video_corpus(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _VIDEO_CHECK, *map(str, videos.values())], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the decoder process died (exit {proc.returncode}): {proc.stderr[-2000:]}"
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    results = json.loads(line[len("RESULT "):])
    assert set(results) == set(videos)
    problems = [f"{n}: {kind}: {msg}" for n, (kind, msg) in results.items() if kind not in ("ok", "InputError")]
    problems += [f"{n}: unclear: {msg}" for n, (kind, msg) in results.items()
                 if kind == "InputError" and not _is_clear(msg)]
    for must_fail in ("empty.mp4", "random.mp4", "random.avi", "text.mkv", "header_only.mp4", "no_frames.avi",
                      "png_bomb_named.mov"):
        if results[must_fail][0] != "InputError":
            problems.append(f"{must_fail}: accepted: {results[must_fail][1]}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ through the app's API

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    with running_app(tmp_path_factory.mktemp("suspects")) as url:
        yield Client(url, verbose=False)


GENERIC = "has not enabled verbose error reporting"


def _api_error(client, *args, api_name: str) -> str | None:
    """The error message the API answers with, or ``None`` when it answered normally."""
    try:
        client.predict(*args, api_name=api_name)
    except Exception as exc:  # noqa: BLE001 -- gradio_client raises AppError / ValueError with the server's message
        return str(exc)
    return None


@pytest.mark.slow
def test_api_answers_every_malformed_image_with_a_clear_error_and_keeps_serving(client, images, group_jpg):
    from gradio_client import handle_file

    problems = []
    for name, (path, expect) in images.items():
        message = _api_error(client, handle_file(str(path)), api_name="/detect")
        if message is None:
            if expect == "error":
                problems.append(f"{name}: accepted by /detect")
        elif expect == "ok":
            problems.append(f"{name}: valid image refused: {message}")
        elif GENERIC in message or not _is_clear(message):
            problems.append(f"{name}: unclear error {message!r}")
    _, result = client.predict(handle_file(str(group_jpg)), api_name="/detect")
    assert len(result["faces"]) == 6, "the app still serves good requests"
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random_jpg", "jpeg_truncated_60pct", "png_bomb_30k", "png_giant_valid_41mp",
                                  "png_1x20000", "gif_animated"])
def test_identify_and_analyse_endpoints_with_malformed_images(client, images, name):
    from gradio_client import handle_file

    path, expect = images[name]
    for api_name, extra in (("/identify", (0, "off", "off", "off")), ("/analyse", ("blazeface", 0.35, 24, "off", "off", "off"))):
        message = _api_error(client, handle_file(str(path)), *extra, api_name=api_name)
        if expect == "error":
            assert message is not None and GENERIC not in message and _is_clear(message), f"{api_name}: {message}"
        else:
            assert message is None, f"{api_name}: {message}"


@pytest.mark.slow
def test_enrolling_malformed_photos_is_refused_and_leaves_the_watchlist_empty(client, images):
    from gradio_client import handle_file

    bad = [handle_file(str(images[n][0])) for n in ("random_jpg", "png_bomb_30k", "jpeg_truncated_60pct", "png_1x1")]
    message = _api_error(client, "Fuzz Person", bad, "", api_name="/suspects_add")
    assert message is not None and GENERIC not in message and "no usable photo" in message
    assert client.predict(api_name="/suspects_list") == []


@pytest.mark.slow
def test_api_answers_malformed_videos_with_clear_errors(client, tmp_path, group_jpg):
    from gradio_client import handle_file

    videos = video_corpus(tmp_path)
    problems = []
    for name in ("empty.mp4", "random.mp4", "text.mkv", "header_only.mp4", "truncated_10pct.mp4", "no_frames.avi",
                 "png_bomb_named.mov", "garbage_middle.mp4"):
        message = _api_error(client, handle_file(str(videos[name])), 5, True, "off", "off", "off",
                             api_name="/scan_video")
        if message is not None and (GENERIC in message or not _is_clear(message)):
            problems.append(f"{name}: unclear error {message!r}")
        if message is None and name in ("empty.mp4", "random.mp4", "text.mkv", "no_frames.avi"):
            problems.append(f"{name}: accepted")
    _, result = client.predict(handle_file(str(group_jpg)), api_name="/detect")
    assert len(result["faces"]) == 6, "the app still serves good requests"
    assert not problems, "\n".join(problems)
