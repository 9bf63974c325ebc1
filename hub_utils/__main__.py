"""``python -m hub_utils``: status, download, register, publish, import-vggface.

Exit codes: 0 success, 1 a requested model is unavailable or an upload
failed, 2 bad arguments or an invalid manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from . import hub
from .cli_flags import add_override_arguments, apply_override_arguments
from .errors import HubUtilsError, ManifestError, ModelLoadError, ModelUnavailable
from .manifest import load_manifest, override_for
from .resolve import ModelStatus, key_repo_revision, resolve, sha256_file, status


def _status_line(s: ModelStatus) -> str:
    name, source, where, sha, detail = s.row()
    return f"{name:<20} {source:<8} {where:<48} {sha:<12}  {detail}".rstrip()


def cmd_status(args: argparse.Namespace) -> int:
    rows = status(args.models or None)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(f"{'model':<20} {'source':<8} {'repo@revision':<48} {'sha256':<12}  state / reason")
        for row in rows:
            print(_status_line(row))
    return 1 if args.strict and any(not r.ready for r in rows) else 0


def cmd_download(args: argparse.Namespace) -> int:
    """Fetch every requested model that lives on the Hub into the HF cache.

    A model with no Hub copy (not published, no override) is reported but is
    not a failure, so ``download --all`` can run in a Dockerfile; a Hub model
    that cannot be fetched and verified is (exit 1).
    """
    manifest = load_manifest()
    if not args.models and not args.all:
        print("name the models to download or pass --all", file=sys.stderr)
        return 2
    names = args.models or manifest.names
    failed = 0
    for name in names:
        try:
            entry = manifest.get(name)
        except ManifestError as exc:
            print(f"{name}: {exc}")
            failed += 1
            continue
        override = override_for(name)
        repo, revision = key_repo_revision(manifest, entry)
        on_hub = bool(repo and revision and (entry.published or override.repo_id or override.revision))
        try:
            if on_hub and args.force and entry.hub_filename:
                settings = hub.HubSettings.from_env()
                hub.probe(repo, entry.hub_filename, revision, settings)  # type: ignore[arg-type]
                hub.download(repo, entry.hub_filename, revision, settings, force=True)  # type: ignore[arg-type]
            resolved = resolve(name, refresh=True)
        except hub.HubStepError as exc:
            print(f"{name}: download failed: {exc.reason}")
            failed += 1
            continue
        except ModelUnavailable as exc:
            if on_hub:
                print(f"{name}: download failed: {exc.reason}")
                failed += 1
            else:
                print(f"{name}: not on the Hub, nothing to download (unavailable: {exc.reason})")
            continue
        if on_hub and resolved.source not in ("hub", "cache", "local"):
            print(f"{name}: download failed, using the {resolved.source} copy: {'; '.join(resolved.notes)}")
            failed += 1
            continue
        where = f"{resolved.repo_id}@{(resolved.revision or '')[:12]}" if resolved.source in ("hub", "cache") else ""
        print(f"{name}: {resolved.source} {where} {resolved.path} sha256 {resolved.sha256[:12]}".replace("  ", " "))
    return 1 if failed else 0


def cmd_register(args: argparse.Namespace) -> int:
    from .register import register

    card = {k: v for k, v in (("training_command", args.training_command), ("training_data", args.training_data),
                              ("architecture", args.architecture)) if v}
    _entry, messages = register(args.name, args.file, fmt=args.format, card=card or None)
    for message in messages:
        print(message)
    return 0


def _print_pin(plan_models: list, repo: str, revision: str) -> None:
    print(f"new revision: {revision}")
    for entry, path_in_repo, sha, _size in plan_models:
        key = entry.name.upper().replace("-", "_")
        print(f"  {entry.name}: {repo}@{revision} {path_in_repo} sha256 {sha[:12]}  "
              f"(CCTV_MODEL_{key}_REPO={repo} CCTV_MODEL_{key}_REVISION={revision})")


def cmd_publish(args: argparse.Namespace) -> int:
    from .publish import pin_in_manifest, plan_publish, publish

    plan = plan_publish(args.repo, args.models or None)
    for line in plan.describe():
        print(line)
    if args.print_cards:
        for path, src in sorted(plan.files.items()):
            if path.endswith("README.md") and isinstance(src, bytes):
                print(f"\n===== {path} =====\n{src.decode('utf-8')}")
    if args.dry_run:
        print("dry run: nothing uploaded")
        return 0 if plan.models else 1
    try:
        revision = publish(plan, private=args.private)
    except ModelUnavailable as exc:
        print(exc.reason, file=sys.stderr)
        return 1
    _print_pin(plan.models, args.repo, revision)
    if args.pin:
        pin_in_manifest(plan, revision)
        print("weights/models.json updated: these models are now pinned to the new revision")
    else:
        print("pin it: rerun with --pin, or put this revision in weights/models.json")
    return 0


def cmd_import_vggface(args: argparse.Namespace) -> int:
    from . import vggface
    from .publish import PublishPlan, add_model, finish_plan, pin_in_manifest, publish

    width = args.layout_width
    layout_id, has_head = vggface.validate_file(args.file, args.layout, width)
    print(f"{args.file}: valid {layout_id} layout ({'with' if has_head else 'without'} classifier head)")
    name = args.model or ("vggface" if layout_id == "vggface-vgg16" else "vggface2-resnet50")
    manifest = load_manifest()
    entry = manifest.get(name)
    if entry.layout and entry.layout != layout_id:
        raise ManifestError(f"model {name!r} expects layout {entry.layout!r}, the file is {layout_id!r}")
    with tempfile.TemporaryDirectory(prefix="vggface-") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / Path(entry.hub_filename or f"{name}.h5").name
        vggface.convert(args.file, out, layout_id, width)
        sha, size = sha256_file(out), out.stat().st_size
        print(f"converted -> {out} ({size} bytes, sha256 {sha})")
        repo = args.repo or manifest.repo_for(entry)
        plan = PublishPlan(repo_id=repo)
        add_model(plan, replace(entry, sha256=sha, size=size), out, sha)
        finish_plan(plan)
        for line in plan.describe():
            print(line)
        if args.dry_run or not args.repo:
            print("dry run: nothing uploaded" if args.dry_run else "no --repo given: nothing uploaded")
            if args.out:
                print(f"to use it without the Hub: CCTV_MODEL_{name.upper().replace('-', '_')}_PATH={out} "
                      f"CCTV_MODEL_{name.upper().replace('-', '_')}_SHA256={sha}")
            return 0
        revision = publish(plan, private=args.private)
    _print_pin(plan.models, repo, revision)
    if args.pin:
        pin_in_manifest(plan, revision, new_file=True)
        print(f"weights/models.json updated: {name} pinned to {repo}@{revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hub_utils",
        description="Model weights: status, download, register, publish, import-vggface (see weights/README.md).")
    add_override_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("status", help="one line per model: source, repo@revision, sha256, reason")
    p.add_argument("models", nargs="*", help="only these models")
    p.add_argument("--json", action="store_true", help="print JSON (what the app's API returns)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any model is unavailable")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("download", help="pre-fetch Hub weights into the HF cache for offline use")
    p.add_argument("models", nargs="*")
    p.add_argument("--all", action="store_true", help="every model in the manifest")
    p.add_argument("--force", action="store_true", help="download again even if cached (repairs a bad cache)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("register", help="record a bundled weights file's sha256/size/format in the manifest")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--format", help="override the format guessed from the file name")
    p.add_argument("--training-command", help="for the model card")
    p.add_argument("--training-data", help="for the model card")
    p.add_argument("--architecture", help="for the model card")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("publish", help="upload bundled weights + generated model cards to a Hub repo")
    p.add_argument("--repo", required=True, help="ORG/NAME")
    p.add_argument("--models", nargs="*", help="only these models (default: every bundled model)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the files and cards, upload nothing")
    p.add_argument("--pin", action="store_true", help="write the new revision into weights/models.json")
    p.add_argument("--print-cards", action="store_true", help="print the generated model cards")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("import-vggface", help="validate/convert a Keras VGGFace .h5 and publish it")
    p.add_argument("file")
    p.add_argument("--repo", help="ORG/NAME to publish to (omit to only validate/convert)")
    p.add_argument("--model", choices=["vggface", "vggface2-resnet50"], help="manifest entry (default: by layout)")
    p.add_argument("--layout", choices=["vggface-vgg16", "vggface-resnet50"], help="default: detected")
    p.add_argument("--out", help="keep the converted file here")
    p.add_argument("--private", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--pin", action="store_true", help="write repo, revision and sha256 into weights/models.json")
    # Tests only: check a tiny synthetic file with channel counts divided by this.
    p.add_argument("--layout-width", type=int, default=1, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_import_vggface)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apply_override_arguments(args)
        return int(args.func(args))
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ModelLoadError, HubUtilsError, hub.HubStepError) as exc:
        print(f"error: {getattr(exc, 'reason', None) or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
