"""Factorized (non-parametric) prior for the hyper-latent z (Balle et al. 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ops import LIKELIHOOD_BOUND, lower_bound, noisy, quantize


class EntropyBottleneck(nn.Module):
    """Per-channel learned CDF, a small monotonic MLP, plus learned tail quantiles.

    The quantiles are trained by ``aux_loss`` only (their gradient never comes from the RD loss),
    so that real coding knows the support of every channel. Quantization offsets use the
    medians, as in CompressAI.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3), init_scale: float = 10.0,
                 tail_mass: float = 1e-9) -> None:
        super().__init__()
        self.channels = channels
        widths = (1, *filters, 1)
        scale = init_scale ** (1 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]), persistent=False)

    @property
    def medians(self) -> Tensor:
        """Per-channel median, shape (1, C, 1, 1)."""
        return self.quantiles[:, 0, 1].detach().view(1, -1, 1, 1)

    def logits_cumulative(self, x: Tensor, stop_gradient: bool) -> Tensor:
        """Logit of the CDF at ``x`` (shape (C, 1, N)); gradient-free weights when computing aux loss."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            matrix = F.softplus(matrix.detach() if stop_gradient else matrix)
            x = torch.matmul(matrix, x) + (bias.detach() if stop_gradient else bias)
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                x = x + torch.tanh(factor) * torch.tanh(x)
        return x

    def aux_loss(self) -> Tensor:
        """Pulls the quantiles to the tails and median of the learned density."""
        logits = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return (logits - self.target).abs().sum()

    def likelihood(self, z_tilde: Tensor) -> Tensor:
        """P of the unit bin around each value; ``z_tilde`` is (B, C, H, W)."""
        b, c, h, w = z_tilde.shape
        values = z_tilde.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cumulative(values - 0.5, stop_gradient=False)
        upper = self.logits_cumulative(values + 0.5, stop_gradient=False)
        sign = -torch.sign(lower + upper).detach()
        likelihood = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        likelihood = likelihood.reshape(c, b, h, w).permute(1, 0, 2, 3)
        return lower_bound(likelihood, LIKELIHOOD_BOUND)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (z_hat for the decoder, likelihoods); noise for the rate while training."""
        z_hat = quantize(z, self.medians, self.training)
        return z_hat, self.likelihood(noisy(z) if self.training else z_hat)
