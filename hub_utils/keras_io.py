"""Load verified weights into Keras models -- safe formats only, never pickle.

* ``keras-weights-h5``: Keras 3 ``model.save_weights`` files (HDF5 arrays).
* ``keras-legacy-h5``: Keras 2 HDF5 weights keyed by layer name (the layout
  of the keras-vggface releases); read with ``h5py`` and assigned by layer
  name, so a model built up to ``fc7`` can take a file that also holds ``fc8``.
* ``keras``: a ``.keras`` archive, loaded with ``safe_mode=True`` (no lambdas).

Keras/TensorFlow are imported only inside the functions that need them:
``import hub_utils`` stays fast (``python -m hub_utils status`` in < 1 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError
from .resolve import ModelStatus, ResolvedModel, _publish_state, mark_loaded, resolve, verify_file

LegacyWeights = dict[str, list[tuple[str, np.ndarray]]]
"""layer name -> [(weight name, array), ...] in the file's order."""


def _decode(values: Iterable[Any]) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _attr_strings(obj: Any, name: str) -> list[str] | None:
    """A list-of-strings attribute; Keras 2 splits long ones into ``name0``, ``name1``... (64 KB HDF5 limit)."""
    if name in obj.attrs:
        return _decode(obj.attrs[name])
    if f"{name}0" not in obj.attrs:
        return None
    out: list[str] = []
    index = 0
    while f"{name}{index}" in obj.attrs:
        out += _decode(obj.attrs[f"{name}{index}"])
        index += 1
    return out


def _legacy_root(handle: Any) -> Any:
    # Full-model files (model.save("x.h5")) keep the weights under "model_weights".
    if _attr_strings(handle, "layer_names") is None and "model_weights" in handle:
        return handle["model_weights"]
    return handle


def read_legacy_h5(path: str | Path, *, shapes_only: bool = False) -> LegacyWeights:
    """Read a Keras 2 HDF5 weights file into ``{layer: [(weight_name, array), ...]}``.

    With ``shapes_only`` the arrays are zero-strided placeholders of the right
    shape (no data read), enough to validate a 500 MB file in milliseconds.

    Raises:
        ModelLoadError: not HDF5, or not the Keras layer-name layout.
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelLoadError(f"{path}: not an HDF5 file ({exc})") from None
    with handle:
        root = _legacy_root(handle)
        layer_names = _attr_strings(root, "layer_names")
        if layer_names is None:
            raise ModelLoadError(f"{path}: no 'layer_names' attribute: not a Keras 2 HDF5 weights file "
                                 "(Keras 3 *.weights.h5 files use the 'keras-weights-h5' format)")
        out: LegacyWeights = {}
        for layer in layer_names:
            if layer not in root:
                raise ModelLoadError(f"{path}: layer {layer!r} is listed but has no group in the file")
            group = root[layer]
            weights = []
            for wname in _attr_strings(group, "weight_names") or []:
                dataset = group[wname]
                array = (np.broadcast_to(np.zeros((), dataset.dtype), dataset.shape) if shapes_only
                         else np.asarray(dataset[()]))
                weights.append((wname, array))
            out[layer] = weights
    return out


def write_legacy_h5(path: str | Path, layers: Mapping[str, list[tuple[str, np.ndarray]]], *,
                    attrs: Mapping[str, str] | None = None) -> Path:
    """Write ``{layer: [(weight_name, array), ...]}`` in the Keras 2 HDF5 weights layout.

    ``weight_name`` is relative to the layer (``"kernel:0"``); it is stored as
    ``"<layer>/<weight_name>"`` like Keras 2 does.  Extra string ``attrs`` go on
    the root (we record the layout id and the source file's hash there).
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode("utf8") for n in layers], dtype="S")
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.2.4"
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        for layer, weights in layers.items():
            group = handle.require_group(layer)
            full_names = [f"{layer}/{w}" for w, _a in weights]
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in full_names], dtype="S")
            for full, (_w, array) in zip(full_names, weights):
                group.create_dataset(full, data=np.asarray(array))
    return path


def _count_keras3_arrays(path: Path) -> int:
    import h5py

    count = 0

    def visit(_name: str, obj: Any) -> None:
        nonlocal count
        if isinstance(obj, h5py.Dataset):
            count += 1

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return count


def _iter_layers_with_weights(model: Any) -> list[Any]:
    layers = []
    for layer in getattr(model, "_flatten_layers", lambda **k: model.layers)(include_self=False, recursive=True):
        if layer.weights and not getattr(layer, "layers", None):
            layers.append(layer)
    return layers


