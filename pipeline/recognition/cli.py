"""CLI subcommands ``identify`` and ``suspects`` (added to ``python -m pipeline``).

``pipeline/__main__.py`` calls :func:`add_commands` on its subparsers; each
handler returns an exit code and raises :class:`~pipeline.errors.InputError`
for mistakes people make, which ``__main__`` prints as one line.

    python -m pipeline suspects add "Jane Doe" a.jpg b.jpg [--notes ...] [--suspects DIR]
    python -m pipeline suspects list | show NAME | remove NAME --yes
    python -m pipeline suspects edit NAME [--name ..] [--status ..] [--notes ..]
    python -m pipeline suspects remove-photo NAME PHOTO
    python -m pipeline identify IMAGE... [--suspects DIR] [--json] [--report DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import InputError

DEFAULT_SUSPECTS = "suspects"
EXIT_INPUT_ERROR = 2


def _suspects_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suspects", default=DEFAULT_SUSPECTS, metavar="DIR",
                        help="watchlist folder (default: %(default)s/)")


def _backend_option(parser: argparse.ArgumentParser) -> None:
    from .embedders import BACKENDS, DEFAULT_BACKEND

    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                        help="face embedding model (default: %(default)s; VGGFace models need their weights)")


def add_commands(subparsers: Any) -> None:
    """Add ``identify`` and ``suspects`` to an ``argparse`` subparsers object.

    Each parser sets ``func`` to its handler: ``handler(args) -> exit code``.
    """
    p = subparsers.add_parser("identify", help="match faces in images against the watchlist",
                              description=cmd_identify.__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _suspects_option(p)
    _backend_option(p)
    p.add_argument("--threshold", type=float, default=None, metavar="D",
                   help="distance threshold: match when distance <= D (default: the backend's calibrated value)")
    p.add_argument("--margin", type=float, default=None, metavar="D",
                   help="minimum distance gap between the two best identities (default: the backend's)")
    p.add_argument("--band", type=float, default=None, metavar="D",
                   help="distances within D under the threshold are inconclusive (default: the backend's)")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="candidates shown per face (default: 3)")
    p.add_argument("--stages", default="none", metavar="LIST",
                   help="enhancement before matching: 'none' (default), 'auto' (each stage decides), "
                        "or comma-separated stage names to switch on; raw and enhanced crops are both matched")
    p.add_argument("--json", action="store_true",
                   help="print JSON: for each image, in input order, the list of its faces")
    p.add_argument("--report", metavar="DIR",
                   help="also write the evidence report (audit.json, evidence.html, crops/) into DIR; "
                        "with several images, into DIR/<image name>/")
    p.set_defaults(func=cmd_identify)

    s = subparsers.add_parser("suspects", help="manage the watchlist (add, list, show, edit, remove)",
                              description="Manage the watchlist folder: one folder per person.")
    ssub = s.add_subparsers(dest="suspects_command", required=True, metavar="ACTION")

    a = ssub.add_parser("add", help="add a person (or more photos of them)", description=cmd_suspects_add.__doc__)
    a.add_argument("name", metavar="NAME")
    a.add_argument("photos", nargs="+", metavar="PHOTO", help="photos with exactly one face each")
    a.add_argument("--notes", default="", help="free text kept with the person")
    a.add_argument("--status", default="active", choices=("active", "inactive"))
    _suspects_option(a)
    _backend_option(a)
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_suspects_add)

    ls = ssub.add_parser("list", help="list people on the watchlist", description=cmd_suspects_list.__doc__)
    _suspects_option(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_suspects_list)

    sh = ssub.add_parser("show", help="show one person", description=cmd_suspects_show.__doc__)
    sh.add_argument("name", metavar="NAME", help="name or id")
    _suspects_option(sh)
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(func=cmd_suspects_show)

    e = ssub.add_parser("edit", help="change a person's name, status or notes", description=cmd_suspects_edit.__doc__)
    e.add_argument("name", metavar="NAME", help="name or id")
    e.add_argument("--new-name", dest="new_name", default=None)
    e.add_argument("--status", default=None, choices=("active", "inactive"))
    e.add_argument("--notes", default=None)
    _suspects_option(e)
    e.set_defaults(func=cmd_suspects_edit)

    rp = ssub.add_parser("remove-photo", help="delete one photo of a person", description=cmd_suspects_remove_photo.__doc__)
    rp.add_argument("name", metavar="NAME", help="name or id")
    rp.add_argument("photo", metavar="PHOTO", help="photo file name as shown by 'show'")
    _suspects_option(rp)
    rp.set_defaults(func=cmd_suspects_remove_photo)

    r = ssub.add_parser("remove", help="delete a person and their photos", description=cmd_suspects_remove.__doc__)
    r.add_argument("name", metavar="NAME", help="name or id")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _suspects_option(r)
    r.set_defaults(func=cmd_suspects_remove)


# ------------------------------------------------------------------ identify
def _stage_toggles(text: str) -> tuple[bool, Any]:
    """``(run the pipeline?, toggles)`` from ``--stages``."""
    text = (text or "none").strip().lower()
    if text in ("none", "off", ""):
        return False, None
    if text == "auto":
        return True, None
    return True, [n.strip() for n in text.split(",") if n.strip()]


def cmd_identify(args: argparse.Namespace) -> int:
    """Find faces in each image and match them against the watchlist.

    Prints, per face, its box, the decision (match / no_match / inconclusive),
    the best name and score, and the face quality.  Models and the watchlist
    are loaded once for all images.  With ``--report DIR`` each image also
    gets an evidence report (audit JSON and HTML sheet, raw crop first).
    """
    from ..io import load_image
    from ..report import identify_with_stages, report_for_matches, write_report
    from .matching import Identifier
    from .watchlist import Watchlist

    watchlist = Watchlist.load(args.suspects, create=False)
    use_pipeline, toggles = _stage_toggles(args.stages)
    pipeline = None
    if use_pipeline:
        from ..core import Pipeline

        pipeline = Pipeline.default()
        pipeline.parse_toggles(toggles)  # unknown names fail here, before any work
    identifier = Identifier(watchlist, backend=args.backend, threshold=args.threshold, margin=args.margin,
                            band=args.band, top_k=args.top_k, pipeline=pipeline, stages=toggles)
    gallery = watchlist.gallery(args.backend)
    for problem in gallery.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not gallery.people:
        print(f"warning: nobody on the watchlist in {args.suspects} can be matched", file=sys.stderr)
    results: list[list[dict[str, Any]]] = []
    failed = 0
    report_dirs = _report_dirs(args.report, args.images) if args.report else []
    for i, path in enumerate(args.images):
        try:
            matches, stage_results = identify_with_stages(identifier, load_image(path))
        except InputError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            results.append([])
            continue
        results.append([m.to_dict() for m in matches])
        if args.report:
            try:
                report = report_for_matches(path, matches, identifier, stage_results=stage_results,
                                            settings={"command": "identify", "stages": args.stages})
                print(f"evidence report: {write_report(report, report_dirs[i])['html']}", file=sys.stderr)
            except InputError as exc:  # e.g. the report folder is not writable: the matches still print
                failed += 1
                print(f"error: {exc}", file=sys.stderr)
        if not args.json:
            print(f"{path}: {len(matches)} face(s)")
            for m in matches:
                x, y, w, h = m.box
                who = m.name if m.decision == "match" else (m.candidates[0].name if m.candidates else "-")
                score = "-" if m.score is None else f"{m.score:.3f}"
                print(f"  [{x},{y},{w},{h}] {m.decision:12s} {'' if m.decision == 'match' else 'nearest: '}{who} "
                      f"score={score} quality={m.quality.summary()}")
                if m.decision != "match":
                    print(f"      {m.reason}")
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    return EXIT_INPUT_ERROR if failed else 0


def _report_dirs(root: str, images: list[str]) -> list[Any]:
    """One report folder per image, in order: ``root`` itself for one image, else ``root/<stem>`` (made unique)."""
    from pathlib import Path

    if len(images) == 1:
        return [Path(root)]
    dirs, used = [], set()
    for image in images:
        stem, n = Path(image).stem or "image", 1
        name = stem
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        dirs.append(Path(root) / name)
    return dirs


# ------------------------------------------------------------------ suspects
def cmd_suspects_add(args: argparse.Namespace) -> int:
    """Add a person with their photos, or add photos to someone already on the watchlist.

    Each photo must show exactly one usable face; others are refused with the reason.
    """
    from .watchlist import Watchlist

    watchlist = Watchlist.load(args.suspects)
    existing = watchlist.find(args.name)
    if existing is not None:
        reports = watchlist.add_photos(existing.id, args.photos, backend=args.backend)
        person = watchlist.get(existing.id)
        action = "updated"
    else:
        person, reports = watchlist.add_person(args.name, args.photos, status=args.status, notes=args.notes,
                                               backend=args.backend)
        action = "added"
    if args.json:
        json.dump({"action": action, "person": person.to_dict(),
                   "photos": [r.__dict__ for r in reports]}, sys.stdout, indent=2)
        print()
    else:
        print(f"{action} {person.name} (id {person.id}, {len(person.photos)} photo(s))")
        for report in reports:
            print(f"  {report.line()}")
    accepted = sum(r.accepted for r in reports)
    return 0 if accepted == len(reports) else EXIT_INPUT_ERROR


def cmd_suspects_list(args: argparse.Namespace) -> int:
    """List everyone on the watchlist with their status and photo count."""
    from .watchlist import Watchlist

    watchlist = Watchlist.load(args.suspects, create=False)
    if args.json:
        json.dump([p.to_dict() for p in watchlist], sys.stdout, indent=2)
        print()
        return 0
    if not len(watchlist):
        print(f"the watchlist in {args.suspects} is empty")
    for person in watchlist:
        flag = f"  ! {'; '.join(person.problems)}" if person.problems else ""
        print(f"{person.id:24s} {person.name:30s} {person.status:9s} {len(person.photos)} photo(s){flag}")
    return 0


def cmd_suspects_show(args: argparse.Namespace) -> int:
    """Show one person: details, photos and any problem."""
    from .watchlist import Watchlist

    person = Watchlist.load(args.suspects, create=False).get(args.name)
    if args.json:
        json.dump(person.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    print(f"name:    {person.name}\nid:      {person.id}\nstatus:  {person.status}\n"
          f"added:   {person.added}\nupdated: {person.updated}\nfolder:  {person.folder}")
    if person.notes:
        print("notes:   " + person.notes.replace("\n", "\n         "))
    print(f"photos:  {len(person.photos)}")
    for photo in person.photos:
        source = person.sources.get(photo)
        print(f"  {photo}" + (f"  (from {source})" if source and source != photo else ""))
    for problem in person.problems:
        print(f"problem: {problem}")
    return 0


def cmd_suspects_edit(args: argparse.Namespace) -> int:
    """Change a person's name, status or notes (the id stays the same)."""
    from .watchlist import Watchlist

    if args.new_name is None and args.status is None and args.notes is None:
        raise InputError("nothing to change: give --new-name, --status or --notes")
    person = Watchlist.load(args.suspects, create=False).update(
        args.name, name=args.new_name, status=args.status, notes=args.notes)
    print(f"updated {person.name} (id {person.id}, status {person.status})")
    return 0


def cmd_suspects_remove_photo(args: argparse.Namespace) -> int:
    """Delete one photo of a person."""
    from .watchlist import Watchlist

    person = Watchlist.load(args.suspects, create=False).remove_photo(args.name, args.photo)
    print(f"removed {args.photo} from {person.name} ({len(person.photos)} photo(s) left)")
    return 0


def cmd_suspects_remove(args: argparse.Namespace) -> int:
    """Delete a person and all their photos (asks first unless --yes)."""
    from .watchlist import Watchlist

    watchlist = Watchlist.load(args.suspects, create=False)
    person = watchlist.get(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError(f"refusing to delete {person.name} without confirmation: add --yes")
        answer = input(f"Delete {person.name} ({person.id}) and {len(person.photos)} photo(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    watchlist.remove(person.id)
    print(f"removed {person.name} (id {person.id})")
    return 0
