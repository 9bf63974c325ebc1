"""The Blocks app started in-process and called through gradio_client, like a user's script."""

import socket

import pytest
from gradio_client import Client, handle_file

from conftest import EXAMPLES, GROUP_FACE_CENTRES, ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FIXTURES = ROOT / "tests" / "fixtures" / "faces"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import app

    app.CONFIG.suspects = tmp_path_factory.mktemp("suspects")
    app._watchlist.cache_clear()
    demo = app.build_app()
    demo.queue()
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def test_detect_endpoint_needs_only_an_image(client, group_jpg):
    annotated, result = client.predict(handle_file(str(group_jpg)), api_name="/detect")
    assert len(result["faces"]) == len(GROUP_FACE_CENTRES)
    assert result["width"] == 1200
    assert annotated.endswith(".png")


def test_detect_endpoint_options(client, group_jpg):
    _, result = client.predict(handle_file(str(group_jpg)), "haar", 0.5, 24, api_name="/detect")
    assert result["faces"] and all(f["detector"] == "haar" for f in result["faces"])


@pytest.mark.parametrize("kind, message", [("text", "not an image"), ("bomb", "megapixel limit"),
                                           ("empty", "empty"), ("truncated", "truncated")])
def test_bad_input_is_a_readable_error_and_the_app_keeps_serving(client, bad_files, group_jpg, kind, message):
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(bad_files[kind])), api_name="/detect")
    _, result = client.predict(handle_file(str(group_jpg)), api_name="/detect")
    assert len(result["faces"]) == 6


def test_analyse_endpoint_runs_the_pipeline(client, group_jpg):
    outputs = client.predict(handle_file(str(group_jpg)), "blazeface", 0.35, 24, "off", "off", "off",
                             api_name="/analyse")
    annotated, enhanced_frame, raw_gallery, enhanced_gallery, summary, result = outputs
    assert len(raw_gallery) == 6 and not enhanced_gallery
    assert "6 face(s)" in summary and len(result["faces"]) == 6


def test_stage_status_endpoint(client):
    status = client.predict(api_name="/stages")
    assert {s["name"] for s in status} >= {"lowlight", "deblur", "superres"}
    assert all(s["ready"] or s["reason"] for s in status)


def test_watchlist_round_trip_and_identify(client):
    message, table = client.predict("Person A", [handle_file(str(FIXTURES / "person_a_1.jpg")),
                                                 handle_file(str(FIXTURES / "person_a_2.jpg"))], "test notes",
                                    api_name="/suspects_add")
    assert "Added **Person A**" in message
    people = client.predict(api_name="/suspects_list")
    assert [p["name"] for p in people] == ["Person A"] and len(people[0]["photos"]) == 2

    _, raw, enhanced, table_md, matches = client.predict(handle_file(str(FIXTURES / "person_a_3.jpg")), 0,
                                                         "off", "off", "off", api_name="/identify")
    assert matches[0]["decision"] == "match" and matches[0]["name"] == "Person A"
    assert matches[0]["score"] is not None and matches[0]["threshold"] > 0 and matches[0]["revision"]
    _, _, _, _, matches = client.predict(handle_file(str(FIXTURES / "stranger.jpg")), 0, "off", "off", "off",
                                         api_name="/identify")
    assert matches[0]["decision"] in ("no_match", "inconclusive")

    with pytest.raises(Exception, match="confirm"):
        client.predict("Person A", False, api_name="/suspects_remove")
    message, _ = client.predict("Person A", True, api_name="/suspects_remove")
    assert "Deleted" in message and client.predict(api_name="/suspects_list") == []


def test_adding_a_photo_without_a_face_is_refused_with_the_reason(client):
    with pytest.raises(Exception, match="no usable photo|no face"):
        client.predict("Nobody", [handle_file(str(EXAMPLES / "night_street.jpg"))], "", api_name="/suspects_add")


def test_scan_video_endpoint(client):
    video, gallery, timeline, downloads, summary, result = client.predict(
        handle_file(str(EXAMPLES / "arcade_clip.mp4")), 5, True, "off", "off", "off", api_name="/scan_video")
    assert video["video"].endswith(".mp4") if isinstance(video, dict) else str(video).endswith(".mp4")
    assert result["frames_processed"] == 10 and "sighting" in summary
    assert len(downloads) == 2 and timeline.endswith(".png")


def test_model_status_endpoint(client):
    status = client.predict(api_name="/models")
    assert any(s["kind"] == "stage" for s in status) and any(s["kind"] == "model" for s in status)
