"""A PyTorch twin of :func:`pipeline.models.build_fpn_mobilenet`, for fast GPU training.

Training code only (never imported at run time; needs ``torch``).  The Keras
model stays the one the pipeline ships; this module rebuilds the same graph
in plain PyTorch (NCHW, ``channels_last`` memory) because a Keras layer call
costs ~0.1 ms of Python on the torch backend and the generator has ~170 of
them, which caps Keras training at ~30 steps/s whatever the GPU.

Every torch module is named like the Keras layer it mirrors, and
:func:`keras_weights` returns the arrays in Keras' variable order and layout,
so :mod:`pipeline.train.import_weights` can load them into the Keras model.

Two details keep the twin exact:

* Keras/TensorFlow ``padding="same"`` with stride 2 on an even input pads
  0 before and 1 after; PyTorch's ``padding=1`` pads 1 on both sides, so the
  strided layers pad explicitly.
* Keras batch norm: ``epsilon=1e-3``, moving average ``0.9`` (torch
  ``momentum=0.1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# MobileNet-V2 inverted residual settings (t, c, n, s), as ``pipeline.models.deblurgan._MOBILENET_V2``
# (repeated, not imported: that module imports Keras, which a PyTorch-only GPU box need not have;
# tests/test_train.py checks that the two agree).
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2))

_BN_EPS, _BN_MOMENTUM = 1e-3, 0.1


class _Conv(nn.Module):
    """Conv2d with TensorFlow ``same`` padding (asymmetric for stride 2)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = False,
                 groups: int = 1) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=0 if stride > 1 else kernel // 2,
                              bias=bias, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            total = max(self.kernel - self.stride, 0)  # inputs are even (multiples of 32)
            x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        return self.conv(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class FPNMobileNet(nn.Module):
    """Same layers, names and arithmetic as the Keras generator; input/output NCHW in [-1, 1]."""

    def __init__(self, fpn_filters: int = 128, head_filters: int = 64, width: float = 1.0) -> None:
        super().__init__()
        self.fpn_filters, self.head_filters, self.width = fpn_filters, head_filters, width
        m = nn.ModuleDict()
        self.m = m
        stem = max(8, int(32 * width))
        m["stem_conv"], m["stem_bn"] = _Conv(3, stem, 3, 2), _bn(stem)
        self.blocks: list[tuple[str, int, int, int, int]] = []  # name, cin, expanded, cout, stride
        self.tap_blocks: list[int] = []
        cin, block = stem, 0
        for stage, (t, c, n, s) in enumerate(MOBILENET_V2):
            for i in range(n):
                cout, stride, name = max(8, int(c * width)), (s if i == 0 else 1), f"block{block}"
                hidden = cin * t
                if t != 1:
                    m[f"{name}_expand_conv"], m[f"{name}_expand_bn"] = _Conv(cin, hidden, 1), _bn(hidden)
                m[f"{name}_dw"] = _Conv(hidden, hidden, 3, stride, groups=hidden)
                m[f"{name}_dw_bn"] = _bn(hidden)
                m[f"{name}_project"], m[f"{name}_project_bn"] = _Conv(hidden, cout, 1), _bn(cout)
                self.blocks.append((name, cin, hidden, cout, stride))
                cin, block = cout, block + 1
            if stage in (0, 1, 2, 3, 5):
                self.tap_blocks.append(block - 1)
        chans = [self.blocks[b][3] for b in self.tap_blocks]
        f, h = fpn_filters, head_filters
        m["lateral0"] = _Conv(chans[0], h, 1)
        for k in (1, 2, 3, 4):
            m[f"lateral{k}"] = _Conv(chans[k], f, 1)
        for k in (1, 2, 3):
            m[f"td{k}_conv"], m[f"td{k}_bn"] = _Conv(f, f, 3), _bn(f)
        for level in (4, 3, 2, 1):
            m[f"head{level}_a"] = _Conv(f, h, 3, bias=True)
            m[f"head{level}_b"] = _Conv(h, h, 3, bias=True)
        m["smooth_conv"], m["smooth_bn"] = _Conv(4 * h, h, 3), _bn(h)
        m["smooth2_conv"], m["smooth2_bn"] = _Conv(h, h // 2, 3), _bn(h // 2)
        m["final"] = _Conv(h // 2, 3, 3, bias=True)
        nn.init.normal_(m["final"].conv.weight, std=1e-3)
        nn.init.zeros_(m["final"].conv.bias)

    def _cbr(self, x: torch.Tensor, name: str, relu6: bool = False) -> torch.Tensor:
        x = self.m[f"{name}_bn"](self.m[f"{name}_conv"](x))
        return x.clamp(0.0, 6.0) if relu6 else F.relu(x)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        m = self.m
        x = self._cbr(inputs, "stem", relu6=True)
        taps = []
        for index, (name, cin, hidden, cout, stride) in enumerate(self.blocks):
            y = x
            if hidden != cin:
                y = m[f"{name}_expand_bn"](m[f"{name}_expand_conv"](y)).clamp(0.0, 6.0)
            y = m[f"{name}_dw_bn"](m[f"{name}_dw"](y)).clamp(0.0, 6.0)
            y = m[f"{name}_project_bn"](m[f"{name}_project"](y))
            x = x + y if (stride == 1 and cin == cout) else y
            if index in self.tap_blocks:
                taps.append(x)
        enc0, enc1, enc2, enc3, enc4 = taps
        up = lambda t, k: F.interpolate(t, scale_factor=k, mode="nearest")  # noqa: E731
        lateral0 = m["lateral0"](enc0)
        map4 = m["lateral4"](enc4)
        map3 = self._cbr(m["lateral3"](enc3) + up(map4, 2), "td1")
        map2 = self._cbr(m["lateral2"](enc2) + up(map3, 2), "td2")
        map1 = self._cbr(m["lateral1"](enc1) + up(map2, 2), "td3")

        def head(t: torch.Tensor, level: int) -> torch.Tensor:
            return F.relu(m[f"head{level}_b"](F.relu(m[f"head{level}_a"](t))))

        x = torch.cat([up(head(map4, 4), 8), up(head(map3, 3), 4), up(head(map2, 2), 2), head(map1, 1)], dim=1)
        x = up(self._cbr(x, "smooth"), 2) + lateral0
        x = up(self._cbr(x, "smooth2"), 2)
        x = torch.tanh(m["final"](x)) + inputs
        return x.clamp(-1.0, 1.0)


def keras_weights(model: FPNMobileNet) -> dict[str, list[np.ndarray]]:
    """``{keras layer name: [arrays in Keras order and layout]}`` (float32).

    Conv2D ``(out, in, kh, kw) -> (kh, kw, in, out)``; DepthwiseConv2D
    ``(C, 1, kh, kw) -> (kh, kw, C, 1)``; BatchNormalization ``[gamma, beta,
    moving_mean, moving_variance]``.
    """
    out: dict[str, list[np.ndarray]] = {}
    for name, module in model.m.items():
        if isinstance(module, _Conv):
            w = module.conv.weight.detach().float().cpu().numpy()
            if module.conv.groups > 1:
                arrays = [w.transpose(2, 3, 0, 1)]
            else:
                arrays = [w.transpose(2, 3, 1, 0)]
            if module.conv.bias is not None:
                arrays.append(module.conv.bias.detach().float().cpu().numpy())
            out[name] = arrays
        elif isinstance(module, nn.BatchNorm2d):
            out[name] = [t.detach().float().cpu().numpy() for t in
                         (module.weight, module.bias, module.running_mean, module.running_var)]
    return {k: [np.ascontiguousarray(a, dtype=np.float32) for a in v] for k, v in out.items()}


def load_keras_weights(model: FPNMobileNet, weights: dict[str, list[np.ndarray]]) -> None:
    """Inverse of :func:`keras_weights` (to start from shipped Keras weights)."""
    with torch.no_grad():
        for name, module in model.m.items():
            arrays = weights[name]
            if isinstance(module, _Conv):
                w = arrays[0]
                w = w.transpose(2, 3, 0, 1) if module.conv.groups > 1 else w.transpose(3, 2, 0, 1)
                module.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                if module.conv.bias is not None:
                    module.conv.bias.copy_(torch.from_numpy(arrays[1]))
            elif isinstance(module, nn.BatchNorm2d):
                for t, a in zip((module.weight, module.bias, module.running_mean, module.running_var), arrays):
                    t.copy_(torch.from_numpy(a))


def flatten_weights(weights: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """For ``np.savez``: ``{"<layer>::<i>": array}``."""
    return {f"{name}::{i}": a for name, arrays in weights.items() for i, a in enumerate(arrays)}


def unflatten_weights(flat: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Inverse of :func:`flatten_weights` (ignores keys without ``::``)."""
    grouped: dict[str, dict[int, np.ndarray]] = {}
    for key, array in flat.items():
        if "::" in key:
            name, i = key.rsplit("::", 1)
            grouped.setdefault(name, {})[int(i)] = np.asarray(array)
    return {name: [parts[i] for i in sorted(parts)] for name, parts in grouped.items()}
