"""Low-light enhancement: LIME (Guo, Li & Ling, IEEE TIP 2017).

Retinex model ``I = R * T``: estimate the illumination ``T`` and divide it out.

1. Initial illumination ``T_hat = max(R, G, B)`` per pixel, in ``[0, 1]``.
2. Structure-aware refinement, the paper's "sped-up" quadratic problem::

       min_t  ||t - t_hat||^2 + alpha * sum_d  W~_d * (D_d t)^2
       W~_d = W_d / (|D_d T_hat| + eps)

   with weighting strategy III, ``W_d(x) = 1 / (|G_sigma * D_d T_hat|(x) + eps)``
   (a Gaussian window normalised to sum 1, radius ``4 sigma``).  Its minimiser
   solves one sparse symmetric positive definite five-point system::

       (I + alpha * sum_d D_d^T diag(W~_d) D_d) t = t_hat

   ``D_h``/``D_v`` are forward differences with no term across the last
   column/row (``H x (W-1)`` and ``(H-1) x W`` edges).
3. Gamma correction of the illumination and ``R = I / max(T, eps) ** gamma``
   per channel.
4. Optional denoising and recomposition ``R * T + R_d * (1 - T)``: the
   denoised result ``R_d`` (OpenCV non-local means in place of the paper's
   BM3D) weighs most where the scene was darkest (where the division
   amplified the noise most).

Two solvers for step 2:

* ``method="exact"``: the system above assembled with ``scipy.sparse`` and
  solved directly (SuperLU).  The reference; seconds per frame.
* ``method="fast"`` (default): see :func:`refine_illumination_fast` -- the
  full-resolution edge weights, read as conductances, are homogenised onto
  8 x 8-pixel cells (series along the path between cell nodes, access
  resistances from each pixel row to its node, parallel across; each pixel's
  data term split between its own node and the vertical neighbour's), that
  small system is solved exactly (red-black reduction, banded Cholesky), the
  cell values come back to full resolution by joint bilateral upsampling
  guided by ``T_hat``, and two full-resolution Jacobi sweeps restore detail
  inside the cells.  Milliseconds per frame; its error against ``"exact"`` is
  measured in ``benchmarks/bench_lowlight.py`` (BENCHMARKS.md).  On frames
  from about 450 x 340 up, a helper thread takes half of each
  full-resolution step and runs the coarse solve meanwhile
  (:data:`PARALLEL_MIN_PIXELS`): the same result, ~30 % less time on two
  cores.

The stage works on whole frames (before detection, so that faces in the dark
can be found at all) and on face crops alike: it is a pure ``uint8 RGB ->
uint8 RGB`` function.  :func:`is_dark` is its auto-mode test.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Literal, TypeVar

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

from ..errors import InputError
from ..io import ensure_rgb

Method = Literal["fast", "exact"]
METHODS: tuple[str, ...] = ("fast", "exact")

EPS = 1e-3
"""The paper's small constant: in the weights' denominators and as the floor of ``T``."""

EXACT_MAX_PIXELS = 2_100_000
"""Largest image the direct solver accepts (1920 x 1080 is ~2.07 MP).

