"""Command line: ``python -m pipeline {detect,enhance,stages} ...``.

Errors people can cause are printed as one line on stderr with a non-zero
exit code; this module is the one place where that happens for the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import InputError, StageUnavailable

EXIT_INPUT_ERROR = 2
EXIT_UNAVAILABLE = 3


def _add_detector_options(parser: argparse.ArgumentParser) -> None:
    from .stages.detect import DEFAULT_SCORE_THRESHOLD, METHODS

    parser.add_argument("--method", choices=METHODS, default="blazeface",
                        help="face detector (default: %(default)s; haar is the OpenCV cascade)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_SCORE_THRESHOLD,
                        help="minimum detection score in 0..1 (default: %(default)s)")
    parser.add_argument("--min-face", type=float, default=24, metavar="PX",
                        help="smallest face width to find, in pixels (default: %(default)s)")


def _detector(args: argparse.Namespace):
    from .stages.detect import FaceDetector

    return FaceDetector(args.method, score_threshold=args.threshold, min_face_px=args.min_face)


def cmd_detect(args: argparse.Namespace) -> int:
    """Detect faces in each image; print boxes and scores (or JSON)."""
    from .annotate import draw_faces
    from .io import encode_png, load_image

    detector = _detector(args)
    records, failed = [], 0
    for path in args.images:
        try:
            rgb = load_image(path)
            faces = detector(rgb)
        except InputError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            records.append({"image": path, "error": str(exc)})
            continue
        records.append({"image": path, "width": rgb.shape[1], "height": rgb.shape[0],
                        "faces": [f.to_dict() for f in faces]})
        if args.annotate:
            out_dir = Path(args.annotate)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / (Path(path).stem + "_faces.png")).write_bytes(encode_png(draw_faces(rgb, faces)))
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                x, y, w, h = f.box
                print(f"  x={x} y={y} w={w} h={h} score={f.score:.3f}")
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        print()
    return EXIT_INPUT_ERROR if failed else 0


def cmd_enhance(args: argparse.Namespace) -> int:
    """Run the named enhancement stages on a whole image and save the result."""
    from .core import Pipeline
    from .io import encode_png, load_image

    pipeline = Pipeline.default()
    names = [n.strip() for n in args.stages.split(",") if n.strip()]
    if not names:
        raise InputError("--stages needs at least one stage name")
    specs = [pipeline.stage(n) for n in names]
    rgb = load_image(args.input)
    for spec in sorted(specs, key=lambda s: pipeline.stage_names.index(s.name)):
        reason = spec.reason_unavailable()
        if reason is not None:
            raise StageUnavailable(spec.name, reason)
        rgb = spec.run(rgb)
        print(f"{spec.name}: applied", file=sys.stderr)
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ""):
        raise InputError(f"{out}: output must be a .png file (lossless, for evidence)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode_png(rgb))
    print(f"wrote {out} (AI-enhanced: {', '.join(names)})")
    return 0


def cmd_stages(args: argparse.Namespace) -> int:
    """List the pipeline's stages and whether each can run."""
    from .core import Pipeline

    infos = Pipeline.default().describe()
    if args.json:
        json.dump([info.__dict__ for info in infos], sys.stdout, indent=2)
        print()
        return 0
    for info in infos:
        state = "ready" if info.ready else f"unavailable: {info.reason}"
        print(f"{info.name:10s} {info.target:5s} default={info.default!s:5s} {state}")
    return 0


def _video_paths(items: Sequence[str]) -> list[Path]:
    from .video.archive import expand_videos

    return expand_videos(items)


def _progress_printer(name: str):
    """A one-line progress display on stderr: frames done/total, fps, ETA."""
    last = [0.0]

    def show(done: int, total: int, elapsed: float) -> None:
        if done < total and elapsed - last[0] < 0.5:
            return
        last[0] = elapsed
        fps = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / fps if fps > 0 else 0.0
        end = "\n" if done >= total else ""
        print(f"\r{name}: {done}/{total} frames  {fps:.1f} fps  ETA {eta:.0f} s ", end=end, file=sys.stderr, flush=True)

    return show


def make_recogniser(suspects: str | None, backend: str = "dlib"):
    """An identifier for the watchlist folder, or ``None`` when no folder is given."""
    if not suspects:
        return None
    from .recognition import Identifier, Watchlist

    return Identifier(Watchlist.load(suspects), backend=backend)


def cmd_scan(args: argparse.Namespace) -> int:
    """Scan videos for faces, track them, match them against the watchlist, write the sightings.

    With --ray (or --chunk-seconds) the archive scanner runs: folders are searched recursively, long
    files are cut into time chunks, finished chunks are kept in OUT/.work and skipped by a re-run.
    """
    if args.ray is not None or args.chunk_seconds is not None:
        return _scan_archive(args)
    if args.workers is not None:
        raise InputError("--workers needs --ray")
    from .core import Pipeline
    from .video import scan_video, write_scan_outputs
    from .video.archive import output_dirs, parse_stage_list

    videos = _video_paths(args.videos)
    pipeline = Pipeline.default()
    toggles = parse_stage_list(args.stages)
    recogniser = make_recogniser(args.suspects, args.backend)
    out_root = Path(args.out)
    failed = 0
    for video, out_dir in zip(videos, output_dirs(videos, out_root)):
        try:
            result = scan_video(str(video), pipeline, recogniser, stages=toggles, stride=args.stride,
                                max_duration_s=args.max_minutes * 60 if args.max_minutes else None,
                                progress=None if args.quiet else _progress_printer(video.name))
            paths = write_scan_outputs(result, out_dir)
        except InputError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        for warning in result.warnings:
            print(f"warning: {video.name}: {warning}", file=sys.stderr)
        if args.report:
            from .report import report_for_scan, write_report

            report_dir = Path(args.report) / video.stem if len(videos) > 1 else Path(args.report)
            report = report_for_scan(result, recogniser, pipeline=pipeline, stages=toggles,
                                     settings={"stride": args.stride})
            print(f"  evidence report: {write_report(report, report_dir)['html']}")
        _print_sightings(video, result, paths["json"])
    return EXIT_INPUT_ERROR if failed else 0


