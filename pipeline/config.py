"""One settings object for the app: command-line flags with environment-variable equivalents.

Every setting has a flag (``--max-upload-mb 50``) and a variable
(``CCTV_MAX_UPLOAD_MB=50``); the flag wins.  :func:`settings_table` renders
the table the README shows, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InputError


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    default: Any
    help: str
    kind: type = str


OPTIONS: dict[str, Option] = {
    "host": Option("--host", "CCTV_HOST", "127.0.0.1", "address to listen on (0.0.0.0: all interfaces)"),
    "port": Option("--port", "CCTV_PORT", 7860, "port", int),
    "share": Option("--share", "CCTV_SHARE", False, "create a public gradio.live link (needs internet)", bool),
    "auth": Option("--auth", "CCTV_AUTH", "", "log-in for the whole app: 'user:password', several separated by commas"),
    "auth_file": Option("--auth-file", "CCTV_AUTH_FILE", "", "file with one 'user:password' per line (keeps passwords out of the process list)"),
    "admins": Option("--admins", "CCTV_ADMINS", "", "users (comma-separated) allowed to edit the watchlist; empty: every logged-in user"),
    "edit_token": Option("--edit-token", "CCTV_EDIT_TOKEN", "", "without log-in: a token that must be typed in the Watchlist tab to edit it"),
    "read_only_watchlist": Option("--read-only-watchlist", "CCTV_READ_ONLY_WATCHLIST", False, "nobody can edit the watchlist from the app", bool),
    "suspects": Option("--suspects", "CCTV_SUSPECTS", "suspects", "watchlist folder (never served as static files)"),
    "max_upload_mb": Option("--max-upload-mb", "CCTV_MAX_UPLOAD_MB", 200.0, "largest upload accepted, in MiB", float),
    "max_image_megapixels": Option("--max-image-megapixels", "CCTV_MAX_IMAGE_MEGAPIXELS", 40.0, "largest image accepted, in megapixels (checked from the header)", float),
    "max_video_minutes": Option("--max-video-minutes", "CCTV_MAX_VIDEO_MINUTES", 30.0, "longest video accepted, in minutes", float),
    "concurrency": Option("--concurrency", "CCTV_CONCURRENCY", 2, "jobs run at once (all users together)", int),
    "per_user_jobs": Option("--per-user-jobs", "CCTV_PER_USER_JOBS", 1, "jobs one user (browser session) may run at once; more get the busy message", int),
    "queue_size": Option("--queue-size", "CCTV_QUEUE_SIZE", 16, "jobs waiting at most; more get the busy message", int),
    "detect_threshold": Option("--detect-threshold", "CCTV_DETECT_THRESHOLD", 0.32, "face detector score threshold (0..1)", float),
    "match_threshold": Option("--match-threshold", "CCTV_MATCH_THRESHOLD", 0.0, "recogniser distance threshold; 0: the backend's calibrated default", float),
    "stages": Option("--stages", "CCTV_STAGES", "", "default stage toggles, e.g. 'lowlight=auto,deblur=off,superres=on'"),
    "device": Option("--device", "CCTV_DEVICE", "auto", "where TensorFlow models run: auto (GPU when present), cpu or gpu"),
    "retention_hours": Option("--retention-hours", "CCTV_RETENTION_HOURS", 24.0, "delete uploads, crops and results older than this", float),
}


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: str = ""
    auth_file: str = ""
    admins: str = ""
    edit_token: str = ""
    read_only_watchlist: bool = False
    suspects: str = "suspects"
    max_upload_mb: float = 200.0
    max_image_megapixels: float = 40.0
    max_video_minutes: float = 30.0
    concurrency: int = 2
    per_user_jobs: int = 1
    queue_size: int = 16
    detect_threshold: float = 0.32
    match_threshold: float = 0.0
    stages: str = ""
    device: str = "auto"
    retention_hours: float = 24.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- derived -------------------------------------------------------------
    def credentials(self) -> list[tuple[str, str]]:
        """``(user, password)`` pairs from ``auth`` and ``auth_file``."""
        entries = [e for e in self.auth.split(",") if e.strip()]
        if self.auth_file:
            try:
                entries += [line for line in Path(self.auth_file).read_text().splitlines()
                            if line.strip() and not line.lstrip().startswith("#")]
            except OSError as exc:
                raise InputError(f"--auth-file {self.auth_file}: cannot read it ({exc.strerror or exc})") from None
        pairs = []
        for entry in entries:
            user, sep, password = entry.strip().partition(":")
            if not sep or not user or not password:
                raise InputError("each log-in must be 'user:password' (got an entry without both)")
            pairs.append((user, password))
        return pairs

    def admin_names(self) -> set[str]:
        return {a.strip() for a in self.admins.split(",") if a.strip()}

    def stage_toggles(self) -> dict[str, Any]:
        """``--stages`` parsed to ``{name: True | False | "auto"}``."""
        values = {"on": True, "true": True, "off": False, "false": False, "auto": "auto"}
        toggles: dict[str, Any] = {}
        for part in [p for p in self.stages.split(",") if p.strip()]:
            name, sep, value = part.strip().partition("=")
            if not sep or value.strip().lower() not in values:
                raise InputError(f"--stages: {part!r} must be NAME=on|off|auto")
            toggles[name.strip()] = values[value.strip().lower()]
        return toggles

    def validate(self) -> "Settings":
        checks = [
            (1 <= self.port <= 65535, f"port must be 1..65535, not {self.port}"),
            (self.max_upload_mb > 0, "max upload must be positive"),
            (self.max_image_megapixels > 0, "max image size must be positive"),
            (self.max_video_minutes > 0, "max video length must be positive"),
            (self.concurrency >= 1 and self.per_user_jobs >= 1 and self.queue_size >= 1,
             "concurrency, per-user jobs and queue size must be at least 1"),
            (0 < self.detect_threshold < 1, "detector threshold must be between 0 and 1"),
            (0 <= self.match_threshold <= 2, "match threshold must be between 0 and 2 (0: default)"),
            (self.device in ("auto", "cpu", "gpu"), f"device must be auto, cpu or gpu, not {self.device!r}"),
            (self.retention_hours > 0, "retention must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        self.credentials()
        self.stage_toggles()
        return self


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InputError(f"expected true or false, not {text!r}")


def env_default(name: str) -> Any:
    """The default for setting ``name``: its environment variable if set, else the built-in value."""
    option = OPTIONS[name]
    raw = os.environ.get(option.env)
    if raw is None:
        return option.default
    try:
        if option.kind is bool:
            return _parse_bool(raw)
        return option.kind(raw)
    except ValueError:
        raise InputError(f"{option.env}={raw!r} is not a valid {option.kind.__name__}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every setting as a flag whose default comes from its environment variable."""
    for name, option in OPTIONS.items():
        default = env_default(name)
        if option.kind is bool:
            parser.add_argument(option.flag, dest=name, action="store_true", default=default,
                                help=f"{option.help} [{option.env}]")
        else:
            parser.add_argument(option.flag, dest=name, type=option.kind, default=default,
                                help=f"{option.help} (default: %(default)s) [{option.env}]")


def from_args(args: argparse.Namespace) -> Settings:
    values = {f.name: getattr(args, f.name) for f in fields(Settings) if f.name != "extra" and hasattr(args, f.name)}
    return Settings(**values).validate()


def settings_table() -> str:
    """The Markdown table of every setting (flag, variable, default, meaning)."""
    rows = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS.values():
        default = option.default if option.default not in ("", None) else "(none)"
        rows.append(f"| `{option.flag}` | `{option.env}` | `{default}` | {option.help} |")
    return "\n".join(rows)
