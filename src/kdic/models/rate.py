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
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import Registry

if TYPE_CHECKING:  # config.py imports this module for RATE_METHODS
    from .config import TransformConfig

# What a rate method gives a transform at one lambda: (stage index in the transform, its output) to the
# next stage's input; applied after every stage but the last.
Modulation = Callable[[int, Tensor], Tensor]


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

    @classmethod
    def for_transform(cls, transform: TransformConfig, lmbdas: tuple[float, ...]) -> GainUnits:
        """The rate module of a model with these transforms (the registry's constructor)."""
        return cls(transform.latent_channels, lmbdas)

    def tables(self) -> dict[str, Tensor]:
        """Every per-anchor table by name: (anchors, channels), interpolated in log-lambda."""
        return {"log_gain": self.log_gain, "log_inverse_gain": self.log_inverse_gain}

    def modulation(self, decoder: bool, lmbda: float) -> Modulation | None:
        """None: gain units leave the transforms' hidden features as they are."""
        return None

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

    def _interpolate(self, table: Tensor, lmbda: float, exp: bool = True) -> Tensor:
        """(1, M, 1, 1) ``table`` interpolated in log-lambda (``exp``-ed for a log table), in float64
        and then cast, so that an encoder and a decoder given the same float32 lambda compute the same
        values."""
        self.check(lmbda)
        row = self._log_row(table, lmbda)
        return (row.exp() if exp else row).to(table.dtype).view(1, -1, 1, 1)

    @torch.no_grad()
    def adopt(self, other: GainUnits) -> None:
        """Take ``other``'s tables at these anchors (its rows interpolated, or extrapolated beyond its range
        along its end segments): a trained model re-anchored over a wider range starts coding its old
        range as before, and the new anchors start where its gains were heading. Tables ``other`` lacks
        (gain units adopted by a method with more) keep their identity start."""
        theirs = other.tables()
        for name, table in self.tables().items():
            if name in theirs:
                table.copy_(torch.stack([other._log_row(theirs[name], v) for v in self.lmbdas]).to(table.dtype))

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


class ModulatedGainUnits(GainUnits):
    """Gain units plus a lambda-conditioned per-channel affine map (scale and shift) of every hidden
    stage output of g_a and g_s: FiLM (Perez et al., AAAI 2018) with one row per anchor lambda,
    interpolated as the gains are; the feature-modulation family of variable-rate codecs (Yang et al.,
    "Variable Rate Deep Image Compression With Modulated Autoencoder", SPL 2020; Song et al., ICCV 2021).

    Why: gain units give every rate the same ``g_a(x)``, only scaled, so at high rates the curve stops
    at what ``g_s(g_a(x))`` reaches unquantized (docs/variable_rate.md, "Where the curve stops"). With
    modulation each rate has its own analysis and synthesis, at ``4 x anchors x hidden channels`` more
    parameters and one multiply-add per hidden value. Scales start at 1 and shifts at 0, so gain units
    adopted from a trained model code exactly as before. Files do not change: the decoder reads lambda
    from the header, as it does for the gains.
    """

    def __init__(
        self, latent_channels: int, lmbdas: tuple[float, ...], encoder_widths: list[int], decoder_widths: list[int]
    ) -> None:
        super().__init__(latent_channels, lmbdas)
        anchors = len(self.lmbdas)

        def zeros(widths: list[int]) -> nn.ParameterList:
            return nn.ParameterList(nn.Parameter(torch.zeros(anchors, width)) for width in widths)

        self.encoder_log_scale, self.encoder_shift = zeros(encoder_widths), zeros(encoder_widths)
        self.decoder_log_scale, self.decoder_shift = zeros(decoder_widths), zeros(decoder_widths)

    @classmethod
    def for_transform(cls, transform: TransformConfig, lmbdas: tuple[float, ...]) -> GainUnits:
        widths = [out for _, out in transform.stage_widths]
        encoder = len(transform.encoder)
        return cls(transform.latent_channels, lmbdas, widths[: encoder - 1], widths[encoder:-1])

    def _modulation_tables(self) -> dict[str, nn.ParameterList]:
        return {
            "encoder_log_scale": self.encoder_log_scale,
            "encoder_shift": self.encoder_shift,
            "decoder_log_scale": self.decoder_log_scale,
            "decoder_shift": self.decoder_shift,
        }

    def tables(self) -> dict[str, Tensor]:
        named = {
            f"{name}.{i}": table for name, lists in self._modulation_tables().items() for i, table in enumerate(lists)
        }
        return {**super().tables(), **named}

    def modulation(self, decoder: bool, lmbda: float) -> Modulation:
        side = "decoder" if decoder else "encoder"
        tables = self._modulation_tables()
        scales = [self._interpolate(table, lmbda) for table in tables[f"{side}_log_scale"]]
        shifts = [self._interpolate(table, lmbda, exp=False) for table in tables[f"{side}_shift"]]
        return lambda stage_index, h: torch.addcmul(shifts[stage_index], h, scales[stage_index])


# Entries are modules with GainUnits' interface (for_transform, tables, modulation, range, check, centre,
# scale_latent, unscale_latent).
RATE_METHODS: Registry[type[GainUnits]] = Registry("rate method")
RATE_METHODS.register("gain", GainUnits)
RATE_METHODS.register("modulated", ModulatedGainUnits)
