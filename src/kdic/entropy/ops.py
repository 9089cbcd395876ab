"""Quantization and likelihood primitives shared by all entropy models."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9


F = TypeVar("F", bound=Callable)


def _as_float32(value):
    return value.float() if isinstance(value, Tensor) and value.is_floating_point() else value


def in_float32(fn: F) -> F:
    """Run ``fn`` outside autocast on float32 copies of its tensor arguments: under bf16/fp16 training
    the rate would otherwise come from 8- or 11-bit likelihoods (a bf16 value near 1e-3 is off by up
    to 0.4%), and the entropy tables are built in float32 too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next(a.device.type for a in (*args, *kwargs.values()) if isinstance(a, Tensor))
        if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):
            return fn(*args, **kwargs)
        with torch.autocast(device, enabled=False):
            return fn(*map(_as_float32, args), **{k: _as_float32(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still pushes values up from below the bound."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: Tensor):
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


@in_float32
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
