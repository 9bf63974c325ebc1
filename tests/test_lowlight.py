"""Tests for pipeline/stages/lowlight.py (LIME low-light enhancement).

All images are generated here (seeded): no files, no network, no ../shared.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from pipeline.core import Pipeline
from pipeline.errors import InputError
from pipeline.stages import STAGES, lowlight
from pipeline.stages.lowlight import (
    EXACT_MAX_PIXELS,
    enhance_low_light,
    is_dark,
    lime_system,
    lime_weights,
    max_rgb,
    refine_illumination_exact,
    refine_illumination_fast,
)

STREET_LIGHT_SIZES = [(120, 160), (150, 200), (125, 171)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def night_scene(h: int, w: int, seed: int) -> np.ndarray:
    """A synthetic dark street: dim gradient, a few glowing lights, textured albedo, sensor noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    light = 0.04 + 0.05 * xx / w
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 12)
        light += 0.8 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (3 * r) ** 2))
    albedo = 0.5 + 0.3 * cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)), (0, 0), 3)
    albedo[h // 3 : h // 3 + h // 4, w // 4 : w // 2] = 0.9
    colour = np.stack([albedo * 0.9, albedo, albedo * 0.8], axis=2)
    img = np.clip(colour * light[:, :, None], 0, 1) + rng.normal(0, 2 / 255, (h, w, 3))
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# the exact solver
# ---------------------------------------------------------------------------
def test_constant_image_stays_constant():
    """Zero gradients: T = T_hat everywhere, so R = c / c**gamma = c**(1 - gamma), still constant."""
    for value in (5, 40, 200):
        rgb = np.full((9, 11, 3), value, np.uint8)
        out = enhance_low_light(rgb, method="exact")
        expected = round(255 * (value / 255) ** (1 - 0.8))
        assert np.all(out == expected)


def test_two_pixel_system_by_hand():
    """1 x 2 image [a, b]: one edge, W~ = 1 / (|b - a| + eps)^2, closed-form 2 x 2 solve."""
    a, b = 0.2, 0.6
    t_hat = np.array([[a, b]])
    alpha, eps = 0.15, lowlight.EPS
    c = alpha / (abs(b - a) + eps) ** 2   # the Gaussian window over a single gradient is the gradient
    expected = np.array([(1 + c) * a + c * b, c * a + (1 + c) * b]) / (1 + 2 * c)
    matrix = lime_system(t_hat, alpha=alpha).toarray()
    np.testing.assert_allclose(matrix, [[1 + c, -c], [-c, 1 + c]], rtol=1e-12)
    np.testing.assert_allclose(refine_illumination_exact(t_hat, alpha=alpha).ravel(), expected, rtol=1e-10)


def test_system_is_symmetric_with_unit_row_sums_and_solved_to_tolerance():
    rng = np.random.default_rng(1)
    t_hat = rng.uniform(0, 1, (13, 17))
    matrix = lime_system(t_hat)
    assert matrix.shape == (13 * 17, 13 * 17)
    assert abs(matrix - matrix.T).max() == 0
    np.testing.assert_allclose(matrix @ np.ones(13 * 17), 1.0, rtol=1e-9)
    assert matrix.getnnz(axis=1).max() <= 5
    t = refine_illumination_exact(t_hat)
    residual = np.linalg.norm(matrix @ t.ravel() - t_hat.ravel()) / np.linalg.norm(t_hat)
    assert residual < 1e-10
    # M-matrix with unit row sums: the solution stays within the data's range.
    assert t_hat.min() - 1e-12 <= t.min() and t.max() <= t_hat.max() + 1e-12


def test_weights_follow_strategy_three():
    """Flat region -> 1 / eps^2; a consistent step -> small weight across it."""
    t_hat = np.zeros((20, 20))
    t_hat[:, 10:] = 1.0
    wh, wv = lime_weights(t_hat, sigma=2.0)
    assert wh.shape == (20, 19) and wv.shape == (19, 20)
    np.testing.assert_allclose(wv, 1.0 / lowlight.EPS**2)
    across = wh[:, 9]
    assert np.all(across < 10.0)          # |grad| = 1 and a strong smoothed gradient
    assert wh[:, 0].min() > 1e5           # far from the step


def test_exact_smooths_noise_but_keeps_a_strong_edge():
    rng = np.random.default_rng(2)
    t_hat = np.full((32, 32), 0.1)
    t_hat[:, 16:] = 0.8
    noisy = np.clip(t_hat + rng.normal(0, 0.01, t_hat.shape), 0, 1)
    t = refine_illumination_exact(noisy)
    assert t[:, :14].std() < noisy[:, :14].std() / 3
    assert t[:, 18:].mean() - t[:, :14].mean() > 0.5   # most of the 0.7 step survives


# ---------------------------------------------------------------------------
# the fast solver against the exact one
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [(96, 128), (120, 160), (99, 150), (101, 133)])
def test_fast_matches_exact_on_small_images(seed, size):
    rgb = night_scene(*size, seed)
    exact = enhance_low_light(rgb, method="exact")
    fast = enhance_low_light(rgb, method="fast")
    assert psnr(fast, exact) >= 32.0


