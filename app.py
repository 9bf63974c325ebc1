"""Gradio web app for the open CCTV face pipeline.

UI only: layout and event wiring.  All image work happens in ``pipeline``;
model resolution in ``hub_utils``.  User errors from the library become a
visible message here (``_user_errors``) and never a traceback.

Run ``python app.py --help`` for options.
"""

from __future__ import annotations

import os

# No phoning home: the app must start and run with no network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import functools
from pathlib import Path
from typing import Any

import gradio as gr

import pipeline
from pipeline import InputError, Pipeline, StageUnavailable
from pipeline.stages.detect import DEFAULT_SCORE_THRESHOLD, METHODS

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
TOGGLE_CHOICES = ["off", "auto", "on"]

PIPELINE = Pipeline.default()


def _user_errors(fn):
    """Turn errors people can cause into a message in the UI (the one place)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except StageUnavailable as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapper


def _file_path(file: Any) -> str:
    if file is None:
        raise InputError("no image given: upload an image file first")
    return file if isinstance(file, str) else getattr(file, "name", str(file))


@_user_errors
def detect(image: str, method: str = "blazeface", threshold: float = DEFAULT_SCORE_THRESHOLD,
           min_face: float = 24) -> tuple[Any, dict]:
    """Find faces in an image file. Returns the annotated image and the faces as JSON."""
    rgb = pipeline.load_image(_file_path(image))
    detector = pipeline.FaceDetector(method, score_threshold=threshold, min_face_px=min_face)
    faces = detector(rgb)
    annotated = pipeline.annotate.draw_faces(rgb, faces)
    return annotated, {"width": rgb.shape[1], "height": rgb.shape[0], "faces": [f.to_dict() for f in faces]}


def _toggles(values: list[str]) -> dict[str, Any]:
    mapping = {"off": False, "auto": "auto", "on": True}
    return {info.name: mapping[v] for info, v in zip(PIPELINE.describe(), values)}


@_user_errors
def analyse(image: str, method: str, threshold: float, min_face: float, *toggle_values: str):
    """Run the whole pipeline (stages as toggled) and lay out the evidence."""
    rgb = pipeline.load_image(_file_path(image))
    run = Pipeline(stages=PIPELINE.stages,
                   detector=pipeline.FaceDetector(method, score_threshold=threshold, min_face_px=min_face))
    result = run.run(rgb, enabled=_toggles(list(toggle_values)))
    raw_gallery = [(crop, f"face {i + 1} · raw · score {f.score:.2f}")
                   for i, (crop, f) in enumerate(zip(result.raw_crops, result.faces))]
    enhanced_fired = any(s.fired for s in result.stages if s.target == "crop")
    enhanced_gallery = ([(crop, f"face {i + 1} · AI-enhanced") for i, crop in enumerate(result.enhanced_crops)]
                        if enhanced_fired else [])
    frame_fired = any(s.fired for s in result.stages if s.target == "frame")
    enhanced_frame = gr.update(value=result.frame if frame_fired else None, visible=frame_fired)
    lines = ["| stage | ran | time | note |", "|---|---|---|---|"]
    for s in result.stages:
        lines.append(f"| {s.name} | {'yes' if s.fired else 'no'} | {s.seconds * 1000:.0f} ms | {s.note} |")
    summary = f"**{len(result.faces)} face(s)** in {result.timings['total'] * 1000:.0f} ms\n\n" + "\n".join(lines)
    return result.annotated, enhanced_frame, raw_gallery, enhanced_gallery, summary, result.to_dict()


def stage_status() -> list[dict]:
    """Every pipeline stage with whether it is ready and, if not, why."""
    return [info.__dict__ for info in PIPELINE.describe()]


def _status_markdown() -> str:
    lines = ["| stage | applies to | state |", "|---|---|---|"]
    for info in PIPELINE.describe():
        state = "ready" if info.ready else f"unavailable: {info.reason}"
        lines.append(f"| {info.label} | {info.target} | {state} |")
    return "\n".join(lines)


def build_app() -> gr.Blocks:
    """The Blocks app; importable by tests without launching a server."""
    with gr.Blocks(title="Open CCTV face pipeline") as demo:
        gr.Markdown("# Open CCTV face pipeline\nFind faces in CCTV footage and photos. "
                    "The raw frame is always shown first; enhanced images are labelled **AI-enhanced**.")
        with gr.Tab("Image"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = gr.File(label="Image file", file_types=["image"], type="filepath")
                    if EXAMPLES:
                        gr.Examples(EXAMPLES, inputs=[image_in], label="Examples")
                    toggles = []
                    with gr.Group():
                        gr.Markdown("**Enhancement stages**")
                        for info in PIPELINE.describe():
                            toggles.append(gr.Radio(
                                TOGGLE_CHOICES, value="auto" if info.ready else "off",
                                label=info.label,
                                info=info.description if info.ready else f"Unavailable: {info.reason}",
                                interactive=info.ready))
                    with gr.Accordion("Detector", open=False):
                        method = gr.Dropdown(list(METHODS), value="blazeface", label="Method")
                        threshold = gr.Slider(0.05, 0.95, value=DEFAULT_SCORE_THRESHOLD, step=0.05,
                                              label="Score threshold")
                        min_face = gr.Slider(8, 200, value=24, step=1, label="Smallest face (px)")
                    run_btn = gr.Button("Find faces", variant="primary")
                with gr.Column(scale=2):
                    annotated = gr.Image(label="Raw frame with detections", type="numpy", format="png")
                    enhanced_frame = gr.Image(label="AI-enhanced frame (what the detector saw)",
                                              type="numpy", format="png", visible=False)
                    raw_crops = gr.Gallery(label="Face crops (raw)", columns=6, height="auto")
                    enhanced_crops = gr.Gallery(label="Face crops (AI-enhanced, for investigative lead only)",
                                                columns=6, height="auto")
                    summary = gr.Markdown()
                    faces_json = gr.JSON(label="Result (JSON)")
            run_btn.click(analyse, [image_in, method, threshold, min_face, *toggles],
                          [annotated, enhanced_frame, raw_crops, enhanced_crops, summary, faces_json],
                          api_name="analyse")
        with gr.Tab("Stages & models"):
            gr.Markdown(_status_markdown())
            status_json = gr.JSON(label="Stage status")
            gr.Button("Refresh").click(stage_status, None, status_json, api_name="stages")

        # API-only endpoint: an image file in, faces out (options have defaults).
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath")
            api_method = gr.Dropdown(list(METHODS), value="blazeface")
            api_threshold = gr.Number(value=DEFAULT_SCORE_THRESHOLD)
            api_min_face = gr.Number(value=24)
            api_annotated = gr.Image(type="numpy", format="png")
            api_faces = gr.JSON()
        gr.Button(visible=False).click(detect, [api_image, api_method, api_threshold, api_min_face],
                                       [api_annotated, api_faces], api_name="detect")
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Open CCTV face pipeline web app")
    parser.add_argument("--host", default=os.environ.get("CCTV_HOST", "127.0.0.1"),
                        help="address to listen on (default: %(default)s; 0.0.0.0 for all interfaces)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CCTV_PORT", "7860")),
                        help="port (default: %(default)s)")
    parser.add_argument("--share", action="store_true",
                        help="create a public gradio.live link (needs internet)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    demo = build_app()
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=True)


if __name__ == "__main__":
    main()
