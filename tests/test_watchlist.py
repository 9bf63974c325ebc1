"""The watchlist store (pipeline/recognition/watchlist.py): enrolment, bad input, atomic writes, cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.io import load_image
from pipeline.recognition import watchlist as wl_module
from pipeline.recognition.watchlist import CACHE_DIR, SUSPECT_FILE, Watchlist, slugify

FACES = Path(__file__).parent / "fixtures" / "faces"


def _png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def watchlist(tmp_path) -> Watchlist:
    return Watchlist.load(tmp_path / "suspects")


@pytest.fixture
def enrolled(watchlist) -> Watchlist:
    watchlist.add_person("Person A", [FACES / "person_a_1.jpg", FACES / "person_a_2.jpg"], notes="seen at gate 3")
    watchlist.add_person("Person B", [FACES / "person_b_1.jpg"])
    return watchlist


def test_add_person_writes_folder_json_photos_and_cache(enrolled):
    person = enrolled.get("person a")  # names are case-insensitive
    assert person.id == "person-a" and person.status == "active" and person.notes == "seen at gate 3"
    meta = json.loads((person.folder / SUSPECT_FILE).read_text())
    assert {"name", "id", "status", "notes", "added", "updated"} <= set(meta)
    assert meta["name"] == "Person A" and meta["added"] and meta["updated"]
    assert len(person.photos) == 2
    assert set(meta["photos"].values()) == {"person_a_1.jpg", "person_a_2.jpg"}
    cached = list((person.folder / CACHE_DIR).rglob("*.npy"))
    assert len(cached) == 2
    # A fresh load sees the same watchlist, and the gallery comes from the cache.
    again = Watchlist.load(enrolled.root)
    gallery = again.gallery()
    assert gallery.embeddings.shape == (3, 128) and len(gallery.people) == 2
    assert not gallery.problems


def test_photos_are_rejected_with_reasons(watchlist, tmp_path):
    blank = _png(tmp_path / "wall.png", np.full((200, 200, 3), 128, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((FACES / "person_a_3.jpg").read_bytes()[:300])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    rgb = load_image(FACES / "person_a_3.jpg")
    tiny = _png(tmp_path / "tiny.png", cv2.resize(rgb, None, fx=0.22, fy=0.22, interpolation=cv2.INTER_AREA))
    person, reports = watchlist.add_person("Person A", [
        FACES / "person_a_1.jpg", blank, FACES / "two_faces.jpg", corrupt, empty, tiny,
        FACES / "person_a_1.jpg", tmp_path / "missing.jpg",
    ])
    reasons = [r.reason for r in reports]
    assert reports[0].accepted and len(person.photos) == 1
    assert reasons[1] == "no face found"
    assert "faces found" in reasons[2]
    assert "truncated" in reasons[3] or "not" in reasons[3]
    assert "empty" in reasons[4]
    assert "too small" in reasons[5]
    assert reasons[6].startswith("duplicate of")
    assert "no such file" in reasons[7]
    assert all(not r.accepted for r in reports[1:])
    # Every report is one line for people.
    assert all("\n" not in r.line() for r in reports)


def test_blurry_photo_is_rejected(watchlist, tmp_path):
    rgb = load_image(FACES / "person_a_3.jpg")
    blurry = _png(tmp_path / "blurry.png", cv2.GaussianBlur(rgb, (0, 0), 5))
    with pytest.raises(InputError) as err:
        watchlist.add_person("Person A", [blurry])
    assert "blurry" in str(err.value) or "no face" in str(err.value)


def test_person_without_usable_photo_is_not_created(watchlist, tmp_path):
    blank = _png(tmp_path / "wall.png", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(InputError, match="no usable photo"):
        watchlist.add_person("Nobody", [blank])
    with pytest.raises(InputError, match="at least one photo"):
        watchlist.add_person("Nobody", [])
    assert len(watchlist) == 0
    assert os.listdir(watchlist.root) == []  # no half-made folder left behind


def test_names_are_sanitised(watchlist):
    person, _ = watchlist.add_person("../../etc/passwd\n", [FACES / "person_a_1.jpg"])
    assert person.id == "etc-passwd" and person.name == "../../etc/passwd"
    assert person.folder.parent == watchlist.root
    assert slugify("José Núñez") == "jose-nunez" and slugify("...") == "person"
    # Same slug, different name: gets its own folder.
    other, _ = watchlist.add_person("etc passwd", [FACES / "person_b_1.jpg"])
    assert other.id == "etc-passwd-2"
    with pytest.raises(InputError, match="already on the watchlist"):
        watchlist.add_person("ETC PASSWD", [FACES / "person_b_2.jpg"])
    with pytest.raises(InputError, match="empty"):
        watchlist.add_person("  \t ", [FACES / "person_b_2.jpg"])
    # Removing a photo by a path-like name never leaves the person's folder.
    with pytest.raises(InputError, match="has no photo"):
        watchlist.remove_photo(person.id, "../etc-passwd-2/suspect.json")
    assert (other.folder / SUSPECT_FILE).exists()


def test_edit_add_and_remove_photos_and_people(enrolled):
    reports = enrolled.add_photos("Person B", [FACES / "person_b_2.jpg", FACES / "person_b_1.jpg"])
    assert reports[0].accepted and reports[1].reason.startswith("duplicate of")
    person = enrolled.get("person-b")
    assert len(person.photos) == 2
    person = enrolled.update("person-b", name="Person Bee", status="inactive", notes="moved away")
    assert (person.name, person.status, person.id) == ("Person Bee", "inactive", "person-b")
    assert [p.name for p in enrolled.gallery().people] == ["Person A"]  # inactive people are not matched
    person = enrolled.remove_photo("person-b", person.photos[0])
    assert len(person.photos) == 1
    removed = enrolled.remove("Person Bee")
    assert not removed.folder.exists() and len(enrolled) == 1
    with pytest.raises(InputError, match="not on the watchlist"):
        enrolled.get("Person Bee")
    with pytest.raises(InputError, match="status must be"):
        enrolled.update("person-a", status="wanted-dead-or-alive")


def test_broken_json_and_empty_folder_do_not_break_the_rest(enrolled):
    broken = enrolled.get("person-b").folder / SUSPECT_FILE
    broken.write_text('{"name": "Person B", "status": ')  # edited by hand, cut short
    (enrolled.root / "just-a-folder").mkdir()
    (enrolled.root / "no-json").mkdir()
    shutil.copy(FACES / "person_b_2.jpg", enrolled.root / "no-json" / "photo.jpg")
    (enrolled.root / "stray-file.txt").write_text("not a person")
    enrolled.reload()
    b = enrolled.get("person-b")
    assert b.status == "broken" and "is broken" in b.problems[0]
    assert any("no photos" in p for p in enrolled.get("just-a-folder").problems)
    assert "no suspect.json" in enrolled.get("no-json").problems[0]
    gallery = enrolled.gallery()
    assert sorted(p.id for p in gallery.people) == ["no-json", "person-a"]
    # Nothing was lost: the broken file and photos are still there.
    assert broken.read_text().startswith('{"name": "Person B"')
    assert len(b.photos) == 1
    # Re-saving repairs it and keeps a copy of the broken file.
    fixed = enrolled.update("person-b", name="Person B")
    assert fixed.status == "active" and not fixed.problems
    assert list(fixed.folder.glob(f"{SUSPECT_FILE}.broken-*"))
    assert "person-b" in {p.id for p in enrolled.gallery().people}


def test_hand_added_photos_are_embedded_and_bad_ones_reported(enrolled):
    folder = enrolled.get("person-a").folder
    shutil.copy(FACES / "person_a_3.jpg", folder / "extra.jpg")
    shutil.copy(FACES / "two_faces.jpg", folder / "group.jpg")
    gallery = enrolled.gallery()
    assert "extra.jpg" in gallery.photos and "group.jpg" not in gallery.photos
    assert any("group.jpg" in p and "faces found" in p for p in gallery.problems)


def test_cache_follows_photo_hash_and_model_revision(enrolled, monkeypatch):
    person = enrolled.get("person-a")
    cache_root = person.folder / CACHE_DIR
    before = {p.name for p in cache_root.rglob("*.npy")}
    first = enrolled.gallery().embeddings.copy()
    # Replacing a photo's content changes its hash: a new entry, the old one pruned.
    photo = person.folder / person.photos[0]
    photo.write_bytes((FACES / "person_a_3.jpg").read_bytes())
    second = enrolled.gallery()
    after = {p.name for p in cache_root.rglob("*.npy")}
    assert len(after) == 2 and after != before
    assert not np.allclose(first, second.embeddings)
    # A new model revision rebuilds everything into a new folder and drops the old one.
    embedder = wl_module.get_embedder("dlib")
    monkeypatch.setattr(embedder, "revision", "dlib-resnet-v1@test-revision")
    third = enrolled.gallery()
    assert third.revision == "dlib-resnet-v1@test-revision"
    dirs = [p.name for p in cache_root.iterdir()]
    assert dirs == ["dlib-resnet-v1_test-revision"]


def test_a_crash_while_adding_leaves_nothing_half_written(watchlist, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("disk pulled out")

    monkeypatch.setattr(wl_module.os, "rename", crash)
    with pytest.raises(OSError):
        watchlist.add_person("Person A", [FACES / "person_a_1.jpg"])
    monkeypatch.undo()
    assert os.listdir(watchlist.root) == []
    watchlist.reload()
    assert len(watchlist) == 0


def test_a_crash_while_saving_keeps_the_old_json(enrolled, monkeypatch):
    meta = enrolled.get("person-a").folder / SUSPECT_FILE
    old = meta.read_text()

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(wl_module.os, "replace", crash)
    with pytest.raises(OSError):
        enrolled.update("person-a", notes="new notes")
    monkeypatch.undo()
    assert meta.read_text() == old
    assert not [p for p in meta.parent.iterdir() if p.name.endswith(".tmp")]


def test_leftover_temporary_folders_are_ignored(enrolled):
    (enrolled.root / ".new-ghost-123").mkdir()
    shutil.copy(FACES / "stranger.jpg", enrolled.root / ".new-ghost-123" / "x.jpg")
    enrolled.reload()
    assert sorted(p.id for p in enrolled) == ["person-a", "person-b"]


def test_load_refuses_a_file_and_missing_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        Watchlist.load(f)
    with pytest.raises(InputError, match="no such watchlist"):
        Watchlist.load(tmp_path / "nope", create=False)
