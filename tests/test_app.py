"""The Blocks app started in-process and called through gradio_client, like a user's script."""


import pytest
from gradio_client import Client, handle_file

from conftest import free_port, running_app, EXAMPLES, GROUP_FACE_CENTRES, ROOT

pytestmark = pytest.mark.slow



FIXTURES = ROOT / "tests" / "fixtures" / "faces"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("suspects")) as url:
        yield Client(url, verbose=False)


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


@pytest.fixture
def start_app(tmp_path):
    """Start the app with some settings changed; returns its URL. Restores the settings afterwards."""
    import dataclasses

    import app

    saved = dataclasses.replace(app.CONFIG)
    demos = []

    def start(**settings):
        for key, value in {"suspects": str(tmp_path / "suspects"), "port": free_port(), **settings}.items():
            setattr(app.CONFIG, key, value)
        app._watchlist.cache_clear()
        demo = app.build_app()
        app.launch(demo, app.CONFIG, prevent_thread_lock=True, quiet=True)
        demos.append(demo)
        return f"http://127.0.0.1:{app.CONFIG.port}/"

    yield start
    for demo in demos:
        demo.close()
    for field in dataclasses.fields(saved):
        setattr(app.CONFIG, field.name, getattr(saved, field.name))
    app._watchlist.cache_clear()


def _add_person(client, **kwargs):
    return client.predict("Person A", [handle_file(str(FIXTURES / "person_a_1.jpg"))], "", kwargs.get("token", ""),
                          api_name="/suspects_add")


def test_log_in_required_and_only_admins_edit_the_watchlist(start_app, group_jpg):
    url = start_app(auth="alice:a-pass,bob:b-pass", admins="alice")
    with pytest.raises(Exception):
        Client(url, verbose=False).predict(handle_file(str(group_jpg)), api_name="/detect")
    bob = Client(url, auth=("bob", "b-pass"), verbose=False)
    assert len(bob.predict(handle_file(str(group_jpg)), api_name="/detect")[1]["faces"]) == 6
    with pytest.raises(Exception, match="only watchlist admins"):
        _add_person(bob)
    alice = Client(url, auth=("alice", "a-pass"), verbose=False)
    assert "Added" in _add_person(alice)[0]


def test_edit_token_and_read_only_watchlist(start_app):
    client = Client(start_app(edit_token="s3cret"), verbose=False)
    with pytest.raises(Exception, match="edit token"):
        _add_person(client)
    assert "Added" in _add_person(client, token="s3cret")[0]


def test_read_only_watchlist(start_app):
    client = Client(start_app(read_only_watchlist=True), verbose=False)
    with pytest.raises(Exception, match="read-only"):
        _add_person(client)
    assert client.predict(api_name="/suspects_list") == []


def test_image_and_upload_limits_give_clear_messages(start_app, group_jpg):
    client = Client(start_app(max_image_megapixels=0.5), verbose=False)
    with pytest.raises(Exception, match="megapixel limit"):
        client.predict(handle_file(str(group_jpg)), api_name="/detect")
    small = Client(start_app(max_upload_mb=0.05), verbose=False)
    with pytest.raises(Exception, match="(?i)too large|size|limit"):
        small.predict(handle_file(str(group_jpg)), api_name="/detect")


def test_one_job_per_user_at_a_time():
    import gradio as gr

    import app

    request = type("R", (), {"username": None, "session_hash": "abc"})()
    with app._user_slot(request):
        with pytest.raises(gr.Error, match="Busy"):
            with app._user_slot(request):
                pass
    with app._user_slot(request):  # released again
        pass


def test_one_users_job_does_not_make_another_user_busy(client, group_jpg):
    other = Client(client.src, verbose=False)
    job = client.submit(handle_file(str(EXAMPLES / "arcade_clip.mp4")), 1, True, "off", "off", "off",
                        api_name="/scan_video")
    # Each client is its own browser session: its jobs count against its own limit only.
    for _ in range(2):
        outputs = other.predict(handle_file(str(group_jpg)), "blazeface", 0.35, 24, "off", "off", "off",
                                api_name="/analyse")
        assert len(outputs[-1]["faces"]) == 6
    assert job.result(timeout=300)[-1]["frames_processed"] == 50
