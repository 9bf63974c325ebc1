"""The Pipeline's composition rules, with small named test stages (not product stages)."""

import numpy as np
import pytest

from pipeline import Face, InputError, Pipeline, StageSpec, StageUnavailable


def invert_for_test(rgb):
    return 255 - rgb


def add_one_for_test(rgb):
    return np.clip(rgb.astype(np.int16) + 1, 0, 255).astype(np.uint8)


def is_dark_for_test(rgb):
    mean = float(rgb.mean())
    return mean < 100, f"mean {mean:.0f}"


def fixed_box_detector_for_test(rgb):
    return [Face(box=(2, 2, 4, 4), score=0.9)]


def make_pipeline(**overrides):
    stages = (
        StageSpec("invert", "Invert", "frame", invert_for_test, auto_test=is_dark_for_test),
        StageSpec("plus", "Plus one", "crop", add_one_for_test, default=False),
        StageSpec("missing", "Missing", "crop", None, unavailable=lambda: "weights not found"),
    )
    return Pipeline(stages=stages, detector=fixed_box_detector_for_test, crop_margin=0, **overrides)


def test_auto_mode_fires_only_when_the_test_says_so():
    pipe = make_pipeline()
    dark = np.zeros((10, 10, 3), np.uint8)
    bright = np.full((10, 10, 3), 200, np.uint8)
    r_dark = pipe.run(dark)
    r_bright = pipe.run(bright)
    assert r_dark.stages[0].fired and r_dark.frame.max() == 255
    assert not r_bright.stages[0].fired and r_bright.frame is r_bright.raw
    assert r_dark.stages[0].note == "mean 0"


def test_raw_frame_is_never_modified_and_crops_come_from_both():
    pipe = make_pipeline()
    dark = np.zeros((10, 10, 3), np.uint8)
    result = pipe.run(dark, enabled={"plus": True})
    assert dark.max() == 0 and result.raw.max() == 0
    assert result.raw_crops[0].max() == 0
    assert result.enhanced_crops[0].max() == 255  # inverted, then +1 clipped
    assert result.enhanced and result.faces[0].box == (2, 2, 4, 4)
    assert result.annotated.shape == dark.shape and result.annotated.any()


def test_order_is_frame_stages_then_detect_then_crop_stages():
    result = make_pipeline().run(np.zeros((10, 10, 3), np.uint8), enabled={"plus": True})
    assert [s.name for s in result.stages] == ["invert", "detect", "plus", "missing"]
    assert set(result.timings) >= {"invert", "detect", "plus", "total"}


def test_toggle_forms():
    pipe = make_pipeline()
    assert pipe.parse_toggles(None) == {"invert": "auto", "plus": False, "missing": "auto"}
    assert pipe.parse_toggles(["plus"]) == {"invert": False, "plus": True, "missing": False}
    with pytest.raises(InputError, match="unknown stage 'nope'"):
        pipe.parse_toggles({"nope": True})
    with pytest.raises(InputError, match="toggle"):
        pipe.parse_toggles({"plus": "sometimes"})


def test_unavailable_stage_is_skipped_in_auto_and_refused_when_forced():
    pipe = make_pipeline()
    rgb = np.zeros((10, 10, 3), np.uint8)
    skipped = pipe.run(rgb).stages[-1]
    assert not skipped.fired and "weights not found" in skipped.note
    with pytest.raises(StageUnavailable, match="weights not found"):
        pipe.run(rgb, enabled={"missing": True})


def test_describe_reports_reasons():
    infos = {i.name: i for i in make_pipeline().describe()}
    assert infos["invert"].ready and not infos["missing"].ready
    assert infos["missing"].reason == "weights not found"


def test_default_pipeline_lists_the_registered_stages():
    pipe = Pipeline.default()
    assert pipe.stage_names[:1] == ["lowlight"]
    assert {"deblur", "superres"} <= set(pipe.stage_names)
    for info in pipe.describe():
        assert info.ready or info.reason


def test_default_pipeline_runs_end_to_end_on_a_real_image(group_jpg):
    from pipeline import load_image

    result = Pipeline.default().run(load_image(group_jpg))
    assert len(result.faces) == 6 and len(result.raw_crops) == 6
    assert result.to_dict()["faces"][0]["box"]
