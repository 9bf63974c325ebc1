"""Evaluation commands: ``python -m pipeline.eval recognition ...``.

    python -m pipeline.eval recognition --gallery DIR --probes DIR \\
        [--degrade none|light|medium|heavy] [--stages none|auto|a,b] [--json]

``--gallery`` is a watchlist folder (``<id>/suspect.json`` + photos) or a
plain folder of ``<person>/<photos>`` that is enrolled into a temporary
watchlist.  ``--probes`` holds ``<person>/<photos>``; a probe whose person
folder is not in the gallery is a non-enrolled person (must never be
matched).  Prints rank-1, TAR at FAR 1 % and 0.1 %, the share of
``inconclusive`` and false matches of non-enrolled people; see
``pipeline/recognition/evaluate.py`` for definitions and the degradation
generator.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _people(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    people = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if photos:
            people[sub.name] = photos
    if not people:
        raise InputError(f"{folder}: no <person>/<photo> folders found")
    return people


def run_recognition(args: argparse.Namespace) -> int:
    from .io import load_image
    from .recognition.evaluate import degrade, format_summary, normalise_face_size, probe_face, record_for, summarise
    from .recognition.matching import Identifier
    from .recognition.watchlist import SUSPECT_FILE, Watchlist, default_detector, slugify

    gallery_dir = Path(args.gallery)
    with tempfile.TemporaryDirectory(prefix="eval-watchlist-") as tmp:
        if any((p / SUSPECT_FILE).is_file() for p in gallery_dir.iterdir() if p.is_dir()):
            watchlist = Watchlist.load(gallery_dir, create=False)
        else:
            watchlist = Watchlist.load(tmp)
            for name, photos in _people(gallery_dir).items():
                try:
                    _, reports = watchlist.add_person(name, [str(p) for p in photos], backend=args.backend)
                except InputError as exc:
                    print(f"warning: {exc}", file=sys.stderr)
                    continue
                for report in reports:
                    if not report.accepted:
                        print(f"warning: {name}: {report.line()}", file=sys.stderr)
        enrolled_ids = {p.id for p in watchlist}
        pipeline, toggles = None, None
        if args.stages not in ("none", ""):
            from .core import Pipeline

            pipeline = Pipeline.default()
            toggles = None if args.stages == "auto" else [s.strip() for s in args.stages.split(",") if s.strip()]
            pipeline.parse_toggles(toggles)
        identifier = Identifier(watchlist, backend=args.backend, top_k=50, pipeline=pipeline, stages=toggles)
        detector = default_detector()
        records = []
        for person, photos in _people(Path(args.probes)).items():
            label = slugify(person)
            for photo in photos:
                try:
                    rgb = load_image(photo)
                except InputError as exc:
                    print(f"warning: {exc}", file=sys.stderr)
                    continue
                if args.degrade != "none" and args.face_px > 0:
                    faces = detector(rgb)
                    if faces:
                        rgb = normalise_face_size(rgb, max(f.width for f in faces), args.face_px)
                for seed in range(args.seeds if args.degrade != "none" else 1):
                    probe = degrade(rgb, args.degrade, seed=seed)
                    records.append(record_for(probe_face(identifier(probe)), label, identifier,
                                              enrolled=label in enrolled_ids))
        if not records:
            raise InputError("no probe could be read")
        summary = summarise(records)
        summary.update({"degrade": args.degrade, "stages": args.stages, "backend": args.backend,
                        "enrolled_identities": len(enrolled_ids)})
        if args.json:
            json.dump(summary, sys.stdout, indent=2)
            print()
        else:
            print(f"gallery: {len(enrolled_ids)} people; degradation: {args.degrade}; stages: {args.stages}; "
                  f"backend: {args.backend}")
            print(format_summary(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .recognition.embedders import BACKENDS, DEFAULT_BACKEND
    from .recognition.evaluate import LEVEL_NAMES, NORMALISED_FACE_PX

    parser = argparse.ArgumentParser(prog="python -m pipeline.eval", description="Evaluate pipeline parts on labelled data.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("recognition", help="open-set recognition metrics", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gallery", required=True, metavar="DIR", help="watchlist folder or <person>/<photos> folder")
    p.add_argument("--probes", required=True, metavar="DIR", help="<person>/<photos> folder")
    p.add_argument("--degrade", choices=LEVEL_NAMES, default="none", help="synthetic CCTV level (default: none)")
    p.add_argument("--seeds", type=int, default=1, help="degraded copies per probe (default: 1)")
    p.add_argument("--face-px", type=int, default=NORMALISED_FACE_PX,
                   help="before degrading, scale probes so the face is this wide (0: keep; default %(default)s)")
    p.add_argument("--stages", default="none", help="'none' (default), 'auto' or comma-separated stage names")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_recognition)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .__main__ import run_cli  # the CLI's one place for user errors and exit codes

    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
