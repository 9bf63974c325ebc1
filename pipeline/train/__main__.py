"""Command line: ``python -m pipeline.train {srcnn,fsrcnn,deblur,deblur-gpu,deblur-data,deblur-import} [options]``.

See :mod:`pipeline.train` for what every run writes.  Data defaults to
``../shared/datasets`` (T91 for SR, Set5/Set14 for its evaluation; face photos
and T91 for deblurring, with a held-out split of the faces plus Set5/Set14).
``deblur-gpu`` trains the same generator with PyTorch and blur made on the
GPU (:mod:`pipeline.train.torch_deblur`), ``deblur-data`` packs its data for
a device run, ``deblur-import`` turns its output into the Keras weights file.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="model", required=True)
    for name, help_text in (("srcnn", "SRCNN on luma (9-5-5 or separable mapping), one model per scale"),
                            ("fsrcnn", "fast FSRCNN-style model in LR space"),
                            ("deblur", "DeblurGAN-v2 FPN-MobileNet generator")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets",
                       help="datasets root (with sr/T91, sr/Set5, sr/Set14, faces/...)")
        p.add_argument("--out", type=Path, default=ROOT / "weights", help="where weights + metrics go")
        p.add_argument("--work", type=Path, default=ROOT / ".cache" / "train", help="checkpoints")
        budget = p.add_mutually_exclusive_group()
        budget.add_argument("--seconds", type=float, help="wall-clock training budget")
        budget.add_argument("--steps", type=int, help="step budget (deterministic schedule)")
        p.add_argument("--batch", type=int, default=None)
        p.add_argument("--lr", type=float, default=None)
        p.add_argument("--seed", type=int, default=1234)
        p.add_argument("--threads", type=int, default=1,
                       help="data-producing threads (1: bit-exact batch order for a seed; more: faster)")
        p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --work")
        p.add_argument("--checkpoint-every", type=float, default=60.0, help="seconds")
        p.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
        p.add_argument("--name", default=None, help="output name (default from model and scale)")
        if name != "deblur":
            p.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
        if name == "srcnn":
            p.add_argument("--map-rank", type=int, default=None,
                           help="separable mapping layer (5x1 64->R, 1x5 R->32) instead of the 5x5 one")
            p.add_argument("--init", type=Path, default=None,
                           help="start from these 9-5-5 weights (.weights.h5): copied, or SVD-factorised "
                                "with --map-rank (pipeline.train.lowrank)")
        else:
            p.add_argument("--patch", type=int, default=128, help="training crop side (multiple of 32)")
            p.add_argument("--fpn-filters", type=int, default=64)
            p.add_argument("--head-filters", type=int, default=32)
            p.add_argument("--psf-bank", type=int, default=4000, help="number of pre-made blur kernels")
    from .torch_deblur import add_arguments

    add_arguments(sub.add_parser("deblur-gpu", help="the deblurring generator in PyTorch, pairs made on the GPU"))
    p = sub.add_parser("deblur-data", help="pack training images + held-out pairs for a device run")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets")
    p.add_argument("--out", type=Path, default=ROOT / ".traindata" / "deblur")
    p.add_argument("--init-from", type=Path, default=None, help="Keras .weights.h5 to continue from")
    p = sub.add_parser("deblur-import", help="PyTorch-twin weights (.keras.npz) -> Keras .weights.h5 + JSON")
    p.add_argument("npz", type=Path)
    p.add_argument("--gpu-json", type=Path, default=None, help="the run's <name>.gpu.json")
    p.add_argument("--out", type=Path, default=ROOT / "weights")
    p.add_argument("--command", default=None, help="training command to record")
    return parser


def _compile(model, lr: float, loss, jit: bool = True) -> None:
    import keras

    # XLA speeds the small SR networks up ~2.5x on CPU; for the deblurring
    # generator its compile time (minutes on CPU) outweighs the gain.
    jit = jit and keras.backend.backend() in ("tensorflow", "jax")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, jit_compile=jit)


def _deblur_loss(y_true, y_pred):
    """L1 on pixels plus L1 on horizontal/vertical differences (edges are what blur destroys)."""
    from keras import ops

    l1 = ops.mean(ops.abs(y_true - y_pred))
    dx = (y_true[:, :, 1:] - y_true[:, :, :-1]) - (y_pred[:, :, 1:] - y_pred[:, :, :-1])
    dy = (y_true[:, 1:] - y_true[:, :-1]) - (y_pred[:, 1:] - y_pred[:, :-1])
    return l1 + 0.5 * (ops.mean(ops.abs(dx)) + ops.mean(ops.abs(dy)))


def _luma_fn(model, kind: str):
    import numpy as np
    from keras import ops

    def run(lr, up):
        if kind == "srcnn":
            y = model(up[None, :, :, None], training=False)
        else:
            y = model([lr[None, :, :, None], up[None, :, :, None]], training=False)
        return np.asarray(ops.convert_to_numpy(y))[0, :, :, 0]
    return run


def run_sr(args) -> dict:
    import keras

    from ..files import sha256_file
    from ..models import build_fsrcnn, build_srcnn
    from ..stages.superres import upscale_with
    from .data import Prefetcher, SRPatches, list_images
    from .evaluate import bicubic, evaluate_sr
    from .loop import train, write_metrics
    from .lowrank import separable_from_955

    keras.utils.set_random_seed(args.seed)
    kind, scale = args.model, args.scale
    name = args.name or f"{kind}_x{scale}"
    batch = args.batch or (64 if kind == "srcnn" else 128)
    lr = args.lr or 1e-3
    files = list_images([args.data / "sr" / "T91"])
    patches = SRPatches(files, scale, hr_patch=48)
    print(f"[{name}] {len(files)} images -> {len(patches.items)} with scale augmentation; "
          f"backend {keras.backend.backend()}", flush=True)
    map_rank = getattr(args, "map_rank", None)
    init = getattr(args, "init", None)
    if kind != "srcnn":
        model = build_fsrcnn(scale)
    elif init is not None and map_rank is not None:
        model = separable_from_955(init, map_rank)
    else:
        model = build_srcnn(map_rank=map_rank)
        if init is not None:
            model.load_weights(str(init))
    _compile(model, lr, "mse")

    def make(rng):
        lr_b, up_b, hr_b = patches.batch(rng, batch)
        return (up_b if kind == "srcnn" else (lr_b, up_b)), hr_b

    feeder = Prefetcher(make, args.seed, threads=args.threads)
    try:
        seconds = args.seconds if args.steps is None and args.seconds is not None else None
        steps = args.steps if seconds is None else None
        if seconds is None and steps is None:
            seconds = 2400.0
        result = train(model, feeder.get, name=name, out=args.out, work=args.work, seconds=seconds,
                       steps=steps, lr=lr, resume=args.resume, checkpoint_every=args.checkpoint_every)
    finally:
        feeder.close()
    metrics = {**result, "model": kind, "scale": scale, "batch": batch, "lr": lr, "seed": args.seed,
               "hr_patch": 48, "backend": keras.backend.backend(), "machine": platform.node(),
               "train_data": "T91 (91 images, x1/0.9/0.8/0.7/0.6 rescaled), MATLAB-bicubic LR"}
    if kind == "srcnn":
        from ..models.srcnn import macs_per_pixel

        metrics["map_rank"] = map_rank
        metrics["architecture"] = ("SRCNN 9-5-5 (64-32)" if map_rank is None else
                                   f"SRCNN 9-(5x1,1x5)-5, separable mapping of rank {map_rank} (64-{map_rank}-32)")
        metrics["macs_per_output_pixel"] = macs_per_pixel(map_rank)
        if init is not None:
            metrics["init_from"] = {"file": Path(init).name, "sha256": sha256_file(init),
                                    "how": "copied" if map_rank is None else
                                    "SVD of the 5x5 mapping kernel (Jaderberg et al. 2014, scheme 2)"}
    if not args.no_eval:
        luma = _luma_fn(model, kind)
        for set_name in ("Set5", "Set14"):
            folder = args.data / "sr" / set_name
            if folder.is_dir():
                t0 = time.perf_counter()
                ours = evaluate_sr(lambda lr_rgb, s: upscale_with(luma, lr_rgb, s), folder, scale)
                base = evaluate_sr(bicubic, folder, scale)
                metrics[f"{set_name}_psnr"] = round(ours["mean"], 3)
                metrics[f"{set_name}_bicubic_psnr"] = round(base["mean"], 3)
                print(f"[{name}] {set_name} x{scale}: {ours['mean']:.2f} dB (bicubic {base['mean']:.2f}) "
                      f"[{time.perf_counter() - t0:.1f} s]", flush=True)
    write_metrics(args.out, name, metrics)
    return metrics


def run_deblur(args) -> dict:
    import keras
    import numpy as np

    from ..models import build_fpn_mobilenet
    from .data import BlurPairs, Prefetcher, list_images, load_sharp_images
    from .evaluate import deblur_split, evaluate_deblur, synthetic_blur_set
    from .loop import train, write_metrics

    keras.utils.set_random_seed(args.seed)
    name = args.name or "deblurgan_v2_fpn_mobilenet"
    batch = args.batch or 16
    lr = args.lr or 5e-4
    face_files = list_images([args.data / "faces" / "deepface", args.data / "faces" / "facenet_pytorch"])
    train_faces, held_faces = deblur_split(face_files)
    scene_files = list_images([args.data / "sr" / "T91"])
    images = load_sharp_images(train_faces + scene_files)
    print(f"[{name}] {len(images)} sharp training images ({len(train_faces)} faces, {len(scene_files)} scenes); "
          f"backend {keras.backend.backend()}", flush=True)
    model = build_fpn_mobilenet(args.fpn_filters, args.head_filters)
    _compile(model, lr, _deblur_loss, jit=False)
    pairs = BlurPairs(images, patch=args.patch, seed=args.seed, bank_size=args.psf_bank)
    feeder = Prefetcher(lambda rng: pairs.batch(rng, batch), args.seed, threads=args.threads)
    try:
        seconds = args.seconds if args.steps is None else None
        if seconds is None and args.steps is None:
            seconds = 3600.0
        result = train(model, feeder.get, name=name, out=args.out, work=args.work, seconds=seconds,
                       steps=args.steps, lr=lr, resume=args.resume, checkpoint_every=args.checkpoint_every)
    finally:
        feeder.close()
    metrics = {**result, "batch": batch, "lr": lr, "seed": args.seed, "patch": args.patch,
               "fpn_filters": args.fpn_filters, "head_filters": args.head_filters,
               "backend": keras.backend.backend(), "machine": platform.node(),
               "loss": "L1 + 0.5 * L1 of image gradients (no adversarial term)",
               "train_data": f"{len(train_faces)} face photos + T91, camera-shake blur + noise + JPEG"}
    if not args.no_eval:
        from keras import ops
        held = load_sharp_images(held_faces + list_images([args.data / "sr" / "Set14"]), max_side=512)
        eval_pairs = synthetic_blur_set(held)

        def restore(rgb):
            x = rgb.astype(np.float32)[None] / 127.5 - 1.0
            y = np.asarray(ops.convert_to_numpy(model(x, training=False)))[0]
            return np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8)

        scores = evaluate_deblur(restore, eval_pairs)
        metrics.update({f"heldout_{k}": round(v, 4) for k, v in scores.items()})
        print(f"[{name}] held-out: blurred {scores['blurred_psnr']:.2f} dB / {scores['blurred_ssim']:.3f} -> "
              f"{scores['restored_psnr']:.2f} dB / {scores['restored_ssim']:.3f}", flush=True)
    write_metrics(args.out, name, metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if args.model == "deblur-gpu":
        from .torch_deblur import run

        run(args)
    elif args.model == "deblur-data":
        from .deblur_data import pack

        print(pack(args.data, args.out, args.init_from), flush=True)
    elif args.model == "deblur-import":
        from .import_weights import import_npz

        metrics = import_npz(args.npz, args.out, args.gpu_json, args.command)
        print(f"wrote {metrics['weights']} ({metrics['bytes']} bytes, sha256 {metrics['sha256']}); "
              f"Keras vs twin max diff {metrics['twin_max_abs_diff']:.1e}", flush=True)
    elif args.model == "deblur":
        run_deblur(args)
    else:
        run_sr(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
