"""The stage registry's types and the :class:`Pipeline` that composes stages.

A frame's journey: frame stages (e.g. low-light) -> face detection ->
crop stages on each face (e.g. deblur, super-resolution).  The app, the CLI
and the API all call :meth:`Pipeline.run`; nothing else chains stages.

Stages never import each other.  Each is described by a :class:`StageSpec`
in ``pipeline/stages/__init__.py`` -- the one place where stages register.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .annotate import draw_faces
from .errors import InputError, StageUnavailable
from .io import ensure_rgb
from .types import Face, Result, StageResult, StageTarget, Toggle

ImageFn = Callable[[np.ndarray], np.ndarray]
AutoTest = Callable[[np.ndarray], tuple[bool, str]]
Detector = Callable[[np.ndarray], list[Face]]


def _always_ready() -> str | None:
    return None


@dataclass(frozen=True)
class StageSpec:
    """How the pipeline runs one enhancement stage.

    Attributes:
        name: registry key, used in ``enabled={...}`` and ``--stages``.
        label: short human name for toggles.
        target: ``"frame"`` (whole frame, before detection) or ``"crop"``
            (each face crop, after detection).
        run: the stage's pure function, ``uint8 RGB -> uint8 RGB``.
        auto_test: for ``"auto"`` mode: ``image -> (fire?, why)``.  ``None``
            means auto mode always fires.
        unavailable: ``() -> reason or None``; a reason disables the stage.
        default: the toggle used when the caller says nothing.
        description: one sentence for the UI and ``--help``.
    """

    name: str
    label: str
    target: StageTarget
    run: ImageFn | None
    auto_test: AutoTest | None = None
    unavailable: Callable[[], str | None] = _always_ready
    default: Toggle = "auto"
    description: str = ""

    def reason_unavailable(self) -> str | None:
        """Why the stage cannot run now, or ``None`` when it can."""
        if self.run is None:
            return self.unavailable() or "not built yet"
        return self.unavailable()


@dataclass(frozen=True)
class StageInfo:
    """A stage's state for status panels and the API."""

    name: str
    label: str
    target: StageTarget
    default: Toggle
    ready: bool
    reason: str
    description: str


