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

import math

import torch
from torch import Tensor

from ..entropy import bits
from ..errors import ConfigError
from ..models import LearnedImageCodec

# Adam step on y (latent units) at lambda REFINE_LR_LMBDA, growing as sqrt(lambda): high rates
# gain from steps five times larger than low ones (measured on BSDS500 crops, docs/variable_rate.md)
REFINE_LR = 0.02
REFINE_LR_LMBDA = 0.0134
MAX_REFINE_STEPS = 1000
REFINE_SEED = 0


def check_refine_steps(model: LearnedImageCodec, steps: int) -> None:
    """Refuse a step count out of range, or refinement of weights that record no lambda to refine for."""
    if not 0 <= steps <= MAX_REFINE_STEPS:
        raise ConfigError(f"refinement steps must be 0 to {MAX_REFINE_STEPS}, got {steps}")
    if steps and not model.variable_rate and model.lmbda is None:
        raise ConfigError(f"{model.config.name}: the weights record no lambda, so there is no loss to refine for")


def refine_lr(lmbda: float) -> float:
    """Adam's step size for refining a latent coded at ``lmbda``."""
    return REFINE_LR * math.sqrt(lmbda / REFINE_LR_LMBDA)


def refine_latent(
    model: LearnedImageCodec,
    pixels: Tensor,
    valid: tuple[int, int],
    y: Tensor,
    lmbda: float | None,
    steps: int,
    lr: float | None = None,
) -> Tensor:
    """``y`` (one tile, rate-scaled) refined by ``steps`` Adam steps on its own rate-distortion loss:
    of the ``steps + 1`` latents seen, the one whose rounded coding (eval-mode rate, decoded
    distortion) costs least, so refinement never makes a tile worse by the estimate (the noise proxy
    can mislead at low rates, where most latents round to their mean).

    ``pixels`` is the tile's (1, 3, h, w) image in [0, 1]; only its top-left ``valid`` rows and
    columns are the image (the rest is padding, which should not cost bits). ``lmbda`` is the coded
    lambda of a variable-rate model (None: the fixed-rate model's own); ``lr`` defaults to
    ``refine_lr`` of the loss's lambda.
    """
    check_refine_steps(model, steps)
    rd_lmbda = lmbda if lmbda is not None else model.lmbda
    assert rd_lmbda is not None  # check_refine_steps refuses weights without one
    rows, cols = valid
    target = pixels[..., :rows, :cols]
    latent = y.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr or refine_lr(rd_lmbda))
    best, best_loss = latent.detach().clone(), math.inf
    codec = model.latent_codec
    was_training = codec.training
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(REFINE_SEED)
            for step in range(steps + 1):
                codec.train()  # the training proxies: noise for the rate, straight-through rounding
                with torch.enable_grad():
                    coded = codec(latent)
                    # straight-through values are the rounded ones: this is the decoder's distortion
                    distortion = torch.mean((model.reconstruct(coded["y_hat"], lmbda)[..., :rows, :cols] - target) ** 2)
                codec.eval()  # what coding this latent costs, within 0.1% of the file (rounded, not noisy)
                with torch.no_grad():
                    coded_bits = sum(float(bits(lik)) for lik in codec(latent)["likelihoods"].values())
                loss = coded_bits / (rows * cols) + rd_lmbda * 255**2 * float(distortion)
                if loss < best_loss:
                    best, best_loss = latent.detach().clone(), loss
                if step == steps:
                    break
                with torch.enable_grad():
                    rate = sum(bits(lik) for lik in coded["likelihoods"].values()) / (rows * cols)
                    (latent.grad,) = torch.autograd.grad(rate + rd_lmbda * 255**2 * distortion, [latent])
                optimizer.step()  # autograd.grad leaves no gradients on the weights
    finally:
        codec.train(was_training)
    return best
