"""Quantization and likelihood primitives shared by all entropy models."""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still pushes values up from below the bound."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through, None


def lower_bound(x: Tensor, bound: float) -> Tensor:
    return _LowerBound.apply(x, bound)


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return (torch.round(x) - x).detach() + x


def quantize(y: Tensor, means: Tensor | None, training: bool) -> Tensor:
    """Decoder-side value of y: round(y - mean) + mean (straight-through while training)."""
    if means is None:
        return ste_round(y) if training else torch.round(y)
    return (ste_round(y - means) if training else torch.round(y - means)) + means


def noisy(y: Tensor) -> Tensor:
    """Additive uniform noise, the differentiable proxy of rounding used for the rate term."""
    return y + torch.empty_like(y).uniform_(-0.5, 0.5)


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-x * (2**-0.5))


def gaussian_likelihood(y: Tensor, scales: Tensor, means: Tensor | None, training: bool) -> Tensor:
    """P(y_hat) of a unit-width bin under N(mean, scale), on noisy y when training, rounded y otherwise."""
    y_tilde = noisy(y) if training else quantize(y, means, training=False)
    values = (y_tilde - means).abs() if means is not None else y_tilde.abs()
    scales = lower_bound(scales, SCALE_BOUND)
    likelihood = _std_normal_cdf((0.5 - values) / scales) - _std_normal_cdf((-0.5 - values) / scales)
    return lower_bound(likelihood, LIKELIHOOD_BOUND)


def bits(likelihoods: Tensor) -> Tensor:
    """Information content in bits of a likelihood tensor."""
    return -torch.log(likelihoods).sum() / math.log(2)