@dataclass
class Pipeline:
    """Named, ordered, toggleable stages around one face detector.

    Args:
        stages: enhancement stages in run order (frame stages are run before
            detection, crop stages after it, each in this order).
        detector: ``rgb -> list[Face]``; defaults to BlazeFace tuned for CCTV.
        crop_margin: margin around each face box for crops, relative to the
            box size.

    Thread-safe: stages and detectors guard their own models.
    """

    stages: tuple[StageSpec, ...] = ()
    detector: Detector | None = None
    crop_margin: float = 0.25
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def default(cls, **detector_options: object) -> "Pipeline":
        """The pipeline with every registered stage and the default detector."""
        from .stages import STAGES
        from .stages.detect import FaceDetector

        return cls(stages=STAGES, detector=FaceDetector(**detector_options))

    # -- introspection ---------------------------------------------------------
    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise InputError(
            f"unknown stage {name!r}; known stages: {', '.join(self.stage_names) or 'none'}"
        )

    def describe(self) -> list[StageInfo]:
        """Every stage with whether it is ready and, if not, why."""
        infos = []
        for spec in self.stages:
            reason = spec.reason_unavailable()
            infos.append(StageInfo(spec.name, spec.label, spec.target, spec.default,
                                   reason is None, reason or "", spec.description))
        return infos

    def parse_toggles(self, enabled: Mapping[str, Toggle] | Iterable[str] | None) -> dict[str, Toggle]:
        """Normalise ``enabled`` to one toggle per stage.

        Accepts a mapping ``name -> True | False | "auto"`` (missing stages
        take their default) or an iterable of names to switch on (all others
        off).  Unknown names raise :class:`InputError`.
        """
        toggles: dict[str, Toggle] = {s.name: s.default for s in self.stages}
        if enabled is None:
            return toggles
        if isinstance(enabled, Mapping):
            for name, value in enabled.items():
                self.stage(name)
                if value not in (True, False, "auto"):
                    raise InputError(f"stage {name!r}: toggle must be true, false or 'auto', not {value!r}")
                toggles[name] = value
            return toggles
        names = list(enabled)
        for name in names:
            self.stage(name)
        return {s.name: (s.name in names) for s in self.stages}

    # -- running ---------------------------------------------------------------
    def run(self, rgb: np.ndarray, enabled: Mapping[str, Toggle] | Iterable[str] | None = None, *,
            crop_stages: bool = True) -> Result:
        """Run the pipeline on one ``H x W x 3`` uint8 RGB frame.

        Args:
            rgb: the raw frame; never modified.
            enabled: stage toggles, see :meth:`parse_toggles`.
            crop_stages: run the crop stages on every face.  The video engine
                turns this off and calls :meth:`enhance_crops` only for the
                faces it recognises.

        Returns:
            A :class:`Result` with the raw and annotated frames, the faces,
            the raw and enhanced crops, and what each stage did.

        Raises:
            InputError: bad image or unknown stage name.
            StageUnavailable: a stage switched on explicitly (``True``) cannot
                run.  A stage in ``"auto"`` mode that cannot run is skipped.
        """
        raw = ensure_rgb(rgb)
        toggles = self.parse_toggles(enabled)
        timings: dict[str, float] = {}
        results: list[StageResult] = []
        started = time.perf_counter()

        frame = raw
        for spec in self._active(toggles, "frame"):
            frame, result = self._apply(spec, [frame], toggles[spec.name])
            frame = frame[0]
            results.append(result)

        t0 = time.perf_counter()
        faces = self.detector(frame) if self.detector is not None else []
        detect_s = time.perf_counter() - t0
        results.append(StageResult("detect", "frame", True, detect_s, note=f"{len(faces)} face(s)"))

        raw_crops = [face.crop(raw, self.crop_margin) for face in faces]
        crops = [face.crop(frame, self.crop_margin) for face in faces]
        if crop_stages:
            crops, crop_results = self._enhance_crops(crops, toggles)
            results.extend(crop_results)

        for r in results:
            timings[r.name] = r.seconds
        t0 = time.perf_counter()
        annotated = draw_faces(raw, faces)
        timings["annotate"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started
        return Result(raw=raw, frame=frame, annotated=annotated, faces=faces,
                      raw_crops=raw_crops, enhanced_crops=crops, stages=results, timings=timings)

    def enhance_crops(self, crops: list[np.ndarray], enabled: Mapping[str, Toggle] | Iterable[str] | None = None
                      ) -> tuple[list[np.ndarray], list[StageResult]]:
        """Run the crop stages on face crops (each ``h x w x 3`` uint8 RGB).

        Returns the enhanced crops (the input arrays where no stage fired) and
        what each stage did.
        """
        return self._enhance_crops(list(crops), self.parse_toggles(enabled))

    def _enhance_crops(self, crops: list[np.ndarray], toggles: Mapping[str, Toggle]
                       ) -> tuple[list[np.ndarray], list[StageResult]]:
        results = []
        for spec in self._active(toggles, "crop"):
            crops, result = self._apply(spec, crops, toggles[spec.name])
            results.append(result)
        return crops, results

    def _active(self, toggles: Mapping[str, Toggle], target: StageTarget) -> list[StageSpec]:
        return [s for s in self.stages if s.target == target and toggles[s.name] is not False]

    @staticmethod
    def _apply(spec: StageSpec, images: list[np.ndarray], toggle: Toggle) -> tuple[list[np.ndarray], StageResult]:
        reason = spec.reason_unavailable()
        if reason is not None:
            if toggle is True:
                raise StageUnavailable(spec.name, reason)
            return images, StageResult(spec.name, spec.target, False, 0.0, note=f"unavailable: {reason}")
        t0 = time.perf_counter()
        out: list[np.ndarray] = []
        notes: list[str] = []
        fired = False
        for image in images:
            fire, why = (True, "on")
            if toggle == "auto" and spec.auto_test is not None:
                fire, why = spec.auto_test(image)
            notes.append(why)
            if fire:
                assert spec.run is not None
                out.append(spec.run(image))
                fired = True
            else:
                out.append(image)
        seconds = time.perf_counter() - t0
        note = notes[0] if len(set(notes)) == 1 else "; ".join(notes)
        return out, StageResult(spec.name, spec.target, fired, seconds, note=note,
                                outputs=out if fired else [])
