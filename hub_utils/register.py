"""(Re)register a bundled weights file in the manifest after training.

``python -m hub_utils register srcnn-x3 weights/srcnn_x3.weights.h5`` records
the file's sha256, size and format.  A file with a new hash is a new model: a
previous Hub pin (which holds the old file) is dropped, so that the Hub copy
is never mistaken for the new one; publish again to pin the new revision.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from .errors import ManifestError
from .manifest import FORMATS, ModelEntry, guess_format, load_manifest, save_manifest, update_entry, weights_dir
from .resolve import clear_cache, sha256_file


def _check_file(path: Path, fmt: str) -> None:
    """Refuse a file that cannot be what ``fmt`` says (before it replaces anything)."""
    if fmt == "keras":
        import zipfile

        if not zipfile.is_zipfile(path):
            raise ManifestError(f"{path} is not a .keras archive (not a zip file)")
        return
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            keys = set(handle.keys())
            attrs = set(handle.attrs.keys())
    except OSError:
        raise ManifestError(f"{path} is not an HDF5 file") from None
    if fmt == "keras-weights-h5" and not keys & {"layers", "vars"}:
        raise ManifestError(f"{path} is HDF5 but not a Keras 3 weights file (no 'layers' group): "
                            "save it with model.save_weights('....weights.h5')")
    if fmt == "keras-legacy-h5" and not any(a.startswith("layer_names") for a in attrs) and "model_weights" not in keys:
        raise ManifestError(f"{path} is HDF5 but not a Keras 2 weights file (no 'layer_names')")


def register(name: str, file: str | Path, *, fmt: str | None = None, copy: bool = True,
             card: dict[str, str] | None = None) -> tuple[ModelEntry, list[str]]:
    """Record ``file`` as model ``name``'s bundled weights; returns ``(new entry, messages)``.

    A file outside the weights folder is copied there (``copy=True``) under the
    manifest's ``bundled_file`` name.  ``card`` updates model-card facts
    (``training_command``, ``training_data``...).
    """
    manifest = load_manifest(strict=False)
    entry = manifest.get(name)
    source = Path(file)
    if not source.is_file():
        raise ManifestError(f"model {name!r}: {source} not found")
    # Check the file before copying anything over the current bundle.
    fmt = fmt or guess_format(source)
    if fmt not in FORMATS:
        raise ManifestError(f"model {name!r}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    _check_file(source, fmt)
    wdir = weights_dir().resolve()
    messages: list[str] = []
    if source.resolve().parent == wdir:
        target = source.resolve()
    else:
        if not entry.bundled_file:
            raise ManifestError(f"model {name!r} has no bundled file name in the manifest: it is a Hub-only model "
                                "(for VGGFace use `python -m hub_utils import-vggface`)")
        if not copy:
            raise ManifestError(f"model {name!r}: {source} is not inside {wdir}")
        target = wdir / entry.bundled_file
        shutil.copyfile(source, target)
        messages.append(f"copied {source} -> {target}")
    sha = sha256_file(target)
    size = target.stat().st_size
    new = replace(entry, bundled_file=target.name, sha256=sha, size=size, format=fmt)
    if entry.hub_filename and entry.bundled_file and target.name != entry.bundled_file:
        new = replace(new, hub_filename=f"{name}/{target.name}")
    if entry.sha256 not in (None, sha) and (entry.published or entry.revision):
        new = replace(new, published=False, revision=None)
        messages.append(f"new weights for {name}: its Hub pin ({entry.revision}) held the old file and was "
                        "dropped; run `python -m hub_utils publish` to pin a new revision")
    if card:
        unknown = set(card) - set(type(entry.card).__dataclass_fields__)
        if unknown:
            raise ManifestError(f"unknown card field(s): {', '.join(sorted(unknown))}")
        new = replace(new, card=replace(entry.card, **card))
    if size > 20 * 1024 * 1024:
        messages.append(f"warning: {target.name} is {size / 1e6:.1f} MB, over the 20 MB limit for files in git; "
                        "publish it to the Hub and do not commit it")
    save_manifest(update_entry(manifest, new))
    clear_cache()
    messages.append(f"registered {name}: {target.name} sha256 {sha[:16]}... {size} bytes, format {fmt}")
    return new, messages


__all__ = ["register"]
