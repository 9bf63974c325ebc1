"""Exceptions that people (not programmers) can cause.

Every error a user can trigger with bad input -- an unreadable file, an image
that is too large, an unknown stage name -- is raised as :class:`InputError`
with a one-line message meant for people.  The CLI turns it into an exit code
and the web app into a visible message, each in exactly one place.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user: the message is shown to them as it is."""


class StageUnavailable(RuntimeError):
    """A pipeline stage cannot run (missing weights, missing package, ...).

    ``reason`` is the human-readable explanation shown next to its toggle.
    """

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"stage {stage!r} is unavailable: {reason}")
        self.stage = stage
        self.reason = reason
