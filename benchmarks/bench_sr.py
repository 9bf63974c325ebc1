"""Super-resolution benchmark: protocol check, Set5/Set14 PSNR, speed, visual sheet.

    python -m benchmarks.bench_sr [--no-write] [--skip-set14]

1. **Protocol**: MATLAB-compatible bicubic (``pipeline.imaging.imresize``)
   must reproduce the published bicubic baselines (Set5 33.66 / 30.39 / 28.42,
   Set14 30.23 / 27.54 / 26.00 dB at x2/x3/x4, +-0.05).  PSNR on the
   MATLAB-rounded BT.601 luma, ``scale`` pixels shaved, greyscale images on
   their intensity (``pipeline.train.evaluate``).
2. **Quality**: the product path ``pipeline.stages.superres.super_resolve``
   (TFLite/XNNPACK on the shipped `.tflite` files; Keras fallback) for SRCNN and the fast model, next to
   the published SRCNN / FSRCNN / ESPCN numbers.
3. **Speed**: one 64 x 64 crop at x4 (256 x 256 output), median of repeated
   calls after warm-up, taking turns: the product path (TFLite/XNNPACK) and the
   replaced SRCNN 9-5-5 converted the same way; then the Keras fallback, taking
   turns on its own (TensorFlow's spinning thread pools would slow the others).
4. ``docs/sr_sheet.png``: LR (nearest), bicubic, SRCNN, fast, ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np

from benchmarks._report import ROOT, machine, require_shared, write_section
from benchmarks._timing import interleaved_median_ms
from pipeline.imaging import imresize, modcrop
from pipeline.models.srcnn import macs_per_pixel
from pipeline.stages import superres
from pipeline.train.evaluate import bicubic, evaluate_sr, load_test_image

PUBLISHED_BICUBIC = {("Set5", 2): 33.66, ("Set5", 3): 30.39, ("Set5", 4): 28.42,
                     ("Set14", 2): 30.23, ("Set14", 3): 27.54, ("Set14", 4): 26.00}
PUBLISHED = {  # claims, see notes/references.md
    "SRCNN 9-5-5 (ImageNet)": {("Set5", 2): 36.66, ("Set5", 3): 32.75, ("Set5", 4): 30.49,
                               ("Set14", 2): 32.45, ("Set14", 3): 29.30, ("Set14", 4): 27.50},
    "SRCNN 9-1-5 (T91)": {("Set5", 3): 32.39},
    "FSRCNN (T91+G100)": {("Set5", 3): 33.06},
    "ESPCN (T91)": {("Set5", 3): 32.55},
}
TARGETS = {("Set5", 3): 32.5, ("Set14", 3): 29.1}
SHEET = ROOT / "docs" / "sr_sheet.png"
SHEET_PICKS = (("Set5", "butterfly_GT", 3, (60, 60, 168)), ("Set14", "face", 3, (40, 40, 168)),
               ("Set14", "zebra", 4, (80, 120, 192)), ("Set5", "head_GT", 4, (60, 90, 160)))


def quality(sets: list[str]) -> tuple[dict, dict, dict]:
    base, ours = {}, {"srcnn": {}, "fast": {}}
    seconds = {}
    for set_name in sets:
        folder = require_shared("sr", set_name)
        for scale in (2, 3, 4):
            base[(set_name, scale)] = evaluate_sr(bicubic, folder, scale)["mean"]
            for model in ("srcnn", "fast"):
                t0 = time.perf_counter()
                ours[model][(set_name, scale)] = evaluate_sr(
                    lambda lr, s, m=model: superres.super_resolve(lr, s, m), folder, scale)["mean"]
                seconds[(model, set_name, scale)] = time.perf_counter() - t0
            print(f"{set_name} x{scale}: bicubic {base[(set_name, scale)]:.2f}  SRCNN "
                  f"{ours['srcnn'][(set_name, scale)]:.2f}  fast {ours['fast'][(set_name, scale)]:.2f}", flush=True)
    return base, ours, seconds


def _srcnn_955_tflite():
    """The previous model's architecture, SRCNN 9-5-5, as the product path runs it (for its time only).

    Its weights are not shipped any more and do not change the arithmetic, so an
    untrained 9-5-5 is converted exactly as ``pipeline.export_tflite`` converts SRCNN.
    """
    from pipeline.export_tflite import graph_to_tflite, srcnn_valid_graph
    from pipeline.models import build_srcnn
    from pipeline.tflite_runtime import TFLiteNet

    net = TFLiteNet(graph_to_tflite(srcnn_valid_graph(build_srcnn(), "srcnn_955_valid"), 1))
    return lambda lr, up: superres._srcnn_tiled_valid(net, up)


def speed() -> dict[str, float]:
    """One 64 x 64 crop at x4: the product path (TFLite/XNNPACK when available), 9-5-5 and the Keras fallback."""
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    lr, up = np.zeros((64, 64), np.float32), np.zeros((256, 256), np.float32)
    srcnn_keras, fast_keras = superres._runner("srcnn", 4, "keras"), superres._runner("fast", 4, "keras")
    srcnn_auto, fast_auto = superres._runner("srcnn", 4), superres._runner("fast", 4)
    srcnn_955 = _srcnn_955_tflite()
    out = interleaved_median_ms({
        "srcnn_x4_64": (lambda: superres.super_resolve(crop, 4, "srcnn"), 5),
        "srcnn_net_256": (lambda: srcnn_auto(lr, up), 5),
        "srcnn955_x4_64": (lambda: superres.upscale_with(srcnn_955, crop, 4), 5),
        "srcnn955_net_256": (lambda: srcnn_955(lr, up), 5),
        "fast_x4_64": (lambda: superres.super_resolve(crop, 4, "fast"), 10),
        "fast_net_64": (lambda: fast_auto(lr, up), 10),
    }, rounds=7, warmup=2)
    # The Keras fallback in a group of its own, after the rest: TensorFlow's thread pools keep
    # spinning for a while after each call and would slow whatever runs next, which the
    # product path (TFLite, no TensorFlow call in between) never sees.
    out.update(interleaved_median_ms({
        "srcnn_keras_x4_64": (lambda: superres.upscale_with(srcnn_keras, crop, 4), 3),
        "fast_keras_x4_64": (lambda: superres.upscale_with(fast_keras, crop, 4), 10),
    }, rounds=7, warmup=2))
    out["engine_srcnn"], out["engine_fast"] = superres.engine_in_use("srcnn", 4), superres.engine_in_use("fast", 4)
    return out


def exported_gmac(net, out_side: int = 256) -> float:
    """GMAC of an SRCNN as exported (``valid`` convolutions) for an ``out_side`` square output; ``None``: 9-5-5."""
    import keras

    from pipeline.export_tflite import srcnn_halo
    from pipeline.models import build_srcnn

    net = build_srcnn() if net is None else net
    side, total = out_side + 2 * srcnn_halo(net), 0
    rows = cols = side
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            rows, cols = rows - kh + 1, cols - kw + 1
            total += rows * cols * kh * kw * layer.kernel.shape[2] * layer.filters
    return total / 1e9


def srcnn_metadata() -> dict[int, dict]:
    """``weights/srcnn_x{s}.json`` per scale: architecture, training and the replaced 9-5-5's scores."""
    return {s: json.loads((ROOT / "weights" / f"srcnn_x{s}.json").read_text()) for s in (2, 3, 4)}


