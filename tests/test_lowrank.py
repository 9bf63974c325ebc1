"""The separable SRCNN (pipeline/models/srcnn.py) and its SVD initialisation (pipeline/train/lowrank.py).

Random 9-5-5 weights made here, no ../shared and no shipped file needed.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from pipeline.models.srcnn import (
    build_srcnn,
    build_srcnn_for,
    macs_per_pixel,
    map_rank_of,
)
from pipeline.train.lowrank import separable_from_955, separable_kernels


@pytest.fixture(scope="module")
def weights_955(tmp_path_factory):
    """A 9-5-5 SRCNN with random (non-trivial) weights, saved like the trainer saves it."""
    import keras

    keras.utils.set_random_seed(3)
    net = build_srcnn()
    rng = np.random.default_rng(3)
    for layer in net.layers:
        if layer.weights:  # a visible residual and biases, not the near-zero initial ones
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in layer.get_weights()])
    path = tmp_path_factory.mktemp("srcnn") / "srcnn_955.weights.h5"
    net.save_weights(str(path))
    return path


def _luma(seed: int = 0, size: tuple[int, int] = (37, 41)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (1, *size, 1)).astype(np.float32)


def test_full_rank_separable_network_computes_the_955_network(weights_955):
    x = _luma()
    reference = np.asarray(build_srcnn_for(weights_955)(x, training=False))
    separable = separable_from_955(weights_955, 160)  # rank of the 320 x 160 kernel matrix: exact
    assert np.abs(reference - x).max() > 1e-2  # the residual is not trivially zero
    np.testing.assert_allclose(np.asarray(separable(x, training=False)), reference, atol=1e-5)


def test_truncation_error_falls_with_the_rank():
    kernel = np.random.default_rng(1).normal(size=(5, 5, 8, 6)).astype(np.float32)

    def error(rank: int) -> float:
        vertical, horizontal = separable_kernels(kernel, rank)
        assert vertical.shape == (5, 1, 8, rank) and horizontal.shape == (1, 5, rank, 6)
        composed = np.einsum("acr,brn->abcn", vertical[:, 0], horizontal[0])
        return float(np.linalg.norm(composed - kernel))

    errors = [error(r) for r in (1, 4, 12, 30)]
    assert all(a > b for a, b in itertools.pairwise(errors)) and errors[-1] < 1e-4
    with pytest.raises(ValueError, match="rank must be"):
        separable_kernels(kernel, 31)


def test_architecture_is_read_from_the_weights_file(weights_955, tmp_path):
    assert map_rank_of(weights_955) is None
    path = tmp_path / "srcnn_sep.weights.h5"
    separable_from_955(weights_955, 7).save_weights(str(path))
    assert map_rank_of(path) == 7
    assert build_srcnn_for(path).get_layer("map_vertical").kernel.shape == (5, 1, 64, 7)
    with pytest.raises(ValueError, match="not a 9-5-5 SRCNN"):
        separable_from_955(path, 4)


def test_cost_per_output_pixel():
    assert macs_per_pixel() == 81 * 64 + 25 * 64 * 32 + 25 * 32  # 9-5-5: 3.7 GMAC per 256 x 256
    assert macs_per_pixel(32) == 81 * 64 + 5 * 64 * 32 + 5 * 32 * 32 + 25 * 32
    assert macs_per_pixel(32) < 0.4 * macs_per_pixel()


def test_valid_export_graph_is_the_centre_of_the_same_network(weights_955):
    from pipeline.export_tflite import srcnn_halo, srcnn_valid_graph

    net = separable_from_955(weights_955, 12)
    halo = srcnn_halo(net)
    assert halo == srcnn_halo(build_srcnn_for(weights_955)) == 8
    x = _luma(1, (40, 52))
    expected = np.asarray(net(x, training=False))[:, halo:-halo, halo:-halo]
    got = np.asarray(srcnn_valid_graph(net, "valid")(x, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.slow
def test_training_starts_from_the_factorised_955_weights(weights_955, tmp_path):
    from test_train import _tiny_datasets

    from pipeline.train.__main__ import main

    _tiny_datasets(tmp_path / "data")
    assert main(["srcnn", "--scale", "2", "--steps", "2", "--batch", "2", "--threads", "1", "--map-rank", "8",
                 "--init", str(weights_955), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                 "--work", str(tmp_path / "work")]) == 0
    metrics = json.loads((tmp_path / "out" / "srcnn_x2.json").read_text())
    assert metrics["map_rank"] == 8 and metrics["macs_per_output_pixel"] == macs_per_pixel(8)
    assert metrics["init_from"]["file"] == weights_955.name and "SVD" in metrics["init_from"]["how"]
    assert {"Set5_psnr", "Set14_psnr"} <= set(metrics)
    assert map_rank_of(tmp_path / "out" / "srcnn_x2.weights.h5") == 8
