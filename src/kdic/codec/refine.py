"""Encoder-side latent refinement: spend encoding time, not decoding time, on a better file.

An amortized encoder ``g_a`` gives each image a good latent, not the best one for the decoder it
is paired with; small, briefly trained models leave the widest gap (Campos et al. 2019; Yang et
al., "Improving Inference for Neural Image Compression", NeurIPS 2020). Refinement closes part of it
per image: a few Adam steps on the rate-scaled latent ``y`` of each entropy tile against the
training objective, bits per pixel + lambda * 255^2 * MSE, with the training proxies (uniform noise
for the rate, straight-through rounding for the decoder's input). ``z`` follows as ``h_a(y)``, as
in plain coding, so the decoder and the file format are untouched: a refined file is an ordinary
file of the newest format, decoded exactly as any other.

The noise is drawn from a fixed seed, so one machine writes the same file for the same image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..entropy import bits
from ..errors import ConfigError
from ..models import LearnedImageCodec

REFINE_LR = 0.02  # Adam step on y (latent units): measured on Kodak, docs/variable_rate.md
MAX_REFINE_STEPS = 1000
REFINE_SEED = 0


def check_refine_steps(model: LearnedImageCodec, steps: int) -> None:
    """Refuse a step count out of range, or refinement of weights that record no lambda to refine for."""
    if not 0 <= steps <= MAX_REFINE_STEPS:
        raise ConfigError(f"refinement steps must be 0 to {MAX_REFINE_STEPS}, got {steps}")
    if steps and not model.variable_rate and model.lmbda is None:
        raise ConfigError(f"{model.config.name}: the weights record no lambda, so there is no loss to refine for")


def refine_latent(
    model: LearnedImageCodec,
    pixels: Tensor,
    valid: tuple[int, int],
    y: Tensor,
    lmbda: float | None,
    steps: int,
    lr: float = REFINE_LR,
) -> Tensor:
    """``y`` (one tile, rate-scaled) after ``steps`` Adam steps on its own rate-distortion loss.

    ``pixels`` is the tile's (1, 3, h, w) image in [0, 1]; only its top-left ``valid`` rows and
    columns are the image (the rest is padding, which should not cost bits). ``lmbda`` is the coded
    lambda of a variable-rate model (None: the fixed-rate model's own).
    """
    check_refine_steps(model, steps)
    rd_lmbda = lmbda if lmbda is not None else model.lmbda
    assert rd_lmbda is not None  # check_refine_steps refuses weights without one
    rows, cols = valid
    target = pixels[..., :rows, :cols]
    latent = y.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr)
    was_training = model.latent_codec.training
    model.latent_codec.train()  # the training proxies: noise for the rate, straight-through rounding
    try:
        with torch.enable_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(REFINE_SEED)
            for _ in range(steps):
                coded = model.latent_codec(latent)
                rate = sum(bits(lik) for lik in coded["likelihoods"].values()) / (rows * cols)
                x_hat = model.g_s(model.unscale_latent(coded["y_hat"], lmbda))[..., :rows, :cols]
                loss = rate + rd_lmbda * 255**2 * torch.mean((x_hat - target) ** 2)
                (latent.grad,) = torch.autograd.grad(loss, [latent])  # no gradients left on the weights
                optimizer.step()
    finally:
        model.latent_codec.train(was_training)
    return latent.detach()
