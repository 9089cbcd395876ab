"""``kdic train``: one model, one lambda, a run folder with everything needed to trust and resume it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ..checkpoint import load, save
from ..errors import KdicError
from ..eval.metrics import estimate_rd
from ..models import LearnedImageCodec, ModelConfig, to_dict
from .data import CropSampler, load_validation
from .distributed import DistContext, init_distributed, parameters_identical_across_ranks, shutdown
from .engine import Phase, TrainConfig, Trainer
from .losses import rd_loss


def _run_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parent).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def prepare_run_dir(run_dir: Path, description: dict, resume: bool, ctx: DistContext) -> None:
    """Create the run folder with the resolved config, git commit + diff and pip freeze (rank 0 only)."""
    if not ctx.is_main:
        return
    if resume:
        if not (run_dir / "checkpoints" / "state.safetensors").is_file():
            raise KdicError(f"cannot resume: {run_dir} has no checkpoint")
        return
    if (run_dir / "checkpoints").exists():
        raise KdicError(f"run folder {run_dir} already holds a run; use --resume or another --run-dir")
    if not run_dir.parent.is_dir():
        raise KdicError(f"folder {run_dir.parent} does not exist")
    run_dir.mkdir(exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(description, indent=2))
    commit = _run_output(["git", "rev-parse", "HEAD"]).strip()
    (run_dir / "git.txt").write_text(f"commit {commit or 'unknown'}\n\n" + _run_output(["git", "diff", "HEAD"]))
    (run_dir / "pip-freeze.txt").write_text(_run_output([sys.executable, "-m", "pip", "freeze"]))


def rd_phase(name: str, steps: int, trainable: list[str], lmbda: float, with_aux: bool = True) -> Phase:
    """A phase supervised by the end-to-end RD loss (plus the aux loss of the factorized prior)."""

    def loss(forward, x):
        losses = rd_loss(forward(x), x, lmbda)
        if with_aux:
            losses["aux"] = getattr(forward, "module", forward).aux_loss()
            losses["loss"] = losses["loss"] + losses["aux"]
        return losses

    return Phase(name, steps, trainable, loss)


def train(config: ModelConfig, train_config: TrainConfig, data_dir: str | Path, run_dir: str | Path,
          val_dir: str | Path | None = None, val_images: int | None = None, resume: bool = False,
          quiet: bool = False, init_weights: str | Path | None = None) -> dict:
    """Train ``config`` from scratch, from ``init_weights`` (e.g. another lambda's model) or resume.

    Exports ``model.safetensors`` into the run folder.
    """
    ctx = init_distributed()
    run_dir = Path(run_dir)
    try:
        torch.manual_seed(train_config.seed)
        model = LearnedImageCodec(config).to(ctx.device)
        if init_weights is not None:
            initial = load(init_weights)
            if initial.config != config:
                raise KdicError(f"{init_weights} holds a {initial.config.name!r} model, not {config.name!r}")
            model.load_state_dict(initial.state_dict())
        description = {"command": "train", "model": to_dict(config), "train": asdict(train_config),
                       "init": str(init_weights) if init_weights else None,
                       "data": str(data_dir), "val": str(val_dir) if val_dir else None, "world_size": ctx.world_size}
        prepare_run_dir(run_dir, description, resume, ctx)
        sampler = CropSampler(data_dir, train_config.crop, train_config.seed, ctx.rank)
        torch.manual_seed(train_config.seed + ctx.rank)
        validation = load_validation(val_dir, val_images) if val_dir and ctx.is_main else None
        validate = (lambda: estimate_rd(model, validation, model.padding_multiple, ctx.device)) if validation else None
        trainer = Trainer(model, [rd_phase("train", train_config.steps, [""], train_config.lmbda)], train_config,
                          run_dir, sampler, ctx, validate, quiet)
        summary = trainer.run(resume=resume)
        summary["ranks_identical"] = parameters_identical_across_ranks(model, ctx)
        if ctx.is_main:
            save(model, run_dir / "model.safetensors", lmbda=train_config.lmbda,
                 extra={"run": str(run_dir), "steps": summary["global_step"]})
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary
    finally:
        shutdown(ctx)