def _print_sightings(video, result, json_path) -> None:
    matches = [s for s in result.sightings if s.decision == "match"]
    print(f"{video}: {len(result.sightings)} sighting(s), {len(matches)} match(es) -> {json_path}")
    for s in matches:
        print(f"  {s.name}: {s.first_seen_s:.1f}-{s.last_seen_s:.1f} s, score {s.score:.3f}")


def _scan_archive(args: argparse.Namespace) -> int:
    """``scan --ray``: the archive scanner (pipeline.video.archive), in-process or on Ray actors."""
    from .video.archive import ArchiveSettings, scan_archive

    if args.chunk_seconds is not None and args.chunk_seconds <= 0:
        raise InputError("--chunk-seconds must be positive")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be 1 or more")
    if args.stride < 1:
        raise InputError(f"stride must be 1 or more, not {args.stride}")
    settings = ArchiveSettings(suspects=args.suspects or None, backend=args.backend, stages=args.stages,
                               stride=args.stride,
                               chunk_seconds=args.chunk_seconds or ArchiveSettings.chunk_seconds,
                               max_duration_s=args.max_minutes * 60 if args.max_minutes else None)
    report_state: dict = {}

    def on_file(job) -> None:
        if job.result is None:
            print(f"error: {job.path}: {job.error}", file=sys.stderr)
            return
        for warning in job.result.warnings:
            print(f"warning: {job.path.name}: {warning}", file=sys.stderr)
        if args.report:
            from .core import Pipeline
            from .report import report_for_scan, write_report
            from .video.archive import parse_stage_list

            if not report_state:  # models for the report are loaded once, on the driver
                report_state["pipeline"] = Pipeline.default()
                report_state["recogniser"] = make_recogniser(args.suspects, args.backend)
            report_dir = Path(args.report) / job.out_dir.relative_to(args.out) if job.out_dir != Path(args.out) \
                else Path(args.report)
            report = report_for_scan(job.result, report_state["recogniser"], pipeline=report_state["pipeline"],
                                     stages=parse_stage_list(args.stages), settings={"stride": args.stride})
            print(f"  evidence report: {write_report(report, report_dir)['html']}")
        _print_sightings(job.path, job.result, job.out_dir / "sightings.json")

    summary = scan_archive(args.videos, args.out, settings, use_ray=args.ray is not None,
                           ray_address=None if args.ray in (None, "local") else args.ray,
                           workers=args.workers, show_progress=not args.quiet, on_file=on_file)
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0 if summary.ok else EXIT_INPUT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="The open CCTV face pipeline: find, enhance and match faces.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", help="find faces in images", description=cmd_detect.__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _add_detector_options(p)
    p.add_argument("--json", action="store_true", help="print JSON (one record per image, input order)")
    p.add_argument("--annotate", metavar="DIR", help="also save each image with boxes drawn, as PNG, into DIR")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("enhance", help="apply enhancement stages to an image", description=cmd_enhance.__doc__)
    p.add_argument("--stages", required=True, help="comma-separated stage names, e.g. lowlight or deblur,superres")
    p.add_argument("input", metavar="IN", help="input image")
    p.add_argument("output", metavar="OUT", help="output PNG")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("scan", help="find, track and match faces in videos", description=cmd_scan.__doc__)
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, folders or globs")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (one subfolder per video when there are several)")
    p.add_argument("--suspects", default="suspects", metavar="DIR",
                   help="watchlist folder (default: %(default)s/; pass '' to only track faces)")
    p.add_argument("--backend", default="dlib", help="face embedding model (default: %(default)s)")
    p.add_argument("--stages", default="auto", metavar="LIST",
                   help="'auto' (default: frame stages decide, crop stages off -- they cost much and did not help "
                        "recognition in our benchmark), 'none', or comma-separated stages to switch on")
    p.add_argument("--stride", type=int, default=1, help="process every N-th frame (default: 1)")
    p.add_argument("--max-minutes", type=float, default=180, help="refuse longer videos (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--report", metavar="DIR",
                   help="also write the evidence report (audit.json, evidence.html) into DIR")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="scan the archive on Ray: alone, a new local Ray; or a cluster's ADDRESS ('auto', "
                        "'ray://host:10001'). Resumable: finished chunks are kept in OUT/.work")
    p.add_argument("--chunk-seconds", type=float, metavar="S",
                   help="cut files longer than S seconds into chunks (default with --ray: "
                        "1800); also runs the resumable archive scanner in-process without --ray")
    p.add_argument("--workers", type=int, metavar="N",
                   help="Ray actors (default: the cluster's GPUs, else its CPUs)")
    p.set_defaults(func=cmd_scan)

    from .recognition.cli import add_commands as add_recognition_commands

    add_recognition_commands(sub)

    p = sub.add_parser("stages", help="list stages and whether they are ready", description=cmd_stages.__doc__)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_stages)
    return parser


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen handler, and turn user errors into one line and an exit code."""
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except StageUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