def sheet() -> None:
    rows = []
    for set_name, stem, scale, (y, x, size) in SHEET_PICKS:
        hr, _ = load_test_image(require_shared("sr", set_name) / f"{stem}.png")
        hr = modcrop(hr, scale)
        lr = imresize(hr, 1.0 / scale)
        ly, lx, ls = y // scale, x // scale, size // scale
        lr_crop = lr[ly:ly + ls, lx:lx + ls]
        hr_crop = hr[ly * scale:(ly + ls) * scale, lx * scale:(lx + ls) * scale]
        panels = [cv2.resize(lr_crop, (ls * scale, ls * scale), interpolation=cv2.INTER_NEAREST),
                  imresize(lr_crop, scale), superres.super_resolve(lr_crop, scale, "srcnn"),
                  superres.super_resolve(lr_crop, scale, "fast"), hr_crop]
        panels = [cv2.resize(p, (192, 192), interpolation=cv2.INTER_NEAREST) for p in panels]
        row = np.concatenate([np.pad(p, ((4, 4), (4, 4), (0, 0)), constant_values=255) for p in panels], axis=1)
        label = np.full((22, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{set_name}/{stem} x{scale}:  LR (nearest) | bicubic | SRCNN | fast | ground truth",
                    (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [label, row]
    SHEET.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(SHEET), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    parser.add_argument("--skip-set14", action="store_true", help="Set5 only (quicker)")
    args = parser.parse_args()
    sets = ["Set5"] if args.skip_set14 else ["Set5", "Set14"]
    base, ours, _seconds = quality(sets)
    load_before = os.getloadavg()[0]
    timings = speed()
    load_after = os.getloadavg()[0]
    print(timings, flush=True)
    sheet()

    meta = srcnn_metadata()
    by_arch: dict[str, list[int]] = {}
    for scale in sorted(meta):
        by_arch.setdefault(meta[scale].get("architecture", "SRCNN 9-5-5 (64-32)"), []).append(scale)
    shipped = "; ".join(f"x{','.join(map(str, scales))}: {arch}" for arch, scales in by_arch.items())
    by_machine: dict[str, list[int]] = {}
    for scale in sorted(meta):
        by_machine.setdefault(meta[scale]["machine"], []).append(scale)
    trained = "; ".join(" / ".join(f"x{s} {meta[s]['train_seconds'] / 60:.0f} min" for s in scales) + f" on {where}"
                        for where, scales in by_machine.items())
    rank4 = meta[4].get("map_rank")
    gmac_new, gmac_955 = exported_gmac(superres.build_keras_net("srcnn", 4)), exported_gmac(None)
    lines = ["Script: `benchmarks/bench_sr.py`. Command: `python -m benchmarks.bench_sr"
             + (" --skip-set14" if args.skip_set14 else "") + "`.",
             (f"Machine: {machine()} (CPU shared with other work while measured: timings are pessimistic; "
             f"1-minute load average {load_before:.1f} before and {load_after:.1f} after the speed runs, on 2 cores)."),
             (f"Weights: `weights/srcnn_x{{2,3,4}}.weights.h5` ({shipped}; trained on T91 only: {trained}) and "
             "`weights/fsrcnn_x{2,3,4}.weights.h5` (5.5 min each on one H200, `pipeline/train/run_all_gpu.sh`); "
             "settings and training-time metrics in `weights/*.json`. Evaluated here through the product path "
             f"`pipeline.super_resolve` ({timings['engine_srcnn']} engine: the `.tflite` conversions in `weights/` "
             "on LiteRT/XNNPACK)."),
             "", "### Protocol check: bicubic baseline (MATLAB-compatible `imresize`)", "",
             "| set | scale | ours | published | diff |", "|---|---|---|---|---|"]
    for key in sorted(base):
        diff = base[key] - PUBLISHED_BICUBIC[key]
        lines.append(f"| {key[0]} | x{key[1]} | {base[key]:.2f} | {PUBLISHED_BICUBIC[key]:.2f} | {diff:+.2f} |")
    lines += ["", ("Reproduced within +-0.05 dB: the protocol (Y of BT.601, shave = scale, antialiased a = -0.5 "
              "bicubic rounded per pass, grey images on intensity) is the literature's."), "",
              "### PSNR (dB, Y channel)", "",
              ("| set | scale | bicubic | **SRCNN (ours, shipped)** | SRCNN 9-5-5 (ours, replaced) | SVD init, not fine-tuned "
              "| fast FSRCNN-style (ours) | SRCNN 9-5-5 ImageNet (paper) | target |"),
              "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(base):
        set_name, scale = key
        paper = PUBLISHED["SRCNN 9-5-5 (ImageNet)"].get(key)
        target = TARGETS.get(key)
        met = "" if target is None else (f">= {target} **met**" if ours["srcnn"][key] >= target else f">= {target} missed")
        before = meta[scale].get("replaces", {}).get(f"{set_name}_psnr")
        init = meta[scale].get("svd_init_psnr", {}).get(set_name)
        lines.append(f"| {set_name} | x{scale} | {base[key]:.2f} | **{ours['srcnn'][key]:.2f}** | "
                     f"{'' if before is None else f'{before:.2f}'} | {'' if init is None else f'{init:.2f}'} | "
                     f"{ours['fast'][key]:.2f} | {paper if paper else ''} | {met} |")
    lines += ["", ("Other published Set5 x3 numbers: SRCNN 9-1-5 trained on T91 32.39, FSRCNN 33.06, ESPCN (T91) 32.55. "
              "Ours are trained on T91 alone, with the residual-over-bicubic and centred-input details from "
              "`notes/references.md` and x1..x0.6 rescaled copies of T91. The *replaced* and *SVD init* columns are "
              "the scores recorded in `weights/srcnn_x*.json` (`replaces`, `svd_init_psnr`: same protocol and product "
              "path, measured before fine-tuning; the 9-5-5 weights are in the git history, not shipped)."), "",
              f"### Speed (CPU, median ms; product path on {timings['engine_srcnn']} / {timings['engine_fast']})", "",
              "| what | ms | target |", "|---|---|---|",
              (f"| **SRCNN (shipped), 64x64 crop x4 (256x256 out), whole `super_resolve`** | "
              f"**{timings['srcnn_x4_64']:.1f}** | <= 50 |"),
              (f"| SRCNN (shipped) network only, 256x256 out (272x272 reflect-padded tile, `valid` convolutions) | "
              f"{timings['srcnn_net_256']:.1f} | |"),
              f"| SRCNN 9-5-5 (replaced), 64x64 crop x4, whole | {timings['srcnn955_x4_64']:.1f} | |",
              f"| SRCNN 9-5-5 (replaced), network only | {timings['srcnn955_net_256']:.1f} | |",
              f"| fast model, 64x64 crop x4, whole `super_resolve` | {timings['fast_x4_64']:.1f} | <= 5 |",
              f"| fast model network only, 64x64 -> 256x256 | {timings['fast_net_64']:.1f} | |",
              f"| Keras fallback (no `ai-edge-litert`): SRCNN whole, XLA | {timings['srcnn_keras_x4_64']:.1f} | |",
              f"| Keras fallback: fast model whole, `tf.function` | {timings['fast_keras_x4_64']:.1f} | |",
              "", "Rows were timed taking turns in one process, so their ratios hold even under load (the two Keras rows "
              "take turns with each other after the rest: TensorFlow's thread pools keep spinning after a call and "
              "slowed the small fast model by ~50 % when interleaved with it). The product path "
              "runs the `.tflite` conversions in `weights/` (`python -m pipeline.export_tflite`, float32, outputs equal to "
              "Keras within 1e-4) on LiteRT with XNNPACK, one thread per core; the MATLAB-compatible bicubic upscale is two "
              "small matrix products. SRCNN 9-5-5 costs 3.7 GMAC per 256x256 output "
              f"({gmac_955:.1f} GMAC as exported: `valid` convolutions on the tile plus its 8 px halo), 90 % of it in "
              "the 5x5 64->32 mapping layer, and XNNPACK already runs it near this CPU's AVX2 peak (int8 was tried: "
              "*slower*, no VNNI here), so only fewer multiply-adds could reach 50 ms. "
              + (f"The shipped SRCNN therefore factorises that layer into a 5x1 64->{rank4} and a 1x5 {rank4}->32 "
                 "convolution (spatially separable low rank, Jaderberg et al. 2014, scheme 2), initialised from the SVD "
                 "of the trained 9-5-5 kernel (`pipeline/train/lowrank.py`) and fine-tuned on T91 on this CPU "
                 "(`python -m pipeline.train srcnn --map-rank R --init <9-5-5 weights>`): still SRCNN -- extraction, "
                 "mapping, reconstruction on the bicubic luma, same 17 px receptive field -- at "
                 f"{macs_per_pixel(rank4) * 65536 / 1e9:.2f} GMAC per 256x256 output ({gmac_new:.2f} as exported), "
                 f"{macs_per_pixel(rank4) / macs_per_pixel():.0%} of 9-5-5; the exporter also writes the one-channel 9x9 "
                 "extraction as an exact 9x1 + 1x9 pair, which XNNPACK runs faster (both SRCNN rows here are converted "
                 "that way). "
                 if rank4 is not None else "")
              + f"50 ms **{'met' if timings['srcnn_x4_64'] <= 50 else 'missed'}** in this run, and the fast model's 5 ms "
              f"**{'met' if timings['fast_x4_64'] <= 5 else 'missed'}**. The pipeline uses SRCNN for stills and evidence "
              "and the fast model (`super_resolve(..., model=\"fast\")`, 65 MMAC at 64x64 x4) for live video.", "",
              "![SR sheet](docs/sr_sheet.png)", "",
              "Sheet: LR input (nearest-neighbour), MATLAB bicubic, SRCNN, fast model, ground truth."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("superres", markdown)


if __name__ == "__main__":
    main()
