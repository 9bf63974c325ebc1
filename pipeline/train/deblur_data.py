"""Sharp training images for deblurring, and the pack a GPU box trains from.

Training images (never the held-out ones): the face photos of
``faces/deepface`` and ``faces/facenet_pytorch`` that
:func:`pipeline.train.evaluate.deblur_split` keeps for training (the other
fifth is the benchmark's held-out set), T91, Set5 (Set14 is held out), and
frames of ``video/facenet_pytorch_video.mp4`` at a stride.  ``blur/`` is
never used (its sharp frame is the real-pair benchmark).

``python -m pipeline.train deblur-data --out .traindata/deblur`` writes what
a device run needs, small enough to travel with the checkout (~20 MB):

* ``sharp/``: the training images, longer side <= 640 px (faces and video
  frames as JPEG quality 95, T91/Set5 as their PNGs), and ``sources.json``;
* ``eval.npz``: the benchmark's held-out sharp images at <= 512 and <= 128 px
  (:func:`load_eval` degrades them with the benchmark's seeded PSFs, noise
  and JPEG) and the real blurred/sharp pair;
* ``init.keras.npz`` (with ``--init-from``): shipped Keras weights in the
  layout :mod:`pipeline.train.torch_fpn` reads, to continue training them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from .data import list_images, load_sharp_images
from .evaluate import deblur_split, synthetic_blur_set

VIDEO = ("video", "facenet_pytorch_video.mp4")
VIDEO_STRIDE = 5
MAX_SIDE = 640


def _face_files(root: Path) -> tuple[list[Path], list[Path]]:
    faces = list_images([root / "faces" / "deepface", root / "faces" / "facenet_pytorch"])
    return deblur_split(faces)


def video_frames(path: Path, stride: int = VIDEO_STRIDE, max_side: int = MAX_SIDE) -> list[np.ndarray]:
    """Every ``stride``-th frame of a video as uint8 RGB, area-shrunk to ``max_side``."""
    frames = []
    capture = cv2.VideoCapture(str(path))
    index = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % stride == 0:
            f = max_side / max(bgr.shape[:2])
            if f < 1:
                bgr = cv2.resize(bgr, (round(bgr.shape[1] * f), round(bgr.shape[0] * f)), interpolation=cv2.INTER_AREA)
            frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
        index += 1
    capture.release()
    return frames


def training_images(root: Path) -> tuple[list[np.ndarray], str]:
    """``(uint8 RGB images, description)`` from a datasets root or a ``deblur-data`` pack."""
    root = Path(root)
    if (root / "sharp").is_dir():
        images = load_sharp_images(list_images([root / "sharp"]), max_side=MAX_SIDE)
        sources = json.loads((root / "sharp" / "sources.json").read_text())["description"]
        return images, sources
    train_faces, _ = _face_files(root)
    scenes = list_images([root / "sr" / "T91", root / "sr" / "Set5"])
    images = load_sharp_images(train_faces + scenes, max_side=MAX_SIDE)
    frames = video_frames(root.joinpath(*VIDEO)) if root.joinpath(*VIDEO).exists() else []
    return images + frames, _describe(len(train_faces), len(scenes), len(frames))


def _describe(faces: int, scenes: int, frames: int) -> str:
    return (f"{faces} face photos (deblur_split train part), {scenes} T91 + Set5 images, "
            f"{frames} video frames (stride {VIDEO_STRIDE}); <= {MAX_SIDE} px")


def heldout_arrays(root: Path) -> dict[str, np.ndarray]:
    """The benchmark's held-out sharp images (PNG bytes) and the real pair (JPEG bytes), for ``np.savez``.

    Only the sharp images travel: :func:`load_eval` re-creates the blurred
    inputs with the same seeded :func:`synthetic_blur_set` as the benchmark.
    """
    _, held = _face_files(root)
    images = load_sharp_images(held + list_images([root / "sr" / "Set14"]), max_side=1024)
    arrays: dict[str, np.ndarray] = {}
    for tag, side in (("eval512", 512), ("eval128", 128)):
        pairs = synthetic_blur_set(images, max_side=side)
        arrays[f"{tag}_count"] = np.array(len(pairs))
        for k, (_, sharp) in enumerate(pairs):
            ok, buf = cv2.imencode(".png", sharp[:, :, ::-1])
            arrays[f"{tag}_sharp_{k}"] = buf.reshape(-1)
    pair_dir = root / "blur" / "pairs"
    for kind in ("blur", "sharp"):
        path = pair_dir / f"deblurgan_test1_{kind}.jpg"
        if path.exists():
            arrays[f"real_{kind}"] = np.frombuffer(path.read_bytes(), np.uint8)
    return arrays


def load_eval(path: Path) -> dict[str, object]:
    """``{"eval512": pairs, "eval128": pairs, "real": (blurred, sharp) or None}`` from ``eval.npz``.

    The sharp images are the benchmark's, already shrunk and cropped, so
    :func:`synthetic_blur_set` (seed 2024) degrades them exactly as the benchmark does.
    """
    data = np.load(path)
    out: dict[str, object] = {}
    for tag, side in (("eval512", 512), ("eval128", 128)):
        sharp = [np.ascontiguousarray(cv2.imdecode(data[f"{tag}_sharp_{k}"], cv2.IMREAD_COLOR)[:, :, ::-1])
                 for k in range(int(data[f"{tag}_count"]))]
        out[tag] = synthetic_blur_set(sharp, max_side=side)
    out["real"] = None
    if "real_blur" in data and "real_sharp" in data:
        blurred, sharp = (cv2.imdecode(data[f"real_{k}"], cv2.IMREAD_COLOR)[:, :, ::-1] for k in ("blur", "sharp"))
        h, w = min(blurred.shape[0], sharp.shape[0]), min(blurred.shape[1], sharp.shape[1])
        out["real"] = (np.ascontiguousarray(blurred[:h, :w]), np.ascontiguousarray(sharp[:h, :w]))
    return out


def keras_weights_to_npz(weights_h5: Path, out: Path, fpn_filters: int = 64, head_filters: int = 32) -> None:
    """Shipped Keras generator weights -> ``<layer>::<i>`` arrays (the torch twin's import format)."""
    from ..models import build_fpn_mobilenet

    model = build_fpn_mobilenet(fpn_filters, head_filters)
    model.load_weights(str(weights_h5))
    np.savez(out, **{f"{layer.name}::{i}": np.asarray(w) for layer in model.layers
                     for i, w in enumerate(layer.get_weights())})


def pack(root: Path, out: Path, init_from: Path | None = None) -> dict[str, int]:
    """Write the pack described in the module docstring; returns file counts and bytes."""
    sharp_dir = out / "sharp"
    if sharp_dir.exists():
        shutil.rmtree(sharp_dir)
    sharp_dir.mkdir(parents=True)
    train_faces, _ = _face_files(root)
    for path, rgb in zip(train_faces, load_sharp_images(train_faces, max_side=MAX_SIDE)):
        stem = f"{path.parent.name}_{path.stem}"
        cv2.imwrite(str(sharp_dir / f"face_{stem}.jpg"), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    scenes = list_images([root / "sr" / "T91", root / "sr" / "Set5"])
    for path in scenes:
        shutil.copyfile(path, sharp_dir / f"{path.parent.name}_{path.name}")
    frames = video_frames(root.joinpath(*VIDEO)) if root.joinpath(*VIDEO).exists() else []
    for k, rgb in enumerate(frames):
        cv2.imwrite(str(sharp_dir / f"video_{k:03d}.jpg"), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    (sharp_dir / "sources.json").write_text(json.dumps(
        {"description": _describe(len(train_faces), len(scenes), len(frames))}, indent=2) + "\n")
    np.savez(out / "eval.npz", **heldout_arrays(root))
    if init_from is not None:
        keras_weights_to_npz(init_from, out / "init.keras.npz")
    files = [p for p in out.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