def load_legacy_into(model: Any, path: str | Path, name: str = "") -> None:
    """Assign a Keras 2 HDF5 file's weights to ``model``'s layers by layer name.

    Keras 3 does not allow ``/`` in layer names, so ``__`` in a model layer
    name stands for ``/`` in the file (``conv1__7x7_s2__bn`` <- ``conv1/7x7_s2/bn``),
    the convention of ``pipeline.recognition.embedders``.

    Every model layer with weights must be in the file with the same number and
    shapes of arrays; extra layers in the file are ignored (e.g. a classifier
    head the model does not build).  Raises :class:`ModelLoadError` naming the
    model, the file and the first mismatching layer.
    """
    label = f"model {name!r}: " if name else ""
    stored = read_legacy_h5(path)
    problems = []
    assignments = []
    for layer in _iter_layers_with_weights(model):
        expected = [tuple(w.shape) for w in layer.weights]
        # Keras 3 forbids "/" in layer names: "conv1__7x7_s2" in the model stands for "conv1/7x7_s2" in the file.
        key = layer.name if layer.name in stored else layer.name.replace("__", "/")
        if key not in stored:
            problems.append(f"layer {layer.name!r} is not in the file")
            continue
        found = [tuple(a.shape) for _n, a in stored[key]]
        if found != expected:
            problems.append(f"layer {layer.name!r}: file has shapes {found}, model expects {expected}")
            continue
        assignments.append((layer, [a for _n, a in stored[key]]))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ModelLoadError(f"{label}{path} does not fit the model (wrong architecture?): {problems[0]}{more}")
    for layer, arrays in assignments:
        layer.set_weights(arrays)


def load_weights_file(model: Any, path: str | Path, fmt: str, name: str = "") -> Any:
    """Load a weights file of manifest format ``fmt`` into ``model`` (safe loaders only); returns ``model``."""
    path = Path(path)
    label = f"model {name!r}: " if name else ""
    if fmt == "keras-legacy-h5":
        load_legacy_into(model, path, name)
        return model
    if fmt == "keras-weights-h5":
        try:
            in_file = _count_keras3_arrays(path)
        except OSError as exc:
            raise ModelLoadError(f"{label}{path} is not a readable HDF5 file ({exc})") from None
        if in_file != len(model.weights):
            raise ModelLoadError(f"{label}{path} does not fit the model (wrong architecture?): the file holds "
                                 f"{in_file} arrays, the model has {len(model.weights)}")
        try:
            model.load_weights(str(path))
        except (ValueError, KeyError, OSError) as exc:
            first = str(exc).strip().splitlines()
            detail = " ".join(first[:3])[:400] if first else type(exc).__name__
            raise ModelLoadError(f"{label}{path} does not fit the model (wrong architecture?): {detail}") from None
        return model
    raise ModelLoadError(f"{label}format {fmt!r} cannot be loaded into an existing model "
                         "(use load_keras_model for '.keras' archives)")


def load_keras_weights(model: Any, name: str) -> ResolvedModel:
    """Resolve model ``name``, re-check its sha256, and load its weights into ``model``.

    Args:
        model: a built Keras model with the manifest model's architecture.
        name: manifest name (``"srcnn-x3"``).

    Returns:
        The :class:`ResolvedModel` that was loaded (for status/provenance).

    Raises:
        ModelUnavailable: no verified file (``.reason`` for the UI).
        ModelLoadError: the file does not fit ``model``.
    """
    resolved = resolve(name)
    # Re-check right before loading: the file may have changed since it was resolved (cached hash: free).
    verify_file(name, resolved.path, resolved.sha256)
    try:
        load_weights_file(model, resolved.path, resolved.format, name)
    except ModelLoadError as exc:
        _report_load_failure(resolved, exc)
        raise
    mark_loaded(resolved)
    return resolved


def _report_load_failure(resolved: ResolvedModel, exc: ModelLoadError) -> None:
    """Show a file that does not fit its model as unavailable in status panels (until the cache is cleared)."""
    _publish_state(ModelStatus(name=resolved.name, stage=resolved.stage, state="unavailable", source="missing",
                               repo_id=resolved.repo_id, revision=resolved.revision, sha256=resolved.sha256,
                               path=str(resolved.path), reason=str(exc), format=resolved.format))


def load_keras_model(name: str, custom_objects: Mapping[str, Any] | None = None) -> tuple[Any, ResolvedModel]:
    """Resolve and load a ``.keras`` archive with ``safe_mode=True``; returns ``(model, resolved)``."""
    resolved = resolve(name)
    if resolved.format != "keras":
        raise ModelLoadError(f"model {name!r}: {resolved.path} has format {resolved.format!r}; "
                             "build the architecture and use load_keras_weights")
    verify_file(name, resolved.path, resolved.sha256)
    import keras

    try:
        model = keras.saving.load_model(resolved.path, custom_objects=dict(custom_objects or {}),
                                        compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError) as exc:
        error = ModelLoadError(f"model {name!r}: cannot load {resolved.path} safely: {exc}".splitlines()[0])
        _report_load_failure(resolved, error)
        raise error from None
    return model, resolved


__all__ = ["load_keras_model", "load_keras_weights", "load_legacy_into", "load_weights_file",
           "read_legacy_h5", "write_legacy_h5"]
