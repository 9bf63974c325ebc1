"""DeblurGAN-v2's generator (Kupyn, Martyniuk, Wu & Wang, ICCV 2019): FPN-MobileNet.

A MobileNet-V2 backbone (inverted residual blocks) feeds a feature pyramid
(lateral 1x1 convolutions, nearest-neighbour top-down path, 3x3 smoothing);
four heads bring the pyramid levels to 1/4 resolution, they are concatenated,
smoothed and upsampled twice back to full resolution; a 3x3 convolution and
``tanh`` give a residual that is added to the input (global residual) and the
sum is clipped to [-1, 1].  The layer layout and the tap points follow the
authors' ``fpn_mobilenet.py``; normalisation is batch norm throughout (the
authors use instance norm in the FPN) because it folds into the convolutions
at inference and keeps the CPU path fast.

Fully convolutional: any input whose sides are multiples of 32 (the stage
pads and crops back).
"""

from __future__ import annotations

import keras
from keras import layers

# MobileNet-V2 inverted residual settings: expansion t, channels c, repeats n, stride s.
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                 (6, 96, 3, 1), (6, 160, 3, 2))


def _conv_bn_relu(x, filters: int, kernel: int, stride: int = 1, name: str = "", relu6: bool = False):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(max_value=6.0 if relu6 else None, name=f"{name}_relu")(x)


def _inverted_residual(x, expansion: int, filters: int, stride: int, name: str):
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn_relu(y, in_channels * expansion, 1, name=f"{name}_expand", relu6=True)
    y = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(y)
    y = layers.ReLU(max_value=6.0, name=f"{name}_dw_relu")(y)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_project_bn")(y)
    if stride == 1 and in_channels == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _upsample(x, factor: int, name: str):
    return layers.UpSampling2D(factor, interpolation="nearest", name=name)(x)


def build_fpn_mobilenet(fpn_filters: int = 128, head_filters: int = 64, width: float = 1.0,
                        name: str = "fpn_mobilenet") -> keras.Model:
    """Build the FPN-MobileNet generator.

    Args:
        fpn_filters: channels of the pyramid (paper: 128).
        head_filters: channels of each head and of the first smoothing (paper: 64).
        width: MobileNet-V2 width multiplier (paper: 1.0).

    Input: ``(batch, H, W, 3)`` float32 RGB in [-1, 1], ``H`` and ``W``
    multiples of 32.  Output: same shape, the sharp estimate in [-1, 1].
    """
    inputs = keras.Input(shape=(None, None, 3), name="blurred_rgb")
    x = _conv_bn_relu(inputs, max(8, int(32 * width)), 3, stride=2, name="stem", relu6=True)
    taps = []  # encoder outputs at strides 2, 4, 8, 16, 32
    block = 0
    for stage, (t, c, n, s) in enumerate(_MOBILENET_V2):
        for i in range(n):
            x = _inverted_residual(x, t, max(8, int(c * width)), s if i == 0 else 1, name=f"block{block}")
            block += 1
        if stage in (0, 1, 2, 3, 5):  # after 16 (/2), 24 (/4), 32 (/8), 64 (/16), 160 (/32) channels
            taps.append(x)
    enc0, enc1, enc2, enc3, enc4 = taps

    lateral0 = layers.Conv2D(head_filters, 1, use_bias=False, name="lateral0")(enc0)
    map4 = layers.Conv2D(fpn_filters, 1, use_bias=False, name="lateral4")(enc4)
    map3 = layers.Add(name="td1_add")([layers.Conv2D(fpn_filters, 1, use_bias=False, name="lateral3")(enc3),
                                       _upsample(map4, 2, "td1_up")])
    map3 = _conv_bn_relu(map3, fpn_filters, 3, name="td1")
    map2 = layers.Add(name="td2_add")([layers.Conv2D(fpn_filters, 1, use_bias=False, name="lateral2")(enc2),
                                       _upsample(map3, 2, "td2_up")])
    map2 = _conv_bn_relu(map2, fpn_filters, 3, name="td2")
    map1 = layers.Add(name="td3_add")([layers.Conv2D(fpn_filters, 1, use_bias=False, name="lateral1")(enc1),
                                       _upsample(map2, 2, "td3_up")])
    map1 = _conv_bn_relu(map1, fpn_filters, 3, name="td3")

    def head(m, level: int):
        m = layers.Conv2D(head_filters, 3, padding="same", activation="relu", name=f"head{level}_a")(m)
        return layers.Conv2D(head_filters, 3, padding="same", activation="relu", name=f"head{level}_b")(m)

    pyramid = [_upsample(head(map4, 4), 8, "head4_up"), _upsample(head(map3, 3), 4, "head3_up"),
               _upsample(head(map2, 2), 2, "head2_up"), head(map1, 1)]
    x = layers.Concatenate(name="heads")(pyramid)
    x = _conv_bn_relu(x, head_filters, 3, name="smooth")
    x = _upsample(x, 2, "smooth_up")
    x = layers.Add(name="skip0")([x, lateral0])
    x = _conv_bn_relu(x, head_filters // 2, 3, name="smooth2")
    x = _upsample(x, 2, "smooth2_up")
    x = layers.Conv2D(3, 3, padding="same", name="final",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3))(x)
    x = layers.Activation("tanh", name="residual_tanh")(x)
    x = layers.Add(name="global_residual")([x, inputs])
    outputs = layers.Lambda(lambda t: keras.ops.clip(t, -1.0, 1.0), name="clip",
                            output_shape=lambda s: s)(x)
    return keras.Model(inputs, outputs, name=name)
