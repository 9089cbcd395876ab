"""Variable rate: one set of weights for a continuous range of lambdas.

A rate method is a small module between the analysis transform and the latent codec (and its
inverse before the synthesis transform); the transforms and the latent codec stay as they are,
so any preset, SCCTX or slice-based, becomes variable-rate by adding one to its config.
``RATE_METHODS`` maps ``VariableRateConfig.method`` to the module class: another method (e.g.
QVRF-style quantization-step scaling) is one new class here and one entry there.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import Registry


class GainUnits(nn.Module):
    """Gain units with exponential interpolation (Cui et al., CVPR 2021, "Asymmetric Gained Deep
    Image Compression With Continuous Rate Adaptation").

    Chosen as kdic's variable-rate method because it costs ``2 x anchors x M`` parameters (a few
    hundred to a few thousand), changes neither the transforms nor the latent codec, so it works
    with every preset, and it is the standard VBR baseline papers compare against.

    Each anchor lambda ``k`` has a per-channel gain ``g_k`` applied to y before quantization and an
    inverse gain ``g'_k`` applied to y_hat before synthesis. For a lambda between anchors k and
    k+1 both are interpolated log-linearly in log-lambda (``g = g_k^(1-t) g_{k+1}^t``, Cui et al.'s
    exponential interpolation), so the anchors are hit exactly and the gains move monotonically
    between them whenever they do across them.

    Initialisation makes the rate fall with lambda before any training: scaling y by ``g`` is
    quantizing it with step ``1/g``; at high rate the distortion grows as step^2 and the RD optimum
    of ``R + lambda D`` has ``D ~ 1/lambda``, hence step ~ lambda^-1/2, i.e.
    ``g_k = (lambda_k / lambda_ref)^0.5`` with ``lambda_ref`` the geometric middle of the range
    (gain 1 there). The inverse gain starts at ``1/g_k``, so g_s sees y at the scale it expects.
    """

    def __init__(self, latent_channels: int, lmbdas: tuple[float, ...]) -> None:
        super().__init__()
        self.lmbdas = tuple(float(v) for v in lmbdas)
        self.log_gain = nn.Parameter(torch.zeros(len(self.lmbdas), latent_channels))
        self.log_inverse_gain = nn.Parameter(torch.zeros(len(self.lmbdas), latent_channels))
        self.centre(math.sqrt(self.lmbdas[0] * self.lmbdas[-1]))

    @torch.no_grad()
    def centre(self, reference: float) -> None:
        """(Re-)initialise the gains to ``(lambda_k / reference)^0.5`` and their inverses: gain 1 at
        ``reference``, so a fixed-rate model trained there starts a variable-rate one coding as it did."""
        log_gains = [0.5 * math.log(v / reference) for v in self.lmbdas]
        # negated in Python: Tensor.neg on the meta device (the checkpoint check) imports torch._dynamo, 1.6 s
        self.log_gain.copy_(torch.tensor(log_gains)[:, None].expand_as(self.log_gain))
        self.log_inverse_gain.copy_(torch.tensor([-g for g in log_gains])[:, None].expand_as(self.log_inverse_gain))

    @property
    def range(self) -> tuple[float, float]:
        return self.lmbdas[0], self.lmbdas[-1]

    def check(self, lmbda: float) -> None:
        """Refuse a lambda outside the anchors (never clamp: the caller would code another rate).

        Compared in float32, the precision a bitstream header records lambda in, so that both ends
        of the range stay codable after that rounding.
        """
        low, high = self.range
        if (
            isinstance(lmbda, bool)
            or not isinstance(lmbda, (int, float))
            or not (np.float32(low) <= np.float32(lmbda) <= np.float32(high))
        ):
            raise ConfigError(f"lambda {lmbda!r} is outside this model's range {low:g} to {high:g}")

    def _log_row(self, table: Tensor, lmbda: float) -> Tensor:
        """(M,) float64 row of ``table`` at ``lmbda``, linear in log-lambda between the two anchors around
        it, or along the first or last segment beyond the ends (only ``adopt`` goes there)."""
        k = min(max(bisect.bisect_right(self.lmbdas, lmbda) - 1, 0), len(self.lmbdas) - 2)
        low, high = self.lmbdas[k], self.lmbdas[k + 1]
        t = (math.log(lmbda) - math.log(low)) / (math.log(high) - math.log(low))
        return table[k].double() * (1 - t) + table[k + 1].double() * t

    def _interpolate(self, table: Tensor, lmbda: float) -> Tensor:
        """(1, M, 1, 1) ``exp`` of ``table`` interpolated in log-lambda, in float64 and then cast, so
        that an encoder and a decoder given the same float32 lambda compute the same gains."""
        self.check(lmbda)
        return self._log_row(table, lmbda).exp().to(table.dtype).view(1, -1, 1, 1)

    @torch.no_grad()
    def adopt(self, other: GainUnits) -> None:
        """Take ``other``'s gains at these anchors (its rows interpolated, or extrapolated beyond its range
        along its end segments): a trained model re-anchored over a wider range starts coding its old
        range as before, and the new anchors start where its gains were heading."""
        for table, theirs in ((self.log_gain, other.log_gain), (self.log_inverse_gain, other.log_inverse_gain)):
            table.copy_(torch.stack([other._log_row(theirs, v) for v in self.lmbdas]).to(table.dtype))

    def gain(self, lmbda: float) -> Tensor:
        return self._interpolate(self.log_gain, lmbda)

    def inverse_gain(self, lmbda: float) -> Tensor:
        return self._interpolate(self.log_inverse_gain, lmbda)

    def scale_latent(self, y: Tensor, lmbda: float) -> Tensor:
        """y as the latent codec codes it at ``lmbda``."""
        return y * self.gain(lmbda)

    def unscale_latent(self, y_hat: Tensor, lmbda: float) -> Tensor:
        """Decoded latent as the synthesis transform reads it at ``lmbda``."""
        return y_hat * self.inverse_gain(lmbda)


# Entries are modules with GainUnits' interface (range, check, centre, scale_latent, unscale_latent).
RATE_METHODS: Registry[type[GainUnits]] = Registry("rate method")
RATE_METHODS.register("gain", GainUnits)
