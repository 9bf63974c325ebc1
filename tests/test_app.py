"""The Blocks app started in-process and called through gradio_client, like a user's script."""

import socket

import pytest
from gradio_client import Client, handle_file

from conftest import GROUP_FACE_CENTRES

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client():
    import app

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
