"""The open CCTV face pipeline: find faces, make them usable, match them.

Public API (stable names)::

    from pipeline import load_image, detect_faces, Pipeline

    rgb = load_image("examples/street.jpg")      # uint8 RGB H x W x 3
    faces = detect_faces(rgb)                      # list[Face]
    result = Pipeline.default().run(rgb)           # Result: faces, crops, stages, timings

All images at public boundaries are ``uint8`` RGB ``H x W x 3`` numpy arrays.
"""

from __future__ import annotations

from .core import Pipeline, StageInfo, StageSpec
from . import config
from .errors import InputError, StageUnavailable
from .io import load_image
from .stages.detect import FaceDetector, detect_faces
from .stages.lowlight import enhance_low_light, is_dark
from .stages.superres import super_resolve, super_resolve_many
from .stages.deblur import deblur, deblur_many
from .recognition import Identifier, Match, Watchlist, embed_faces, identify
from .types import Face, Result, StageResult

__version__ = "0.1.0"

__all__ = [
    "Face",
    "FaceDetector",
    "InputError",
    "Pipeline",
    "Result",
    "StageInfo",
    "StageResult",
    "StageSpec",
    "StageUnavailable",
    "__version__",
    "Identifier",
    "Match",
    "Watchlist",
    "deblur",
    "deblur_many",
    "detect_faces",
    "embed_faces",
    "identify",
    "super_resolve",
    "super_resolve_many",
    "enhance_low_light",
    "is_dark",
    "load_image",
]
