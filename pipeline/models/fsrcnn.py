"""The fast super-resolution model: FSRCNN's body with an ESPCN sub-pixel output.

FSRCNN (Dong, Loy & Tang, ECCV 2016) works in low-resolution space:
feature extraction (5x5, d=56), shrinking (1x1, s=12), m=4 mapping layers
(3x3, 12), expanding (1x1, 56), all with PReLU.  Its final 9x9 deconvolution is
replaced by the equivalent sub-pixel convolution of ESPCN (Shi et al., CVPR
2016): a 3x3 convolution to ``scale**2`` channels followed by a pixel shuffle.
Why: transposed convolutions with ``same`` padding are not aligned identically
across Keras backends, and weights trained with PyTorch must load in
TensorFlow unchanged; the pixel shuffle is plain reshapes.

The network predicts the residual over a bicubic upscale that the caller
provides as a second input (cheap: two small matrix products), which trains
much faster than predicting the image.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="pipeline")
class PixelShuffle(layers.Layer):
    """``(B, H, W, C*r*r) -> (B, H*r, W*r, C)``, TensorFlow's ``depth_to_space`` order."""

    def __init__(self, scale: int, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x):
        r = self.scale
        shape = ops.shape(x)
        b, h, w, c = shape[0], shape[1], shape[2], shape[3]
        out_c = c // (r * r)
        x = ops.reshape(x, (b, h, w, r, r, out_c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (b, h * r, w * r, out_c))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.scale
        return (b, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def build_fsrcnn(scale: int, d: int = 56, s: int = 12, m: int = 4, name: str | None = None) -> keras.Model:
    """Build the fast SR model for an integer ``scale`` (2, 3 or 4).

    Inputs:
        ``lr_luma``: ``(batch, h, w, 1)`` float32, low-resolution ``Y/255 - 0.5``.
        ``bicubic_luma``: ``(batch, h*scale, w*scale, 1)`` float32, its bicubic
        upscale in the same units.
    Output: ``(batch, h*scale, w*scale, 1)`` float32 restored luma, same units.
    """
    lr = keras.Input(shape=(None, None, 1), name="lr_luma")
    bicubic = keras.Input(shape=(None, None, 1), name="bicubic_luma")
    x = layers.Conv2D(d, 5, padding="same", name="extract")(lr)
    x = layers.PReLU(shared_axes=[1, 2], name="extract_prelu")(x)
    x = layers.Conv2D(s, 1, padding="same", name="shrink")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="shrink_prelu")(x)
    for i in range(m):
        x = layers.Conv2D(s, 3, padding="same", name=f"map{i}")(x)
        x = layers.PReLU(shared_axes=[1, 2], name=f"map{i}_prelu")(x)
    x = layers.Conv2D(d, 1, padding="same", name="expand")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="expand_prelu")(x)
    x = layers.Conv2D(scale * scale, 3, padding="same", name="subpixel",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3))(x)
    residual = PixelShuffle(scale, name="shuffle")(x)
    outputs = layers.Add(name="residual_add")([bicubic, residual])
    return keras.Model([lr, bicubic], outputs, name=name or f"fsrcnn_x{scale}")
