"""Factorized (non-parametric) prior for the hyper-latent z (Balle et al. 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .coder import FactorizedTables
from .exact import exact_arithmetic
from .ops import LIKELIHOOD_BOUND, in_float32, lower_bound, noisy, quantize

MAX_SUPPORT = 4096  # widest per-channel symbol alphabet for z (wider learned quantiles are clipped)


class EntropyBottleneck(nn.Module):
    """Per-channel learned CDF, a small monotonic MLP, plus learned tail quantiles.

    The quantiles are trained by ``aux_loss`` only (their gradient never comes from the RD loss),
    so that real coding knows the support of every channel. Quantization offsets use the
    medians, as in CompressAI.
    """

    target: Tensor  # a buffer

    def __init__(
        self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3), init_scale: float = 10.0, tail_mass: float = 1e-9
    ) -> None:
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
        self.quantiles = nn.Parameter(torch.tensor([[[-init_scale, 0.0, init_scale]]] * channels))
        target = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]), persistent=False)
        self._tables: FactorizedTables | None = None
        self._tables_key: tuple = ()

    @property
    def medians(self) -> Tensor:
        """Per-channel median, shape (1, C, 1, 1)."""
        return self.quantiles[:, 0, 1].detach().view(1, -1, 1, 1)

    def cdf_layers(self, stop_gradient: bool, dtype: torch.dtype) -> list[tuple[Tensor, Tensor, Tensor | None]]:
        """(softplus(matrix), bias, tanh(factor) or None) of each layer: functions of the weights alone,
        computed once where ``logits_cumulative`` runs many times on the same weights (the coding tables)."""
        layers: list[tuple[Tensor, Tensor, Tensor | None]] = []
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            matrix = F.softplus((matrix.detach() if stop_gradient else matrix).to(dtype))
            bias = (bias.detach() if stop_gradient else bias).to(dtype)
            factor = None
            if i < len(self.factors):
                factor = torch.tanh((self.factors[i].detach() if stop_gradient else self.factors[i]).to(dtype))
            layers.append((matrix, bias, factor))
        return layers

    def logits_cumulative(
        self, x: Tensor, stop_gradient: bool, layers: list[tuple[Tensor, Tensor, Tensor | None]] | None = None
    ) -> Tensor:
        """Logit of the CDF at ``x`` (shape (C, 1, N)); gradient-free weights when computing aux loss."""
        for matrix, bias, factor in layers or self.cdf_layers(stop_gradient, x.dtype):
            x = torch.matmul(matrix, x) + bias
            if factor is not None:
                x = x + factor * torch.tanh(x)
        return x

    def aux_loss(self) -> Tensor:
        """Pulls the quantiles to the tails and median of the learned density."""
        logits = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return (logits - self.target).abs().sum()

    def _bin_probability(self, values: Tensor) -> Tensor:
        """P of the unit bin around each value of a (C, 1, N) tensor."""
        layers = self.cdf_layers(False, values.dtype)
        lower = self.logits_cumulative(values - 0.5, False, layers)
        upper = self.logits_cumulative(values + 0.5, False, layers)
        sign = -torch.sign(lower + upper).detach()
        return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()

    def _tails(self, iterations: int = 64) -> tuple[Tensor, Tensor]:
        """Per-channel values where the learned CDF reaches the tail masses, found by bisection.

        The learned quantiles converge slowly (aux loss); the coder's support comes from the CDF
        itself, so short trainings code z as efficiently as long ones.
        """
        target = float(self.target[2])
        c = self.channels
        layers = self.cdf_layers(True, torch.float64)
        bounds = []
        for goal in (-target, target):
            low = torch.full((c, 1, 1), -(MAX_SUPPORT / 2.0), dtype=torch.float64)
            high = torch.full((c, 1, 1), MAX_SUPPORT / 2.0, dtype=torch.float64)
            for _ in range(iterations):
                mid = (low + high) / 2
                below = self.logits_cumulative(mid, True, layers) < goal
                low, high = torch.where(below, mid, low), torch.where(below, high, mid)
            bounds.append(((low + high) / 2).view(c))
        return bounds[0], bounds[1]

    def coding_tables(self) -> FactorizedTables:
        """Per-channel PMF tables for real coding, rebuilt automatically whenever a parameter changes.

        Parameters carry a version counter that every in-place update (optimizer step,
        ``load_state_dict``) bumps, so no manual ``update()`` call can be forgotten.
        """
        key = tuple((p._version, p.data_ptr()) for p in self.parameters())
        if self._tables is None or key != self._tables_key:
            with exact_arithmetic():  # the same tables on every machine
                medians = self.quantiles.detach().double()[:, 0, 1]
                lower, upper = self._tails()
                minima = torch.ceil(medians - lower).clamp(0, MAX_SUPPORT // 2).long()
                maxima = torch.ceil(upper - medians).clamp(0, MAX_SUPPORT // 2).long()
                length = int((minima + maxima).max()) + 1
                samples = torch.arange(length, dtype=torch.float64)[None] - minima[:, None] + medians[:, None]
                pmf = self._bin_probability(samples[:, None, :])[:, 0, :]
                support = torch.arange(length)[None] <= (minima + maxima)[:, None]
                pmf = torch.where(support, pmf.clamp_min(1e-12), torch.zeros_like(pmf))
                pmf_table = (pmf / pmf.sum(dim=1, keepdim=True)).numpy()
            self._tables = FactorizedTables(self.quantiles.detach()[:, 0, 1].clone(), minima, maxima, pmf_table)
            self._tables_key = key
        return self._tables

    def update(self, force: bool = False) -> bool:
        """CompressAI-compatible; tables are rebuilt on demand, so this only forces a rebuild."""
        if force:
            self._tables = None
        self.coding_tables()
        return True

    @in_float32
    def likelihood(self, z_tilde: Tensor) -> Tensor:
        """P of the unit bin around each value; ``z_tilde`` is (B, C, H, W)."""
        b, c, h, w = z_tilde.shape
        values = z_tilde.permute(1, 0, 2, 3).reshape(c, 1, -1)
        likelihood = self._bin_probability(values).reshape(c, b, h, w).permute(1, 0, 2, 3)
        return lower_bound(likelihood, LIKELIHOOD_BOUND)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (z_hat for the decoder, likelihoods); noise for the rate while training."""
        z_hat = quantize(z, self.medians, self.training)
        return z_hat, self.likelihood(noisy(z) if self.training else z_hat)
