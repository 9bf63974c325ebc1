"""The watchlist: people to look for, kept as plain folders users can read.

Layout (see ``suspects/README.md``)::

    suspects/
      jane-doe/                   one folder per person; the folder name is the id
        suspect.json              {"name", "id", "status", "notes", "added", "updated", "photos"}
        3f2a9c0d1e4b5a6f.jpg      photos, stored under their content hash
        .embeddings/<revision>/   cached embeddings, one .npy per photo hash

Rules:

* The photos in a folder are the truth; ``suspect.json``'s ``photos`` map
  only remembers where each came from.
* Every write is atomic: files are written to a temporary name and renamed;
  a new person is assembled in a hidden temporary folder and renamed into
  place; a deleted person is first renamed to a hidden folder.  Hidden
  entries (names starting with ``.``) are ignored when loading, so a crash
  at any point leaves the watchlist as it was before or after the change.
* Ids are slugs made from names (``[a-z0-9-]``), so no name can reach
  outside the folder.
* A person whose ``suspect.json`` is broken, or who has no usable photo, is
  listed with the problem and left out of matching; nothing is deleted and
  the rest of the watchlist keeps working.
* Embeddings are cached per photo, keyed by the photo's sha256 and the
  embedder's revision; a changed photo or model means a new key, so stale
  entries are never used (and are cleaned up on rebuild).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from ..errors import InputError
from ..io import load_image
from ..types import Face
from .embedders import DEFAULT_BACKEND, Embedder, get_embedder
from .quality import enrolment_problem, face_quality

SUSPECT_FILE = "suspect.json"
CACHE_DIR = ".embeddings"
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
STATUSES = ("active", "inactive")
"""``active`` people are matched; ``inactive`` ones are kept but not matched."""
MAX_NAME_LENGTH = 120
MAX_NOTES_LENGTH = 4000
MAX_PHOTO_BYTES = 20 * 1024 * 1024

Detector = Callable[[np.ndarray], list[Face]]
PhotoSource = str | os.PathLike | tuple[str, bytes]
"""A photo to enrol: a file path, or ``(original file name, encoded bytes)``."""

_ROOT_LOCKS: dict[str, threading.RLock] = {}
_ROOT_LOCKS_GUARD = threading.Lock()
# (folder, backend, revision) -> (fingerprint, gallery): shared by every Watchlist
# object on the same folder, so apps that load the watchlist per request do not
# re-read every photo each time.
_GALLERIES: dict[tuple[str, str, str], tuple[tuple, "Gallery"]] = {}


def _root_lock(root: Path) -> threading.RLock:
    key = str(root.resolve())
    with _ROOT_LOCKS_GUARD:
        return _ROOT_LOCKS.setdefault(key, threading.RLock())


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkdtemp creates private (0700) folders; the watchlist should get the permissions
# any other folder the user creates gets.
_DIR_MODE = 0o777 & ~_current_umask()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------ small file helpers
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a watchlist file atomically and durably; its folder must exist (a removed person stays removed)."""
    files.atomic_write_bytes(path, data, durable=True, parents=False)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def slugify(name: str) -> str:
    """A safe folder name for a person: ascii ``[a-z0-9-]``, at most 48 characters.

    ``"../../etc/passwd"`` -> ``"etc-passwd"``; ``"José Núñez"`` -> ``"jose-nunez"``.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].strip("-")
    return slug or "person"


def clean_name(name: str) -> str:
    """Validate a person's display name: one line, printable, not empty."""
    if not isinstance(name, str):
        raise InputError("name must be text")
    name = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
    if not name:
        raise InputError("name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"name is longer than {MAX_NAME_LENGTH} characters")
    return name


def _clean_status(status: str) -> str:
    status = str(status).strip().lower()
    if status not in STATUSES:
        raise InputError(f"status must be one of: {', '.join(STATUSES)} (not {status!r})")
    return status


def _clean_notes(notes: str) -> str:
    notes = str(notes or "").replace("\r\n", "\n").strip()
    if len(notes) > MAX_NOTES_LENGTH:
        raise InputError(f"notes are longer than {MAX_NOTES_LENGTH} characters")
    return notes


def _safe_revision(revision: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", revision)[:120]


def _read_photo(source: PhotoSource) -> tuple[str, bytes]:
    """``(display name, bytes)`` of a photo given as a path or ``(name, bytes)``."""
    if isinstance(source, tuple):
        name, data = source
        return Path(str(name)).name or "photo", bytes(data)
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_PHOTO_BYTES:
        raise InputError(f"{path.name}: file is {size / 2**20:.1f} MiB, over the {MAX_PHOTO_BYTES // 2**20} MiB limit")
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from None


def _extension_for(data: bytes, original: str) -> str:
    """File extension from the image's magic bytes (never trust the name)."""
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:2] == b"BM":
        return ".bmp"
    ext = Path(original).suffix.lower()
    return ext if ext in PHOTO_EXTENSIONS else ".img"


# ------------------------------------------------------------------ data classes
@dataclass
class Person:
    """One person on the watchlist.

    Attributes:
        id: folder name (a slug); stable, used on the CLI and in the API.
        name: display name.
        status: ``"active"`` (matched) or ``"inactive"``; ``"broken"`` when
            ``suspect.json`` cannot be read.
        notes: free text for investigators.
        added, updated: ISO 8601 UTC timestamps.
        photos: photo file names in the folder, sorted.
        sources: photo file name -> original file name it was enrolled from.
        problems: why this person cannot (fully) be matched, for people.
        folder: the person's folder.
    """

    id: str
    name: str
    status: str
    notes: str
    added: str
    updated: str
    photos: list[str]
    folder: Path
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def matchable(self) -> bool:
        return self.status == "active" and bool(self.photos)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status, "notes": self.notes,
            "added": self.added, "updated": self.updated, "photos": list(self.photos),
            "problems": list(self.problems),
        }

    def _json(self) -> dict[str, Any]:
        return {
            "name": self.name, "id": self.id, "status": self.status, "notes": self.notes,
            "added": self.added, "updated": self.updated,
            "photos": {p: self.sources.get(p, p) for p in self.photos},
        }


