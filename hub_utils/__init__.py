"""Model weights for the pipeline: pinned, verified, cached, and safe offline.

The only package that touches the network or the Hugging Face cache.  Stages
ask it for a verified weights file and never download anything themselves::

    import hub_utils

    resolved = hub_utils.resolve("srcnn-x3")        # ResolvedModel: path, source, revision, sha256
    hub_utils.load_keras_weights(model, "srcnn-x3")  # safe loading, sha256 re-checked
    hub_utils.status()                               # list[ModelStatus], .to_dict() for JSON
    hub_utils.unavailable_reason("srcnn-x3")         # None when ready, else the reason (for StageSpec)

    resolver = hub_utils.start_background_resolution(on_progress=print)  # app start-up
    resolver.snapshot()["vggface"].label             # "unavailable: not published on the Hub yet ..."

Resolution order per model: an explicit local path (``CCTV_MODEL_<NAME>_PATH``
or ``--model-path NAME=PATH``) -> the Hub cache / the Hub at the pinned
revision -> the copy bundled in ``weights/`` -> unavailable, with the reason.
Failures raise :class:`ModelUnavailable` (``.reason`` is for people).
The manifest is ``weights/models.json``; see ``weights/README.md``.
"""

from __future__ import annotations

from .background import BackgroundResolver, start_background_resolution
from .cli_flags import add_override_arguments, apply_override_arguments
from .errors import ChecksumMismatch, HubUtilsError, ManifestError, ModelLoadError, ModelUnavailable
from .hub import HubSettings
from .keras_io import load_keras_model, load_keras_weights, load_weights_file
from .manifest import (
    FORMATS,
    Manifest,
    ModelEntry,
    clear_overrides,
    load_manifest,
    override_for,
    set_override,
)
from .register import register
from .resolve import (
    STATUS_COLUMNS,
    ModelStatus,
    ResolvedModel,
    add_listener,
    clear_cache,
    resolve,
    sha256_file,
    status,
    unavailable_reason,
)

__all__ = [
    "FORMATS",
    "STATUS_COLUMNS",
    "BackgroundResolver",
    "ChecksumMismatch",
    "HubSettings",
    "HubUtilsError",
    "Manifest",
    "ManifestError",
    "ModelEntry",
    "ModelLoadError",
    "ModelStatus",
    "ModelUnavailable",
    "ResolvedModel",
    "add_listener",
    "add_override_arguments",
    "apply_override_arguments",
    "clear_cache",
    "clear_overrides",
    "load_keras_model",
    "load_keras_weights",
    "load_manifest",
    "load_weights_file",
    "override_for",
    "register",
    "resolve",
    "set_override",
    "sha256_file",
    "start_background_resolution",
    "status",
    "unavailable_reason",
]
