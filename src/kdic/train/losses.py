"""Rate-distortion loss: R + lambda * 255^2 * MSE, with x in [0, 1] (CompressAI's convention),
and the phase losses built on it, shared by ``kdic train`` and ``kdic distill``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..eval.metrics import rate_bpp
from ..registry import Registry


def rd_loss(out: dict, x: Tensor, lmbda: float) -> dict[str, Tensor]:
    """``loss`` (= ``rd``) = bpp + lambda * 255^2 * MSE, plus its parts for logging."""
    num_pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = rate_bpp(out["likelihoods"], num_pixels)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    rd = bpp + lmbda * 255**2 * mse
    return {"loss": rd, "rd": rd, "bpp": bpp, "mse": mse}


PhaseLoss = Callable[[dict, Tensor, float, float], dict[str, Tensor]]  # (outputs, x, lambda, feature weight)
PHASE_LOSSES: Registry[PhaseLoss] = Registry("phase loss")


def _rd_plus_feature(out: dict, x: Tensor, lmbda: float, feature_weight: float) -> dict[str, Tensor]:
    losses = rd_loss(out, x, lmbda)
    return {**losses, "feature": out["feature"], "loss": losses["loss"] + feature_weight * out["feature"]}


PHASE_LOSSES.register("rd", lambda out, x, lmbda, weight: rd_loss(out, x, lmbda))
PHASE_LOSSES.register("rd+feature", _rd_plus_feature)
PHASE_LOSSES.register("feature", lambda out, x, lmbda, weight: {"loss": out["feature"], "feature": out["feature"]})


def phase_loss(
    kind: str = "rd", feature_weight: float = 0.0
) -> Callable[[nn.Module, Tensor, float], dict[str, Tensor]]:
    """Loss of one phase at the step's lambda (a registered ``PHASE_LOSSES`` entry: RD, RD + weighted
    feature MSE, or the explicit feature MSE alone), plus the aux loss whenever the module trains its
    factorized prior.

    A variable-rate module is run at the step's lambda; a fixed-rate one only weighs its loss with it.
    """
    compute = PHASE_LOSSES[kind]

    def loss(forward: nn.Module, x: Tensor, lmbda: float) -> dict[str, Tensor]:
        module: Any = getattr(forward, "module", forward)  # under DDP; has aux_loss() (and variable_rate)
        out = forward(x, lmbda) if getattr(module, "variable_rate", False) else forward(x)
        losses = compute(out, x, lmbda, feature_weight)
        aux = module.aux_loss()
        if aux is not None:
            losses["aux"] = aux
            losses["loss"] = losses["loss"] + aux
        return losses

    return loss
