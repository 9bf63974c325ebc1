import numpy as np
import pytest

from conftest import EXAMPLES, GROUP_FACE_CENTRES
from pipeline import Face, FaceDetector, InputError, detect_faces, load_image
from pipeline.stages import detect as detect_module


def _centres(faces):
    return [(f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2) for f in faces]


def _assert_found(faces, expected, tolerance):
    centres = _centres(faces)
    for ex, ey in expected:
        dist = min(np.hypot(cx - ex, cy - ey) for cx, cy in centres)
        assert dist <= tolerance, f"no face near ({ex}, {ey}); found {centres}"


def test_blazeface_finds_every_face_in_the_group_photo(group_jpg):
    rgb = load_image(group_jpg)
    faces = detect_faces(rgb)
    assert len(faces) == 6
    _assert_found(faces, GROUP_FACE_CENTRES, tolerance=15)
    for face in faces:
        assert 0.35 <= face.score <= 1.0
        assert 70 <= face.width <= 120
        assert face.landmarks.shape == (6, 2)
        # The eyes lie inside the box, in its upper half.
        for name in ("right_eye", "left_eye"):
            ex, ey = face.landmarks[face.landmark_names.index(name)]
            x, y, w, h = face.box
            assert x <= ex <= x + w and y <= ey <= y + h * 0.6


def test_faces_sorted_best_first_and_json_friendly(group_jpg):
    faces = detect_faces(load_image(group_jpg))
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    record = faces[0].to_dict()
    assert set(record) >= {"box", "score", "landmarks", "detector"}
    assert all(isinstance(v, int) for v in record["box"])


def test_small_cctv_faces_are_found_in_a_real_frame():
    # Pedestrians in an arcade, 1280 x 720: faces 26-75 px wide.
    rgb = load_image(EXAMPLES / "arcade_frame_020.jpg")
    faces = detect_faces(rgb)
    widths = sorted(f.width for f in faces)
    assert len(faces) >= 6
    assert widths[0] <= 32  # the smallest faces are in CCTV range
    _assert_found(faces, [(482, 428), (745, 448), (209, 479)], tolerance=12)


def test_haar_fallback_finds_the_group_faces(group_jpg):
    faces = detect_faces(load_image(group_jpg), method="haar", score_threshold=0.5)
    _assert_found(faces, GROUP_FACE_CENTRES, tolerance=20)
    assert all(f.landmarks is None and f.detector == "haar" for f in faces)


@pytest.mark.parametrize("method", ["blazeface", "haar"])
def test_no_faces_in_images_without_faces(method):
    rng = np.random.default_rng(0)
    flat = np.full((480, 640, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    gradient = np.repeat(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], 480, 0).repeat(3, 2)
    for image in (flat, noise, gradient):
        assert detect_faces(image, method=method) == []


def test_tiny_and_odd_sized_images_do_not_crash():
    for shape in [(1, 1, 3), (1, 500, 3), (37, 53, 3), (3000, 20, 3)]:
        assert isinstance(detect_faces(np.zeros(shape, np.uint8)), list)


def test_detection_is_deterministic(group_jpg):
    rgb = load_image(group_jpg)
    assert [f.box for f in detect_faces(rgb)] == [f.box for f in FaceDetector()(rgb)]


def test_boxes_are_in_input_pixels_at_any_scale(group_jpg):
    rgb = load_image(group_jpg)
    half = rgb[::2, ::2].copy()
    faces = detect_faces(half, min_face_px=16)
    _assert_found(faces, [(x / 2, y / 2) for x, y in GROUP_FACE_CENTRES], tolerance=8)


@pytest.mark.parametrize("kwargs", [
    {"method": "dlib"}, {"score_threshold": 0}, {"score_threshold": 1.5}, {"min_face_px": 1}, {"nms_iou": 1.0},
])
def test_bad_detector_options_are_input_errors(kwargs):
    with pytest.raises(InputError):
        FaceDetector(**kwargs)


def test_resized_model_matches_the_original_at_its_native_size():
    runner = detect_module._runner()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 192, 192, 3)).astype(np.float32)
    reg_native, logit_native = runner.raw_outputs(x)
    # Build the rewritten graph at 192 explicitly (the runner uses the original file there).
    Interpreter = detect_module._interpreter_class()
    data = detect_module._resize_model(runner._model_bytes, 192, 192)
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    outs = {d["shape"][-1]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    np.testing.assert_allclose(outs[16][0], reg_native, atol=1e-4)
    np.testing.assert_allclose(outs[1][0, :, 0], logit_native, atol=1e-4)


def test_resized_model_gives_one_anchor_per_4x4_pixels():
    runner = detect_module._runner()
    reg, logits = runner.raw_outputs(np.zeros((1, 96, 160, 3), np.float32))
    assert reg.shape == (24 * 40, 16) and logits.shape == (24 * 40,)


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.6, 0.8])
    kps = np.zeros((3, 6, 2))
    out_boxes, out_scores, _ = detect_module.weighted_nms(boxes, scores, kps, 0.3)
    assert out_scores.tolist() == [0.9, 0.8]
    np.testing.assert_allclose(out_boxes[0], [0.4, 0.4, 10.4, 10.4])


def test_face_crop_margin_and_clipping():
    rgb = np.arange(100 * 100 * 3, dtype=np.uint32).reshape(100, 100, 3).astype(np.uint8)
    face = Face(box=(10, 20, 30, 40), score=0.9)
    assert face.crop(rgb, margin=0).shape == (40, 30, 3)
    assert face.crop(rgb, margin=0.5).shape == (80, 55, 3)  # clipped at x = 0
    assert Face(box=(90, 90, 20, 20), score=0.5).crop(rgb, margin=0.5).shape == (20, 20, 3)
    crop = face.crop(rgb, margin=0)
    crop[:] = 0
    assert rgb[20:60, 10:40].any()  # a copy, not a view
