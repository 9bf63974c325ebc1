import json
import subprocess
import sys

import pytest

from conftest import ROOT
from pipeline.__main__ import main


def test_detect_json_lists_faces_per_image_in_order(group_jpg, capsys):
    assert main(["detect", str(group_jpg), str(group_jpg), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2 and records[0]["image"] == str(group_jpg)
    assert len(records[0]["faces"]) == 6
    assert records[0]["width"] == 1200


def test_detect_text_output_and_annotations(group_jpg, tmp_path, capsys):
    assert main(["detect", str(group_jpg), "--annotate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "6 face(s)" in out and "score=" in out
    assert (tmp_path / "group_faces.png").stat().st_size > 1000


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "bomb"])
def test_bad_inputs_give_one_line_error_and_exit_code(bad_files, kind, capsys):
    assert main(["detect", str(bad_files[kind])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_good_images_still_reported_when_one_is_bad(bad_files, group_jpg, capsys):
    assert main(["detect", str(bad_files["text"]), str(group_jpg), "--json"]) == 2
    records = json.loads(capsys.readouterr().out)
    assert "error" in records[0] and len(records[1]["faces"]) == 6


def test_unknown_or_unavailable_stage(group_jpg, tmp_path, capsys):
    assert main(["enhance", "--stages", "sharpen", str(group_jpg), str(tmp_path / "o.png")]) == 2
    assert "unknown stage 'sharpen'" in capsys.readouterr().err


def test_stages_lists_every_stage(capsys):
    assert main(["stages", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)]
    assert "lowlight" in names and "superres" in names


def test_help_everywhere():
    for args in ([], ["detect"], ["enhance"], ["stages"]):
        done = subprocess.run([sys.executable, "-m", "pipeline", *args, "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout
