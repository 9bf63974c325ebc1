"""Exceptions raised by ``hub_utils``; every message names the model and, where there is one, the file.

They are plain exceptions (no dependency on ``pipeline``) so that stages can
import ``hub_utils`` without import cycles; a stage turns :class:`ModelUnavailable`
into its own "unavailable: reason" state.
"""

from __future__ import annotations


class HubUtilsError(Exception):
    """Base class of every error raised on purpose by ``hub_utils``."""


class ManifestError(HubUtilsError, ValueError):
    """The models manifest (``weights/models.json``) or an override is invalid."""


class ModelUnavailable(HubUtilsError, RuntimeError):
    """No usable, verified weights file could be found for a model.

    ``reason`` is one line for people, e.g. ``"not trained yet: weights/srcnn_x3.weights.h5 missing"``.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason


class ChecksumMismatch(ModelUnavailable):
    """A weights file does not have the sha256 the manifest pins; it is never loaded nor deleted."""

    def __init__(self, name: str, path: str, expected: str, actual: str, hint: str = "") -> None:
        reason = (f"sha256 mismatch for {path}: expected {expected[:12]}..., got {actual[:12]}...; "
                  f"refusing to load it (the file was left in place){hint}")
        super().__init__(name, reason)
        self.path = path
        self.expected = expected
        self.actual = actual


class ModelLoadError(HubUtilsError, RuntimeError):
    """A verified weights file does not fit the model it is loaded into (wrong architecture or format)."""


__all__ = ["ChecksumMismatch", "HubUtilsError", "ManifestError", "ModelLoadError", "ModelUnavailable"]
