"""Device choice and torchrun integration: the same command runs on the CPU or a GPU, alone or as
one rank of a single- or multi-node DDP job (gloo on CPU, nccl on GPU; torchrun's rendezvous)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError
from .options import DEVICES


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(request: str = "auto", local_rank: int = 0, world_size: int = 1) -> torch.device:
    """``auto`` = CUDA when available (with or without torchrun), else the CPU; ``cuda`` = the rank's
    GPU (``LOCAL_RANK`` under torchrun); ``cuda:N`` = GPU N of a single-process run."""
    if request == "auto":
        request = "cuda" if torch.cuda.is_available() else "cpu"
    if request == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", request)
    if match is None:
        raise ConfigError(f"unknown device {request!r}; use one of {', '.join(DEVICES)}")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {request!r} asked for, but torch sees no CUDA device")
    if match[1] is not None and world_size > 1:
        raise ConfigError("under torchrun each rank uses its LOCAL_RANK's GPU: pass --device cuda, not cuda:N")
    index = int(match[1]) if match[1] is not None else local_rank
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device cuda:{index} does not exist (torch sees {torch.cuda.device_count()} GPUs)")
    return torch.device("cuda", index)


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment, or run alone, on ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if world > 1 else 0
    resolved = resolve_device(device, local_rank, world)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if world <= 1:
        return DistContext(device=resolved)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), world, resolved)


def parameters_identical_across_ranks(module: torch.nn.Module, ctx: DistContext) -> bool:
    """True when every rank holds bit-identical parameters (a DDP sanity check)."""
    flat = torch.cat([p.detach().reshape(-1).to(torch.float64) for p in module.parameters()]).cpu()
    if not ctx.enabled:
        return True
    gathered = [torch.empty_like(flat) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
