"""Fast deblurring training on a GPU: PyTorch twin of the generator, pairs made on the device.

``python -m pipeline.train deblur-gpu [options]`` (see ``--help``).  The
Keras path (``python -m pipeline.train deblur``) was data-bound on a GPU
box (~6 steps/s: blur, noise and JPEG synthesised by CPU threads); here
:class:`pipeline.train.gpu_blur.GPUBlurPairs` makes every batch on the
device and :class:`pipeline.train.torch_fpn.FPNMobileNet` (the same network
as :func:`pipeline.models.build_fpn_mobilenet`, layer for layer) trains in
plain PyTorch with bf16 autocast and ``channels_last``.

Writes, into ``--out``:

* ``<name>.keras.npz`` -- the weights in Keras layout (``<layer>::<i>``),
  the settings, and a reference input/output pair computed by this twin in
  float32 so the import can prove the Keras model computes the same thing
  (``python -m pipeline.train deblur-import``); rewritten atomically at
  every checkpoint, so a run cut short still leaves usable weights;
* ``<name>.gpu.json`` -- settings, steps, losses, held-out scores (when
  ``--eval`` names a file made by ``deblur-data``) and device timings.

Checkpoints (model, optimizer, step, elapsed time) go to ``--work``;
``--resume`` continues the schedule from there.  Needs ``torch``; runs on
the CPU too (slowly), which is what the smoke test does.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np


def _log(name: str, text: str) -> None:
    print(f"[{name}] {text}", flush=True, file=sys.stdout)


def make_psf_bank(count: int, seed: int, workers: int = 1) -> np.ndarray:
    """``(count, 31, 31)`` float32 camera-shake PSFs, PSF ``i`` from ``default_rng([seed, 31, i])``."""
    from .blur import random_psf

    if workers > 1 and count > 64:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            return np.stack(list(pool.map(_psf_at, [(seed, i) for i in range(count)], chunksize=64)))
    return np.stack([random_psf(np.random.default_rng([seed, 31, i])) for i in range(count)])


def _psf_at(args: tuple[int, int]) -> np.ndarray:
    from .blur import random_psf

    seed, i = args
    return random_psf(np.random.default_rng([seed, 31, i]))


def _deblur_loss(pred, target):
    """L1 on pixels plus 0.5 x L1 on horizontal/vertical differences (as the Keras path)."""
    l1 = (pred - target).abs().mean()
    dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return l1 + 0.5 * (dx.abs().mean() + dy.abs().mean())


def _restore_fn(model, device):
    """``uint8 RGB -> uint8 RGB`` with the twin in eval mode, padded like the pipeline stage."""
    import torch

    def restore(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        ph, pw = (-h) % 32, (-w) % 32
        x = np.pad(rgb.astype(np.float32) / 127.5 - 1.0, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
        with torch.no_grad():
            t = torch.from_numpy(x).permute(2, 0, 1)[None].to(device).contiguous(memory_format=torch.channels_last)
            y = model(t)[0].permute(1, 2, 0).float().cpu().numpy()[:h, :w]
        return np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return restore


def evaluate(model, device, eval_file: Path) -> dict[str, Any]:
    """Held-out scores on the pairs of ``deblur-data``'s ``eval.npz`` (see :func:`load_eval`)."""
    from ..imaging import psnr, ssim
    from .deblur_data import load_eval
    from .evaluate import evaluate_deblur

    sets = load_eval(eval_file)
    restore = _restore_fn(model, device)
    results: dict[str, Any] = {}
    for tag in ("eval512", "eval128"):
        results[tag] = {k: round(v, 4) for k, v in evaluate_deblur(restore, sets[tag]).items()}
    if sets["real"] is not None:
        blurred, sharp = sets["real"]
        restored = restore(blurred)
        results["real_pair"] = {"blurred_psnr": round(psnr(sharp, blurred), 3),
                                "blurred_ssim": round(ssim(sharp, blurred), 4),
                                "restored_psnr": round(psnr(sharp, restored), 3),
                                "restored_ssim": round(ssim(sharp, restored), 4)}
    return results


