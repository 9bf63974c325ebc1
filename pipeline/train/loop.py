"""A small, backend-agnostic training loop: time or step budget, cosine LR, checkpoints, resume.

``model.train_on_batch`` compiles one training step per backend (XLA on
TensorFlow), so the same loop runs with ``KERAS_BACKEND=tensorflow`` on a
laptop and ``KERAS_BACKEND=torch`` on a GPU box.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import sha256_file


def cosine_lr(base: float, fraction: float, floor: float = 0.01, warmup: float = 0.02) -> float:
    """Learning rate at ``fraction`` (0..1) of training: short linear warm-up, then cosine to ``floor*base``."""
    if fraction < warmup:
        return base * max(fraction / warmup, 0.05)
    t = (fraction - warmup) / (1 - warmup)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def train(model: Any, next_batch: Callable[[], tuple[Any, Any]], *, name: str, out: Path, work: Path,
          seconds: float | None, steps: int | None, lr: float, resume: bool = False,
          checkpoint_every: float = 60.0, log_every: float = 10.0) -> dict[str, Any]:
    """Train a compiled Keras ``model`` until the time or step budget is spent.

    The learning-rate schedule follows the fraction of the budget spent, so a
    run stopped and resumed (``resume=True``) continues where it was.  The
    optimizer's moments are not checkpointed; a resumed run warms up again.

    Returns:
        A dict with steps, seconds, final loss and the weights' path.
    """
    if (seconds is None) == (steps is None):
        raise ValueError("give exactly one of seconds and steps")
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, state_path = work / f"{name}.ckpt.weights.h5", work / f"{name}.state.json"
    step, spent = 0, 0.0
    if resume and state_path.exists() and ckpt.exists():
        model.load_weights(str(ckpt))
        state = json.loads(state_path.read_text())
        step, spent = int(state["step"]), float(state["seconds"])
        print(f"[{name}] resumed at step {step}, {spent:.0f} s", flush=True)

    def save_checkpoint() -> None:
        model.save_weights(str(ckpt))
        state_path.write_text(json.dumps({"step": step, "seconds": spent}))

    losses: deque[float] = deque(maxlen=200)
    started = time.monotonic() - spent
    last_log = last_ckpt = time.monotonic()
    while True:
        spent = time.monotonic() - started
        fraction = spent / seconds if seconds is not None else step / steps  # type: ignore[operator]
        if fraction >= 1.0:
            break
        rate = cosine_lr(lr, fraction)
        model.optimizer.learning_rate.assign(rate)
        x, y = next_batch()
        loss = model.train_on_batch(x, y)
        losses.append(float(loss[0] if isinstance(loss, (list, tuple)) else loss))
        step += 1
        now = time.monotonic()
        if now - last_log >= log_every:
            bar = "#" * int(20 * fraction) + "." * (20 - int(20 * fraction))
            print(f"[{name}] [{bar}] {100 * fraction:5.1f}% step {step} loss {sum(losses) / len(losses):.6f} "
                  f"lr {rate:.2e} {step / max(spent, 1e-9):.1f} steps/s", flush=True, file=sys.stdout)
            last_log = now
        if now - last_ckpt >= checkpoint_every:
            save_checkpoint()
            last_ckpt = now
    spent = time.monotonic() - started
    save_checkpoint()
    weights = out / f"{name}.weights.h5"
    # An uncompiled view of the same layers: the shipped file holds the
    # network's weights only, not Adam's moments (3x smaller).
    import keras

    keras.Model(model.inputs, model.outputs).save_weights(str(weights))
    return {"name": name, "steps": step, "train_seconds": round(spent, 1),
            "final_loss": round(sum(losses) / max(len(losses), 1), 7),
            "weights": weights.name, "sha256": sha256_file(weights), "bytes": weights.stat().st_size}


def write_metrics(out: Path, name: str, metrics: dict[str, Any]) -> Path:
    path = out / f"{name}.json"
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return path
