"""Open-set matching (pipeline/recognition/matching.py): decisions, drift guard, evaluation helpers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core import Pipeline, StageSpec
from pipeline.errors import InputError
from pipeline.io import load_image
from pipeline.recognition import Watchlist, identify
from pipeline.recognition.evaluate import degrade, summarise, ProbeRecord, record_for, probe_face
from pipeline.recognition.matching import Candidate, CropDecision, Identifier, combine, decide
from pipeline.recognition.quality import FaceQuality
from pipeline.stages.detect import detect_faces

FACES = Path(__file__).parent / "fixtures" / "faces"
FACE_KEYS = {"box", "decision", "name", "score", "threshold", "quality", "candidates", "backend", "revision"}


@pytest.fixture(scope="module")
def watchlist(tmp_path_factory) -> Watchlist:
    wl = Watchlist.load(tmp_path_factory.mktemp("suspects"))
    wl.add_person("Person A", [FACES / "person_a_1.jpg", FACES / "person_a_2.jpg"])
    wl.add_person("Person B", [FACES / "person_b_1.jpg"])
    return wl


def test_enrolled_people_are_identified_in_other_photos(watchlist):
    for photo, who in [("person_a_3.jpg", "Person A"), ("person_b_2.jpg", "Person B")]:
        (match,) = identify(load_image(FACES / photo), watchlist)
        assert match.decision == "match" and match.name == who, match.reason
        assert match.distance <= match.threshold - match.band
        assert match.candidates[0].name == who and len(match.candidates) == 2
        assert match.backend == "dlib" and match.revision.startswith("dlib-resnet-v1@")
        assert match.quality.score > 0.5
        assert FACE_KEYS <= set(match.to_dict())


def test_people_not_enrolled_are_not_matched(watchlist):
    (match,) = identify(load_image(FACES / "stranger.jpg"), watchlist)
    assert match.decision == "no_match" and match.name is None
    assert match.candidates and match.distance > match.threshold
    assert "threshold" in match.reason


def test_hard_impostor_lands_in_the_inconclusive_band(watchlist):
    """stranger_2 is closer to person A than the band allows: never named."""
    (match,) = identify(load_image(FACES / "stranger_2.jpg"), watchlist)
    assert match.decision != "match" and match.name is None


def test_two_faces_are_matched_separately(watchlist):
    matches = identify(load_image(FACES / "two_faces.jpg"), watchlist)
    assert len(matches) == 2
    assert sorted(m.decision for m in matches) == ["match", "no_match"]
    assert [m.name for m in matches if m.decision == "match"] == ["Person A"]


def test_heavily_degraded_probe_is_inconclusive(watchlist):
    rgb = load_image(FACES / "person_a_3.jpg")
    tiny = cv2.resize(rgb, None, fx=1 / 7, fy=1 / 7, interpolation=cv2.INTER_AREA)  # face ~22 px
    dark = (rgb.astype(np.float32) * 0.08).astype(np.uint8)
    for probe in (tiny, dark):
        matches = identify(probe, watchlist)
        assert len(matches) == 1
        assert matches[0].decision == "inconclusive", matches[0].reason
        assert "quality" in matches[0].reason and matches[0].name is None


def test_empty_watchlist_gives_no_match(tmp_path):
    empty = Watchlist.load(tmp_path / "empty")
    (match,) = identify(load_image(FACES / "person_a_3.jpg"), empty)
    assert match.decision == "no_match" and match.candidates == [] and match.score is None
    assert "empty" in match.reason


def test_threshold_is_adjustable_and_validated(watchlist):
    rgb = load_image(FACES / "stranger.jpg")
    (loose,) = identify(rgb, watchlist, threshold=1.5, band=0.0, margin=0.0)
    assert loose.decision == "match" and loose.threshold == 1.5
    with pytest.raises(InputError):
        identify(rgb, watchlist, threshold=0)
    with pytest.raises(InputError):
        identify(rgb, watchlist, top_k=0)
    with pytest.raises(InputError):
        Identifier("suspects")  # type: ignore[arg-type]


# ------------------------------------------------------------------ decision rules
def _quality(score: float = 1.0) -> FaceQuality:
    return FaceQuality(score, 100, 3.0, 120.0, 0.0, {"size": score}, () if score > 0.5 else ("too small (10 px)",))


def _cands(*pairs: tuple[str, float]) -> tuple[Candidate, ...]:
    return tuple(Candidate(pid, pid.upper(), d, 1 - d * d / 2, "x.jpg") for pid, d in pairs)


def test_decide_rules():
    assert decide((), _quality(), 0.4, 0.03)[0] == "no_match"
    assert decide(_cands(("a", 0.2)), _quality(0.1), 0.4, 0.03)[0] == "inconclusive"
    assert decide(_cands(("a", 0.45)), _quality(), 0.4, 0.03)[0] == "no_match"
    assert decide(_cands(("a", 0.38)), _quality(), 0.4, 0.03, band=0.04)[0] == "inconclusive"
    assert decide(_cands(("a", 0.38)), _quality(), 0.4, 0.03, band=0.0)[0] == "match"
    assert decide(_cands(("a", 0.20), ("b", 0.21)), _quality(), 0.4, 0.03)[0] == "inconclusive"
    assert decide(_cands(("a", 0.20), ("b", 0.30)), _quality(), 0.4, 0.03)[0] == "match"
    # A poorer face needs a closer distance.
    assert decide(_cands(("a", 0.35)), _quality(1.0), 0.4, 0.03, band=0.04, quality_slope=0.02)[0] == "match"
    assert decide(_cands(("a", 0.35)), _quality(0.4), 0.4, 0.03, band=0.04, quality_slope=0.02)[0] == "inconclusive"


def _crop(decision: str, best: str | None, variant: str = "raw") -> CropDecision:
    cands = _cands((best, 0.2)) if best else ()
    return CropDecision(variant, decision, decision, cands, _quality())


def test_identity_drift_guard():
    assert combine(_crop("match", "a"), None)[0] == "match"
    assert combine(_crop("match", "a"), _crop("match", "a", "enhanced"))[0] == "match"
    decision, reason = combine(_crop("match", "a"), _crop("match", "b", "enhanced"))
    assert decision == "inconclusive" and "identity-drift" in reason
    assert combine(_crop("no_match", "a"), _crop("match", "a", "enhanced"))[0] == "inconclusive"
    # Enhanced less sure of the same person: the raw match stands; pointing at someone else: inconclusive.
    assert combine(_crop("match", "a"), _crop("no_match", "a", "enhanced"))[0] == "match"
    assert combine(_crop("match", "a"), _crop("inconclusive", "b", "enhanced"))[0] == "inconclusive"
    assert combine(_crop("no_match", "a"), _crop("no_match", "b", "enhanced"))[0] == "no_match"


def _face_swap_stage() -> StageSpec:
    """A deliberately identity-changing 'enhancement' (test only): pastes person B's face."""
    other = load_image(FACES / "person_b_2.jpg")
    face = max(detect_faces(other), key=lambda f: f.width)
    replacement = face.crop(other, 0.25)

    def swap(crop: np.ndarray) -> np.ndarray:
        return cv2.resize(replacement, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)

    return StageSpec(name="swap", label="swap", target="crop", run=swap, default=True)