def time_generator(model, device, repeats: int = 50) -> dict[str, float]:
    """Median ms of the generator alone (no host transfers) at 1x128^2, 8x128^2 and 1x640x480, fp32 and bf16."""
    import torch

    out: dict[str, float] = {}
    if device.type != "cuda":
        return out
    for label, shape in (("crop128", (1, 3, 128, 128)), ("batch8_crop128", (8, 3, 128, 128)),
                         ("frame640x480", (1, 3, 480, 640))):
        x = (torch.rand(shape, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)
        for precision in ("fp32", "bf16"):
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                for _ in range(10):
                    model(x)
                torch.cuda.synchronize()
                times = []
                for _ in range(repeats):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    model(x)
                    end.record()
                    torch.cuda.synchronize()
                    times.append(start.elapsed_time(end))
            out[f"{label}_{precision}_ms"] = round(statistics.median(times), 3)
    return out


def _profile_step(model, optimizer, pairs, args, device, repeats: int = 10) -> dict[str, float]:
    """Milliseconds per batch of pair synthesis alone and per training step alone (synchronised).

    The timed steps do train (they are ordinary steps at the current learning rate).
    """
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        batches = [pairs.batch(args.batch) for _ in range(repeats)]
    sync()
    t1 = time.perf_counter()
    for blurred, sharp in batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not args.fp32):
            pred = model(blurred.contiguous(memory_format=torch.channels_last))
        loss = _deblur_loss(pred.float(), sharp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync()
    t2 = time.perf_counter()
    return {"synthesis_ms_per_batch": round(1000 * (t1 - t0) / repeats, 2),
            "train_ms_per_step": round(1000 * (t2 - t1) / repeats, 2)}


def export(model, path: Path, settings: dict[str, Any]) -> None:
    """Write the Keras-layout weights + a float32 reference pair to ``path`` atomically."""
    import torch

    from .torch_fpn import flatten_weights, keras_weights

    was_training = model.training
    model.eval()
    rng = np.random.default_rng(7)
    ref_in = rng.uniform(-1, 1, (2, 64, 96, 3)).astype(np.float32)
    device = next(model.parameters()).device
    with torch.no_grad():
        ref_out = model(torch.from_numpy(ref_in).permute(0, 3, 1, 2).to(device)).permute(0, 2, 3, 1).float().cpu()
    model.train(was_training)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **flatten_weights(keras_weights(model)), ref_input=ref_in, ref_output=ref_out.numpy(),
             settings=np.array(json.dumps(settings)))
    os.replace(tmp, path)


