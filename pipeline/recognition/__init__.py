"""Recognition: face embeddings, the watchlist, open-set matching and face quality.

Public names (re-exported by :mod:`pipeline`)::

    from pipeline.recognition import Watchlist, identify, embed_faces, Match

    watchlist = Watchlist.load("suspects")
    for match in identify(rgb, watchlist):
        print(match.box, match.decision, match.name, match.score)

See ``matching.py`` for the decision rules and ``watchlist.py`` for the
folder layout.
"""

from __future__ import annotations

from .embedders import BACKENDS, DEFAULT_BACKEND, Embedder, backend_unavailable, embed_faces, get_embedder
from .matching import DECISIONS, Candidate, CropDecision, Identifier, Match, identify
from .quality import MIN_QUALITY, FaceQuality, face_quality
from .watchlist import STATUSES, Gallery, Person, PhotoReport, Watchlist

__all__ = [
    "BACKENDS",
    "Candidate",
    "CropDecision",
    "DECISIONS",
    "DEFAULT_BACKEND",
    "Embedder",
    "FaceQuality",
    "Gallery",
    "Identifier",
    "MIN_QUALITY",
    "Match",
    "Person",
    "PhotoReport",
    "STATUSES",
    "Watchlist",
    "backend_unavailable",
    "embed_faces",
    "face_quality",
    "get_embedder",
    "identify",
]