def _upscale_stage() -> StageSpec:
    return StageSpec(name="upscale", label="upscale", target="crop", default=True,
                     run=lambda crop: cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))


def test_enhanced_crop_that_changes_identity_makes_it_inconclusive(watchlist):
    pipe = Pipeline(stages=(_face_swap_stage(),), detector=detect_faces)
    (match,) = identify(load_image(FACES / "person_a_3.jpg"), watchlist, pipeline=pipe)
    assert match.raw.decision == "match" and match.raw.best.name == "Person A"
    assert match.enhanced is not None and match.enhanced.best.name == "Person B"
    assert match.decision == "inconclusive" and "identity-drift" in match.reason
    assert match.enhanced_crop is not None and match.raw_crop is not None
    assert match.to_dict()["enhanced"]["candidates"]


def test_faithful_enhancement_keeps_the_match(watchlist):
    pipe = Pipeline(stages=(_upscale_stage(),), detector=detect_faces)
    (match,) = identify(load_image(FACES / "person_a_3.jpg"), watchlist, pipeline=pipe)
    assert match.enhanced is not None and match.enhanced_crop.shape[0] == 2 * match.raw_crop.shape[0]
    assert match.decision == "match" and match.name == "Person A", match.reason
    # Switched off: no enhanced crop is matched.
    (plain,) = identify(load_image(FACES / "person_a_3.jpg"), watchlist, pipeline=pipe, stages={"upscale": False})
    assert plain.enhanced is None and plain.decision == "match"


# ------------------------------------------------------------------ evaluation helpers
def test_degradation_is_deterministic_and_shrinks():
    rgb = load_image(FACES / "person_a_3.jpg")
    a, b = degrade(rgb, "medium", seed=1), degrade(rgb, "medium", seed=1)
    assert np.array_equal(a, b) and a.dtype == np.uint8
    assert a.shape[0] == rgb.shape[0] // 3 and degrade(rgb, "heavy").mean() < rgb.mean()
    assert degrade(rgb, "none") is rgb
    with pytest.raises(ValueError):
        degrade(rgb, "apocalyptic")


def test_open_set_records_and_summary(watchlist):
    identifier = Identifier(watchlist, top_k=50)
    a3 = probe_face(identifier(load_image(FACES / "person_a_3.jpg")))
    stranger = probe_face(identifier(load_image(FACES / "stranger.jpg")))
    records = [
        record_for(a3, "person-a", identifier),
        record_for(a3, "person-a", identifier, exclude="person-a"),  # as if A were not enrolled
        record_for(stranger, "stranger", identifier, enrolled=False),
        record_for(None, "person-b", identifier),  # face not found
    ]
    assert records[0].decision == "match" and records[0].name_id == "person-a"
    assert not records[1].enrolled and records[1].decision == "no_match"
    summary = summarise(records)
    assert summary["rank1"] == pytest.approx(0.5) and summary["recognised"] == pytest.approx(0.5)
    assert summary["false_match_non_enrolled"] == 0 and summary["face_found"] == pytest.approx(0.75)
    assert 0.0 <= summary["tar_at_far_1"] <= 1.0
    assert isinstance(records[3], ProbeRecord) and not records[3].found


def test_presentation_helpers(watchlist):
    from pipeline.recognition import present

    rgb = load_image(FACES / "two_faces.jpg")
    pipe = Pipeline(stages=(_upscale_stage(),), detector=detect_faces)
    matches = identify(rgb, watchlist, pipeline=pipe)
    rows = present.match_rows(matches)
    assert len(rows) == 2 and all(len(r) == len(present.MATCH_TABLE_HEADERS) for r in rows)
    captions = [c for _, c in present.crop_gallery(matches)]
    assert sum("enhanced" in c for c in captions) == 2 and sum("raw" in c for c in captions) == 2
    annotated = present.annotate_matches(rgb, matches)
    assert annotated.shape == rgb.shape and not np.array_equal(annotated, rgb)
    assert [r[0] for r in present.watchlist_rows(watchlist)] == ["person-a", "person-b"]
    assert len(present.person_photos(watchlist, "Person A")) == 2
