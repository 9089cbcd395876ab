"""Balle et al. 2018's scale hyperprior and Minnen et al. 2018's mean-scale hyperprior (CompressAI's
``bmshj2018-hyperprior`` and ``mbt2018-mean``): y coded at once under Gaussians whose scales (and
means) come from the hyper-latent alone, no context model.

The layer stacks keep CompressAI's Sequential indexes (``h_a.0``, ``h_a.2``, ...), so imported
weights map one to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from ..layers import conv, deconv
from ..limits import MAX_CHANNELS, in_range
from .bottleneck import EntropyBottleneck
from .coder import NEAREST, quantize_parameters, residual_symbols
from .family import LATENT_CODECS, LatentCodecConfig, LatentCodecFamily
from .latent import HyperpriorLatentCodec, SymbolCoder
from .ops import gaussian_likelihood, quantize


@dataclass(frozen=True)
class HyperpriorConfig(LatentCodecConfig):
    """``means=False``: scale hyperprior (zero-mean y, h_a reads |y|, ReLU); ``means=True``:
    mean-scale hyperprior (LeakyReLU, h_s predicts scales then means)."""

    hyper_channels: int = 192
    means: bool = True
    kind: Literal["hyperprior"] = "hyperprior"

    def __post_init__(self) -> None:
        in_range("hyper_channels", self.hyper_channels, 1, MAX_CHANNELS)


class GaussianHyperpriorCodec(HyperpriorLatentCodec):
    """The latent codec of both models: z by a factorized prior, y by Gaussians from h_s(z_hat)."""

    def __init__(self, latent_channels: int, hyper_channels: int, means: bool) -> None:
        super().__init__()
        m, n = latent_channels, hyper_channels
        self.means = means
        act = (lambda: nn.LeakyReLU(inplace=True)) if means else (lambda: nn.ReLU(inplace=True))
        self.h_a = nn.Sequential(conv(m, n, 3), act(), conv(n, n, 5, 2), act(), conv(n, n, 5, 2))
        if means:
            self.h_s = nn.Sequential(
                deconv(n, m, 5, 2), act(), deconv(m, m * 3 // 2, 5, 2), act(), conv(m * 3 // 2, 2 * m, 3)
            )
        else:
            self.h_s = nn.Sequential(deconv(n, n, 5, 2), act(), deconv(n, n, 5, 2), act(), conv(n, m, 3), act())
        self.entropy_bottleneck = EntropyBottleneck(n)

    def hyper_input(self, y: Tensor) -> Tensor:
        return y if self.means else y.abs()

    def side_params(self, z_hat: Tensor) -> tuple[Tensor, Tensor | None]:
        params = self.h_s(z_hat)
        return tuple(params.chunk(2, dim=1)) if self.means else (params, None)

    def forward(self, y: Tensor) -> dict:
        z_hat, z_likelihoods = self.entropy_bottleneck(self.h_a(self.hyper_input(y)))
        scales, means = self.side_params(z_hat)
        return {
            "y_hat": quantize(y, means, self.training),
            "likelihoods": {"y": gaussian_likelihood(y, scales, means, self.training), "z": z_likelihoods},
        }

    def code_y(
        self,
        side: tuple[Tensor, Tensor | None],
        y_shape: tuple[int, int, int, int],
        coder: SymbolCoder,
        y: Tensor | None,
        packed: bool,
    ) -> Tensor:
        """All of y in one pass, (C, H, W) order, under the snapped scales and means (nothing to pack)."""
        scales, means = side
        indexes, means = quantize_parameters(scales, scales.new_zeros(()) if means is None else means, NEAREST)
        means = means.expand_as(scales)
        symbols = None if y is None else residual_symbols(y, means)
        return coder.code(symbols, indexes) + means


LATENT_CODECS.register(
    "hyperprior",
    LatentCodecFamily(
        HyperpriorConfig,
        build=lambda c, m: GaussianHyperpriorCodec(m, c.hyper_channels, c.means),
        parts={"hyper": ("h_a", "h_s", "entropy_bottleneck")},
        interface=lambda c, m: ("hyperprior", m, c.means, c.hyper_channels),
    ),
)