@dataclass(frozen=True)
class PhotoReport:
    """What happened to one photo offered for enrolment.

    Attributes:
        source: the file name it was offered as.
        accepted: whether it is now on the watchlist.
        reason: why it was refused (``"no face found"``, ``"2 faces ..."``),
            or ``""`` when accepted.
        stored_as: file name in the person's folder when accepted.
        quality: the face's quality summary when a face was found.
    """

    source: str
    accepted: bool
    reason: str = ""
    stored_as: str | None = None
    quality: str = ""

    def line(self) -> str:
        """One line for people."""
        if self.accepted:
            return f"{self.source}: added as {self.stored_as} (quality {self.quality})"
        return f"{self.source}: rejected: {self.reason}"


@dataclass
class Gallery:
    """Embeddings of every usable watchlist photo for one backend.

    Attributes:
        backend, revision: the embedder that made them.
        embeddings: ``(M, D)`` float32, L2-normalised rows.
        owners: ``(M,)`` int, index into ``people`` of each row.
        photos: ``M`` photo file names.
        people: the matchable people (at least one usable photo).
        problems: ``"person: photo: reason"`` for photos that could not be used.
    """

    backend: str
    revision: str
    embeddings: np.ndarray
    owners: np.ndarray
    photos: list[str]
    people: list[Person]
    problems: list[str] = field(default_factory=list)


def default_detector() -> Detector:
    """The pipeline's face detector (BlazeFace), imported lazily."""
    from ..stages.detect import detect_faces

    return detect_faces


