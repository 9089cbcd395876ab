"""Training-step timing: the cost users pay per optimizer step on their machine."""

from __future__ import annotations

import statistics
import time

import torch

from ..models import LearnedImageCodec


def training_step_seconds(
    model: LearnedImageCodec,
    batch: int = 8,
    size: int = 128,
    steps: int = 8,
    warmup: int = 2,
    lmbda: float = 0.013,
    device: torch.device = torch.device("cpu"),
) -> float:
    """Median wall time of one full step (forward, RD + aux loss, backward, Adam) on random crops; a
    variable-rate model runs at ``lmbda`` (its gain units cost the same at every lambda)."""
    model.to(device).train()
    rate = lmbda if model.variable_rate else None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, size, size, device=device)
    times = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = model(x, rate)
        bpp = sum(-lik.log2().sum() for lik in out["likelihoods"].values()) / (batch * size * size)
        loss = bpp + lmbda * 255**2 * torch.mean((out["x_hat"] - x) ** 2) + model.aux_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)
