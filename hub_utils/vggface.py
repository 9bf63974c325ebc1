"""Validate and convert existing Keras VGGFace weight files (keras-vggface / rcmalli layout).

VGGFace is not trained here.  ``python -m hub_utils import-vggface FILE.h5``
checks a downloaded Keras VGGFace file layer by layer against the known layout
(names and shapes), writes a clean weights-only copy in the Keras 2 HDF5
layout (``keras-legacy-h5``: layer-name keyed, no optimizer state, no model
config to deserialise), and can publish it.  The recognition stage then builds
the same architecture (same layer names) and loads it with
``hub_utils.load_keras_weights(model, "vggface")``.

Layouts (``include_top`` files also hold the classifier):

* ``vggface-vgg16`` -- VGG-16 of Parkhi et al. 2015: ``conv1_1`` ... ``conv5_3``,
  ``fc6`` (25088 -> 4096), ``fc7`` (4096 -> 4096), ``fc8`` (4096 -> 2622).
* ``vggface-resnet50`` -- ResNet-50 trained on VGGFace2: ``conv1/7x7_s2`` (+ ``/bn``),
  ``conv{2..5}_{block}_1x1_reduce|3x3|1x1_increase|1x1_proj`` (+ ``/bn``), and
  ``classifier`` (2048 -> 8631).

The layout tables take a ``width`` divisor so tests can validate a tiny
synthetic file with the same layer names (``width=16`` -> 16x fewer channels).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .keras_io import read_legacy_h5, write_legacy_h5

HEAD_LAYERS = {"vggface-vgg16": ("fc6", "fc7", "fc8"), "vggface-resnet50": ("classifier",)}
CLASSES = {"vggface-vgg16": 2622, "vggface-resnet50": 8631}


def _c(channels: int, width: int) -> int:
    return max(1, channels // width)


def vgg16_layout(width: int = 1, classes: int = 2622, image_size: int = 224) -> OrderedDict[str, list]:
    """Expected layers and weight shapes of Keras VGGFace VGG-16 (``width`` divides channel counts)."""
    blocks = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]
    layout: OrderedDict[str, list] = OrderedDict()
    cin = 3
    for block, convs, cout in blocks:
        for i in range(1, convs + 1):
            c = _c(cout, width)
            layout[f"conv{block}_{i}"] = [("kernel", (3, 3, cin, c)), ("bias", (c,))]
            cin = c
    spatial = image_size // 32
    fc = _c(4096, width)
    layout["fc6"] = [("kernel", (spatial * spatial * cin, fc)), ("bias", (fc,))]
    layout["fc7"] = [("kernel", (fc, fc)), ("bias", (fc,))]
    layout["fc8"] = [("kernel", (fc, classes)), ("bias", (classes,))]
    return layout


def _bn(layout: OrderedDict[str, list], name: str, channels: int) -> None:
    layout[name] = [(k, (channels,)) for k in ("gamma", "beta", "moving_mean", "moving_variance")]


def resnet50_layout(width: int = 1, classes: int = 8631) -> OrderedDict[str, list]:
    """Expected layers and weight shapes of Keras VGGFace2 ResNet-50 (convs have no bias)."""
    layout: OrderedDict[str, list] = OrderedDict()
    c64 = _c(64, width)
    layout["conv1/7x7_s2"] = [("kernel", (7, 7, 3, c64))]
    _bn(layout, "conv1/7x7_s2/bn", c64)
    cin = c64
    for stage, blocks, (f1, f2, f3) in [(2, 3, (64, 64, 256)), (3, 4, (128, 128, 512)),
                                        (4, 6, (256, 256, 1024)), (5, 3, (512, 512, 2048))]:
        f1, f2, f3 = _c(f1, width), _c(f2, width), _c(f3, width)
        for block in range(1, blocks + 1):
            prefix = f"conv{stage}_{block}"
            layout[f"{prefix}_1x1_reduce"] = [("kernel", (1, 1, cin, f1))]
            _bn(layout, f"{prefix}_1x1_reduce/bn", f1)
            layout[f"{prefix}_3x3"] = [("kernel", (3, 3, f1, f2))]
            _bn(layout, f"{prefix}_3x3/bn", f2)
            layout[f"{prefix}_1x1_increase"] = [("kernel", (1, 1, f2, f3))]
            _bn(layout, f"{prefix}_1x1_increase/bn", f3)
            if block == 1:
                layout[f"{prefix}_1x1_proj"] = [("kernel", (1, 1, cin, f3))]
                _bn(layout, f"{prefix}_1x1_proj/bn", f3)
            cin = f3
    layout["classifier"] = [("kernel", (cin, classes)), ("bias", (classes,))]
    return layout


def expected_layout(layout_id: str, width: int = 1) -> OrderedDict[str, list]:
    """The layout table for ``vggface-vgg16`` or ``vggface-resnet50``."""
    # Tiny test layouts (width > 1) shrink the classifier too, keeping files small.
    if layout_id == "vggface-vgg16":
        return vgg16_layout(width, classes=_c(CLASSES[layout_id], width))
    if layout_id == "vggface-resnet50":
        return resnet50_layout(width, classes=_c(CLASSES[layout_id], width))
    raise ModelLoadError(f"unknown VGGFace layout {layout_id!r} (known: vggface-vgg16, vggface-resnet50)")


def detect_layout(layers: dict) -> str:
    """Guess the layout from layer names (the one sharing more names; ``conv1_1``... -> VGG-16)."""
    scores = {layout_id: len(set(expected_layout(layout_id, 64)) & set(layers)) for layout_id in HEAD_LAYERS}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] < 3:
        raise ModelLoadError("not a Keras VGGFace file: its layer names match neither VGG-16 (conv1_1 ... fc8) nor "
                             f"ResNet-50 (conv1/7x7_s2 ... classifier); first layers: {list(layers)[:5]}")
    return best


def validate_layers(stored: dict, layout: OrderedDict[str, list], source: str = "file",
                    head_layers: tuple[str, ...] = ()) -> bool:
    """Check names and shapes of ``stored`` (``read_legacy_h5`` output) against ``layout``.

    The head layers may be absent all together (a "notop" file).  Returns
    whether the head is present.  Raises :class:`ModelLoadError` listing the
    first problems, with a hint for Theano-ordered (``th``) releases.
    """
    has_head = any(h in stored for h in head_layers)
    problems = []
    for layer, weights in layout.items():
        if layer in head_layers and not has_head:
            continue
        if layer not in stored:
            problems.append(f"missing layer {layer!r}")
            continue
        found = [tuple(a.shape) for _n, a in stored[layer]]
        wanted = [shape for _k, shape in weights]
        if found != wanted:
            hint = ""
            if found and wanted and len(found[0]) == 4 and len(wanted[0]) == 4:
                kh, kw, cin, cout = wanted[0]
                if found[0] == (cout, cin, kh, kw) and found[0] != wanted[0]:
                    hint = " (kernel looks Theano-ordered: use the 'tf' release of the file)"
            problems.append(f"layer {layer!r}: shapes {found}, expected {wanted}{hint}")
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ModelLoadError(f"{source} does not match the VGGFace layout: {'; '.join(problems[:3])}{more}")
    return has_head


def validate_file(path: str | Path, layout_id: str | None = None, width: int = 1) -> tuple[str, bool]:
    """Validate a Keras VGGFace ``.h5`` without reading its arrays; returns ``(layout_id, has_head)``."""
    stored = read_legacy_h5(path, shapes_only=True)
    layout_id = layout_id or detect_layout(stored)
    head = HEAD_LAYERS.get(layout_id, ())
    return layout_id, validate_layers(stored, expected_layout(layout_id, width), str(path), head)


def convert(src: str | Path, dst: str | Path, layout_id: str | None = None, width: int = 1) -> tuple[str, bool]:
    """Validate ``src`` and write a clean weights-only copy to ``dst`` (layer order of the layout).

    The output keeps only the layout's layers (no optimizer state, no model
    config), names weights ``<layer>/<kind>:0`` and records the layout id and
    the source file's sha256 in root attributes.  Returns ``(layout_id, has_head)``.
    """
    src, dst = Path(src), Path(dst)
    layout_id, has_head = validate_file(src, layout_id, width)
    layout = expected_layout(layout_id, width)
    stored = read_legacy_h5(src)
    digest = hashlib.sha256()
    with open(src, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    head = HEAD_LAYERS[layout_id]
    clean: OrderedDict[str, list] = OrderedDict()
    for layer, weights in layout.items():
        if layer in head and not has_head:
            continue
        clean[layer] = [(f"{kind}:0", np.asarray(array, dtype=np.float32))
                        for (kind, _shape), (_n, array) in zip(weights, stored[layer])]
    if dst.resolve() == src.resolve():
        raise ModelLoadError(f"{dst}: the converted file must not overwrite its source")
    write_legacy_h5(dst, clean, attrs={"cctv_layout": layout_id, "cctv_source_sha256": digest.hexdigest()})
    return layout_id, has_head


__all__ = ["CLASSES", "HEAD_LAYERS", "convert", "detect_layout", "expected_layout", "resnet50_layout",
           "validate_file", "validate_layers", "vgg16_layout"]
