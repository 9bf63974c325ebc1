"""Recognition results in shapes UIs and reports can show directly (no UI imports here).

The app's Identify tab shows, per face, the raw crop, the enhanced crop
(labelled "enhanced"), the best candidates with scores and the decision;
these helpers turn :class:`~pipeline.recognition.matching.Match` lists into
rows, captions and an annotated frame so that every client words them the
same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..annotate import draw_faces
from .matching import Match
from .watchlist import Watchlist

MATCH_TABLE_HEADERS = ["face", "decision", "name", "score", "distance", "threshold", "quality", "candidates", "why"]
WATCHLIST_TABLE_HEADERS = ["id", "name", "status", "photos", "notes", "problems"]


def annotate_matches(rgb: np.ndarray, matches: Sequence[Match]) -> np.ndarray:
    """``rgb`` (uint8 RGB, not modified) with each face's box and ``"#i name score"`` / decision drawn."""
    labels = [f"#{i + 1} {m.label()}" for i, m in enumerate(matches)]
    return draw_faces(rgb, [m.face for m in matches], labels=labels)


def match_rows(matches: Sequence[Match]) -> list[list[object]]:
    """One table row per face, columns :data:`MATCH_TABLE_HEADERS`."""
    rows = []
    for i, m in enumerate(matches):
        candidates = ", ".join(f"{c.name} {c.score:.3f}" for c in m.candidates)
        rows.append([
            f"#{i + 1}", m.decision.replace("_", " "), m.name or "",
            "" if m.score is None else round(m.score, 3),
            "" if m.distance is None else round(m.distance, 3),
            round(m.threshold, 3), m.quality.summary(), candidates, m.reason,
        ])
    return rows


def crop_gallery(matches: Sequence[Match]) -> list[tuple[np.ndarray, str]]:
    """``(image, caption)`` pairs: each face's raw crop, then its enhanced crop labelled "enhanced"."""
    items: list[tuple[np.ndarray, str]] = []
    for i, m in enumerate(matches):
        if m.raw_crop is not None:
            items.append((m.raw_crop, f"#{i + 1} raw: {m.raw.decision.replace('_', ' ')}"))
        if m.enhanced_crop is not None and m.enhanced is not None:
            best = m.enhanced.best
            who = f" ({best.name} {best.score:.2f})" if best else ""
            items.append((m.enhanced_crop, f"#{i + 1} enhanced: {m.enhanced.decision.replace('_', ' ')}{who}"))
    return items


def watchlist_rows(watchlist: Watchlist) -> list[list[object]]:
    """One row per person, columns :data:`WATCHLIST_TABLE_HEADERS`."""
    return [[p.id, p.name, p.status, len(p.photos), p.notes, "; ".join(p.problems)] for p in watchlist]


def person_photos(watchlist: Watchlist, who: str) -> list[tuple[str, str]]:
    """``(file path, caption)`` for each photo of a person (for a gallery with delete buttons)."""
    person = watchlist.get(who)
    return [(str(person.folder / photo), f"{photo} (from {person.sources.get(photo, photo)})")
            for photo in person.photos]
