"""dlib's ResNet face descriptor run with TensorFlow, from dlib's own weight file.

The ``dlib-bin`` wheel is built without BLAS: its convolutions run on one
core at ~170 ms per face.  The network is small (29 convolutions, 150 x 150
input), so we read its weights straight out of
``dlib_face_recognition_resnet_model_v1.dat`` and run the same arithmetic
with TensorFlow, batched and on every core.  Outputs equal dlib's to float
precision (checked by ``tests/test_recognition.py`` against dlib itself).

The network (``dnn_face_recognition_ex.cpp`` in dlib)::

    input 150x150 RGB, (pixel - mean) / 256, means R 122.782 G 117.001 B 104.298
    con 32 7x7 /2 (no padding) - affine - relu - max_pool 3x3 /2 (no padding)
    3 x res(32) | res_down(64) + 3 x res(64) | res_down(128) + 2 x res(128)
    | res_down(256) + 2 x res(256) | res_down(256)
    average over space - fc 256 -> 128 (no bias)

    res(N)      = relu(x + affine(con3x3(relu(affine(con3x3(x))))))
    res_down(N) = relu(avg_pool2x2/2(x) + affine(con3x3(relu(affine(con3x3/2 no padding(x))))))

``affine`` is the inference form of batch norm (``gamma * x + beta``).  When
the two branches of ``res_down`` differ in size (8 -> 3 vs 4, 4 -> 1 vs 2) or
in channels, dlib's ``add_prev`` zero-pads the smaller one at the end; so do we.

**File format** (dlib serialisation, checked on this file): integers are a
control byte (byte count, 0x80 = negative) plus little-endian bytes; strings
are an integer length plus bytes; a tensor is ``version (2), num_samples, k,
nr, nc`` then raw little-endian float32.  Layers are stored from the input
upwards; each ``con_4`` / ``affine_`` name is followed by its parameter tensor
(``fc_2`` by its output and input sizes, then the tensor): convolution filters ``(filters, in, rows, cols)`` then
biases; affine ``gamma`` then ``beta``; fc a ``(in, out)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_MEANS_RGB = (122.782, 117.001, 104.298)
CHIP_SIZE = 150
# Filters of the convolutions in file order, with their stride; "down" marks the
# first convolution of a res_down block.
_STAGES = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]


class DlibFormatError(ValueError):
    """The file is not the dlib face descriptor network this module knows."""


def _read_int(data: bytes, pos: int) -> tuple[int, int]:
    control = data[pos]
    size, negative = control & 0x7F, control & 0x80
    if size > 8:
        raise DlibFormatError(f"bad integer at byte {pos}")
    value = int.from_bytes(data[pos + 1:pos + 1 + size], "little")
    return (-value if negative else value), pos + 1 + size


def _read_tensor(data: bytes, pos: int) -> tuple[np.ndarray, int]:
    version, pos = _read_int(data, pos)
    if version != 2:
        raise DlibFormatError(f"unsupported tensor version {version} at byte {pos}")
    dims = []
    for _ in range(4):
        value, pos = _read_int(data, pos)
        dims.append(value)
    count = int(np.prod(dims))
    values = np.frombuffer(data, dtype="<f4", count=count, offset=pos).astype(np.float32)
    return values.reshape(dims), pos + 4 * count


def _tensors_after(data: bytes, tag: bytes, skip_ints: int = 0) -> list[np.ndarray]:
    """The parameter tensor that follows each serialised layer name ``tag`` (after ``skip_ints`` integers)."""
    marker = bytes([0x01, len(tag)]) + tag
    out, start = [], 0
    while (pos := data.find(marker, start)) >= 0:
        at = pos + len(marker)
        for _ in range(skip_ints):
            _, at = _read_int(data, at)
        tensor, _ = _read_tensor(data, at)
        out.append(tensor.reshape(-1))
        start = pos + len(marker)
    return out


@dataclass(frozen=True)
class DlibWeights:
    """Weights in TensorFlow layout.

    Attributes:
        convs: ``(kernel HxWxInxOut, bias Out)`` for the 29 convolutions, input first.
        affines: ``(gamma, beta)`` after each convolution.
        fc: ``(256, 128)`` matrix.
    """

    convs: list[tuple[np.ndarray, np.ndarray]]
    affines: list[tuple[np.ndarray, np.ndarray]]
    fc: np.ndarray


def read_weights(path: str | Path) -> DlibWeights:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat``.

    Raises:
        DlibFormatError: the file does not hold the expected layers and sizes.
    """
    data = Path(path).read_bytes()
    conv_params = _tensors_after(data, b"con_4")
    affine_params = _tensors_after(data, b"affine_")
    fc_params = _tensors_after(data, b"fc_2", skip_ints=2)  # num_outputs, num_inputs come first
    if len(conv_params) != 29 or len(affine_params) != 29 or len(fc_params) != 1:
        raise DlibFormatError(f"expected 29 convolutions, 29 affine layers and 1 fc layer, found "
                              f"{len(conv_params)}, {len(affine_params)}, {len(fc_params)}")
    shapes = [(32, 3, 7)]
    channels = 32
    for filters, blocks, _ in _STAGES:
        for _ in range(blocks):
            shapes += [(filters, channels, 3), (filters, filters, 3)]
            channels = filters
    convs = []
    for params, (filters, inputs, size) in zip(conv_params, shapes):
        n_weights = filters * inputs * size * size
        if params.size != n_weights + filters:
            raise DlibFormatError(f"convolution of size {params.size}, expected {n_weights + filters}")
        kernel = params[:n_weights].reshape(filters, inputs, size, size).transpose(2, 3, 1, 0)
        convs.append((np.ascontiguousarray(kernel), params[n_weights:].copy()))
    affines = []
    for params, (filters, _, _) in zip(affine_params, shapes):
        if params.size != 2 * filters:
            raise DlibFormatError(f"affine layer of size {params.size}, expected {2 * filters}")
        affines.append((params[:filters].copy(), params[filters:].copy()))
    if fc_params[0].size != 256 * 128:
        raise DlibFormatError(f"fc layer of size {fc_params[0].size}, expected {256 * 128}")
    return DlibWeights(convs, affines, fc_params[0].reshape(256, 128).copy())


