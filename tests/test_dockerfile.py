"""The Dockerfile's entrypoint is the app's own command line (Docker itself is not available in CI)."""

import json
import re

from conftest import ROOT


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_entrypoint_parses_as_app_options():
    import app

    cmd = json.loads(re.search(r"^CMD (\[.*\])$", _dockerfile(), re.M).group(1))
    assert cmd[:2] == ["python", "app.py"]
    settings = app.config.from_args(app.parse_args(cmd[2:]))
    assert (settings.host, settings.port) == ("0.0.0.0", 7860)


def test_space_requirements():
    text = _dockerfile()
    assert "FROM python:3.11-slim" in text and "--uid 1000" in text and "USER 1000" in text
    assert "HEALTHCHECK" in text and "EXPOSE 7860" in text and "ARG TENSORFLOW" in text
    assert "HF_HUB_OFFLINE=1" in text and "hub_utils download --all" in text
    readme = (ROOT / "README.md").read_text()
    front = readme.split("---")[1]
    assert "sdk: docker" in front and "app_port: 7860" in front


def test_dockerignore_keeps_tests_and_data_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests/", "benchmarks/", ".git"} <= set(ignored)
