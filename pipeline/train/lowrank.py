"""Initialise the separable SRCNN from trained 9-5-5 weights (Jaderberg et al. 2014, scheme 2).

The 5x5 mapping kernel ``W[kh, kw, c, n]`` (64 -> 32) is read as the matrix
``M[(kh, c), (kw, n)]`` (320 x 160).  Its truncated SVD ``M ~ U_r S_r V_r^T``
gives a vertical 5x1 kernel 64 -> r (``U_r sqrt(S_r)``) followed by a
horizontal 1x5 kernel r -> 32 (``sqrt(S_r) V_r^T``) whose composition is the
best rank-r approximation of the layer (in the Frobenius norm of ``M``);
at r = 160 it is exact.  The other layers and the bias are copied.
"""

from __future__ import annotations

from pathlib import Path

from ..models.srcnn import build_srcnn, build_srcnn_for, map_rank_of, separable_kernels


def separable_from_955(weights_955: str | Path, rank: int):
    """A separable SRCNN (``map_rank=rank``) initialised from a trained 9-5-5 ``.weights.h5`` file."""
    if map_rank_of(weights_955) is not None:
        raise ValueError(f"{weights_955} is not a 9-5-5 SRCNN (its mapping layer is already separable)")
    source = build_srcnn_for(weights_955)
    net = build_srcnn(map_rank=rank)
    net.get_layer("extract").set_weights(source.get_layer("extract").get_weights())
    kernel, bias = source.get_layer("map").get_weights()
    vertical, horizontal = separable_kernels(kernel, rank)
    net.get_layer("map_vertical").set_weights([vertical])
    net.get_layer("map_horizontal").set_weights([horizontal, bias])
    net.get_layer("reconstruct").set_weights(source.get_layer("reconstruct").get_weights())
    return net


__all__ = ["separable_from_955", "separable_kernels"]