def run(args) -> dict[str, Any]:
    """Train, export, evaluate and time; see the module docstring."""
    import torch

    from .deblur_data import training_images
    from .gpu_blur import GPUBlurPairs
    from .loop import cosine_lr
    from .torch_fpn import FPNMobileNet, load_keras_weights, unflatten_weights

    name = args.name or "deblurgan_v2_fpn_mobilenet"
    t0 = time.monotonic()
    # PSFs first, in worker processes forked before CUDA is initialised.
    bank = make_psf_bank(args.psf_bank, args.seed, workers=max(1, (os.cpu_count() or 1) - 1))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    images, sources = training_images(args.data)
    pairs = GPUBlurPairs(images, bank, patch=args.patch, device=device, seed=args.seed)
    _log(name, f"{len(images)} sharp images ({sources}), {len(pairs.crops.levels)} pyramid levels, "
               f"{len(bank)} PSFs x 8 orientations, device {device}; data ready in {time.monotonic() - t0:.1f} s")

    model = FPNMobileNet(args.fpn_filters, args.head_filters).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt = args.work / f"{name}.ckpt.pt"
    step, spent, history = 0, 0.0, []
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, spent, history = int(state["step"]), float(state["seconds"]), state.get("history", [])
        pairs.generator.manual_seed(args.seed + step)
        _log(name, f"resumed at step {step}, {spent:.0f} s")
    elif args.init:
        load_keras_weights(model, unflatten_weights(dict(np.load(args.init))))
        _log(name, f"initialised from {args.init}")
    settings = {"name": name, "fpn_filters": args.fpn_filters, "head_filters": args.head_filters,
                "patch": args.patch, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                "psf_bank": args.psf_bank, "bf16": not args.fp32, "init": str(args.init) if args.init else None,
                "loss": "L1 + 0.5 * L1 of image gradients (no adversarial term)",
                "train_data": sources, "device": torch.cuda.get_device_name(device) if device.type == "cuda"
                else platform.processor() or "cpu", "torch": torch.__version__}
    npz_path = args.out / f"{name}.keras.npz"

    def save() -> None:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "seconds": spent, "history": history}, ckpt)
        export(model, npz_path, {**settings, "steps": step, "train_seconds": round(spent, 1)})

    model.train()
    losses: deque[float] = deque(maxlen=100)
    pending: list[Any] = []
    profile: dict[str, float] = {}
    started = time.monotonic() - spent
    last_log = last_ckpt = time.monotonic()
    while True:
        spent = time.monotonic() - started
        fraction = spent / args.seconds if args.seconds is not None else step / args.steps
        if fraction >= 1.0:
            break
        rate = cosine_lr(args.lr, fraction)
        for group in optimizer.param_groups:
            group["lr"] = rate
        with torch.no_grad():
            blurred, sharp = pairs.batch(args.batch)
        blurred = blurred.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not args.fp32):
            pred = model(blurred)
        loss = _deblur_loss(pred.float(), sharp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        pending.append(loss.detach())
        step += 1
        now = time.monotonic()
        if now - last_log >= args.log_every:
            losses.extend(float(v) for v in torch.stack(pending).cpu())  # one device sync per log line
            pending.clear()
            mean = sum(losses) / len(losses)
            history.append((step, round(spent, 1), round(mean, 6)))
            bar = "#" * int(20 * fraction) + "." * (20 - int(20 * fraction))
            elapsed = max(now - started, 1e-9)
            _log(name, f"[{bar}] {100 * fraction:5.1f}% step {step} loss {mean:.5f} lr {rate:.2e} "
                       f"{step / elapsed:.1f} steps/s ({args.batch * step / elapsed:.0f} crops/s)")
            last_log = now
        if now - last_ckpt >= args.checkpoint_every:
            save()
            last_ckpt = now
        if step == 50 and "synthesis_ms_per_batch" not in profile:
            profile.update(_profile_step(model, optimizer, pairs, args, device))
            step += 10  # the profiled steps trained too
            _log(name, f"profile: {profile}")
    if pending:
        losses.extend(float(v) for v in torch.stack(pending).cpu())
    spent = time.monotonic() - started
    save()
    metrics: dict[str, Any] = {**settings, "steps": step, "train_seconds": round(spent, 1),
                               "final_loss": round(sum(losses) / max(len(losses), 1), 6),
                               "loss_history": history[-40:], "profile": profile}
    model.eval()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False  # every held-out image has its own shape
    if args.eval and Path(args.eval).exists():
        t1 = time.monotonic()
        metrics["heldout_gpu"] = evaluate(model, device, Path(args.eval))
        _log(name, f"held-out ({time.monotonic() - t1:.1f} s): {json.dumps(metrics['heldout_gpu'])}")
    metrics["gpu_timing"] = time_generator(model, device)
    if metrics["gpu_timing"]:
        _log(name, f"GPU timing: {metrics['gpu_timing']}")
    (args.out / f"{name}.gpu.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def add_arguments(p) -> None:
    """Options of ``python -m pipeline.train deblur-gpu``."""
    root = Path(__file__).resolve().parents[2]
    p.add_argument("--data", type=Path, default=root.parent / "shared" / "datasets",
                   help="datasets root, or a folder made by `deblur-data` (with sharp/)")
    p.add_argument("--out", type=Path, default=root / ".cache" / "train" / "out")
    p.add_argument("--work", type=Path, default=root / ".cache" / "train")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--seconds", type=float, help="wall-clock training budget")
    budget.add_argument("--steps", type=int, help="step budget")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--fpn-filters", type=int, default=64)
    p.add_argument("--head-filters", type=int, default=32)
    p.add_argument("--psf-bank", type=int, default=6000, help="number of pre-made blur kernels")
    p.add_argument("--init", type=Path, default=None, help="start from Keras-layout weights (.keras.npz)")
    p.add_argument("--eval", type=Path, default=None, help="held-out pairs made by `deblur-data` (eval.npz)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--checkpoint-every", type=float, default=60.0, help="seconds")
    p.add_argument("--log-every", type=float, default=10.0, help="seconds")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--name", default=None)