def check_photo(rgb: np.ndarray, embedder: Embedder, detector: Detector | None = None
                ) -> tuple[np.ndarray | None, str, str]:
    """Check that a photo holds exactly one usable face and embed it.

    Args:
        rgb: the photo, ``H x W x 3`` uint8 RGB.
        embedder: the backend to embed with.
        detector: ``rgb -> list[Face]``; the pipeline's detector by default.

    Returns:
        ``(embedding or None, reason refused or "", quality summary)``.
        The embedding is a ``(D,)`` float32 unit vector.
    """
    faces = (detector or default_detector())(rgb)
    if not faces:
        return None, "no face found", ""
    aligned = embedder.align(rgb, faces)
    qualities = []
    for face, al in zip(faces, aligned):
        x, y, w, h = face.box
        qualities.append(face_quality(rgb[y:y + h, x:x + w], min(w, h), al.landmarks))
    usable = [i for i, q in enumerate(qualities) if enrolment_problem(q) is None]
    if len(usable) > 1:
        return None, f"{len(usable)} faces found; use a photo with exactly one person", ""
    if not usable:
        largest = max(range(len(faces)), key=lambda i: faces[i].width)
        return None, enrolment_problem(qualities[largest]) or "no usable face", qualities[largest].summary()
    i = usable[0]
    return embedder.embed_chips([aligned[i].chip])[0], "", qualities[i].summary()


