"""Real-browser tests: headless Chromium (Debian package) driven by Playwright.

CI installs both (``.ci/run``).  The webcam test feeds Chromium a fake camera
from a Y4M clip of an enrolled person, made here from a shipped fixture photo.
"""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks._browser import CHROMIUM_ARGS, chromium_path, fake_camera_args, start_webcam_stream, write_y4m
from conftest import EXAMPLES, ROOT, moving_face_clip, moving_face_frames, running_app

pytestmark = pytest.mark.slow
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright not installed (CI installs it)")
CHROMIUM = chromium_path()
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (CI installs it)", allow_module_level=True)

FIXTURES = ROOT / "tests" / "fixtures" / "faces"
# Screenshots of each tab go here; `CCTV_SCREENSHOT_DIR=docs python -m pytest tests/test_browser.py`
# refreshes the ones in docs/.
SCREENSHOTS = Path(os.environ.get("CCTV_SCREENSHOT_DIR") or ROOT / ".pytest_cache")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from pipeline.recognition import Watchlist

    suspects = tmp_path_factory.mktemp("suspects")
    Watchlist.load(suspects).add_person("Person A", [FIXTURES / "person_a_1.jpg", FIXTURES / "person_a_2.jpg"])
    with running_app(suspects) as url:
        yield url


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    from pipeline import load_image

    frames = moving_face_frames(load_image(FIXTURES / "person_a_3.jpg"), 20,
                                background=np.full((480, 640, 3), 100, np.uint8), face_width=160,
                                start=(200, 100), step=4)
    return write_y4m(tmp_path_factory.mktemp("cam") / "person_a.y4m", frames)


def test_image_tab_shows_the_detections(app_url):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(app_url)
        page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "group.jpg"))
        page.get_by_role("button", name="Find faces").click()
        page.get_by_text("6 face(s)").first.wait_for(timeout=60_000)
        raw = page.locator("#raw-annotated img").first
        raw.wait_for(timeout=30_000)
        page.wait_for_function("document.querySelector('#raw-annotated img').naturalWidth > 0", timeout=30_000)
        assert raw.evaluate("img => img.naturalWidth") == 1200  # the raw frame, full size
        assert not page.locator("#enhanced-frame").is_visible()  # nothing enhanced, nothing shown as enhanced
        page.screenshot(path=str(SCREENSHOTS / "browser_image_tab.png"), full_page=True)
        browser.close()


def test_webcam_tab_shows_an_enrolled_person_in_the_live_gallery(app_url, camera_clip):
    args = fake_camera_args(camera_clip)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page()
        start_webcam_stream(page, app_url)
        page.get_by_text("Person A").first.wait_for(timeout=90_000)
        stats = page.get_by_text("fps ·").first.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "browser_webcam_tab.png"), full_page=True)
        page.locator("button.capture-button").first.click()  # stop the stream explicitly
        browser.close()
    assert "latency" in stats


@pytest.fixture(scope="module")
def street_clip(tmp_path_factory) -> Path:
    """Person A (enrolled) walking across a real arcade frame, 3 s at 10 fps (made here, not shipped)."""
    from pipeline import load_image

    background = cv2.resize(load_image(EXAMPLES / "arcade_frame_020.jpg"), (640, 360), interpolation=cv2.INTER_AREA)
    return moving_face_clip(tmp_path_factory.mktemp("clip") / "person_a_walking.mp4", load_image(FIXTURES / "person_a_3.jpg"),
                            frames=30, background=background, face_width=110, start=(60, 80), step=12)


def test_video_tab_scans_a_clip_into_a_gallery_and_timeline(app_url, street_clip):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.get_by_role("tab", name="Video").click()
        upload = page.locator(".block", has_text="Video file (mp4").locator("input[type=file]").first
        upload.set_input_files(str(street_clip))
        page.get_by_role("button", name="Scan", exact=True).click()
        # The gallery caption carries the name and decision of the enrolled person's sighting.
        page.get_by_text("Person A").first.wait_for(timeout=120_000)
        page.wait_for_function("document.querySelector('video') && document.querySelector('video').src", timeout=60_000)
        playable = page.evaluate("document.querySelector('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')")
        page.screenshot(path=str(SCREENSHOTS / "browser_video_tab.png"), full_page=True)
        browser.close()
    assert playable in ("probably", "maybe")
