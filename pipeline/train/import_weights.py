"""Load weights trained by the PyTorch twin into the Keras generator, check them, ship them.

``python -m pipeline.train deblur-import RUN.keras.npz [--gpu-json RUN.gpu.json]``
builds :func:`pipeline.models.build_fpn_mobilenet` with the run's widths,
sets every layer from the ``<layer>::<i>`` arrays, checks that the Keras
model reproduces the twin's float32 reference output (max abs difference
<= 1e-4, i.e. the same network), then writes ``<out>/<name>.weights.h5`` and
``<out>/<name>.json`` (settings, steps, the device's metrics, sha256, size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-4


def import_npz(npz: Path, out: Path, gpu_json: Path | None = None, command: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Import, verify and write the weights; returns the metrics written to ``<out>/<name>.json``."""
    import keras

    from ..models import build_fpn_mobilenet
    from ..files import sha256_file
    from .loop import write_metrics
    from .torch_fpn import unflatten_weights

    data = dict(np.load(npz))
    settings = json.loads(str(data.pop("settings")))
    ref_in, ref_out = data.pop("ref_input"), data.pop("ref_output")
    weights = unflatten_weights(data)
    model = build_fpn_mobilenet(settings["fpn_filters"], settings["head_filters"])
    missing = []
    for layer in model.layers:
        if layer.weights:
            if layer.name not in weights:
                missing.append(layer.name)
                continue
            layer.set_weights(weights.pop(layer.name))
    if missing or weights:
        raise ValueError(f"layer mismatch: missing {missing[:5]}, unused {sorted(weights)[:5]}")
    got = np.asarray(keras.ops.convert_to_numpy(model(ref_in, training=False)))
    diff = float(np.abs(got - ref_out).max())
    if diff > TOLERANCE:
        raise ValueError(f"Keras output differs from the PyTorch twin's by {diff:.2e} (> {TOLERANCE})")
    name = settings["name"]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.weights.h5"
    model.save_weights(str(path))
    metrics: dict[str, Any] = {k: v for k, v in settings.items() if k != "name"}
    if gpu_json is not None and Path(gpu_json).exists():
        metrics.update(json.loads(Path(gpu_json).read_text()))
    metrics.update({"name": name, "weights": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                    "twin_max_abs_diff": diff, "backend": "torch (PyTorch twin, pipeline/train/torch_fpn.py)"})
    if command:
        metrics["training_command"] = command
    metrics.update(extra or {})
    write_metrics(out, name, metrics)
    return metrics
