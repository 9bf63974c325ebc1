"""MATLAB-compatible bicubic resize, YCbCr and metrics (pipeline/imaging.py).

The resize is what makes SR numbers comparable with the literature, so its
MATLAB conventions are checked one by one: pixel-centre mapping, antialiased
kernel, symmetric borders, per-pass uint8 rounding, output size.  The real
Set5/Set14 baselines are checked in test_superres.py when ../shared exists.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.imaging import (imresize, modcrop, psnr, rgb_to_y, rgb_to_ycbcr, ssim,
                              variance_of_laplacian, ycbcr_to_rgb)


def test_output_size_is_ceil_of_scaled_size():
    x = np.zeros((10, 7), np.float64)
    assert imresize(x, 1 / 3).shape == (4, 3)
    assert imresize(x, 3).shape == (30, 21)
    assert imresize(np.zeros((10, 7, 3), np.uint8), 0.5).shape == (5, 4, 3)


def test_cubic_reproduces_linear_ramps_at_matlab_pixel_centres():
    # Keys' cubic reproduces linear functions exactly, so away from the borders
    # imresize of a ramp samples the ramp at MATLAB's output centres
    # u = x / s + 0.5 * (1 - 1 / s)  (1-based).
    ramp = np.arange(1, 61, dtype=np.float64)[None, :].repeat(12, axis=0)
    for s in (1 / 4, 1 / 3, 1 / 2, 2, 3, 4):
        out = imresize(ramp, s)[1]
        x = np.arange(1, out.size + 1)
        expected = x / s + 0.5 * (1 - 1 / s)
        interior = (expected > 8) & (expected < 52)
        np.testing.assert_allclose(out[interior], expected[interior], atol=1e-9)


def test_downscaling_is_antialiased():
    # A +-1 checkerboard at Nyquist: MATLAB's widened kernel averages it away;
    # an aliasing resize (OpenCV INTER_CUBIC) does not.
    board = (np.indices((48, 48)).sum(axis=0) % 2 * 2 - 1).astype(np.float64)
    ours = imresize(board, 1 / 3)
    theirs = cv2.resize(board, (16, 16), interpolation=cv2.INTER_CUBIC)
    assert np.abs(ours[2:-2, 2:-2]).max() < 0.15
    assert np.abs(theirs).max() > 0.5


def test_symmetric_border_keeps_constant_images_constant():
    x = np.full((9, 11, 3), 77, np.uint8)
    for s in (1 / 3, 2, 3, 4):
        out = imresize(x, s)
        assert out.dtype == np.uint8 and np.all(out == 77)


def test_uint8_is_rounded_and_clipped_float_is_not():
    x = np.zeros((12, 12), np.uint8)
    x[:, 6:] = 255
    up = imresize(x, 3)
    assert up.dtype == np.uint8 and up.min() == 0 and up.max() == 255
    upf = imresize(x.astype(np.float64), 3)
    assert upf.min() < 0 and upf.max() > 255  # cubic overshoot kept in float


def test_ycbcr_round_trip_and_matlab_luma():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb)
    assert rgb_to_y(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == 235
    assert rgb_to_y(np.array([[[0, 0, 0]]], np.uint8))[0, 0] == 16


def test_psnr_ssim_and_sharpness():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32), dtype=np.uint8).astype(np.float64)
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, a + 1) - 48.13) < 0.01
    assert ssim(a, a) == pytest.approx(1.0)
    smooth = np.add.outer(np.arange(32.0), np.arange(32.0)) * 4
    assert ssim(smooth, smooth + rng.normal(0, 20, a.shape)) < 0.9
    assert modcrop(np.zeros((10, 11)), 3).shape == (9, 9)
    sharp = np.zeros((40, 40, 3), np.uint8)
    sharp[:, 20:] = 255
    blurred = cv2.GaussianBlur(sharp, (9, 9), 3)
    assert variance_of_laplacian(sharp) > variance_of_laplacian(blurred)
