"""SRCNN (Dong, Loy, He & Tang, ECCV 2014 / TPAMI 2016), the 9-5-5 variant.

Runs on the luma channel of an image that was first upscaled with bicubic
interpolation.  Three convolutions -- patch extraction (9x9, 64 filters),
non-linear mapping (5x5, 32) and reconstruction (5x5, 1) -- with ``same``
padding, so the output has exactly the input's size (the paper's ``valid``
padding shrank the image by 16 pixels).

Two training details that are not in the paper but matter (see
``notes/references.md``): the network predicts the *residual* over the
bicubic input, and its input is centred (``Y/255 - 0.5``).  Both are inside
the graph's contract below, not in the weights.
"""

from __future__ import annotations

import keras
from keras import layers


def build_srcnn(filters: tuple[int, int] = (64, 32), kernels: tuple[int, int, int] = (9, 5, 5),
                name: str = "srcnn") -> keras.Model:
    """Build SRCNN.

    Input: ``(batch, H, W, 1)`` float32, bicubic-upscaled luma as ``Y/255 - 0.5``.
    Output: ``(batch, H, W, 1)`` float32, the restored luma in the same units
    (input plus the predicted residual).
    """
    inputs = keras.Input(shape=(None, None, 1), name="bicubic_luma")
    x = layers.Conv2D(filters[0], kernels[0], padding="same", activation="relu", name="extract")(inputs)
    x = layers.Conv2D(filters[1], kernels[1], padding="same", activation="relu", name="map")(x)
    residual = layers.Conv2D(1, kernels[2], padding="same", name="reconstruct",
                             kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3))(x)
    outputs = layers.Add(name="residual_add")([inputs, residual])
    return keras.Model(inputs, outputs, name=name)