class DlibDescriptorTF:
    """The dlib descriptor network as a TensorFlow function: ``(N,150,150,3) uint8 RGB -> (N,128)``.

    Thread-safe (TensorFlow functions are); the graph is traced once, for any batch size.
    """

    def __init__(self, weights: DlibWeights) -> None:
        import tensorflow as tf

        self._tf = tf
        self._convs = [(tf.constant(k), tf.constant(b)) for k, b in weights.convs]
        self._affines = [(tf.constant(g), tf.constant(b)) for g, b in weights.affines]
        self._fc = tf.constant(weights.fc)
        self._means = tf.constant(np.array(INPUT_MEANS_RGB, np.float32))
        # One trace for every batch size.
        self._fn = tf.function(self._forward, input_signature=[
            tf.TensorSpec([None, CHIP_SIZE, CHIP_SIZE, 3], tf.uint8)])

    def _conv_affine(self, x, index: int, stride: int, padding: str, relu: bool):
        tf = self._tf
        kernel, bias = self._convs[index]
        gamma, beta = self._affines[index]
        x = tf.nn.conv2d(x, kernel, strides=stride, padding=padding) + bias
        x = x * gamma + beta
        return tf.nn.relu(x) if relu else x

    @staticmethod
    def _pad_to(tf, x, height, width, channels):
        shape = tf.shape(x)
        return tf.pad(x, [[0, 0], [0, height - shape[1]], [0, width - shape[2]], [0, channels - shape[3]]])

    def _forward(self, chips):
        tf = self._tf
        x = (tf.cast(chips, tf.float32) - self._means) / 256.0
        x = self._conv_affine(x, 0, 2, "VALID", True)
        x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        index = 1
        for filters, blocks, down in _STAGES:
            for block in range(blocks):
                first_down = down and block == 0
                y = self._conv_affine(x, index, 2 if first_down else 1, "VALID" if first_down else "SAME", True)
                y = self._conv_affine(y, index + 1, 1, "SAME", False)
                index += 2
                if first_down:
                    skip = tf.nn.avg_pool2d(x, 2, 2, "VALID")
                    height = tf.maximum(tf.shape(skip)[1], tf.shape(y)[1])
                    width = tf.maximum(tf.shape(skip)[2], tf.shape(y)[2])
                    skip = self._pad_to(tf, skip, height, width, filters)
                    y = self._pad_to(tf, y, height, width, filters)
                    x = tf.nn.relu(y + skip)
                else:
                    x = tf.nn.relu(y + x)
        x = tf.reduce_mean(x, axis=[1, 2])
        return tf.matmul(x, self._fc)

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 150, 150, 3)`` uint8 RGB aligned chips -> ``(N, 128)`` float32 descriptors (not normalised)."""
        chips = np.asarray(chips, np.uint8)
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) chips, got {chips.shape}")
        return np.asarray(self._fn(self._tf.constant(chips)), np.float32)
