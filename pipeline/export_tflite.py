"""Convert the trained Keras networks to the ``.tflite`` files the stages run on LiteRT/XNNPACK.

    python -m pipeline.export_tflite                 # every network below
    python -m pipeline.export_tflite deblurgan-v2    # only these (after retraining; Keras or -tflite names)
    python -m pipeline.export_tflite --check         # verify the shipped files, write nothing

For each network: build it, load the Keras weights that ``weights/models.json``
lists (``hub_utils.resolve``, sha256-checked), export a SavedModel with a
dynamic input shape, convert it with ``tf.lite.TFLiteConverter`` (float32, no
quantisation), check that the TFLite output matches Keras to within
:data:`TOLERANCE` on a random input, record the Keras weights' sha256 in the
flatbuffer's metadata (the stages refuse a stale conversion), write
``weights/<file>.tflite`` and update that file's sha256/size in the manifest.

Three graph changes make the files fully convolutional, XNNPACK-friendly and
cheaper, without changing a single output value:

* SRCNN (9-5-5 or the separable variant, whichever its weights file holds)
  uses ``valid`` convolutions: it maps a tile padded by the 8 px
  receptive-field halo to the tile itself (the centre of the ``same``
  network's output, exactly), about 10 % less work than ``same``.  Its 9x9
  extraction layer on one channel is written as a 9x1 then a 1x9
  convolution (an exact factorisation: that kernel has rank <= 9).
* FSRCNN stops before its pixel shuffle (the stage does that reshape in
  NumPy), so no shape arithmetic is baked into the file.
* In the deblurring generator, Keras' nearest-neighbour ``UpSampling2D``
  (a reshape chain that loses the channel count under a dynamic shape) is
  replaced by its exact equivalent ``depth_to_space(concat([x] * 4))`` per 2x.

Converting needs TensorFlow as the Keras backend (the default; not
``KERAS_BACKEND=torch``); ``--check`` and the stages work with any backend.  Deterministic for given weights and TensorFlow version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import sha256_file, weights_path
from .tflite_runtime import SOURCE_KEY, TFLiteNet, source_sha256

TOLERANCE = 1e-4
"""Largest absolute difference between the TFLite and Keras outputs accepted at export (value units: [-1, 1] or Y/255)."""


@dataclass(frozen=True)
class ExportSpec:
    """One network to convert."""

    name: str                 # manifest name of the .tflite file, e.g. "srcnn-x4-tflite"
    source: str               # manifest name of the Keras weights, e.g. "srcnn-x4"
    file: str                 # file name in weights/
    channels: int             # input channels
    check_shape: tuple[int, int]  # input size of the numerical check
    value_range: tuple[float, float]  # input range of the numerical check
    build: Callable[[], tuple[object, object]]  # -> (inference graph to convert, reference Keras callable)


def srcnn_halo(net) -> int:
    """Receptive-field radius of an SRCNN: the context its ``valid`` export crops off each side (8 for 9-5-5)."""
    import keras

    convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    rows, cols = (sum((layer.kernel_size[axis] - 1) // 2 for layer in convs) for axis in (0, 1))
    if rows != cols:
        raise ValueError(f"{net.name}: receptive field {2 * rows + 1} x {2 * cols + 1} is not square")
    return rows


def srcnn_valid_graph(net, name: str):
    """``net`` (an SRCNN with ``same`` padding) as ``valid`` convolutions: halo-padded tile -> tile.

    ``valid`` convolutions on a halo-padded tile give exactly the centre of the
    ``same`` network's output, and the costly mapping layer then computes
    260^2 instead of 272^2 pixels for a 256^2 output (the stage pads every tile
    by the halo anyway).  Works for 9-5-5 and the separable variant alike; a
    single-channel k x k extraction layer becomes k x 1 then 1 x k (exact).
    """
    import keras

    from .models.srcnn import separable_kernels

    halo = srcnn_halo(net)
    inputs = keras.Input(shape=(None, None, 1), name="padded_bicubic_luma")
    x = inputs
    for layer in net.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        config = {**layer.get_config(), "padding": "valid"}
        weights = layer.get_weights()
        kh, kw = layer.kernel_size
        if x is inputs and kh == kw > 1 and weights[0].shape[2] == 1:
            # The 9x9 extraction on one channel is a k x (k*64) matrix of rank <= k: split exactly
            # into 9x1 (1 -> 9) and 1x9 (9 -> 64), which XNNPACK runs ~10 % faster end to end.
            vertical, horizontal = separable_kernels(weights[0], kh)
            first = keras.layers.Conv2D(kh, (kh, 1), padding="valid", use_bias=False, name=f"{layer.name}_vertical")
            x = first(x)
            first.set_weights([vertical])
            config = {**config, "kernel_size": (1, kw), "name": f"{layer.name}_horizontal"}
            weights = [horizontal, *weights[1:]]
        valid = keras.layers.Conv2D.from_config(config)
        x = valid(x)
        valid.set_weights(weights)
    centre = keras.layers.Cropping2D(halo, name="centre")(inputs)
    return keras.Model(inputs, keras.layers.Add(name="residual_add")([centre, x]), name=name)


def _srcnn(scale: int):
    def build():
        from .stages.superres import build_keras_net

        net = build_keras_net("srcnn", scale)
        halo = srcnn_halo(net)
        graph = srcnn_valid_graph(net, f"srcnn_x{scale}_valid")
        return graph, lambda padded: net(padded, training=False)[:, halo:-halo, halo:-halo, :]
    return build


def _fsrcnn(scale: int):
    def build():
        import keras

        from .stages.superres import build_keras_net

        net = build_keras_net("fast", scale)
        body = keras.Model(net.inputs[0], net.get_layer("subpixel").output, name=f"fsrcnn_x{scale}_body")
        return body, lambda x: body(x, training=False)
    return build


def _deblur():
    import keras
    import tensorflow as tf

    class NearestUpsample2x(keras.layers.Layer):
        """Exact nearest-neighbour 2x upsampling: ``depth_to_space`` of four channel copies."""

        def __init__(self, factor: int, **kwargs):
            super().__init__(**kwargs)
            self.factor = int(factor)

        def call(self, x):
            for _ in range(int(round(np.log2(self.factor)))):
                x = tf.nn.depth_to_space(tf.concat([x, x, x, x], axis=-1), 2)
            return x

    def replace_upsampling(layer):
        if isinstance(layer, keras.layers.UpSampling2D):
            factor = layer.size[0]
            if layer.size != (factor, factor) or factor & (factor - 1) or layer.interpolation != "nearest":
                raise ValueError(f"{layer.name}: only square nearest power-of-two upsampling can be rewritten")
            return NearestUpsample2x(factor, name=layer.name)
        return layer  # shared with the loaded model: same weights, nothing to copy

    def build():
        from .stages.deblur import build_keras_net

        net = build_keras_net()
        graph = keras.models.clone_model(net, clone_function=replace_upsampling)
        return graph, lambda x: net(x, training=False)
    return build


SPECS: dict[str, ExportSpec] = {}
for _s in (2, 3, 4):
    SPECS[f"srcnn-x{_s}-tflite"] = ExportSpec(f"srcnn-x{_s}-tflite", f"srcnn-x{_s}", f"srcnn_x{_s}.tflite",
                                              1, (40, 52), (-0.5, 0.5), _srcnn(_s))
    SPECS[f"fsrcnn-x{_s}-tflite"] = ExportSpec(f"fsrcnn-x{_s}-tflite", f"fsrcnn-x{_s}", f"fsrcnn_x{_s}.tflite",
                                               1, (20, 26), (-0.5, 0.5), _fsrcnn(_s))
SPECS["deblurgan-v2-tflite"] = ExportSpec("deblurgan-v2-tflite", "deblurgan-v2", "deblurgan_v2_fpn_mobilenet.tflite",
                                          3, (64, 96), (-1.0, 1.0), _deblur())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _with_metadata(model_bytes: bytes, entries: dict[str, bytes]) -> bytes:
    """``model_bytes`` with ``entries`` added to the flatbuffer's metadata (weights untouched)."""
    import flatbuffers

    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover
        from tensorflow.lite.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in entries]
    for key, value in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(value, np.uint8)
        model.buffers.append(buffer)
        meta = schema.MetadataT()
        meta.name, meta.buffer = key, len(model.buffers) - 1
        model.metadata.append(meta)
    builder = flatbuffers.Builder(len(model_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def convert(spec: ExportSpec) -> tuple[bytes, float]:
    """Convert one network; returns ``(tflite bytes with metadata, max |TFLite - Keras|)``.

    Raises:
        RuntimeError: the conversion differs from Keras by more than :data:`TOLERANCE`.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"converting needs the TensorFlow Keras backend, not {keras.backend.backend()!r}: "
                           "run KERAS_BACKEND=tensorflow python -m pipeline.export_tflite")
    graph, reference = spec.build()
    source_sha = sha256_file(weights_path(spec.source))
    model_bytes = graph_to_tflite(graph, spec.channels)
    model_bytes = _with_metadata(model_bytes, {SOURCE_KEY: source_sha.encode("ascii")})
    diff = max_difference(model_bytes, reference, spec)
    if diff > TOLERANCE:
        raise RuntimeError(f"{spec.name}: TFLite differs from Keras by {diff:.2e} > {TOLERANCE:.0e}")
    return model_bytes, diff


def graph_to_tflite(graph, channels: int) -> bytes:
    """Float32 ``.tflite`` bytes of a Keras ``graph`` with a dynamic ``(N, H, W, channels)`` input (no metadata)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        signature = [tf.TensorSpec([None, None, None, channels], tf.float32)]
        graph.export(folder, format="tf_saved_model", input_signature=signature, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(folder).convert()


def max_difference(model_bytes: bytes, reference: Callable, spec: ExportSpec, seed: int = 0) -> float:
    """Max absolute difference between the TFLite file and the Keras network on a random input."""
    rng = np.random.default_rng(seed)
    low, high = spec.value_range
    x = rng.uniform(low, high, (1, *spec.check_shape, spec.channels)).astype(np.float32)
    ours = TFLiteNet(model_bytes, num_threads=1)(x)
    import keras

    theirs = keras.ops.convert_to_numpy(reference(x))
    return float(np.max(np.abs(ours - theirs)))


def _manifest_entry(raw: dict, spec: ExportSpec, model_bytes: bytes) -> dict:
    """A manifest entry for the ``.tflite`` file, derived from its Keras source's entry."""
    source = next(m for m in raw["models"] if m["name"] == spec.source)
    card = dict(source.get("card") or {})
    card["architecture"] = (f"{card.get('architecture', '')} Float32 TFLite conversion of `{spec.source}` "
                            "for LiteRT/XNNPACK (same outputs to 1e-4).").strip()
    card["training_command"] = (f"python -m pipeline.export_tflite {spec.name} (converts `{spec.source}`; "
                                f"that model: {card.get('training_command', '')})")
    hub_folder = (source.get("hub_filename") or spec.source).split("/")[0]
    return {
        "name": spec.name, "stage": source["stage"], "format": "tflite",
        "description": f"{source.get('description', '')} TFLite conversion (inference only).".strip(),
        "framework": "litert", "license": source.get("license", ""), "bundled_file": spec.file,
        "repo_id": source.get("repo_id"), "hub_filename": f"{hub_folder}/{spec.file}",
        "revision": None, "published": False,
        "sha256": _sha256(model_bytes), "size": len(model_bytes), "layout": None, "card": card,
    }


def record_in_manifest(spec: ExportSpec, model_bytes: bytes, manifest: Path) -> None:
    """Write the file's sha256 and size into its manifest entry (created after its source's entry if new).

    The manifest is re-read right before writing and only this entry changes:
    other tools edit other entries of the same file.
    """
    raw = json.loads(manifest.read_text())
    names = [m["name"] for m in raw["models"]]
    if spec.name in names:
        entry = raw["models"][names.index(spec.name)]
        entry["sha256"], entry["size"] = _sha256(model_bytes), len(model_bytes)
        entry["published"], entry["revision"] = False, None  # new bytes: not what the Hub holds
    else:
        raw["models"].insert(names.index(spec.source) + 1, _manifest_entry(raw, spec, model_bytes))
    manifest.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")


def check(spec: ExportSpec, folder: Path) -> str | None:
    """Why the shipped ``.tflite`` for ``spec`` is stale or wrong, or ``None`` when it matches its Keras weights."""
    path = folder / spec.file
    if not path.is_file():
        return f"{path} is missing"
    model_bytes = path.read_bytes()
    weights_sha = sha256_file(weights_path(spec.source))
    if source_sha256(model_bytes) != weights_sha:
        return f"{spec.file} was converted from other weights than {spec.source} ({weights_sha[:12]}...)"
    _, reference = spec.build()
    diff = max_difference(model_bytes, reference, spec)
    return None if diff <= TOLERANCE else f"{spec.file} differs from {spec.source} by {diff:.2e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"networks to convert (default: all): {', '.join(SPECS)} (or their Keras names)")
    parser.add_argument("--check", action="store_true", help="verify the shipped files against the weights; write nothing")
    args = parser.parse_args(argv)
    # The Keras weights' names work too: "deblurgan-v2" means "deblurgan-v2-tflite".
    names = [n if n in SPECS else f"{n}-tflite" for n in args.names]
    unknown = [n for n, full in zip(args.names, names) if full not in SPECS]
    if unknown:
        parser.error(f"unknown network(s) {', '.join(unknown)}; known: {', '.join(SPECS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from hub_utils.manifest import manifest_path, weights_dir

    folder, manifest = weights_dir(), manifest_path()
    failures = 0
    for name in names or list(SPECS):
        spec = SPECS[name]
        if args.check:
            problem = check(spec, folder)
            print(f"{name}: {problem or 'ok'}", flush=True)
            failures += problem is not None
            continue
        model_bytes, diff = convert(spec)
        (folder / spec.file).write_bytes(model_bytes)
        record_in_manifest(spec, model_bytes, manifest)
        print(f"{name}: wrote {folder / spec.file} ({len(model_bytes)} bytes, sha256 {_sha256(model_bytes)[:12]}..., "
              f"max |TFLite - Keras| {diff:.1e})", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
