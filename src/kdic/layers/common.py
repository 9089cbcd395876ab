"""Small building blocks shared by every model family.

Module types matter for complexity counting: the paper's thop convention counts only exact
``nn.Conv2d``/``nn.ConvTranspose2d``/``nn.Linear``/``nn.LayerNorm`` modules, so channel-first
LayerNorm and GDN are their own module types here (not counted), exactly like the reference code.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kinds import RESAMPLERS, Resampler


def conv(in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """'Same'-padded convolution (output size = input size / stride)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def deconv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that multiplies the spatial size by ``stride`` exactly."""
    return nn.ConvTranspose2d(
        in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, output_padding=stride - 1
    )


class SubpelConv(nn.Sequential):
    """3x3 convolution to ``out_ch * r^2`` channels followed by PixelShuffle(r)."""

    def __init__(self, in_ch: int, out_ch: int, upscale: int = 2) -> None:
        super().__init__(conv(in_ch, out_ch * upscale**2, 3), nn.PixelShuffle(upscale))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (NAFNet/S2CFormer style)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class GatedFFN(nn.Module):
    """Channel aggregation: 1x1 to 2*hidden, GELU(x1) * x2, 1x1 back; no biases."""

    def __init__(self, channels: int, expansion: float) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, 2 * hidden, 1, bias=False)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.project_in(x).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class GDN(nn.Module):
    """Generalized divisive normalization (Balle et al.); ``inverse=True`` gives IGDN.

    Parameters are stored as square roots so that beta and gamma stay non-negative.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_min = beta_min
        self.beta = nn.Parameter(torch.ones(channels).sqrt())
        self.gamma = nn.Parameter((gamma_init * torch.eye(channels)).sqrt())

    def forward(self, x: Tensor) -> Tensor:
        beta = self.beta.pow(2) + self.beta_min
        gamma = self.gamma.pow(2)
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta)
        return x * norm.sqrt() if self.inverse else x * torch.rsqrt(norm)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU and an identity (or 1x1) skip."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = conv(in_ch, out_ch, 3)
        self.conv2 = conv(out_ch, out_ch, 3)
        self.act = nn.LeakyReLU(inplace=True)
        self.skip = conv(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.skip is None else self.skip(x)
        out = self.act(self.conv1(x))
        out = self.act(self.conv2(out))
        return out + identity


class ResidualBlockWithStride(nn.Module):
    """Stride-2 residual down-sampler with GDN (TCM's down-sampling module)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv(in_ch, out_ch, 3, stride)
        self.act = nn.LeakyReLU(inplace=True)
        self.conv2 = conv(out_ch, out_ch, 3)
        self.gdn = GDN(out_ch)
        self.skip = conv(in_ch, out_ch, 1, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.gdn(self.conv2(self.act(self.conv1(x))))
        return out + self.skip(x)


class ResidualBlockUpsample(nn.Module):
    """Sub-pixel residual up-sampler with inverse GDN (TCM's up-sampling module)."""

    def __init__(self, in_ch: int, out_ch: int, upscale: int = 2) -> None:
        super().__init__()
        self.subpel_conv = SubpelConv(in_ch, out_ch, upscale)
        self.act = nn.LeakyReLU(inplace=True)
        self.conv = conv(out_ch, out_ch, 3)
        self.igdn = GDN(out_ch, inverse=True)
        self.upsample = SubpelConv(in_ch, out_ch, upscale)

    def forward(self, x: Tensor) -> Tensor:
        out = self.igdn(self.conv(self.act(self.subpel_conv(x))))
        return out + self.upsample(x)


def _itself(module: nn.Module) -> list[nn.Module]:
    return [module]


# The input convolutions of the modules that ``build`` made (hence the casts).
def _rbws_inputs(module: nn.Module) -> list[nn.Module]:
    block = cast(ResidualBlockWithStride, module)
    return [block.conv1, block.skip]


def _subpel_inputs(module: nn.Module) -> list[nn.Module]:
    return [cast(SubpelConv, module)[0]]


def _rbu_inputs(module: nn.Module) -> list[nn.Module]:
    block = cast(ResidualBlockUpsample, module)
    return [block.subpel_conv[0], block.upsample[0]]


RESAMPLERS.register("conv3x3", Resampler(lambda i, o: conv(i, o, 3, 2), "down", _itself))
RESAMPLERS.register("conv5x5", Resampler(lambda i, o: conv(i, o, 5, 2), "down", _itself))
RESAMPLERS.register("rbws", Resampler(ResidualBlockWithStride, "down", _rbws_inputs))
RESAMPLERS.register("subpel3x3", Resampler(lambda i, o: SubpelConv(i, o, 2), "up", _subpel_inputs))
RESAMPLERS.register("deconv5x5", Resampler(lambda i, o: deconv(i, o, 5, 2), "up", _itself))
RESAMPLERS.register("rbu", Resampler(ResidualBlockUpsample, "up", _rbu_inputs))