# ------------------------------------------------------------------ the store
class Watchlist:
    """A folder of people to look for.  See the module docstring for the layout.

    Use :meth:`load`.  Reading methods see the folder as it was at the last
    :meth:`reload` (every write reloads).  Writes are serialised per folder
    within a process and atomic on disk.

    Args:
        root: the watchlist folder (``suspects/`` by default on the CLI).
        detector: ``rgb -> list[Face]`` used to check photos (BlazeFace by default).
    """

    def __init__(self, root: str | os.PathLike, detector: Detector | None = None) -> None:
        self.root = Path(root)
        self.detector = detector
        self.people: list[Person] = []
        self.problems: list[str] = []
        self._lock = _root_lock(self.root) if self.root.exists() else threading.RLock()

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, root: str | os.PathLike = "suspects", *, create: bool = True,
             detector: Detector | None = None) -> "Watchlist":
        """Open the watchlist in ``root`` (created empty when missing and ``create``).

        Raises:
            InputError: ``root`` is a file, or missing and ``create`` is false.
        """
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: is a file, not a watchlist folder")
        if not path.exists():
            if not create:
                raise InputError(f"{path}: no such watchlist folder")
            path.mkdir(parents=True, exist_ok=True)
        watchlist = cls(path, detector=detector)
        watchlist._lock = _root_lock(path)
        watchlist.reload()
        return watchlist

    def reload(self) -> None:
        """Re-read every person folder."""
        people, problems = [], []
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            people.append(self._read_person(folder))
        seen: dict[str, str] = {}
        for person in people:
            key = person.name.casefold()
            if key in seen:
                person.problems.append(f"same name as {seen[key]!r}; use the id to tell them apart")
            else:
                seen[key] = person.id
        self.people, self.problems = people, problems

    def _read_person(self, folder: Path) -> Person:
        photos = sorted(p.name for p in folder.iterdir()
                        if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS and not p.name.startswith("."))
        meta_path = folder / SUSPECT_FILE
        person = Person(id=folder.name, name=folder.name, status="active", notes="", added="", updated="",
                        photos=photos, folder=folder)
        if not meta_path.exists():
            person.problems.append(f"no {SUSPECT_FILE}: name taken from the folder")
        else:
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not a JSON object")
                person.name = clean_name(str(meta.get("name") or folder.name))
                person.status = _clean_status(meta.get("status") or "active")
                person.notes = _clean_notes(meta.get("notes") or "")
                person.added = str(meta.get("added") or "")
                person.updated = str(meta.get("updated") or "")
                sources = meta.get("photos") or {}
                if isinstance(sources, dict):
                    person.sources = {str(k): str(v) for k, v in sources.items()}
            except (ValueError, InputError, UnicodeDecodeError, OSError) as exc:
                person.status = "broken"
                person.problems.append(f"{SUSPECT_FILE} is broken ({exc}); not matched until it is fixed or re-saved")
        if not photos:
            person.problems.append("no photos: cannot be matched")
        return person

    # -- looking people up ---------------------------------------------------
    def __len__(self) -> int:
        return len(self.people)

    def __iter__(self):
        return iter(self.people)

    def get(self, who: str) -> Person:
        """The person whose id or name (case-insensitive) is ``who``.

        Raises:
            InputError: nobody, or several people, answer to ``who``.
        """
        who = str(who).strip()
        for person in self.people:
            if person.id == who:
                return person
        hits = [p for p in self.people if p.name.casefold() == who.casefold()]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InputError(f"several people are called {who!r}; use their id: {', '.join(p.id for p in hits)}")
        raise InputError(f"{who!r} is not on the watchlist in {self.root}")

    def find(self, who: str) -> Person | None:
        try:
            return self.get(who)
        except InputError:
            return None

    # -- writing -------------------------------------------------------------
    def _embedder(self, backend: str) -> Embedder:
        return get_embedder(backend)

    def _vet_photos(self, photos: Sequence[PhotoSource], existing: dict[str, str], embedder: Embedder
                    ) -> tuple[list[tuple[str, bytes, str, np.ndarray]], list[PhotoReport]]:
        """Check photos; returns accepted ``(stored name, bytes, source, embedding)`` and all reports."""
        accepted: list[tuple[str, bytes, str, np.ndarray]] = []
        reports: list[PhotoReport] = []
        hashes = dict(existing)  # sha -> stored name
        for source in photos:
            label = source[0] if isinstance(source, tuple) else Path(source).name
            try:
                label, data = _read_photo(source)
                rgb = load_image(data)
            except InputError as exc:
                reports.append(PhotoReport(str(label), False, str(exc).removeprefix("image: ")))
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in hashes:
                reports.append(PhotoReport(label, False, f"duplicate of {hashes[sha]}"))
                continue
            vector, reason, quality = check_photo(rgb, embedder, self.detector)
            if vector is None:
                reports.append(PhotoReport(label, False, reason, quality=quality))
                continue
            stored = sha[:16] + _extension_for(data, label)
            hashes[sha] = stored
            accepted.append((stored, data, label, vector))
            reports.append(PhotoReport(label, True, "", stored, quality))
        return accepted, reports

    def _existing_hashes(self, person: Person) -> dict[str, str]:
        out = {}
        for photo in person.photos:
            try:
                out[hashlib.sha256((person.folder / photo).read_bytes()).hexdigest()] = photo
            except OSError:
                continue
        return out

    def _store_photos(self, folder: Path, accepted: Iterable[tuple[str, bytes, str, np.ndarray]],
                      embedder: Embedder) -> None:
        cache = folder / CACHE_DIR / _safe_revision(embedder.revision)
        cache.mkdir(parents=True, exist_ok=True)
        for stored, data, _, vector in accepted:
            atomic_write_bytes(folder / stored, data)
            _write_npy(cache / (Path(stored).stem + ".npy"), vector)

    def add_person(self, name: str, photos: Sequence[PhotoSource], *, status: str = "active", notes: str = "",
                   backend: str = DEFAULT_BACKEND) -> tuple[Person, list[PhotoReport]]:
        """Enrol a new person with their photos.

        Every photo must hold exactly one usable face; others are refused
        with the reason.  The person is created only if at least one photo is
        accepted.

        Returns:
            ``(person, one report per photo, in order)``.

        Raises:
            InputError: bad name/status/notes, name already on the watchlist,
                or no photo accepted (the message lists why).
        """
        name, status, notes = clean_name(name), _clean_status(status), _clean_notes(notes)
        if not photos:
            raise InputError(f"{name}: give at least one photo")
        embedder = self._embedder(backend)
        with self._lock:
            self.reload()
            if any(p.name.casefold() == name.casefold() for p in self.people):
                raise InputError(f"{name!r} is already on the watchlist; add photos to them instead")
            accepted, reports = self._vet_photos(photos, {}, embedder)
            if not accepted:
                raise InputError(f"{name}: no usable photo, person not added: "
                                 + "; ".join(r.line() for r in reports))
            person_id = self._free_id(slugify(name))
            now = _now()
            person = Person(id=person_id, name=name, status=status, notes=notes, added=now, updated=now,
                            photos=sorted(a[0] for a in accepted), folder=self.root / person_id,
                            sources={a[0]: a[2] for a in accepted})
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".new-{person_id}-"))
            try:
                os.chmod(staging, _DIR_MODE)
                self._store_photos(staging, accepted, embedder)
                _write_json(staging / SUSPECT_FILE, person._json())
                os.rename(staging, person.folder)  # atomic: the person appears whole or not at all
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self.reload()
            return self.get(person_id), reports

    def _free_id(self, base: str) -> str:
        taken = {p.name for p in self.root.iterdir()}
        if base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def add_photos(self, who: str, photos: Sequence[PhotoSource], *, backend: str = DEFAULT_BACKEND
                   ) -> list[PhotoReport]:
        """Add photos to an existing person; returns one report per photo.

        Raises:
            InputError: unknown person, or no photo given.
        """
        if not photos:
            raise InputError("give at least one photo")
        embedder = self._embedder(backend)
        with self._lock:
            self.reload()
            person = self.get(who)
            accepted, reports = self._vet_photos(photos, self._existing_hashes(person), embedder)
            if accepted:
                self._store_photos(person.folder, accepted, embedder)
                person.photos = sorted(set(person.photos) | {a[0] for a in accepted})
                person.sources.update({a[0]: a[2] for a in accepted})
                self._save(person)
            return reports

    def remove_photo(self, who: str, photo: str) -> Person:
        """Delete one photo (by its file name in the person's folder).

        Raises:
            InputError: unknown person or photo.
        """
        with self._lock:
            self.reload()
            person = self.get(who)
            photo = Path(str(photo)).name  # never a path
            if photo not in person.photos:
                raise InputError(f"{person.name} has no photo {photo!r}; photos: {', '.join(person.photos) or 'none'}")
            (person.folder / photo).unlink()
            person.photos.remove(photo)
            person.sources.pop(photo, None)
            self._save(person)
            return self.get(person.id)

    def update(self, who: str, *, name: str | None = None, status: str | None = None,
               notes: str | None = None) -> Person:
        """Change a person's name, status or notes (the id stays).

        A broken ``suspect.json`` is kept next to the new one as
        ``suspect.json.broken-<time>`` before it is replaced.
        """
        with self._lock:
            self.reload()
            person = self.get(who)
            if name is not None:
                name = clean_name(name)
                if any(p.id != person.id and p.name.casefold() == name.casefold() for p in self.people):
                    raise InputError(f"{name!r} is already on the watchlist")
                person.name = name
            if status is not None:
                person.status = _clean_status(status)
            elif person.status == "broken":
                person.status = "active"
            if notes is not None:
                person.notes = _clean_notes(notes)
            self._save(person)
            return self.get(person.id)

    def _save(self, person: Person) -> None:
        meta = person.folder / SUSPECT_FILE
        if person.status == "broken":
            person.status = "active"
        if meta.exists() and any("is broken" in p for p in person.problems):
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
            shutil.copy2(meta, meta.with_name(f"{SUSPECT_FILE}.broken-{stamp}"))
        person.updated = _now()
        person.added = person.added or person.updated
        _write_json(meta, person._json())
        self.reload()

    def remove(self, who: str) -> Person:
        """Delete a person and their photos.  Returns what was removed."""
        with self._lock:
            self.reload()
            person = self.get(who)
            trash = self.root / f".deleted-{person.id}-{uuid.uuid4().hex[:8]}"
            os.rename(person.folder, trash)  # atomic: gone from the watchlist at once
            shutil.rmtree(trash, ignore_errors=True)
            self.reload()
            return person

    # -- embeddings ----------------------------------------------------------
    def _fingerprint(self) -> tuple:
        """Cheap signature of every photo and status; changes when the folder does."""
        parts = []
        for person in self.people:
            for photo in person.photos:
                try:
                    st = (person.folder / photo).stat()
                except OSError:
                    continue
                parts.append((person.id, person.status, photo, st.st_size, st.st_mtime_ns))
            parts.append((person.id, person.status, person.name))
        return tuple(parts)

    def gallery(self, backend: str = DEFAULT_BACKEND) -> Gallery:
        """Embeddings of every usable photo of every active person.

        Kept in memory per folder and model until a photo, name or status
        changes.  Uses the per-photo cache on disk; computes and stores what is missing (e.g.
        photos dropped into a folder by hand, or after a model change).
        Photos that fail (no face, several faces, unreadable) are skipped and
        listed in ``problems``; a person left with no usable photo is not
        matchable.
        """
        embedder = self._embedder(backend)
        with self._lock:
            self.reload()
            key = (str(self.root.resolve()), backend, embedder.revision)
            fingerprint = self._fingerprint()
            cached = _GALLERIES.get(key)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            rows, owners, photo_names, people, problems = [], [], [], [], []
            for person in self.people:
                if not person.matchable:
                    continue
                vectors, names = self._person_embeddings(person, embedder, problems)
                if not vectors:
                    problems.append(f"{person.name}: no usable photo, not matched")
                    continue
                owners.extend([len(people)] * len(vectors))
                people.append(person)
                rows.extend(vectors)
                photo_names.extend(names)
            embeddings = np.array(rows, np.float32).reshape(len(rows), embedder.dim)
            gallery = Gallery(backend, embedder.revision, embeddings, np.array(owners, np.int64),
                              photo_names, people, problems)
            _GALLERIES[key] = (fingerprint, gallery)
            return gallery

    def _person_embeddings(self, person: Person, embedder: Embedder, problems: list[str]
                           ) -> tuple[list[np.ndarray], list[str]]:
        cache = person.folder / CACHE_DIR / _safe_revision(embedder.revision)
        vectors, names, wanted = [], [], set()
        for photo in person.photos:
            path = person.folder / photo
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"{person.name}: {photo}: cannot read ({exc.strerror or exc})")
                continue
            key = hashlib.sha256(data).hexdigest()[:16]
            wanted.update({key + ".npy", key + ".err"})
            vector, error = _read_cache(cache, key, embedder.dim)
            if vector is None and error is None:
                try:
                    vector, error, _ = check_photo(load_image(data), embedder, self.detector)
                except InputError as exc:
                    error = str(exc).removeprefix("image: ")
                try:
                    cache.mkdir(parents=True, exist_ok=True)
                    if vector is not None:
                        _write_npy(cache / f"{key}.npy", vector)
                    else:
                        atomic_write_bytes(cache / f"{key}.err", error.encode("utf-8"))
                except OSError:
                    pass  # a read-only watchlist still works, just without the cache
            if vector is None:
                problems.append(f"{person.name}: {photo}: {error}")
                continue
            vectors.append(vector)
            names.append(photo)
        _prune_cache(person.folder / CACHE_DIR, cache, wanted, embedder.revision)
        return vectors, names


def _write_npy(path: Path, vector: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(vector, np.float32), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def _read_cache(cache: Path, key: str, dim: int) -> tuple[np.ndarray | None, str | None]:
    try:
        vector = np.load(cache / f"{key}.npy", allow_pickle=False)
        if vector.shape == (dim,) and np.all(np.isfinite(vector)):
            return vector.astype(np.float32), None
    except (OSError, ValueError):
        pass
    try:
        return None, (cache / f"{key}.err").read_text(encoding="utf-8")
    except OSError:
        return None, None


def _prune_cache(cache_root: Path, current: Path, wanted: set[str], revision: str) -> None:
    """Drop cache entries of older revisions of the same model and of photos no longer present."""
    backend_prefix = _safe_revision(revision.split("@", 1)[0] + "@")
    try:
        for entry in cache_root.iterdir() if cache_root.is_dir() else []:
            if entry.is_dir() and entry != current and entry.name.startswith(backend_prefix):
                shutil.rmtree(entry, ignore_errors=True)
        for entry in current.iterdir() if current.is_dir() else []:
            if entry.name not in wanted:
                entry.unlink(missing_ok=True)
    except OSError:
        pass
