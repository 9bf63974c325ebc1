"""SRCNN (Dong, Loy, He & Tang, ECCV 2014 / TPAMI 2016): the 9-5-5 network and a lighter 9-(5x1,1x5)-5 variant.

Runs on the luma channel of an image that was first upscaled with bicubic
interpolation.  Three stages -- patch extraction (9x9, 64 filters),
non-linear mapping (5x5, 32) and reconstruction (5x5, 1) -- with ``same``
padding, so the output has exactly the input's size (the paper's ``valid``
padding shrank the image by 16 pixels).

Two training details that are not in the paper but matter (see
``notes/references.md``): the network predicts the *residual* over the
bicubic input, and its input is centred (``Y/255 - 0.5``).  Both are inside
the graph's contract below, not in the weights.

**The shipped variant** (``map_rank=r``) changes one thing from the paper: the
mapping stage's 5x5 64->32 convolution, 90 % of 9-5-5's 3.7 GMAC per 256x256
output, is factorised into a vertical 5x1 convolution 64->r (linear, no bias)
followed by a horizontal 1x5 convolution r->32 (bias, ReLU) -- the
spatially separable low-rank scheme of Jaderberg, Vedaldi & Zisserman (BMVC
2014, "scheme 2").  Its weights start from the SVD of the trained 9-5-5
mapping kernel (:func:`pipeline.train.lowrank.separable_from_955`) and are
then fine-tuned.  The network stays SRCNN -- same three stages, same
receptive field (17 px), same input and output -- at a third of the MACs, so a
64x64 crop at x4 fits the 50 ms budget on a 2-core CPU.  At full rank
(``r = 160``) it computes exactly what the 5x5 layer does.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

MAP_KERNEL = 5
"""Side of the mapping stage's (factorised) kernel."""


def build_srcnn(filters: tuple[int, int] = (64, 32), kernels: tuple[int, int, int] = (9, 5, 5),
                name: str = "srcnn", map_rank: int | None = None) -> keras.Model:
    """Build SRCNN; ``map_rank=None`` gives the paper's 9-5-5, an int the separable mapping of rank ``map_rank``.

    Input: ``(batch, H, W, 1)`` float32, bicubic-upscaled luma as ``Y/255 - 0.5``.
    Output: ``(batch, H, W, 1)`` float32, the restored luma in the same units
    (input plus the predicted residual).
    """
    inputs = keras.Input(shape=(None, None, 1), name="bicubic_luma")
    x = layers.Conv2D(filters[0], kernels[0], padding="same", activation="relu", name="extract")(inputs)
    if map_rank is None:
        x = layers.Conv2D(filters[1], kernels[1], padding="same", activation="relu", name="map")(x)
    else:
        # Linear in between: the product of the two kernels is a rank-r 5x5 kernel, as in the paper's layer.
        x = layers.Conv2D(map_rank, (kernels[1], 1), padding="same", use_bias=False, name="map_vertical")(x)
        x = layers.Conv2D(filters[1], (1, kernels[1]), padding="same", activation="relu", name="map_horizontal")(x)
    residual = layers.Conv2D(1, kernels[2], padding="same", name="reconstruct",
                             kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3))(x)
    outputs = layers.Add(name="residual_add")([inputs, residual])
    return keras.Model(inputs, outputs, name=name)


def map_rank_of(weights_file: str | Path) -> int | None:
    """The ``map_rank`` of the SRCNN stored in a Keras 3 ``.weights.h5`` file (``None``: 9-5-5).

    The file is the truth about its architecture (a Hub or user-supplied file
    may differ from the bundled JSON): 9-5-5 holds three convolution kernels,
    the separable variant four, the second of shape ``(5, 1, 64, r)``.
    """
    import h5py

    with h5py.File(weights_file, "r") as handle:
        if "layers" not in handle:
            raise ValueError(f"{weights_file}: not a Keras 3 .weights.h5 file (no 'layers' group)")
        kernels = []
        # Only the layers' kernels: a training checkpoint also holds Adam's moments, shaped alike.
        handle["layers"].visititems(lambda path, obj: kernels.append((path, obj.shape))
                                    if isinstance(obj, h5py.Dataset) and len(obj.shape) == 4 else None)
    kernels.sort(key=lambda item: _layer_order(item[0]))
    if len(kernels) == 3:
        return None
    if len(kernels) == 4 and kernels[1][1][:2] == (MAP_KERNEL, 1):
        return int(kernels[1][1][3])
    raise ValueError(f"{weights_file}: not an SRCNN weights file (kernels {[shape for _, shape in kernels]})")


def _layer_order(path: str) -> int:
    """Keras 3 stores a model's layers as ``conv2d``, ``conv2d_1``, ... in build order."""
    suffix = path.split("/")[0].rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def build_srcnn_for(weights_file: str | Path) -> keras.Model:
    """SRCNN with the architecture of ``weights_file`` (9-5-5 or separable), weights loaded."""
    net = build_srcnn(map_rank=map_rank_of(weights_file))
    net.load_weights(str(weights_file))
    return net


def macs_per_pixel(map_rank: int | None = None, filters: tuple[int, int] = (64, 32),
                   kernels: tuple[int, int, int] = (9, 5, 5)) -> int:
    """Multiply-accumulates per output pixel (``same`` padding): 57,184 for 9-5-5."""
    extract = kernels[0] ** 2 * filters[0]
    if map_rank is None:
        mapping = kernels[1] ** 2 * filters[0] * filters[1]
    else:
        mapping = kernels[1] * filters[0] * map_rank + kernels[1] * map_rank * filters[1]
    return extract + mapping + kernels[2] ** 2 * filters[1]


def separable_kernels(kernel: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a ``(k, k, C, N)`` kernel into ``(k, 1, C, rank)`` and ``(1, k, rank, N)`` float32 kernels.

    The kernel read as the matrix ``M[(kh, c), (kw, n)]`` (``kC x kN``) is
    replaced by its best rank-``rank`` approximation (truncated SVD, Jaderberg
    et al. 2014, scheme 2): a vertical ``k x 1`` convolution ``C -> rank``
    followed by a horizontal ``1 x k`` one ``rank -> N``; exact at
    ``rank = min(kC, kN)``.
    """
    k, k2, channels, filters = kernel.shape
    if k != k2:
        raise ValueError(f"square kernels only, not {kernel.shape}")
    if not 1 <= rank <= min(k * channels, k * filters):
        raise ValueError(f"rank must be 1..{min(k * channels, k * filters)}, not {rank}")
    matrix = kernel.astype(np.float64).transpose(0, 2, 1, 3).reshape(k * channels, k * filters)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    root = np.sqrt(s[:rank])
    vertical = (u[:, :rank] * root).reshape(k, channels, rank)[:, None]
    horizontal = (root[:, None] * vt[:rank]).reshape(rank, k, filters).transpose(1, 0, 2)[None]
    return vertical.astype(np.float32), horizontal.astype(np.float32)