SuperLU's fill-in grows faster than the pixel count: 1280 x 720 already takes
~12 s and ~1 GB, so bigger inputs are refused instead of stalling the app.
"""

DARK_MEAN_LUMA = 60.0
"""Auto mode fires when the mean BT.601 luma (0-255) is below this ..."""
DARK_MEDIAN_LUMA = 40.0
"""... or when the median luma is below this (dark scene with a few bright lights)."""


# ---------------------------------------------------------------------------
# auto mode
# ---------------------------------------------------------------------------
def is_dark(rgb: np.ndarray) -> tuple[bool, str]:
    """The auto-mode luminance test: is this frame (or crop) dark enough to enhance?

    Luma is BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` on the 8-bit values.
    The image counts as dark when its mean luma is below
    :data:`DARK_MEAN_LUMA` (60) or its median luma is below
    :data:`DARK_MEDIAN_LUMA` (40) -- the second catches night scenes whose few
    street lights pull the mean up while most pixels stay black.

    Args:
        rgb: ``H x W x 3`` uint8 RGB image.

    Returns:
        ``(fire, note)``, e.g. ``(True, "dark frame: mean luma 31 < 60")``.
    """
    rgb = ensure_rgb(rgb)
    counts = np.bincount(_luma_u8(rgb).ravel(), minlength=256).astype(np.float64)
    mean = float(counts @ np.arange(256)) / counts.sum()
    median = float(np.searchsorted(np.cumsum(counts), counts.sum() / 2.0))
    if mean < DARK_MEAN_LUMA:
        return True, f"dark: mean luma {mean:.0f} < {DARK_MEAN_LUMA:.0f}"
    if median < DARK_MEDIAN_LUMA:
        return True, f"dark: median luma {median:.0f} < {DARK_MEDIAN_LUMA:.0f} (mean {mean:.0f})"
    return False, f"bright enough: mean luma {mean:.0f} >= {DARK_MEAN_LUMA:.0f}, median {median:.0f}"


def _luma_u8(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image, uint8 ``H x W``."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


# ---------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------
def enhance_low_light(
    rgb: np.ndarray,
    *,
    method: Method = "fast",
    alpha: float = 0.15,
    gamma: float = 0.8,
    sigma: float = 2.0,
    denoise: bool = False,
) -> np.ndarray:
    """Brighten a dark image with LIME.

    Works on whole frames and on face crops.

    Args:
        rgb: ``H x W x 3`` uint8 RGB image (any size from 1 x 1 up to the
            loader's pixel limit; ``method="exact"`` up to
            :data:`EXACT_MAX_PIXELS`).
        method: ``"fast"`` (default, milliseconds) or ``"exact"`` (the
            paper's sparse system solved directly, seconds).
        alpha: weight of the smoothness term (paper: 0.15).
        gamma: gamma applied to the illumination, ``R = I / T**gamma``
            (paper: 0.8; smaller brightens less).
        sigma: standard deviation, in pixels, of the Gaussian window of
            weighting strategy III (paper: 2).
        denoise: denoise the result (non-local means) and recompose
            ``R * T + R_d * (1 - T)``.

    Returns:
        ``H x W x 3`` uint8 RGB, the enhanced image.

    Raises:
        InputError: bad image, unknown method, parameters out of range, or an
            image too large for the exact solver.
    """
    rgb = ensure_rgb(rgb)
    _check_params(method, alpha, gamma, sigma)
    h, w = rgb.shape[:2]
    _scratch_for_frame((h, w))
    if method == "exact":
        if h * w > EXACT_MAX_PIXELS:
            raise InputError(
                f"the exact LIME solver is limited to {EXACT_MAX_PIXELS / 1e6:.1f} megapixels "
                f"(this image has {h * w / 1e6:.1f}); use method='fast'"
            )
        t_hat = max_rgb(rgb).astype(np.float64) / 255.0
        illumination = refine_illumination_exact(t_hat, alpha=alpha, sigma=sigma)
    else:
        illumination = _refine_fast(max_rgb(rgb), alpha, sigma, EPS, None, scratch_result=True)
    return recover_reflectance(rgb, illumination, gamma=gamma, denoise=denoise)


def _check_params(method: str, alpha: float, gamma: float, sigma: float) -> None:
    if method not in METHODS:
        raise InputError(f"unknown low-light method {method!r}; choose one of {', '.join(METHODS)}")
    for name, value, low, high in (("alpha", alpha, 0.0, 100.0), ("gamma", gamma, 0.0, 1.0),
                                   ("sigma", sigma, 0.0, 50.0)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise InputError(f"low-light {name} must be a number in [{low:g}, {high:g}], got {value!r}")


def max_rgb(rgb: np.ndarray) -> np.ndarray:
    """LIME's initial illumination: the per-pixel maximum of R, G, B (uint8 ``H x W``)."""
    return cv2.max(cv2.max(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])


# ---------------------------------------------------------------------------
# weights (strategy III) and the exact solver
# ---------------------------------------------------------------------------
def _gaussian_kernel(sigma: float, dtype: type) -> np.ndarray:
    """1-D Gaussian of radius ``ceil(4 sigma)``, normalised to sum 1."""
    if sigma <= 0:
        return np.ones(1, dtype=dtype)
    radius = max(1, math.ceil(4.0 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(dtype)


def _smooth(field: np.ndarray, kernel: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Separable Gaussian window over a 2-D field (mirror border, edge pixel not repeated); into ``dst`` if given."""
    if field.size == 0 or kernel.size == 1:
        if dst is None:
            return field.copy()
        np.copyto(dst, field)
        return dst
    return cv2.sepFilter2D(field, -1, kernel, kernel, dst=dst, borderType=cv2.BORDER_REFLECT_101)


def lime_weights(t_hat: np.ndarray, sigma: float = 2.0, eps: float = EPS) -> tuple[np.ndarray, np.ndarray]:
    """The refinement's edge weights ``W~_h`` (``H x (W-1)``) and ``W~_v`` (``(H-1) x W``).

    ``W~_d = W_d / (|D_d T_hat| + eps)`` with strategy III
    ``W_d = 1 / (|G_sigma * D_d T_hat| + eps)``.  Large in flat regions
    (strong smoothing), small across edges that stay consistent over the
    Gaussian window (structure kept), small but not as small across texture
    whose gradients cancel in the window.

    Args:
        t_hat: float ``H x W`` initial illumination in ``[0, 1]`` (float32 or
            float64; the result has the same dtype).
    """
    kernel = _gaussian_kernel(sigma, t_hat.dtype.type)
    weights = []
    for grad in (t_hat[:, 1:] - t_hat[:, :-1], t_hat[1:, :] - t_hat[:-1, :]):
        smoothed = _smooth(grad, kernel)
        weights.append(1.0 / ((np.abs(smoothed) + eps) * (np.abs(grad) + eps)))
    return weights[0], weights[1]


def lime_system(t_hat: np.ndarray, alpha: float = 0.15, sigma: float = 2.0,
                eps: float = EPS) -> sp.csr_matrix:
    """The sparse matrix ``I + alpha * sum_d D_d^T diag(W~_d) D_d`` for ``t_hat`` (``H x W``).

    Unknowns are the pixels in row-major order; the matrix is ``HW x HW``,
    symmetric, strictly positive definite (every row sums to 1) and has at most five
    non-zeros per row.
    """
    h, w = t_hat.shape
    n = h * w
    wh, wv = lime_weights(t_hat, sigma, eps)
    east = np.zeros((h, w))     # alpha * W~ of the edge (i, j) -- (i, j+1)
    south = np.zeros((h, w))    # alpha * W~ of the edge (i, j) -- (i+1, j)
    east[:, : w - 1] = alpha * wh
    south[: h - 1, :] = alpha * wv
    east, south = east.ravel(), south.ravel()
    diag = 1.0 + east + south
    diag[1:] += east[:-1]       # the west neighbour's east edge
    diag[w:] += south[:-w]      # the north neighbour's south edge
    diagonals, offsets = [diag], [0]
    if w > 1:
        diagonals += [-east[:-1], -east[:-1]]
        offsets += [1, -1]
    if h > 1:
        diagonals += [-south[: n - w], -south[: n - w]]
        offsets += [w, -w]
    return sp.diags(diagonals, offsets, shape=(n, n), format="csr")


def refine_illumination_exact(t_hat: np.ndarray, *, alpha: float = 0.15, sigma: float = 2.0,
                              eps: float = EPS) -> np.ndarray:
    """Solve LIME's refinement system exactly (sparse direct solve).

    Args:
        t_hat: float ``H x W`` initial illumination in ``[0, 1]``.

    Returns:
        float64 ``H x W`` refined illumination (within ``[min t_hat, max t_hat]``:
        the matrix is an M-matrix with unit row sums).
    """
    t_hat = np.asarray(t_hat, dtype=np.float64)
    if t_hat.size == 1 or alpha == 0:
        return t_hat.copy()
    matrix = lime_system(t_hat, alpha, sigma, eps).tocsc()
    # Minimum-degree ordering on A^T + A suits a symmetric five-point stencil
    # (several times faster than the default COLAMD here).
    t = spla.spsolve(matrix, t_hat.ravel(), permc_spec="MMD_AT_PLUS_A")
    return np.asarray(t, dtype=np.float64).reshape(t_hat.shape)


# ---------------------------------------------------------------------------
# the fast solver
# ---------------------------------------------------------------------------
FAST_CELL = 8
"""Side, in pixels, of the coarse cells of the fast solver (k)."""
FAST_MAX_CELLS = 16_000
"""Most coarse cells solved directly; larger frames get larger cells."""
FAST_EXACT_BELOW = 48 * 48
"""Images with fewer pixels than this are solved exactly (it takes < 10 ms)."""
FAST_MAX_PIXELS = 2_100_000
"""Larger images get their illumination from an area-downscaled copy (T is smooth)."""
ACCESS_WEIGHT = 0.7
"""Weight of the access resistances (pixel to its cell's node) in the coarse problem.

A cell is one node; without access resistances a cell cut by a lamp's rim
is tied to the lamp by its bright pixels and to the dark street by its dark
ones, and bridges the two (light leaked into the whole background: LIME/9
25.5 dB).  Reaching the node is charged the resistance along the node
line (column or row through the node), which a real current could partly
sidestep: see :data:`ACCESS_MIN_RESISTANCE`.
"""
ACCESS_MIN_RESISTANCE = 0.05
"""Fine edges below this resistance cost nothing on the access paths.

Only strong, consistent edges (a lamp's rim: resistance ~1) should cut a
pixel off its node; texture and noise edges (~1e-4 to 1e-2) are easy to walk
around.  Weight and threshold were chosen on all 105 images of
``../shared/datasets/lowlight`` (weight 0.2-1, threshold 0-0.1, 1-3 sweeps;
before the data-weight split, which moved the optimum little: with it,
threshold 0.08 loses SCI_medium/NPE_71, 0.03 and weight 0.5-1 stay >= 32.4 dB):
0.1 loses 7 dB on SCI_medium/NPE_71, weight 1 or 2 sweeps lose DICM/01,
weight 0.5 loses the hard-edged street light of the tests.
"""
JACOBI_SWEEPS = 2
"""Full-resolution Jacobi sweeps after the upsampling (see :func:`_jacobi_sweeps`).

Worst of the 105 images with the data-weight split and range sigma 0.14:
2 sweeps 33.1 dB, 3 sweeps 33.4 dB; a sweep costs ~5 % of the call, and the
fidelity margin is deterministic while the timing one is not.
"""
JBU_RANGE_SIGMA = 0.14
"""Range sigma (illumination units) of the joint bilateral upsampling.

Worst PSNR (fast vs exact) over the 105 images of ``../shared/datasets/lowlight``
with the data-weight split: 0.08 -> 32.2 dB, 0.10 -> 32.6, 0.12 -> 33.0,
0.14 -> 33.4, 0.15 -> 33.3, 0.17 -> 32.8, 0.20 -> 30.8 (DICM/08: too wide a
range lets the lit horizon bleed into the sky).  Cells of 10 px instead of
8 (a 2.5x cheaper coarse solve) fail DICM/29 (32.0 dB; 3 sweeps).
"""
_OPEN = 1e30
"""Resistance of a path that does not exist (float32-safe: its conductance is 1e-30)."""


SCRATCH_MAX_PIXELS = 1_000_000
"""Frames up to this size (1280 x 720 fits) keep their scratch buffers between calls."""
SCRATCH_MAX_BYTES = 16 << 20
"""Single scratch buffers larger than this are never kept."""
_SCRATCH_SLOTS = {
    # Float32 intermediates whose lifetimes do not overlap share memory (same
    # slot, same shape).  Order of use in one call:
    #   edge weights:  grad (tmp)                               -> dead
    #   coarse terms (per band of cell rows, in each thread): own (f1),
    #                  repeat (f2), access edges (f4), beside (f3),
    #                  toward (f5); then split (f2), weight_own (f4),
    #                  weight_beside (f5), weighted (f1)        -> dead
    #   during the coarse solve (on the helper): jbu_w0-3 (f1-f4),
    #                  jbu_den (f5); inv_den (a buffer of its own)
    #   upsampling:    reads jbu_w0-3, jbu_den                  -> dead
    #   Jacobi:        jacobi_next (f1), inv_den                -> dead
    #   recovery:      recover_t (f1)
    "grad": "tmp", "strong_h": "tmp", "strong_v": "tmp",
    "own": "f1", "weighted": "f1", "jbu_w0": "f1", "jacobi_next": "f1", "recover_t": "f1",
    "repeat": "f2", "split": "f2", "jbu_w1": "f2",
    "beside": "f3", "jbu_w2": "f3",
    "access_edges": "f4", "weight_own": "f4", "jbu_w3": "f4",
    "toward": "f5", "weight_beside": "f5", "jbu_den": "f5",
}
SCRATCH_MAX_THREADS = max(2, os.cpu_count() or 1)
"""At most this many calling threads keep scratch buffers at once (the helper thread always does).

A server calls the stage from a pool of dozens of worker threads; kept
buffers only pay off where frames keep coming, and this cap bounds their
memory (about 20 MB per thread at 640 x 480, 65 MB at 1280 x 720, plus
the helper thread's 7 and 23 MB).  Other threads allocate as usual.
"""
_scratch_store = threading.local()
_scratch_owners: weakref.WeakSet[threading.Thread] = weakref.WeakSet()   # a dead thread drops out
_scratch_owners_lock = threading.Lock()


def _scratch(name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """A per-thread buffer for an intermediate result, reused by the next call with the same frame size.

    A fresh megabyte array costs a page fault per 4 KiB page on its first
    write (glibc maps large blocks anew for every allocation): at 640 x 480
    that was about a third of the fast solver's time.  The contents are
    undefined; a buffer is valid until the next request for the same name
    (or a name sharing its slot, :data:`_SCRATCH_SLOTS`) and shape in this
    thread, so nothing handed to a caller may be one.  The store holds the
    buffers of one frame size (emptied by :func:`_scratch_for_frame` when
    it changes; about 20 MB at 640 x 480, 70 MB at 1280 x 720) and nothing
    for frames above :data:`SCRATCH_MAX_PIXELS`.
    """
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    if not getattr(_scratch_store, "enabled", True) or math.prod(shape) * dtype.itemsize > SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    store = _scratch_buffers()
    key = (_SCRATCH_SLOTS.get(name, name), shape, dtype.str)
    buffer = store.get(key)
    if buffer is None:
        buffer = store[key] = np.empty(shape, dtype)
    return buffer


def _scratch_buffers() -> dict:
    store = getattr(_scratch_store, "buffers", None)
    if store is None:
        store = _scratch_store.buffers = {}
    return store


def _scratch_for_frame(shape: tuple[int, int]) -> None:
    """Start a frame: empty this thread's scratch store when the frame size changes (bounded memory)."""
    if getattr(_scratch_store, "frame", None) != shape:
        _scratch_buffers().clear()
        _scratch_store.frame = shape
        _scratch_store.enabled = shape[0] * shape[1] <= SCRATCH_MAX_PIXELS and _may_keep_scratch()


def _may_keep_scratch() -> bool:
    """Whether this thread may keep buffers: it already does, or fewer than :data:`SCRATCH_MAX_THREADS` do."""
    if getattr(_helper_state, "is_helper", False):
        return True
    thread = threading.current_thread()
    with _scratch_owners_lock:
        if thread in _scratch_owners:
            return True
        if len(_scratch_owners) < SCRATCH_MAX_THREADS:
            _scratch_owners.add(thread)
            return True
    return False


# ---------------------------------------------------------------------------
# the helper thread
# ---------------------------------------------------------------------------
PARALLEL_MIN_PIXELS = 150_000
"""Frames at least this large share the fast solver's work with a helper thread.

On machines with two or more cores, the full-resolution steps run as two
bands of rows (this thread and the helper; the same arithmetic, so the same
result) and the coarse solve runs on the helper while this thread prepares
the upsampling.  On the 2-core benchmark machine that takes ~30 % off the
call at 640 x 480 (BENCHMARKS.md); between 400 x 300 and 480 x 360 it was
a tie, and below that (face crops) the hand-overs (0.05-0.1 ms each, eight
per call) cost more than they save.
"""
_Here = TypeVar("_Here")
_There = TypeVar("_There")
_helper_state = threading.local()
_helper_pool_lock = threading.Lock()
_helper_pool: ThreadPoolExecutor | None = None


def _use_helper(pixels: int) -> bool:
    """Whether a frame of ``pixels`` pixels shares its work with the helper thread."""
    return (pixels >= PARALLEL_MIN_PIXELS and (os.cpu_count() or 1) >= 2
            and not getattr(_helper_state, "is_helper", False))   # the helper never waits on itself


def _helper() -> ThreadPoolExecutor:
    """The one helper thread (shared by all calling threads: their jobs queue)."""
    global _helper_pool
    with _helper_pool_lock:
        if _helper_pool is None:
            _helper_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lowlight-helper")
        return _helper_pool


def _forget_helper_after_fork() -> None:
    # The pool's thread does not survive a fork: a child submitting to it would wait forever.
    global _helper_pool, _helper_pool_lock
    _helper_pool, _helper_pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper_after_fork)


def _as_helper_job(frame: tuple[int, int] | None, job: Callable[[], _There]) -> _There:
    _helper_state.is_helper = True
    if frame is not None:
        _scratch_for_frame(frame)     # the helper's scratch store follows the caller's frame size
    else:                             # a caller without a frame: plain allocations
        _scratch_store.frame, _scratch_store.enabled = None, False
    return job()


def _run_pair(here: Callable[[], _Here], there: Callable[[], _There], parallel: bool) -> tuple[_Here, _There]:
    """``(here(), there())``; with ``parallel``, ``there`` runs on the helper thread meanwhile.

    The two jobs must not touch the same memory except to read it.  What
    ``there`` hands back -- its result, or data it writes for later steps --
    must live in fresh arrays or in buffers the caller owns: the helper's own
    scratch buffers are only temporaries (the next job on the helper, maybe
    another caller's, reuses them).
    """
    if not parallel:
        return here(), there()
    future = _helper().submit(_as_helper_job, getattr(_scratch_store, "frame", None), there)
    try:
        first = here()
    except BaseException:
        wait_for([future])      # it may still be writing into buffers the caller owns
        raise
    return first, future.result()


def _shifted_rows(job: Callable[[int, int], object], offset: int, r0: int, r1: int) -> object:
    return job(offset + r0, offset + r1)


def _by_row_halves(job: Callable[[int, int], object], rows: int, parallel: bool) -> None:
    """``job(0, rows)``, or with ``parallel`` ``job(0, mid)`` here and ``job(mid, rows)`` on the helper."""
    mid = rows // 2
    if not parallel or mid == 0:
        job(0, rows)
        return
    _run_pair(lambda: job(0, mid), lambda: job(mid, rows), parallel=True)


def refine_illumination_fast(t_hat_u8: np.ndarray, *, alpha: float = 0.15, sigma: float = 2.0,
                             eps: float = EPS, cell: int | None = None) -> np.ndarray:
    """Approximate :func:`refine_illumination_exact` in milliseconds.

    Design (each step measured in ``benchmarks/bench_lowlight.py``):

    1. The edge weights ``W~`` are computed at full resolution, exactly as
       the exact solver does.  Read as conductances ``c = alpha * W~`` of a
       resistor network, they are *homogenised* onto ``k x k`` cells, one
       node per cell (at pixel ``(I k + k/2, J k + k/2)``): the coarse
       conductance between two neighbouring cells is the sum, over the ``k``
       parallel pixel rows (columns), of the series conductance of the path
       from one node to the other -- the ``k`` fine edges between the two
       node columns plus, at each end, the *access resistance* from the row
       to the node along the node column.  Each pixel's data term
       ``(t - t_hat)^2`` is shared by two nodes, its own cell's and the one
       of the neighbouring cell row on its side, with the weights that
       eliminating the pixel would leave (:func:`_split_data_weight`):
       ``g1 / (1 + g1 + g2)`` and ``g2 / (1 + g1 + g2)``, ``g = 1 / R`` for
       its access resistances ``R`` to the two nodes (own node: along its
       row, then the node column; the other: along its column, then that
       node row).  A pixel alone with its own node gets ``1 / (1 + R)``;
       one cut off from it by a strong edge gives its weight to the
       neighbour it can reach (DICM/08, a city at night: the row of cells
       cut by the lit horizon dropped the sky's pixels, the sky got 20 %
       too little light, 29.4 -> 33.3 dB).  Access
       resistances count only strong edges (:data:`ACCESS_MIN_RESISTANCE`)
       and are scaled by :data:`ACCESS_WEIGHT`.  Without them a cell cut by
       a lamp's rim is tied to the lamp and to the dark street alike and the
       lamp's light leaks into the whole background (-10 dB on LIME/9).
       This coarse problem approximates the fine one far better than
       re-deriving the weights from a downsampled ``T_hat`` (which changes
       ``|grad T_hat|`` and so the weights by orders of magnitude).
    2. The coarse system (``~(H/k)(W/k)`` unknowns, five-point, SPD) is solved
       exactly (red-black reduction and banded Cholesky, :func:`_solve_grid_system`).
    3. The cell values are brought back to full resolution by joint bilateral
       upsampling guided by ``T_hat``: bilinear weights of the 2 x 2 nearest
       cells, times a Gaussian of the difference between the pixel's
       ``T_hat`` and the cell's (weighted) mean ``T_hat`` -- so bright lights
       do not bleed into dark pixels next to them and vice versa.
    4. :data:`JACOBI_SWEEPS` (2) Jacobi sweeps of the full-resolution system
       restore what varies inside a cell (dark gaps in a lit structure,
       small lights, the noise the exact ``T`` keeps).

    ``k`` is :data:`FAST_CELL` (8), larger when the frame has more than
    :data:`FAST_MAX_CELLS` cells; tiny images and strips narrower than
    ``2k`` are solved exactly and huge ones (> :data:`FAST_MAX_PIXELS`) on
    an area-downscaled copy.

    Error: see BENCHMARKS.md (section "lowlight").  It is smallest on dark,
    smooth night scenes and largest where the exact ``T`` keeps many small
    lights and noise inside the cells (a city at night seen from above).

    Speed: full-resolution intermediates live in per-thread scratch buffers
    (:func:`_scratch`); the result is a fresh array.  Frames of at least
    :data:`PARALLEL_MIN_PIXELS` share each step with a helper thread.

    Args:
        t_hat_u8: uint8 ``H x W`` initial illumination (max of R, G, B).
        cell: override ``k`` (for experiments and tests).

    Returns:
        float32 ``H x W`` refined illumination in ``[0, 1]``.
    """
    return _refine_fast(t_hat_u8, alpha, sigma, eps, cell, scratch_result=False)


def _refine_fast(t_hat_u8: np.ndarray, alpha: float, sigma: float, eps: float, cell: int | None,
                 scratch_result: bool) -> np.ndarray:
    """:func:`refine_illumination_fast`; with ``scratch_result`` the result may be a scratch buffer.

    :func:`enhance_low_light` uses the illumination only to recover the
    reflectance, so it need not be a fresh array (one page fault per page less).
    """
    h, w = t_hat_u8.shape
    if h * w > FAST_MAX_PIXELS:
        scale = math.sqrt(FAST_MAX_PIXELS / (h * w))
        small_size = (max(1, int(w * scale)), max(1, int(h * scale)))
        small = cv2.resize(t_hat_u8, small_size, interpolation=cv2.INTER_AREA)
        t_small = _refine_fast(small, alpha, sigma, eps, cell, scratch_result=True)
        return cv2.resize(t_small, (w, h), interpolation=cv2.INTER_LINEAR)
    if cell is None:
        cell = FAST_CELL
        while -(-h // cell) * -(-w // cell) > FAST_MAX_CELLS:
            cell += 2
    if alpha == 0 or cell <= 1 or h * w < FAST_EXACT_BELOW or min(h, w) < 2 * cell:
        # Tiny images and thin strips: the direct solve is already fast (a
        # strip's band is narrow), and k x k cells would not fit anyway.
        t_hat64 = t_hat_u8.astype(np.float64) / 255.0
        return refine_illumination_exact(t_hat64, alpha=alpha, sigma=sigma, eps=eps).astype(np.float32)
    _scratch_for_frame((h, w))
    parallel = _use_helper(h * w)
    t_hat = np.multiply(t_hat_u8, np.float32(1.0 / 255.0), out=_scratch("t_hat", (h, w)))
    res_h, res_v = _edge_resistances(t_hat, alpha, sigma, eps, parallel=parallel,
                                     out=(_scratch("res_h", (h, w - 1)), _scratch("res_v", (h - 1, w))))
    system, coarse_guide = _homogenise(t_hat, res_h, res_v, cell, eps * eps / alpha, parallel)
    spread_guide = _spread_cells(coarse_guide, cell, "spread_guide")
    weights = tuple(_scratch(f"jbu_w{index}", (h, w)) for index in range(4))
    inv_total = _scratch("jbu_den", (h, w))
    inv_den = _scratch("inv_den", (h, w))

    def prepare() -> tuple[np.ndarray, np.ndarray]:
        """Everything that needs no coarse solution (the coarse terms no longer need the resistances)."""
        _upsampling_weights(spread_guide, t_hat, cell, JBU_RANGE_SIGMA, weights, inv_total)
        return _jacobi_terms(res_h, res_v, inv_den)

    # The helper solves the coarse grid (LAPACK through ctypes releases the
    # GIL) while this thread prepares the rest.  (Factoring two halves of the
    # grid at once, one per thread, was slower at both 640 x 480 and
    # 1280 x 720: the two factorisations compete for the caches.)
    (c_h, c_v), coarse_t = _run_pair(prepare, lambda: _solve_grid_system(*system), parallel)
    t = _scratch("illumination", (h, w)) if scratch_result else np.empty((h, w), np.float32)
    spread_t = _spread_cells(coarse_t.astype(np.float32), cell, "spread_t")
    _by_row_halves(functools.partial(_joint_bilateral_upsample, spread_t, weights, inv_total, cell, t), h, parallel)
    return _jacobi_sweeps(t, t_hat, c_h, c_v, inv_den, sweeps=JACOBI_SWEEPS, parallel=parallel)


def _edge_resistances(t_hat: np.ndarray, alpha: float, sigma: float, eps: float,
                      out: tuple[np.ndarray, np.ndarray] | None = None,
                      parallel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``1 / (alpha * W~)`` of the horizontal (``H x (W-1)``) and vertical (``(H-1) x W``) edges.

    ``(|G * grad| + eps) * (|grad| + eps) / alpha``: no division, computed in
    place (into ``out`` if given: float32 buffers of those shapes); with
    ``parallel`` the vertical edges on the helper thread.
    """
    kernel = _gaussian_kernel(sigma, t_hat.dtype.type)
    h, w = t_hat.shape
    targets = out if out is not None else (None, None)

    def resistances(axis: int) -> np.ndarray:
        if axis == 1:
            grad = cv2.subtract(t_hat[:, 1:], t_hat[:, :-1], dst=_scratch("grad", (h, w - 1)))
        else:
            grad = cv2.subtract(t_hat[1:], t_hat[:-1], dst=_scratch("grad", (h - 1, w)))
        resistance = _smooth(grad, kernel, dst=targets[1 - axis])
        np.abs(resistance, out=resistance)
        resistance += eps
        np.abs(grad, out=grad)
        grad += eps
        return cv2.multiply(resistance, grad, dst=resistance, scale=1.0 / alpha)

    return _run_pair(lambda: resistances(1), lambda: resistances(0), parallel)


def _solve_grid_system(diag: np.ndarray, east: np.ndarray, south: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a symmetric positive definite five-point system on a ``rows x cols`` grid.

    ``A x = rhs`` with ``A[p, p] = diag[p]``, ``-east[p]`` coupling pixel
    ``p`` to its right neighbour (``east[:, -1]`` must be 0) and
    ``-south[p]`` coupling it to the one below (``south[-1, :]`` must be 0);
    all arrays are float64 ``rows x cols``.

    Banded Cholesky (LAPACK ``pbtrf``) with the grid ordered so that the
    bandwidth is ``min(rows, cols)``: for the few thousand cells of the fast
    solver this is 2-3x faster than SuperLU.  Grids at least
    :data:`RED_BLACK_MIN_WIDTH` wide first eliminate half the unknowns
    exactly (:func:`_reduce_red_black`): half the work again.  (A float32
    factorisation with float64 refinement was no faster: the fill-in decays
    into float32 denormals.)
    """
    diag, east, south, rhs, transposed = _banded_orientation(diag, east, south, rhs)
    if diag.shape[1] >= RED_BLACK_MIN_WIDTH:
        x = _solve_red_black(diag, east, south, rhs)
    else:
        x = _solve_banded(diag, east, south, rhs)
    if x is None:
        x = _solve_grid_system_sparse(diag, east, south, rhs)
    return x.T if transposed else x


RED_BLACK_MIN_WIDTH = 6
"""Narrowest grid (after :func:`_banded_orientation`) solved by red-black reduction (its band needs 3 black cells a row)."""


def _solve_banded(diag: np.ndarray, east: np.ndarray, south: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """The grid system by banded Cholesky in row-major order (bandwidth ``cols``); None if LAPACK fails."""
    band = _fill_band(_scratch("band", (diag.size, diag.shape[1] + 1), np.float64), diag, east, south)
    x = np.array(rhs.ravel(), dtype=np.float64)
    return x.reshape(diag.shape) if _band_solve(band, x) == 0 else None


def _band_solve(band: np.ndarray, x: np.ndarray) -> int:
    """Factor ``band`` in place and solve for ``x`` in place (one BLAS thread); LAPACK's ``info``."""
    with _one_blas_thread():
        return (_band_cholesky(band) or _band_triangular_solve(band, x, transpose=False)
                or _band_triangular_solve(band, x, transpose=True))


def _solve_red_black(diag: np.ndarray, east: np.ndarray, south: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """The grid system by red-black reduction: black cells by banded Cholesky, red ones from them; None if LAPACK fails.

    Colour the grid like a checkerboard, red where ``i + j`` is even.  Red
    cells touch only black ones, so eliminating them is exact and local: the
    black cells' Schur complement couples each black cell to the eight
    black cells two steps away (``(i, j +- 2)``, ``(i +- 2, j)``,
    ``(i +- 1, j +- 1)``).  In row-major order over the black cells that is
    a band as wide as the grid (``cols``), but over half the unknowns: half
    the factorisation's work.  Then ``x_red = (rhs + sum w x_black) / diag``.
    """
    rows, cols = diag.shape
    if cols % 2:    # an isolated extra column (diag 1, no couplings) gives every row cols / 2 black cells
        diag, east, south, rhs = (np.pad(a, ((0, 0), (0, 1)), constant_values=v)
                                  for a, v in ((diag, 1.0), (east, 0.0), (south, 0.0), (rhs, 0.0)))
    half_width = diag.shape[1] // 2
    diag_b, rhs_b, couplings = _reduce_red_black(diag, east, south, rhs)
    band = _scratch("band", (rows * half_width, 2 * half_width + 1), np.float64)
    band.fill(0.0)
    # Lower band storage (band[p, d] = A[p + d, p]) in black row-major order,
    # black cell k of row i at column 2k + 1 (even i) or 2k (odd i): the cell
    # to the east is d = 1, two rows down d = 2K, and the diagonal neighbours
    # one row down d = K, K + 1 (even i) or K - 1, K (odd i).
    per_cell = band.reshape(rows, half_width, 2 * half_width + 1)
    per_cell[:, :, 0] = _black_cells(diag_b)
    east_2, south_2, south_east, south_west = (-_black_cells(c) for c in couplings)
    per_cell[:, :, 1] = east_2
    per_cell[:, :, 2 * half_width] = south_2
    per_cell[0::2, :, half_width] = south_west[0::2]
    per_cell[0::2, :, half_width + 1] = south_east[0::2]
    per_cell[1::2, :, half_width - 1] = south_west[1::2]
    per_cell[1::2, :, half_width] = south_east[1::2]
    x_b = _black_cells(rhs_b).ravel()
    if _band_solve(band, x_b) != 0:
        return None
    x = np.zeros(diag.shape)
    black = x_b.reshape(rows, half_width)
    x[0::2, 1::2], x[1::2, 0::2] = black[0::2], black[1::2]     # the inverse of _black_cells
    # Red cells: their neighbours are all black, now known.
    red = (rhs + east * _shifted(x, 0, 1) + _shifted(east * x, 0, -1)
           + south * _shifted(x, 1, 0) + _shifted(south * x, -1, 0)) / diag
    x[0::2, 0::2], x[1::2, 1::2] = red[0::2, 0::2], red[1::2, 1::2]
    return x[:, :cols]


def _reduce_red_black(diag: np.ndarray, east: np.ndarray, south: np.ndarray,
                      rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Eliminate the red cells (``i + j`` even) of the grid system: the black cells' system.

    A red cell ``r`` with links ``w_1 .. w_4`` to its (black) neighbours
    adds ``-w_a^2 / diag_r`` to neighbour ``a``'s diagonal,
    ``w_a rhs_r / diag_r`` to its right-hand side and a link
    ``w_a w_b / diag_r`` between neighbours ``a`` and ``b``.  Computed for
    every cell as if it were black (the black entries are the answer).

    Returns:
        Diagonal and right-hand side, and the links of each cell to the
        cells at ``(i, j + 2)``, ``(i + 2, j)``, ``(i + 1, j + 1)`` and
        ``(i + 1, j - 1)`` (all ``rows x cols`` float64; positive, the matrix
        entries are their negatives).
    """
    inv = 1.0 / diag
    r = rhs * inv
    east_inv, south_inv = east * inv, south * inv
    # east^2 / diag of the red cell to the east, the same to the west, south, north
    diag_b = diag - (east * east * _shifted(inv, 0, 1) + _shifted(east * east_inv, 0, -1)
                     + south * south * _shifted(inv, 1, 0) + _shifted(south * south_inv, -1, 0))
    rhs_b = rhs + east * _shifted(r, 0, 1) + _shifted(east * r, 0, -1) + south * _shifted(r, 1, 0) + _shifted(south * r, -1, 0)
    east_2 = east * _shifted(east_inv, 0, 1)                                        # via the red cell (i, j + 1)
    south_2 = south * _shifted(south_inv, 1, 0)                                     # via (i + 1, j)
    south_east = east * _shifted(south_inv, 0, 1) + south * _shifted(east_inv, 1, 0)   # via (i, j + 1) or (i + 1, j)
    south_west = (_shifted(east * south_inv, 0, -1)                                 # via (i, j - 1)
                  + south * _shifted(_shifted(east, 0, -1) * inv, 1, 0))            # via (i + 1, j)
    return diag_b, rhs_b, (east_2, south_2, south_east, south_west)


def _shifted(values: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[i, j] = values[i + dy, j + dx]``, 0 outside the grid."""
    h, w = values.shape
    out = np.zeros_like(values)
    out[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = \
        values[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
    return out


def _black_cells(values: np.ndarray) -> np.ndarray:
    """The black cells (``i + j`` odd) of an even-width grid, ``rows x cols / 2`` in row order."""
    out = np.empty((values.shape[0], values.shape[1] // 2))
    out[0::2], out[1::2] = values[0::2, 1::2], values[1::2, 0::2]
    return out


def _banded_orientation(diag: np.ndarray, east: np.ndarray, south: np.ndarray, rhs: np.ndarray):
    """The grid transposed if it is wider than tall (``rows >= cols``: the band is ``cols`` wide), and whether it was."""
    if diag.shape[1] > diag.shape[0]:  # column-major order: neighbours along a column become adjacent
        return diag.T, south.T, east.T, rhs.T, True
    return diag, east, south, rhs, False


def _fill_band(band: np.ndarray, diag: np.ndarray, east: np.ndarray, south: np.ndarray) -> np.ndarray:
    """LAPACK's lower band storage of the grid matrix, as its C-order transpose ``n x (cols + 1)`` (in ``band``).

    Built in a reused buffer and factored in place: neither transposed nor
    copied (a fresh 2 MB band per call cost more in page faults than the
    triangular solves).
    """
    n, cols = diag.size, diag.shape[1]
    band.fill(0.0)
    band[:, 0] = diag.ravel()
    band[: n - 1, 1] = -east.ravel()[: n - 1]
    if n > cols:
        band[: n - cols, cols] = -south.ravel()[: n - cols]
    return band


def _solve_grid_system_sparse(diag: np.ndarray, east: np.ndarray, south: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The safe path (SuperLU) if the band factorisation fails -- not reached for finite weights."""
    n, cols = diag.size, diag.shape[1]
    east_band, south_band = -east.ravel()[: n - 1], -south.ravel()[: n - cols]
    matrix = sp.diags([diag.ravel(), east_band, east_band, south_band, south_band],
                      [0, 1, -1, cols, -cols], shape=(n, n), format="csc")
    return np.asarray(spla.spsolve(matrix, rhs.ravel()), dtype=np.float64).reshape(diag.shape)


def _band_cholesky(band: np.ndarray) -> int:
    """LAPACK ``dpbtrf`` in place on a C-order ``n x (kd + 1)`` lower band; LAPACK's ``info``.

    Called through ctypes, which releases the GIL (:func:`_lapack_without_gil`);
    BLAS should be held to one thread (:func:`_one_blas_thread`): on such
    small bands OpenBLAS threads mostly wait on each other (up to 10x slower
    on a busy 2-core machine).
    """
    n, kd = band.shape[0], band.shape[1] - 1
    factor = _lapack_without_gil("dpbtrf")
    if factor is None:
        factored, info = lapack.dpbtrf(band.T, lower=1, overwrite_ab=1)
        if not np.shares_memory(factored, band):
            band.T[...] = factored
        return int(info)
    size, width, lead, info = (ctypes.c_int(v) for v in (n, kd, kd + 1, 0))
    factor(b"L", ctypes.byref(size), ctypes.byref(width), band.ctypes.data, ctypes.byref(lead), ctypes.byref(info))
    return info.value


def _band_triangular_solve(band: np.ndarray, x: np.ndarray, transpose: bool) -> int:
    """``L x = b`` (or ``L^T x = b``) in place in float64 ``x`` with a :func:`_band_cholesky` factor; LAPACK's ``info``."""
    n, kd = band.shape[0], band.shape[1] - 1
    solve = _lapack_without_gil("dtbtrs")
    trans = b"T" if transpose else b"N"
    if solve is None:
        solution, info = lapack.dtbtrs(band.T, x[:, None], uplo="L", trans=trans, diag="N")
        x[...] = solution[:, 0]
        return int(info)
    size, width, one, lead, info = (ctypes.c_int(v) for v in (n, kd, 1, kd + 1, 0))
    solve(b"L", trans, b"N", ctypes.byref(size), ctypes.byref(width), ctypes.byref(one), band.ctypes.data,
          ctypes.byref(lead), x.ctypes.data, ctypes.byref(size), ctypes.byref(info))
    return info.value


_INT_P = ctypes.POINTER(ctypes.c_int)
_LAPACK_ARGUMENTS = {
    # uplo, n, kd, ab, ldab, info
    "dpbtrf": (ctypes.c_char_p, _INT_P, _INT_P, ctypes.c_void_p, _INT_P, _INT_P),
    # uplo, trans, diag, n, kd, nrhs, ab, ldab, b, ldb, info
    "dtbtrs": (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, _INT_P, _INT_P, _INT_P, ctypes.c_void_p, _INT_P,
               ctypes.c_void_p, _INT_P, _INT_P),
}


@functools.cache
def _lapack_without_gil(name: str):
    """A LAPACK routine from SciPy's Cython API as a ctypes function, or None.

    ``scipy.linalg.lapack``'s wrappers hold the GIL while LAPACK runs; a
    ctypes call releases it, so the coarse solve runs on the helper thread
    while the calling thread works (the route numba takes to these
    pointers).  None -- use ``scipy.linalg.lapack`` -- if SciPy does not
    export the routine with the 32-bit-integer signature this expects.
    """
    arguments = _LAPACK_ARGUMENTS[name]
    try:
        from scipy.linalg import cython_lapack

        capsule = cython_lapack.__pyx_capi__[name]
        capsule_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
        capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
            ("PyCapsule_GetPointer", ctypes.pythonapi))
        signature = capsule_name(capsule)
        address = capsule_pointer(capsule, signature)
    except (ImportError, KeyError, AttributeError, ValueError, OSError):
        return None
    # e.g. b"void (char *, int *, int *, __pyx_t_..._d *, int *, int *)"
    parameters = signature.decode("ascii", "replace").partition("(")[2].rstrip(")").split(",")
    expected = ["char *" if kind is ctypes.c_char_p else "int *" if kind is _INT_P else "_d *" for kind in arguments]
    if not address or len(parameters) != len(expected) or not all(
            p.strip().endswith(e) for p, e in zip(parameters, expected)):
        return None
    return ctypes.CFUNCTYPE(None, *arguments)(address)


def _one_blas_thread():
    """Context manager: BLAS limited to one thread (no-op without ``threadpoolctl``)."""
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: only speed depends on it
        return None
    return ThreadpoolController()


def _block_sum(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sum over equal blocks: ``values`` (``rows*a x cols*b`` float32) -> ``rows x cols`` float32.

    Along rows ``cv2.resize`` with ``INTER_AREA`` and an integer factor is an
    exact block average, several times faster than a numpy reshape-sum.
    """
    h, w = values.shape
    if h != rows:   # down the columns first: numpy adds whole rows at a time, 3x faster than resize here
        values = np.add.reduce(values.reshape(rows, h // rows, w), axis=1)
    if w == cols:
        return values if h != rows else values.copy()
    return cv2.resize(values, (cols, rows), interpolation=cv2.INTER_AREA) * np.float32(w // cols)


def _access_resistance(lines: np.ndarray, cell: int, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """Resistance from every pixel of a line to its cell's node, along the line.

    Args:
        lines: float32 resistances of the fine edges along lines that run
            along ``axis`` (edge ``y`` joins pixels ``y`` and ``y + 1``;
            ``n k - 1`` edges per line), already thresholded.
        cell: ``k``; the node of cell ``I`` is pixel ``I k + k // 2``.
        axis: 0 (lines are columns) or 1 (lines are rows).
        out: optional float32 buffer for the result.

    Returns:
        float32, ``n k`` pixels per line: the sum of the edge resistances
        between the pixel and its node.
    """
    # A pixel and its node lie in the same cell, so every sum stays inside
    # the cell: k - 1 running sums outward from the node over a per-cell view
    # (3x faster than differencing a whole-line cumulative sum, and no
    # cancellation, so float32 is exact enough).
    edge_count = lines.shape[axis]
    n = (edge_count + 1) // cell
    shape = (lines.shape[0], n * cell) if axis == 1 else (n * cell, lines.shape[1])
    edges = _scratch("access_edges", shape)
    if axis == 1:
        edges[:, :edge_count] = lines
        edges[:, edge_count:] = 0.0                # the last pixel's missing edge (never read)
    else:
        edges[:edge_count] = lines
        edges[edge_count:] = 0.0
    if out is None:
        out = np.empty(shape, np.float32)
    # views (..., cell) with the position inside the cell last
    if axis == 1:
        edge_view, out_view = edges.reshape(shape[0], n, cell), out.reshape(shape[0], n, cell)
    else:
        edge_view = edges.reshape(n, cell, shape[1]).transpose(0, 2, 1)
        out_view = out.reshape(n, cell, shape[1]).transpose(0, 2, 1)
    half = cell // 2
    out_view[..., half] = 0.0
    for j in range(half - 1, -1, -1):          # left of the node: edges j .. half - 1
        if j == half - 1:
            out_view[..., j] = edge_view[..., j]
        else:
            np.add(out_view[..., j + 1], edge_view[..., j], out=out_view[..., j])
    for j in range(half + 1, cell):            # right of the node: edges half .. j - 1
        if j == half + 1:
            out_view[..., j] = edge_view[..., half]
        else:
            np.add(out_view[..., j - 1], edge_view[..., j - 1], out=out_view[..., j])
    return out


def _repeat_cells(values: np.ndarray, shape: tuple[int, ...], dst: np.ndarray | None = None) -> np.ndarray:
    """Repeat each value over its cell: ``values`` (one row or column per cell) -> ``shape`` (into ``dst`` if given).

    ``cv2.resize`` with ``INTER_NEAREST`` and an integer factor repeats
    exactly (and is much faster than numpy broadcasting over 8-wide cells).
    """
    return cv2.resize(values, (shape[1], shape[0]), dst=dst, interpolation=cv2.INTER_NEAREST)


def _homogenise(t_hat: np.ndarray, res_h: np.ndarray, res_v: np.ndarray, cell: int, tiny: float,
                parallel: bool = False) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The homogenised coarse problem: its five-point system and the cell means of ``t_hat``.

    Args:
        t_hat: float32 ``H x W``.
        res_h, res_v: the fine edge resistances (:func:`_edge_resistances`).
        tiny: the near-zero resistance of padding edges (``eps^2 / alpha``: a
            flat region's).
        parallel: the bottom half of the cell rows on the helper thread.

    Returns:
        ``(diag, east, south, rhs)`` for :func:`_solve_grid_system` (float64
        ``ceil(H/k) x ceil(W/k)``) and the float32 cell means of ``t_hat``.
    """
    h, w = t_hat.shape
    rows, cols = -(-h // cell), -(-w // cell)
    hp, wp = rows * cell, cols * cell
    half = cell // 2
    # Padding pixels carry no data term and are tied to their neighbours by
    # (almost) zero resistance, so partial cells behave like smaller cells.
    border = cv2.BORDER_CONSTANT
    if (hp, wp) == (h, w):
        # The paths between cell centres stop half a cell before the last
        # column/row: no padding needed (the usual case, e.g. 640 x 480, 1280 x 720).
        pad_h, pad_v, data = res_h, res_v, t_hat
    else:
        # Partial cells at the right/bottom are padded with pixels that carry
        # no data term.  Along a path a padding edge has (almost) no
        # resistance, so a path reaches the partial cell's centre unhindered;
        # paths that lie wholly in the padding conduct nothing (else padding
        # would short-circuit the real pixels beside it).
        pad_h = cv2.copyMakeBorder(res_h, 0, 0, 0, wp - (w - 1), border, value=tiny)
        pad_h = cv2.copyMakeBorder(pad_h, 0, hp - h, 0, 0, border, value=_OPEN)
        pad_v = cv2.copyMakeBorder(res_v, 0, hp - (h - 1), 0, 0, border, value=tiny)
        pad_v = cv2.copyMakeBorder(pad_v, 0, 0, 0, wp - w, border, value=_OPEN)
        data = cv2.copyMakeBorder(t_hat, 0, hp - h, 0, wp - w, border, value=0.0)

    # Access paths: a pixel reaches its node along its row to the node
    # column, then along the node column (node row for vertical bundles).
    # They count strong edges only, scaled by the access weight.
    # (The buffers are this thread's even where the helper fills them: see :func:`_run_pair`.)
    strong_h, strong_v = _scratch("strong_h", (hp, wp - 1)), _scratch("strong_v", (hp - 1, wp))
    node_cols = np.minimum(np.arange(cols) * cell + half, w - 1)
    node_rows = np.minimum(np.arange(rows) * cell + half, h - 1)

    def strong(resistances: np.ndarray, edges: np.ndarray) -> np.ndarray:
        cv2.threshold(resistances, ACCESS_MIN_RESISTANCE, 0, cv2.THRESH_TOZERO, dst=edges)
        edges *= np.float32(ACCESS_WEIGHT)
        return edges

    to_node_row, to_node_col = _run_pair(   # rows x wp and hp x cols
        lambda: _access_resistance(strong(pad_h[:, : wp - 1], strong_h)[node_rows], cell, axis=1),
        lambda: _access_resistance(np.ascontiguousarray(strong(pad_v[: hp - 1], strong_v)[:, node_cols]), cell,
                                   axis=0),
        parallel)

    cell_count, cell_sum, east, south = (np.zeros((rows, cols)) for _ in range(4))
    # per cell, the data weight (and weighted t_hat) of its upper and lower
    # half rows that goes to the node of the cell row above / below
    shared = {key: np.zeros((rows, cols)) for key in ("count_up", "sum_up", "count_down", "sum_down")}

    def cell_rows(r0: int, r1: int) -> None:
        """The terms of cell rows ``r0 .. r1 - 1`` (they write only those rows)."""
        y0, y1 = r0 * cell, r1 * cell
        band = r1 - r0
        # Data term: eliminating a pixel tied to its node by resistance R
        # leaves the node the data weight 1 / (1 + R) (the Schur complement of
        # the pixel's 2 x 2 system); a lamp pixel behind the rim of a dark
        # cell then hardly pulls that cell up.  A pixel is also tied to the
        # node of the neighbouring cell row on its side (up along its column,
        # then along that node row): eliminating a pixel tied to two nodes
        # splits its data weight between them (see :func:`_split_data_weight`).
        own = _access_resistance(strong_h[y0:y1], cell, axis=1, out=_scratch("own", (y1 - y0, wp)))
        cv2.add(own, _repeat_cells(to_node_col[y0:y1], own.shape, dst=_scratch("repeat", own.shape)), dst=own)
        beside = _resistance_to_node_beside(strong_v, to_node_row, cell, r0, r1)
        weight_own, weight_beside = _split_data_weight(own, beside)
        if y1 > h or wp > w:  # padding pixels weigh nothing
            for weight in (weight_own, weight_beside):
                weight[max(h - y0, 0) :, :] = 0.0
                weight[:, w:] = 0.0
        values = data[y0:y1]
        weighted = _scratch("weighted", (y1 - y0, wp))
        cell_count[r0:r1] = _block_sum(weight_own, band, cols)
        cell_sum[r0:r1] = _block_sum(cv2.multiply(weight_own, values, dst=weighted), band, cols)
        for kind, per_pixel in (("count", weight_beside), ("sum", cv2.multiply(weight_beside, values, dst=weighted))):
            shared[kind + "_up"][r0:r1], shared[kind + "_down"][r0:r1] = _half_cell_sums(per_pixel, cell, band, cols)

        # Coarse conductance between neighbouring cells: over the k parallel
        # pixel rows (columns), the series conductance of the path from one
        # node to the other: the k fine edges between the two node columns,
        # plus the access resistance at each end.
        if cols > 1:
            series = _block_sum(pad_h[y0:y1, half : half + (cols - 1) * cell], y1 - y0, cols - 1).astype(np.float64)
            series += to_node_col[y0:y1, :-1] + to_node_col[y0:y1, 1:]
            east[r0:r1, : cols - 1] = _block_sum((1.0 / series).astype(np.float32), band, cols - 1)
        s1 = min(r1, rows - 1)      # the last cell row has no cell below
        if s1 > r0:
            series = _block_sum(pad_v[half + y0 : half + s1 * cell, :], s1 - r0, wp).astype(np.float64)
            series += to_node_row[r0:s1] + to_node_row[r0 + 1 : s1 + 1]
            south[r0:s1] = _block_sum((1.0 / series).astype(np.float32), s1 - r0, cols)

    _by_row_halves(cell_rows, rows, parallel)
    cell_count[:-1] += shared["count_up"][1:]       # the upper half of cell row I goes to row I - 1
    cell_count[1:] += shared["count_down"][:-1]     # the lower half of cell row I goes to row I + 1
    cell_sum[:-1] += shared["sum_up"][1:]
    cell_sum[1:] += shared["sum_down"][:-1]
    diag = cell_count + east + south
    diag[:, 1:] += east[:, :-1]
    diag[1:, :] += south[:-1, :]
    coarse_guide = (cell_sum / np.maximum(cell_count, 1e-12)).astype(np.float32)
    return (diag, east, south, cell_sum), coarse_guide


def _resistance_to_node_beside(strong_v: np.ndarray, to_node_row: np.ndarray, cell: int,
                               r0: int = 0, r1: int | None = None) -> np.ndarray:
    """Access resistance from every pixel to the node of the cell above (upper half) or below (lower half).

    The path runs along the pixel's column to that cell's node row, then
    along the node row to the node.  Pixels on their own node row, above the
    first node row and below the last get :data:`_OPEN` (no such path).

    Args:
        strong_v: float32 ``(hp - 1) x wp`` thresholded vertical edge resistances.
        to_node_row: float32 ``rows x wp`` access resistances along the node rows.
        r0, r1: the cell rows wanted (default all).

    Returns:
        float32 ``(r1 - r0) k x wp`` resistances (a scratch buffer, see :func:`_scratch`).
    """
    hp, wp = strong_v.shape[0] + 1, strong_v.shape[1]
    rows, half = hp // cell, cell // 2
    r1 = rows if r1 is None else r1
    y0, y1 = r0 * cell, r1 * cell
    # (The edge between the band's last pixel and the next cell is on no access path.)
    to_own_row = _access_resistance(strong_v[y0 : y1 - 1], cell, axis=0, out=_scratch("beside", (y1 - y0, wp)))
    # node row I to node row I + 1 along each column (between[I - first]), plus the walk along node row I (I + 1)
    first, last = max(r0 - 1, 0), min(r1, rows - 1)
    between = _block_sum(strong_v[half + first * cell : half + last * cell], last - first, wp)
    toward = _scratch("toward", (y1 - y0, wp)).reshape(r1 - r0, cell, wp)
    above = max(r0, 1)                # cell rows with a node row above
    toward[above - r0 :, :half] = (between[above - 1 - first : r1 - 1 - first] + to_node_row[above - 1 : r1 - 1])[:, None, :]
    toward[: last - r0, half + 1 :] = (between[r0 - first : last - first] + to_node_row[r0 + 1 : last + 1])[:, None, :]
    toward[:, half] = _OPEN
    if r0 == 0:
        toward[0, :half] = _OPEN
    if r1 == rows:
        toward[-1, half + 1 :] = _OPEN
    # The pixel lies between the two node rows: its distance to the other one
    # is the distance between them minus its distance to its own (float32
    # rounding may leave -1e-7: :func:`_split_data_weight` clips).
    return cv2.subtract(toward.reshape(y1 - y0, wp), to_own_row, dst=to_own_row)


def _split_data_weight(own: np.ndarray, beside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data weights a pixel leaves on two nodes when it is eliminated.

    A pixel with data weight 1 tied to two nodes by resistances ``R1`` and
    ``R2`` leaves (Schur complement of its row) the data weights
    ``g1 / (1 + g1 + g2)`` and ``g2 / (1 + g1 + g2)`` with ``g = 1 / R``,
    i.e. ``R2 / (R1 + R2 + R1 R2)`` and ``R1 / (R1 + R2 + R1 R2)``: with no
    second node (``R2`` huge) the first gets ``1 / (1 + R1)``, and a pixel
    cut off from its own node by a strong edge but free to reach the
    neighbour's gives its weight to the neighbour.  (The coupling it also
    leaves between the two nodes is already in the coarse conductances:
    the pixel lies on one of their paths.)

    Args:
        own, beside: float32 ``H x W`` resistances (overwritten).

    Returns:
        float32 ``H x W`` data weights for the own node and the other node
        (scratch buffers, see :func:`_scratch`).
    """
    # Zero resistances (flat regions) split evenly, as the limit does;
    # capping keeps the product finite in float32.
    np.clip(own, 1e-9, 1e15, out=own)
    np.clip(beside, 1e-9, 1e15, out=beside)
    denominator = cv2.multiply(own, beside, dst=_scratch("split", own.shape))
    cv2.add(denominator, own, dst=denominator)
    cv2.add(denominator, beside, dst=denominator)
    return (cv2.divide(beside, denominator, dst=_scratch("weight_own", own.shape)),
            cv2.divide(own, denominator, dst=_scratch("weight_beside", own.shape)))


def _half_cell_sums(values: np.ndarray, cell: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the sums of ``values`` over the rows above and below its node row (two ``rows x cols`` arrays)."""
    half = cell // 2
    per_row = values.reshape(rows, cell, values.shape[1])
    upper = np.add.reduce(per_row[:, :half], axis=1)
    lower = np.add.reduce(per_row[:, half + 1 :], axis=1)
    return (_block_sum(upper, rows, cols).astype(np.float64), _block_sum(lower, rows, cols).astype(np.float64))


def _jacobi_terms(res_h: np.ndarray, res_v: np.ndarray, inv_den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The conductances and ``1 / (1 + sum c)`` of the full-resolution system, for :func:`_jacobi_sweeps`.

    Args:
        res_h, res_v: float32 fine edge resistances ``1 / (alpha W~)``
            (overwritten with their reciprocals, the conductances).
        inv_den: float32 ``H x W`` buffer, filled with ``1 / (1 + sum c)``
            over each pixel's edges.

    Returns:
        ``(c_h, c_v)``: ``res_h`` and ``res_v``, now conductances.
    """
    c_h = np.reciprocal(res_h, out=res_h)
    c_v = np.reciprocal(res_v, out=res_v)
    inv_den.fill(1.0)
    for conductance, here in ((c_h, np.s_[:, :-1]), (c_h, np.s_[:, 1:]), (c_v, np.s_[:-1]), (c_v, np.s_[1:])):
        cv2.add(inv_den[here], conductance, dst=inv_den[here])
    cv2.divide(1.0, inv_den, dst=inv_den)
    return c_h, c_v


def _jacobi_sweeps(t: np.ndarray, t_hat: np.ndarray, c_h: np.ndarray, c_v: np.ndarray, inv_den: np.ndarray,
                   sweeps: int, parallel: bool = False) -> np.ndarray:
    """Jacobi sweeps of the full-resolution system: ``t <- (t_hat + sum c t_nb) / (1 + sum c)``.

    The coarse solution cannot hold what varies inside a cell: the dark
    pixels in the gaps of a lit structure, small lights, and the part of the
    sensor noise that the exact ``T`` keeps.  Such pixels are weakly tied
    (small conductance ``c``) to their neighbours, so a local sweep
    restores much of it (measured on the worst images: +0.3 to +1.4 dB for
    the first sweep, about half that for the second).  Each sweep is a
    convex combination of ``t_hat`` and ``t``: it stays in ``[0, 1]``.

    Args:
        t: float32 ``H x W`` current illumination (overwritten and returned).
        t_hat: float32 ``H x W``.
        c_h, c_v, inv_den: from :func:`_jacobi_terms`.
        parallel: the bottom half of the rows on the helper thread.
    """
    h, w = t.shape
    source, target = t, _scratch("jacobi_next", (h, w))

    def sweep_rows(r0: int, r1: int) -> None:
        out = target[r0:r1]
        np.copyto(out, t_hat[r0:r1])
        # (cv2 on the shifted views: two to three times as fast as numpy's
        # here; accumulateProduct is out += c * t_nb in one pass.)
        cv2.accumulateProduct(c_h[r0:r1], source[r0:r1, 1:], out[:, :-1])     # east neighbour
        cv2.accumulateProduct(c_h[r0:r1], source[r0:r1, :-1], out[:, 1:])     # west
        below = min(r1, h - 1)
        if below > r0:                                                        # south
            cv2.accumulateProduct(c_v[r0:below], source[r0 + 1 : below + 1], target[r0:below])
        above = max(r0, 1)
        if r1 > above:                                                        # north
            cv2.accumulateProduct(c_v[above - 1 : r1 - 1], source[above - 1 : r1 - 1], target[above:r1])
        cv2.multiply(out, inv_den[r0:r1], dst=out)

    for _ in range(sweeps):
        _by_row_halves(sweep_rows, h, parallel)     # the halves read each other's edge rows of source only
        source, target = target, source
    if source is not t:
        np.copyto(t, source)
    return t


@functools.lru_cache(maxsize=4)
def _bilinear_weights(h: int, w: int, cell: int) -> tuple[np.ndarray, ...]:
    """Bilinear weights of the four cells around each pixel, as four float32 ``H x W`` arrays.

    Order: (upper-left, upper-right, lower-left, lower-right).  Cached per
    frame size: video frames share them.  Read-only.
    """
    frac_y = (((np.arange(h) + 0.5) / cell - 0.5) % 1.0).astype(np.float32)
    frac_x = (((np.arange(w) + 0.5) / cell - 0.5) % 1.0).astype(np.float32)
    out = []
    for wy in (1.0 - frac_y, frac_y):
        for wx in (1.0 - frac_x, frac_x):
            weights = np.ascontiguousarray(wy[:, None] * wx[None, :])
            weights.flags.writeable = False
            out.append(weights)
    return tuple(out)


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))
"""The 2 x 2 cells around a pixel, as (row, column) offsets: upper-left, upper-right, lower-left, lower-right."""


def _spread_cells(values: np.ndarray, cell: int, name: str) -> np.ndarray:
    """Nearest-neighbour upsampling of the edge-padded cell grid (a scratch buffer).

    The 2 x 2 cells around every fine pixel are then four shifted views of
    one array (see :func:`_upsampling_weights`).
    """
    rows, cols = values.shape
    padded = cv2.copyMakeBorder(values, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    return cv2.resize(padded, ((cols + 2) * cell, (rows + 2) * cell),
                      dst=_scratch(name, ((rows + 2) * cell, (cols + 2) * cell)), interpolation=cv2.INTER_NEAREST)


def _cell_view(spread: np.ndarray, corner: tuple[int, int], cell: int, h: int, w: int) -> np.ndarray:
    """``H x W`` view of :func:`_spread_cells`' output: each pixel's cell at ``corner``."""
    y0, x0 = cell // 2 + corner[0] * cell, cell // 2 + corner[1] * cell
    return spread[y0 : y0 + h, x0 : x0 + w]


def _upsampling_weights(spread_guide: np.ndarray, guide: np.ndarray, cell: int, range_sigma: float,
                        weights: tuple[np.ndarray, ...], inv_total: np.ndarray) -> None:
    """Joint bilateral upsampling weights of the 2 x 2 cells around each pixel, and one over their sum.

    Cell ``(I, J)`` sits at fine position ``((I + 0.5) k - 0.5, (J + 0.5) k - 0.5)``;
    the weight of a cell for a pixel is its bilinear weight times
    ``exp(-(guide - cell_guide)^2 / (2 range_sigma^2))``.  They need only the
    cells' guide values, not the coarse solution: :func:`_refine_fast`
    computes them during the coarse solve.

    Args:
        spread_guide: :func:`_spread_cells` of the float32 cell means of the guide.
        guide: float32 ``H x W`` full-resolution ``T_hat``.
        weights: four float32 ``H x W`` arrays for the weights, in :data:`_CORNERS` order.
        inv_total: float32 ``H x W`` array for one over their sum.
    """
    h, w = guide.shape
    bilinear = _bilinear_weights(h, w, cell)
    scale = -0.5 / (range_sigma * range_sigma)
    total = inv_total
    for index, corner in enumerate(_CORNERS):
        weight = weights[index]
        cv2.subtract(guide, _cell_view(spread_guide, corner, cell, h, w), dst=weight)
        cv2.multiply(weight, weight, dst=weight, scale=scale)
        cv2.exp(weight, dst=weight)
        cv2.multiply(weight, bilinear[index], dst=weight)
        if index == 0:
            np.copyto(total, weight)
        else:
            cv2.add(total, weight, dst=total)
    # The bilinear weights sum to 1 and, with guide values in [0, 1], a range
    # weight is at least exp(-1 / (2 range_sigma^2)) (8e-12 at sigma 0.14):
    # the floor only guards against a far smaller sigma.
    np.maximum(total, np.float32(1e-30), out=total)
    cv2.divide(1.0, total, dst=total)


def _joint_bilateral_upsample(spread_t: np.ndarray, weights: tuple[np.ndarray, ...], inv_total: np.ndarray,
                              cell: int, dst: np.ndarray, r0: int, r1: int) -> None:
    """Rows ``r0 .. r1 - 1`` of the upsampled cell values, with :func:`_upsampling_weights`' weights, into ``dst``.

    Args:
        spread_t: :func:`_spread_cells` of the float32 cell values.
        dst: float32 ``H x W``; the rows come out in ``[0, 1]``.
    """
    h, w = dst.shape
    out = dst[r0:r1]
    for index, corner in enumerate(_CORNERS):
        cell_t = _cell_view(spread_t, corner, cell, h, w)[r0:r1]
        if index == 0:
            cv2.multiply(weights[0][r0:r1], cell_t, dst=out)
        else:
            cv2.accumulateProduct(weights[index][r0:r1], cell_t, out)    # out += weight * t in one pass
    cv2.multiply(out, inv_total[r0:r1], dst=out)
    np.clip(out, 0.0, 1.0, out=out)


# ---------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------
RECOVER_CHUNK_PIXELS = 1 << 20
"""Recovery works on bands of rows of about this many pixels (bounded memory on huge images)."""


def recover_reflectance(rgb: np.ndarray, illumination: np.ndarray, *, gamma: float = 0.8,
                        denoise: bool = False, eps: float = EPS) -> np.ndarray:
    """``R = I / max(T, eps) ** gamma`` per channel, optionally denoised and recomposed.

    Args:
        rgb: ``H x W x 3`` uint8 RGB input ``I``.
        illumination: float ``H x W`` refined illumination ``T`` in ``[0, 1]``.
        gamma: gamma of the illumination.
        denoise: denoise ``R`` (OpenCV non-local means, strength from the
            estimated noise level) and recompose
            ``R * T + R_d * (1 - T)``: the denoised ``R_d`` dominates where the
            scene was darkest, where the division amplified noise most.

    Returns:
        ``H x W x 3`` uint8 RGB.
    """
    h, w = illumination.shape
    _scratch_for_frame((h, w))
    out = np.empty_like(rgb)

    def recover_rows(r0: int, r1: int) -> None:
        part = illumination[r0:r1]
        t = np.clip(part, eps, 1.0, out=_scratch("recover_t", part.shape), dtype=np.float32)
        gain = cv2.pow(t, -float(gamma), dst=t)
        gains = cv2.merge([gain, gain, gain], dst=_scratch("recover_gain", (*part.shape, 3)))
        cv2.multiply(rgb[r0:r1], gains, dst=out[r0:r1], dtype=cv2.CV_8U)

    band = max(1, RECOVER_CHUNK_PIXELS // max(w, 1))
    parallel = _use_helper(h * w)
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        _by_row_halves(functools.partial(_shifted_rows, recover_rows, y0), y1 - y0, parallel)
    if not denoise:
        return out
    denoised = _denoise(out)
    for y0 in range(0, h, band):
        rows = slice(y0, y0 + band)
        t = np.clip(illumination[rows].astype(np.float32), 0.0, 1.0)[:, :, None]
        mixed = out[rows].astype(np.float32) * t + denoised[rows].astype(np.float32) * (1.0 - t)
        out[rows] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


def _denoise(rgb: np.ndarray) -> np.ndarray:
    """Non-local means on a uint8 RGB image, strength set from its estimated noise level.

    OpenCV's coloured variant works in CIELAB: luma and chroma noise are
    both removed (amplified sensor noise in the dark is strongly coloured).
    The paper uses BM3D on the luma; NLM is the good denoiser our
    dependencies have.
    """
    noise = _estimate_noise(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    strength = float(np.clip(1.2 * noise, 3.0, 30.0))
    return cv2.fastNlMeansDenoisingColored(rgb, None, h=strength, hColor=strength,
                                           templateWindowSize=7, searchWindowSize=21)


def _estimate_noise(y: np.ndarray) -> float:
    """Noise standard deviation of a grey image (Immerkaer 1996 Laplacian estimator)."""
    if min(y.shape) < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = cv2.filter2D(y.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * np.abs(response).mean() / 6.0)


__all__ = [
    "EXACT_MAX_PIXELS",
    "enhance_low_light",
    "is_dark",
    "lime_system",
    "lime_weights",
    "max_rgb",
    "recover_reflectance",
    "refine_illumination_exact",
    "refine_illumination_fast",
]
