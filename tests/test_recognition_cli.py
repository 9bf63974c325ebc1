"""CLI round trip of the watchlist and identify (pipeline/recognition/cli.py) and ``python -m pipeline.eval``."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.recognition.cli import add_commands

FACES = Path(__file__).parent / "fixtures" / "faces"


def run(argv: list[str]) -> int:
    """Parse and run like ``python -m pipeline`` does (InputError -> exit code 2)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}")
        return 2


def test_watchlist_round_trip_through_the_cli(tmp_path, capsys):
    suspects = str(tmp_path / "suspects")
    assert run(["suspects", "add", "Person A", str(FACES / "person_a_1.jpg"), "--suspects", suspects,
                "--notes", "first sighting"]) == 0
    assert "added Person A (id person-a, 1 photo(s))" in capsys.readouterr().out
    # Adding again with the same name adds photos; a bad photo gives exit code 2 and the reason.
    assert run(["suspects", "add", "person a", str(FACES / "person_a_2.jpg"), str(FACES / "two_faces.jpg"),
                "--suspects", suspects]) == 2
    out = capsys.readouterr().out
    assert "updated Person A" in out and "faces found" in out
    assert run(["suspects", "add", "Person B", str(FACES / "person_b_1.jpg"), "--suspects", suspects]) == 0
    capsys.readouterr()

    assert run(["suspects", "list", "--suspects", suspects, "--json"]) == 0
    people = json.loads(capsys.readouterr().out)
    assert [(p["id"], len(p["photos"])) for p in people] == [("person-a", 2), ("person-b", 1)]

    assert run(["suspects", "show", "Person A", "--suspects", suspects]) == 0
    shown = capsys.readouterr().out
    assert "first sighting" in shown and "from person_a_2.jpg" in shown
    photo = people[0]["photos"][0]

    assert run(["suspects", "edit", "person-a", "--notes", "seen twice", "--suspects", suspects]) == 0
    assert run(["suspects", "remove-photo", "person-a", photo, "--suspects", suspects]) == 0
    capsys.readouterr()

    # identify: many images in one call, JSON in input order, one list of faces per image.
    images = [FACES / "person_a_3.jpg", FACES / "stranger.jpg", FACES / "two_faces.jpg", FACES / "person_b_2.jpg"]
    assert run(["identify", *map(str, images), "--suspects", suspects, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 4 and [len(r) for r in results] == [1, 1, 2, 1]
    for faces in results:
        for face in faces:
            assert {"box", "decision", "name", "score", "threshold", "quality"} <= set(face)
    assert (results[0][0]["decision"], results[0][0]["name"]) == ("match", "Person A")
    assert results[1][0]["decision"] == "no_match" and results[1][0]["name"] is None
    assert results[3][0]["name"] == "Person B"

    # Text output names the decision and the best candidate.
    assert run(["identify", str(FACES / "person_a_3.jpg"), "--suspects", suspects]) == 0
    text = capsys.readouterr().out
    assert "match" in text and "Person A" in text and "quality=" in text

    # remove asks for confirmation; without a terminal it refuses unless --yes.
    assert run(["suspects", "remove", "Person B", "--suspects", suspects]) == 2
    assert "--yes" in capsys.readouterr().out
    assert run(["suspects", "remove", "Person B", "--suspects", suspects, "--yes"]) == 0
    assert run(["suspects", "show", "Person B", "--suspects", suspects]) == 2
    assert "not on the watchlist" in capsys.readouterr().out


def test_identify_bad_inputs(tmp_path, capsys):
    suspects = tmp_path / "suspects"
    assert run(["identify", str(FACES / "stranger.jpg"), "--suspects", str(suspects)]) == 2
    assert "no such watchlist folder" in capsys.readouterr().out
    suspects.mkdir()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert run(["identify", str(broken), str(FACES / "stranger.jpg"), "--suspects", str(suspects), "--json"]) == 2
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert results[0] == [] and results[1][0]["decision"] == "no_match"  # empty watchlist
    assert "broken.jpg" in captured.err
    assert run(["identify", str(FACES / "stranger.jpg"), "--suspects", str(suspects), "--stages", "nosuchstage"]) == 2
    assert run(["suspects", "add", "X", str(tmp_path / "missing.jpg"), "--suspects", str(suspects)]) == 2
    assert "no usable photo" in capsys.readouterr().out


def _enrol_person_a(suspects: str) -> None:
    assert run(["suspects", "add", "Person A", str(FACES / "person_a_1.jpg"), str(FACES / "person_a_2.jpg"),
                "--suspects", suspects]) == 0


def test_identify_report_writes_the_evidence_for_each_image(tmp_path, capsys):
    import hashlib

    suspects, out = str(tmp_path / "suspects"), tmp_path / "evidence"
    _enrol_person_a(suspects)
    capsys.readouterr()
    images = [FACES / "person_a_3.jpg", FACES / "two_faces.jpg"]
    assert run(["identify", *map(str, images), "--suspects", suspects, "--stages", "lowlight", "--json",
                "--report", str(out)]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    for image, faces in zip(images, results):
        folder = out / image.stem
        assert f"evidence report: {folder / 'evidence.html'}" in captured.err
        audit = json.loads((folder / "audit.json").read_text(encoding="utf-8"))
        data = image.read_bytes()
        assert audit["input"] == {"name": image.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        # The report describes exactly what was printed: same faces, decisions and scores, in order.
        assert [(f["box"], f["decision"], f["name"]) for f in audit["faces"]] == \
            [(f["box"], f["decision"], f["name"]) for f in faces]
        assert [f["score"] for f in audit["faces"]] == pytest.approx([f["score"] for f in faces], abs=1e-5)
        lowlight = next(s for s in audit["stages"] if s["name"] == "lowlight")
        assert lowlight["toggle"] is True and lowlight["fired"] is True and lowlight["parameters"]
        assert audit["thresholds"]["threshold"] == pytest.approx(faces[0]["threshold"])
        for face in audit["faces"]:
            assert (folder / face["crops"]["raw"]["file"]).is_file()
        page = (folder / "evidence.html").read_text(encoding="utf-8")
        assert page.index('class="raw"') < page.index('class="enhanced"'), "raw crop first"
    assert results[0][0]["decision"] == "match" and results[0][0]["name"] == "Person A"


def test_identify_report_for_one_image_goes_into_the_folder_itself_and_repeats_except_time(tmp_path, capsys):
    from pipeline.report import VOLATILE_KEYS

    suspects = str(tmp_path / "suspects")
    _enrol_person_a(suspects)
    audits = []
    for name in ("first", "second"):
        assert run(["identify", str(FACES / "person_a_3.jpg"), "--suspects", suspects,
                    "--report", str(tmp_path / name)]) == 0
        audits.append(json.loads((tmp_path / name / "audit.json").read_text(encoding="utf-8")))
    capsys.readouterr()
    first, second = ({k: v for k, v in a.items() if k not in VOLATILE_KEYS} for a in audits)
    assert first == second and first["stages"] == [] and first["faces"][0]["decision"] == "match"
    assert sorted(p.name for p in (tmp_path / "first" / "crops").iterdir()) == ["face001_raw.png"]


def test_identify_report_into_an_unwritable_place_is_an_error_but_the_matches_print(tmp_path, capsys):
    suspects = str(tmp_path / "suspects")
    _enrol_person_a(suspects)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    capsys.readouterr()
    assert run(["identify", str(FACES / "person_a_3.jpg"), "--suspects", suspects, "--json",
                "--report", str(blocker / "evidence")]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0][0]["name"] == "Person A"
    assert "cannot write the evidence report" in captured.err


def test_main_cli_has_the_recognition_commands_once_wired():
    from pipeline import __main__ as main_module

    parser = main_module.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if "identify" not in commands:
        pytest.skip("pipeline/__main__.py does not call recognition.cli.add_commands yet")
    assert "suspects" in commands


@pytest.mark.slow
def test_eval_recognition_command(tmp_path, capsys):
    from pipeline.eval import main

    gallery, probes = tmp_path / "gallery", tmp_path / "probes"
    for folder, files in {gallery / "a": ["person_a_1.jpg"], gallery / "b": ["person_b_1.jpg"],
                          probes / "a": ["person_a_3.jpg"], probes / "b": ["person_b_2.jpg"],
                          probes / "stranger": ["stranger.jpg"]}.items():
        folder.mkdir(parents=True)
        for name in files:
            shutil.copy(FACES / name, folder / name)
    assert main(["recognition", "--gallery", str(gallery), "--probes", str(probes), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rank1"] == 1.0 and summary["false_match_non_enrolled"] == 0
    assert summary["enrolled_probes"] == 2 and summary["non_enrolled_probes"] == 1
    assert main(["recognition", "--gallery", str(gallery), "--probes", str(probes), "--degrade", "heavy"]) == 0
    assert "TAR at FAR 1 %" in capsys.readouterr().out