def street_light(h: int, w: int, seed: int) -> np.ndarray:
    """A lamp with a hard rim over a very dark, noisy street, plus a lit window and a thin lit pole.

    The case that leaked light before the access resistances (20.8 dB at
    120 x 160): the 8 x 8 cells cut by the lamp's rim bridged the lamp and
    the dark street, brightening the whole background by ~40 %.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    grey = np.full((h, w), 0.03) + 0.02 * xx / w
    cy, cx, r = h * 0.35, w * 0.55, min(h, w) * 0.18
    lamp = ((yy - cy) / r) ** 2 + ((xx - cx) / (1.3 * r)) ** 2 <= 1.0
    grey[lamp] = 0.85 + 0.1 * np.sin(xx[lamp] / 3.0)
    grey[int(h * 0.7) : int(h * 0.85), int(w * 0.1) : int(w * 0.3)] = 0.6
    grey[:, int(w * 0.8) : int(w * 0.8) + 2] = 0.5
    grey += rng.normal(0, 3 / 255, (h, w))
    rgb = np.stack([grey, grey * 0.8, grey * 0.5], axis=2)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("size", STREET_LIGHT_SIZES)
def test_fast_matches_exact_around_a_hard_edged_street_light(seed, size):
    rgb = street_light(*size, seed)
    exact = enhance_low_light(rgb, method="exact")
    fast = enhance_low_light(rgb, method="fast")
    assert psnr(fast, exact) >= 32.0


def test_light_does_not_leak_into_the_dark_background():
    """Far from the lamp, the fast illumination of the dark street stays within 10 % of the exact one."""
    rgb = street_light(120, 160, 2)
    t_hat = max_rgb(rgb)
    fast = refine_illumination_fast(t_hat)
    exact = refine_illumination_exact(t_hat / 255.0)
    far = np.zeros(t_hat.shape, bool)
    far[90:, 60:120] = True          # street below the lamp, right of the window, left of the pole
    assert abs(fast[far].mean() / exact[far].mean() - 1.0) < 0.10


def test_access_resistance_by_hand():
    """Cells of 4 along one line of 8 pixels, nodes at pixels 2 and 6: distances along the line."""
    line = np.array([[1.0], [2.0], [4.0], [8.0], [16.0], [32.0], [64.0]], np.float32)   # edge y joins y, y+1
    expected = [3, 2, 0, 4, 48, 32, 0, 64]
    np.testing.assert_allclose(lowlight._access_resistance(line, 4, axis=0).ravel(), expected)
    np.testing.assert_allclose(lowlight._access_resistance(line.T, 4, axis=1).ravel(), expected)


def test_resistance_to_the_node_beside_by_hand():
    """Cells of 4 along one column of 8 pixels, node rows 2 and 6: upper pixels reach the node above, lower the one below."""
    strong_v = np.array([[1.0], [2.0], [4.0], [8.0], [16.0], [32.0], [64.0]], np.float32)  # edge y joins y, y+1
    to_node_row = np.array([[100.0], [200.0]], np.float32)      # walk along node rows 2 and 6
    beside = lowlight._resistance_to_node_beside(strong_v, to_node_row, 4).ravel()
    # rows 0-2: no cell above / own node row; row 3: down 8 + 16 + 32 = 56 to row 6, plus 200
    # rows 4, 5: up to row 2 (4 + 8, 4 + 8 + 16) plus 100; rows 6, 7: own node row / no cell below
    assert beside[3] == pytest.approx(256.0) and beside[4] == pytest.approx(112.0) and beside[5] == pytest.approx(128.0)
    assert all(beside[i] >= 1e29 for i in (0, 1, 2, 6, 7))


def test_split_data_weight_is_the_schur_complement():
    """A pixel tied to two nodes by R1, R2: eliminating it leaves g_i / (1 + g1 + g2) on node i."""
    r1 = np.array([[0.0, 0.5, 2.0, 3.0, 1e30]], np.float32)
    r2 = np.array([[0.0, 1e30, 0.25, 3.0, 0.5]], np.float32)
    w1, w2 = lowlight._split_data_weight(r1.copy(), r2.copy())
    g1, g2 = 1.0 / np.maximum(r1.astype(np.float64), 1e-9), 1.0 / np.maximum(r2.astype(np.float64), 1e-9)
    np.testing.assert_allclose(w1, g1 / (1 + g1 + g2), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(w2, g2 / (1 + g1 + g2), rtol=1e-5, atol=1e-12)
    assert w1[0, 0] == pytest.approx(0.5) and w1[0, 1] == pytest.approx(1 / 1.5)   # flat: even split; alone: 1 / (1 + R)


def skyline(h: int, w: int, seed: int, horizon: int, band: int) -> np.ndarray:
    """A dark, noisy sky with a glow over a line of pixel-sized city lights, a dim city with point lights below.

    The lights sit a few pixels inside a row of cells (DICM/08's geometry):
    the cells are cut by the horizon, and the sky above must get its light
    across it.
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(h)[:, None].astype(np.float64)
    level = np.repeat(np.where(rows < horizon, 0.006 + 0.02 * np.exp((rows - horizon) / 8.0), 0.12), w, axis=1)
    level[horizon : horizon + band] = rng.uniform(0.3, 0.9, (band, w))
    for _ in range(h * w // 40):
        level[rng.integers(horizon + band, h), rng.integers(0, w)] = rng.uniform(0.3, 1.0)
    img = level[:, :, None] * np.array([1.0, 0.8, 0.5]) + rng.normal(0, 1.5 / 255, (h, w, 3))
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def test_sky_over_a_line_of_small_lights(monkeypatch):
    """Cells cut by a line of lights smaller than a cell: the sky above still gets the exact light level.

    Without the data-weight split to the neighbouring cell row, the sky's
    pixels in the cut cells are dropped (cut off from their node) and the
    sky gets too little light: about 32 dB there instead of 45.
    """
    rgb = skyline(96, 128, 3, horizon=42, band=5)
    exact = enhance_low_light(rgb, method="exact")
    fast = enhance_low_light(rgb)
    assert psnr(fast, exact) >= 36.0
    assert psnr(fast[:40], exact[:40]) >= 40.0
    monkeypatch.setattr(lowlight, "_resistance_to_node_beside",
                        lambda strong_v, to_node_row, cell, r0, r1: np.full(((r1 - r0) * cell, strong_v.shape[1]),
                                                                            lowlight._OPEN, np.float32))
    assert psnr(enhance_low_light(rgb)[:40], exact[:40]) < 36.0


def test_jacobi_sweep_is_a_convex_local_update():
    rng = np.random.default_rng(8)
    t_hat = rng.uniform(0, 1, (20, 30)).astype(np.float32)
    res_h, res_v = lowlight._edge_resistances(t_hat, 0.15, 2.0, lowlight.EPS)
    start = np.full_like(t_hat, 0.5)
    inv_den = np.empty_like(t_hat)
    c_h, c_v = lowlight._jacobi_terms(res_h, res_v, inv_den)
    out = lowlight._jacobi_sweeps(start.copy(), t_hat, c_h, c_v, inv_den, sweeps=1)
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    exact = refine_illumination_exact(t_hat.astype(np.float64))
    matrix = lime_system(t_hat.astype(np.float64))
    residual = lambda t: np.linalg.norm(matrix @ t.ravel().astype(np.float64) - t_hat.ravel())
    assert residual(out) < residual(start)
    assert np.abs(out - exact).mean() < np.abs(start - exact).mean()


def test_partial_border_cells_are_as_good_as_the_rest():
    """Sizes that are not multiples of the cell: padding must not couple the border pixels."""
    rgb = night_scene(99, 150, 1)
    exact = enhance_low_light(rgb, method="exact")
    fast = enhance_low_light(rgb)
    assert psnr(fast[:, -6:], exact[:, -6:]) >= 35.0
    assert psnr(fast[-3:], exact[-3:]) >= 35.0


def test_fast_illumination_is_close_and_bounded():
    rgb = night_scene(120, 160, 5)
    t_hat = max_rgb(rgb)
    fast = refine_illumination_fast(t_hat)
    exact = refine_illumination_exact(t_hat / 255.0)
    assert fast.dtype == np.float32 and fast.shape == t_hat.shape
    assert 0.0 <= fast.min() and fast.max() <= 1.0
    assert np.abs(fast - exact).mean() < 0.01


def test_fast_results_do_not_depend_on_earlier_calls():
    """Scratch buffers are reused between calls: no result may carry anything over, or be overwritten later."""
    first, second = night_scene(96, 128, 11), night_scene(96, 128, 12)
    lowlight._scratch_buffers().clear()
    fresh = enhance_low_light(second)
    illumination = refine_illumination_fast(max_rgb(second))
    kept = illumination.copy()
    enhance_low_light(first)
    refine_illumination_fast(max_rgb(first))
    assert np.array_equal(enhance_low_light(second), fresh)
    assert np.array_equal(illumination, kept)          # the returned map is the caller's


def test_fast_solver_is_thread_safe():
    """Each thread has its own scratch buffers: concurrent calls give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    images = [night_scene(96, 128, seed) for seed in (21, 22, 23, 24)] * 3
    expected = [enhance_low_light(rgb) for rgb in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(enhance_low_light, images))
    assert all(np.array_equal(a, b) for a, b in zip(results, expected))


def test_only_a_few_threads_keep_scratch_buffers(monkeypatch):
    """A server's pool of many threads must not each hold a frame's worth of buffers."""
    import threading

    monkeypatch.setattr(lowlight, "SCRATCH_MAX_THREADS", 1)
    monkeypatch.setattr(lowlight, "_scratch_owners", __import__("weakref").WeakSet())
    rgb = night_scene(96, 128, 31)
    lowlight._scratch_store.frame = None
    expected = enhance_low_light(rgb)                  # this thread takes the one place
    assert lowlight._scratch_buffers()
    seen = {}

    def other() -> None:
        seen["result"] = enhance_low_light(rgb)
        seen["kept"] = len(lowlight._scratch_buffers())

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    assert seen["kept"] == 0 and np.array_equal(seen["result"], expected)


# ---------------------------------------------------------------------------
# the helper thread
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(96, 128), (99, 150), (130, 97), (16, 300)])
def test_helper_thread_gives_the_one_thread_result(monkeypatch, shape):
    """Bands of rows on two threads compute exactly what one thread does (with and without partial cells)."""
    rgb = night_scene(*shape, 41)
    monkeypatch.setattr(lowlight, "PARALLEL_MIN_PIXELS", 10**12)
    alone = refine_illumination_fast(max_rgb(rgb))
    alone_enhanced = enhance_low_light(rgb)
    jobs = []
    helper_job = lowlight._as_helper_job
    monkeypatch.setattr(lowlight, "_as_helper_job", lambda frame, job: jobs.append(frame) or helper_job(frame, job))
    monkeypatch.setattr(lowlight, "PARALLEL_MIN_PIXELS", 0)
    shared = refine_illumination_fast(max_rgb(rgb))
    assert jobs and all(frame == shape for frame in jobs)      # the helper did take part
    assert np.array_equal(shared, alone)
    assert np.array_equal(enhance_low_light(rgb), alone_enhanced)


def test_callers_sharing_the_helper_get_their_own_results(monkeypatch):
    """Several threads at once queue their halves on the one helper: no job may see another caller's buffers."""
    from concurrent.futures import ThreadPoolExecutor

    images = [night_scene(96, 128, seed) for seed in (61, 62)] + [night_scene(99, 150, 63), night_scene(64, 200, 64)]
    monkeypatch.setattr(lowlight, "PARALLEL_MIN_PIXELS", 0)
    expected = [enhance_low_light(rgb) for rgb in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(enhance_low_light, images * 4))
    assert all(np.array_equal(a, b) for a, b in zip(results, expected * 4))


def test_helper_errors_reach_the_caller_once_both_jobs_have_ended():
    order = []

    def failing_helper_job() -> None:
        time.sleep(0.05)
        order.append("helper")
        raise ValueError("from the helper")

    with pytest.raises(ValueError, match="from the helper"):
        lowlight._run_pair(lambda: order.append("caller"), failing_helper_job, parallel=True)

    def failing_caller_job() -> None:
        raise KeyError("from the caller")

    with pytest.raises(KeyError):
        lowlight._run_pair(failing_caller_job, lambda: time.sleep(0.05) or order.append("slow helper"), parallel=True)
    assert order == ["caller", "helper", "slow helper"]     # the caller waited for the helper before raising


def test_the_helper_is_replaced_after_a_fork():
    """A forked child must not submit to the parent's helper thread (it did not survive the fork: a hang)."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")

    script = textwrap.dedent("""
        import os, signal, sys
        import numpy as np
        from pipeline.stages import lowlight
        lowlight.PARALLEL_MIN_PIXELS = 0
        rgb = np.random.default_rng(0).integers(0, 60, (64, 80, 3), dtype=np.uint8)
        expected = lowlight.enhance_low_light(rgb)          # starts the helper thread
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)                                # a hang fails instead of stalling the tests
            os._exit(0 if np.array_equal(lowlight.enhance_low_light(rgb), expected) else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("shape", [(6, 6), (9, 6), (6, 9), (13, 13), (60, 80), (31, 7)])
def test_red_black_reduction_solves_the_grid_exactly(monkeypatch, shape):
    """Eliminating the red cells first gives the direct solution, on even and odd widths and wild weights."""
    rng = np.random.default_rng(12)
    diag, east, south, rhs = grid_system(rng, shape, rng.uniform(0.01, 1, shape), wild=True)
    expected = lowlight._solve_grid_system_sparse(diag, east, south, rhs)
    red_black = lowlight._solve_grid_system(diag, east, south, rhs)
    monkeypatch.setattr(lowlight, "RED_BLACK_MIN_WIDTH", 10**9)
    banded = lowlight._solve_grid_system(diag, east, south, rhs)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(red_black, expected, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(banded, expected, rtol=0, atol=1e-9 * scale)


def test_coarse_solve_without_the_ctypes_route_is_the_same(monkeypatch):
    """SciPy exports the banded Cholesky with the expected signature; its f2py wrappers give the same solution."""
    assert lowlight._lapack_without_gil("dpbtrf") is not None and lowlight._lapack_without_gil("dtbtrs") is not None
    diag, east, south, rhs = grid_system(np.random.default_rng(9), (9, 13), 0.5)
    through_ctypes = lowlight._solve_grid_system(diag, east, south, rhs)
    monkeypatch.setattr(lowlight, "_lapack_without_gil", lambda name: None)
    np.testing.assert_allclose(lowlight._solve_grid_system(diag, east, south, rhs), through_ctypes, rtol=1e-12)


def test_resistance_to_the_node_beside_by_bands_of_cell_rows():
    """Each band of cell rows gets its rows of the whole-frame result."""
    rng = np.random.default_rng(10)
    strong_v = rng.uniform(0, 2, (5 * 8 - 1, 7)).astype(np.float32)
    to_node_row = rng.uniform(0, 2, (5, 7)).astype(np.float32)
    whole = lowlight._resistance_to_node_beside(strong_v, to_node_row, 8).copy()
    bands = [lowlight._resistance_to_node_beside(strong_v, to_node_row, 8, r0, r1).copy()
             for r0, r1 in ((0, 2), (2, 3), (3, 5))]
    assert np.array_equal(np.concatenate(bands), whole)


def test_fast_cell_override_and_tiny_images_use_exact():
    rgb = night_scene(40, 40, 3)   # below FAST_EXACT_BELOW: solved exactly
    assert np.array_equal(enhance_low_light(rgb), enhance_low_light(rgb, method="exact"))
    t_hat = max_rgb(night_scene(96, 128, 4))
    coarse = refine_illumination_fast(t_hat, cell=16)
    assert coarse.shape == t_hat.shape and np.isfinite(coarse).all()


def grid_system(rng: np.random.Generator, shape: tuple[int, int], data_weight: float | np.ndarray = 1.0,
                wild: bool = False) -> tuple[np.ndarray, ...]:
    """A random coarse system ``(diag, east, south, rhs)`` as :func:`lowlight._solve_grid_system` takes it.

    ``wild``: a fifth of the links nearly cut, a fifth nearly shorted, as around street lights.
    """
    east, south = rng.uniform(0, 50, shape), rng.uniform(0, 50, shape)
    if wild:
        east[rng.random(shape) < 0.2] *= 1e-6
        south[rng.random(shape) < 0.2] *= 1e5
    east[:, -1], south[-1, :] = 0, 0
    diag = data_weight + east + south
    diag[:, 1:] += east[:, :-1]
    diag[1:, :] += south[:-1, :]
    return diag, east, south, rng.uniform(0, 1, shape)


def test_grid_solver_matches_sparse_solve():
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(6)
    for rows, cols in ((7, 11), (11, 7), (1, 9), (9, 1)):
        diag, east, south, rhs = grid_system(rng, (rows, cols))
        x = lowlight._solve_grid_system(diag, east, south, rhs)
        n = rows * cols
        matrix = sp.diags([diag.ravel(), -east.ravel()[:-1], -east.ravel()[:-1],
                           -south.ravel()[: n - cols], -south.ravel()[: n - cols]],
                          [0, 1, -1, cols, -cols], shape=(n, n), format="csc") if rows > 1 and cols > 1 else None
        if matrix is not None:
            np.testing.assert_allclose(x.ravel(), spla.spsolve(matrix, rhs.ravel()), rtol=1e-9, atol=1e-12)
        assert x.shape == (rows, cols) and np.isfinite(x).all()


# ---------------------------------------------------------------------------
# the stage: output, denoising, auto mode
# ---------------------------------------------------------------------------
def test_enhancement_brightens_a_dark_scene():
    rgb = night_scene(120, 160, 1)
    out = enhance_low_light(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert out.mean() > 1.5 * rgb.mean()


def test_denoise_reduces_noise_in_dark_flat_regions():
    rng = np.random.default_rng(7)
    clean = np.full((96, 128, 3), 20.0)
    noisy = np.clip(np.rint(clean + rng.normal(0, 3, clean.shape)), 0, 255).astype(np.uint8)
    plain = enhance_low_light(noisy)
    denoised = enhance_low_light(noisy, denoise=True)
    assert denoised.shape == plain.shape and denoised.dtype == np.uint8
    assert denoised[8:-8, 8:-8].astype(float).std() < 0.7 * plain[8:-8, 8:-8].astype(float).std()
    assert abs(denoised.mean() - plain.mean()) < 5


def test_is_dark_documented_thresholds():
    dark, note = is_dark(np.full((10, 10, 3), 31, np.uint8))
    assert dark and note == "dark: mean luma 31 < 60"
    bright, note = is_dark(np.full((10, 10, 3), 128, np.uint8))
    assert not bright and "bright enough" in note
    # A night scene with a few lamps: mean pulled over 60, median still black.
    lamps = np.zeros((100, 100, 3), np.uint8)
    lamps[:30] = 250
    fire, note = is_dark(lamps)
    assert fire and note.startswith("dark: median luma 0 < 40")


def _lowlight_only_pipeline() -> Pipeline:
    spec = next(s for s in STAGES if s.name == "lowlight")
    return Pipeline(stages=(spec,), detector=lambda rgb: [])


def test_registry_entry_is_ready():
    spec = next(s for s in STAGES if s.name == "lowlight")
    assert spec.run is enhance_low_light and spec.auto_test is is_dark
    assert spec.reason_unavailable() is None and spec.target == "frame"


def test_auto_mode_leaves_bright_images_unchanged():
    rng = np.random.default_rng(8)
    bright = rng.integers(90, 255, (60, 80, 3), dtype=np.uint8)
    result = _lowlight_only_pipeline().run(bright, enabled={"lowlight": "auto"})
    stage = next(s for s in result.stages if s.name == "lowlight")
    assert not stage.fired and "bright enough" in stage.note
    assert result.frame is result.raw or np.array_equal(result.frame, bright)


def test_auto_mode_fires_on_dark_frames_and_says_why():
    dark = night_scene(96, 128, 5)
    result = _lowlight_only_pipeline().run(dark, enabled={"lowlight": "auto"})
    stage = next(s for s in result.stages if s.name == "lowlight")
    assert stage.fired and stage.note.startswith("dark:")
    assert result.frame.mean() > dark.mean()


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fast", "exact"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (9, 1, 3), (1, 300, 3), (300, 1, 3), (2, 2, 3), (70, 5, 3)])
@pytest.mark.parametrize("value", [0, 255, 17])
def test_degenerate_images(method, shape, value):
    rgb = np.full(shape, value, np.uint8)
    out = enhance_low_light(rgb, method=method)
    assert out.shape == shape and out.dtype == np.uint8
    expected = round(255 * (value / 255) ** 0.2)
    assert np.all(out == expected)   # black stays black, white stays white, constants stay constant


@pytest.mark.parametrize("method", ["fast", "exact"])
def test_black_and_white_frames_and_extreme_contrast(method):
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[20:40, 30:60] = 255
    out = enhance_low_light(rgb, method=method)
    assert np.all(out[rgb == 0] == 0) and np.all(out[rgb == 255] == 255)
    for dark in (False, True):
        assert is_dark(np.full((4, 4, 3), 0 if dark else 255, np.uint8))[0] is dark


def test_random_noise_is_finite():
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    for method in ("fast", "exact"):
        out = enhance_low_light(rgb, method=method)
        assert out.shape == rgb.shape and out.dtype == np.uint8


@pytest.mark.slow
def test_huge_frame_is_bounded_in_time():
    rng = np.random.default_rng(10)
    rgb = rng.integers(0, 40, (3000, 4000, 3), dtype=np.uint8)   # 12 MP
    start = time.perf_counter()
    out = enhance_low_light(rgb)
    assert out.shape == rgb.shape
    assert time.perf_counter() - start < 20.0


def test_exact_refuses_frames_over_its_limit():
    rgb = np.zeros((1, EXACT_MAX_PIXELS + 1, 3), np.uint8)
    with pytest.raises(InputError, match="method='fast'"):
        enhance_low_light(rgb, method="exact")


@pytest.mark.parametrize("kwargs", [{"method": "magic"}, {"alpha": -1}, {"gamma": 1.5}, {"gamma": float("nan")},
                                    {"sigma": -2}, {"alpha": "0.1"}])
def test_bad_parameters_raise_input_error(kwargs):
    with pytest.raises(InputError):
        enhance_low_light(np.zeros((8, 8, 3), np.uint8), **kwargs)


def test_bad_arrays_raise_input_error():
    with pytest.raises(InputError):
        enhance_low_light(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(InputError):
        enhance_low_light(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(InputError):
        is_dark(np.zeros((8,), np.uint8))


def test_grey_and_float_inputs_are_converted():
    grey = np.full((16, 16), 20, np.uint8)
    assert enhance_low_light(grey).shape == (16, 16, 3)
    as_float = np.full((16, 16, 3), 20 / 255, np.float32)
    np.testing.assert_array_equal(enhance_low_light(as_float), enhance_low_light(np.full((16, 16, 3), 20, np.uint8)))
