"""Keras 3 architecture builders for the learned enhancement stages.

Pure architecture: no weights are loaded and nothing is trained here, so the
stages (run time) and ``pipeline.train`` (training) build identical graphs.
Every builder is backend-agnostic (TensorFlow here, PyTorch or JAX on a GPU
box) and fully convolutional: inputs have ``None`` spatial sizes.
"""

from .deblurgan import build_fpn_mobilenet
from .fsrcnn import build_fsrcnn
from .srcnn import build_srcnn

__all__ = ["build_fpn_mobilenet", "build_fsrcnn", "build_srcnn"]
