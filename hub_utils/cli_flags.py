"""``--model-path/--model-repo/--model-revision/--model-sha256 NAME=VALUE`` flags for any argparse CLI.

The pipeline CLI and the app reuse these so every entry point accepts the
same per-model overrides as ``python -m hub_utils``::

    parser = argparse.ArgumentParser()
    hub_utils.add_override_arguments(parser)
    args = parser.parse_args()
    hub_utils.apply_override_arguments(args)   # raises ManifestError on a bad value
"""

from __future__ import annotations

import argparse

from .errors import ManifestError
from .manifest import load_manifest, set_override

_FLAGS = {
    "model_path": ("--model-path", "path", "use this local weights file for model NAME"),
    "model_repo": ("--model-repo", "repo_id", "download model NAME from this Hub repo (ORG/NAME)"),
    "model_revision": ("--model-revision", "revision", "pin model NAME to this Hub commit"),
    "model_sha256": ("--model-sha256", "sha256", "accept a file for model NAME with this sha256"),
}


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the four repeatable ``NAME=VALUE`` override flags to ``parser``."""
    group = parser.add_argument_group("model sources (also CCTV_MODEL_<NAME>_PATH/_REPO/_REVISION/_SHA256)")
    for dest, (flag, _field, help_text) in _FLAGS.items():
        group.add_argument(flag, dest=dest, action="append", default=[], metavar="NAME=VALUE", help=help_text)


def apply_override_arguments(args: argparse.Namespace) -> None:
    """Turn the parsed flags into :func:`hub_utils.set_override` calls (a typo in NAME is an error)."""
    known: list[str] | None = None
    for dest, (flag, field, _help) in _FLAGS.items():
        for item in getattr(args, dest, None) or []:
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name or not value:
                raise ManifestError(f"{flag} expects NAME=VALUE, got {item!r}")
            known = known if known is not None else load_manifest().names
            if name not in known:
                raise ManifestError(f"{flag}: unknown model {name!r}; the manifest lists: {', '.join(known)}")
            set_override(name, **{field: value.strip()})


__all__ = ["add_override_arguments", "apply_override_arguments"]
