"""Parameter and MAC counts, the paper's way and the honest way, without allocating activations.

Paper convention (thop 0.1.1 ``profile`` on a 1x3x1024x2048 input, ``../shared/spec`` section 1):

* only modules of an exact registered type count (Conv, ConvTranspose, Linear, nn.LayerNorm,
  BatchNorm, pooling, ...). Parameters held by anything else (GDN, channel-first LayerNorm,
  relative-position tables, the factorized prior) are left out;
* a module's parameters count once if it runs at all; its MACs count at every call;
* conv MACs = output elements x (C_in / groups) x kernel area (no bias), also for transposed
  convs (so a stride-2 deconv counts 4x its real MACs); attention matmuls are not counted.

Honest totals: every parameter, and ``FlopCounterMode`` MACs (all convs, linears and matmuls,
attention included, transposed convs at their real cost). Both are measured in one forward pass
on the meta device, so a 2K input costs no memory.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.utils.flop_counter import FlopCounterMode

PAPER_INPUT = (1, 3, 1024, 2048)


def _conv_macs(m: _ConvNd, x: Tensor, y: Tensor) -> int:
    return y.numel() * (x.shape[1] // m.groups) * math.prod(m.kernel_size)


def _linear_macs(m: nn.Linear, x: Tensor, y: Tensor) -> int:
    return y.numel() * m.in_features


def _norm_macs(m: nn.Module, x: Tensor, y: Tensor) -> int:
    affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
    return x.numel() * (4 if affine else 2)


def _avgpool_macs(m: nn.Module, x: Tensor, y: Tensor) -> int:
    kernel = (x.shape[-2] // y.shape[-2]) * (x.shape[-1] // y.shape[-1])
    return y.numel() * (kernel + 1)


def _zero(m: nn.Module, x: Tensor, y: Tensor) -> int:
    return 0


THOP_RULES = {
    nn.Conv1d: _conv_macs,
    nn.Conv2d: _conv_macs,
    nn.Conv3d: _conv_macs,
    nn.ConvTranspose1d: _conv_macs,
    nn.ConvTranspose2d: _conv_macs,
    nn.ConvTranspose3d: _conv_macs,
    nn.Linear: _linear_macs,
    nn.LayerNorm: _norm_macs,
    nn.BatchNorm1d: _norm_macs,
    nn.BatchNorm2d: _norm_macs,
    nn.GroupNorm: _norm_macs,
    nn.InstanceNorm2d: _norm_macs,
    nn.AdaptiveAvgPool2d: _avgpool_macs,
    nn.ReLU: _zero,
    nn.LeakyReLU: _zero,
    nn.ReLU6: _zero,
    nn.Dropout: _zero,
    nn.PixelShuffle: _zero,
    nn.Identity: _zero,
}


@dataclass(frozen=True)
class Complexity:
    """Counts for one model at one input size (MACs are multiply-accumulates; FLOPs = 2 x MACs)."""

    input_size: tuple[int, int, int, int]
    params_paper: int
    params_total: int
    macs_paper: int
    macs_total: int
    macs_by_part: dict[str, int]

    @property
    def pixels(self) -> int:
        return self.input_size[0] * self.input_size[2] * self.input_size[3]

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "input_size": list(self.input_size),
            "kmacs_per_pixel_paper": self.macs_paper / self.pixels / 1e3,
        }


def _part_of(name: str) -> str:
    return name.split(".", 1)[0] if name else ""


def count_complexity(
    model: nn.Module, input_size: tuple[int, int, int, int] = PAPER_INPUT, lmbda: float | None = None
) -> Complexity:
    """Count params and MACs of ``model`` (left untouched) on a meta copy, in eval mode; a variable-rate
    model runs at ``lmbda`` (any lambda of its range costs the same)."""
    meta = copy.deepcopy(model).to("meta") if any(p.device.type != "meta" for p in model.parameters()) else model
    was_training = meta.training
    meta.eval()
    macs: dict[str, int] = {}
    ran: dict[str, int] = {}
    handles = []
    for name, module in meta.named_modules():
        rule = THOP_RULES.get(type(module))
        if rule is None:
            continue

        def hook(m: nn.Module, inputs: tuple, output: Tensor, name: str = name, rule=rule) -> None:
            macs[name] = macs.get(name, 0) + int(rule(m, inputs[0], output))
            ran[name] = sum(p.numel() for p in m.parameters(recurse=False))

        handles.append(module.register_forward_hook(hook))
    x = torch.zeros(input_size, device="meta")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            meta(x) if lmbda is None else meta(x, lmbda)
    finally:
        for handle in handles:
            handle.remove()
        meta.train(was_training)
    by_part: dict[str, int] = {}
    for name, value in macs.items():
        by_part[_part_of(name)] = by_part.get(_part_of(name), 0) + value
    return Complexity(
        input_size=tuple(input_size),  # type: ignore[arg-type]
        params_paper=sum(ran.values()),
        params_total=sum(p.numel() for p in meta.parameters()),
        macs_paper=sum(macs.values()),
        macs_total=counter.get_total_flops() // 2,
        macs_by_part=by_part,
    )
