"""Resolve models in a background thread so the app is usable at once.

The app calls :func:`start_background_resolution` at start-up, then polls
``resolver.snapshot()`` (or gets ``on_progress`` callbacks) to show each
stage's state: ready / downloading n% / unavailable: reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from .errors import HubUtilsError
from .manifest import load_manifest
from .resolve import ModelStatus, add_listener, mark_background_started, resolve, snapshot_states


class BackgroundResolver:
    """One daemon thread resolving models one after another (downloads are not parallel on purpose:
    the machine is small and the Hub probe is shared).

    Use :meth:`snapshot` for the current state of each model, :meth:`wait` to
    block until all are done (tests, CLI).
    """

    def __init__(self, names: Iterable[str] | None = None,
                 on_progress: Callable[[ModelStatus], None] | None = None) -> None:
        manifest = load_manifest()
        self.names: list[str] = list(names) if names is not None else manifest.names
        self._on_progress = on_progress
        self._done = threading.Event()
        self._remove_listener: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="hub_utils-resolver", daemon=True)

    def start(self) -> BackgroundResolver:
        if self._on_progress is not None:
            wanted = set(self.names)
            callback = self._on_progress
            self._remove_listener = add_listener(lambda s: callback(s) if s.name in wanted else None)
        mark_background_started()  # from now on stage toggles never block the UI
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for name in self.names:
                try:
                    resolve(name)
                except HubUtilsError:
                    pass  # the failure is in the state table, with its reason
                except Exception as exc:  # never let one model kill the thread
                    from .resolve import _publish_state

                    _publish_state(ModelStatus(name=name, state="unavailable",
                                               reason=f"unexpected error: {type(exc).__name__}: {exc}"))
        finally:
            if self._remove_listener is not None:
                self._remove_listener()
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every model is resolved (or failed); ``False`` on timeout."""
        return self._done.wait(timeout)

    def snapshot(self) -> dict[str, ModelStatus]:
        """name -> current :class:`ModelStatus` for this resolver's models (``pending`` if not reached yet)."""
        states = snapshot_states()
        return {name: states.get(name, ModelStatus(name=name)) for name in self.names}


def start_background_resolution(names: Iterable[str] | None = None,
                                on_progress: Callable[[ModelStatus], None] | None = None) -> BackgroundResolver:
    """Start resolving ``names`` (default: every model) in a daemon thread and return at once.

    ``on_progress(ModelStatus)`` is called from that thread on each change
    (resolving, downloading n%, ready, unavailable); keep it quick.
    """
    return BackgroundResolver(names, on_progress).start()


__all__ = ["BackgroundResolver", "start_background_resolution"]
