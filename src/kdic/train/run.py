"""``kdic train``: one model, one lambda, a run folder with everything needed to trust and resume it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO

import torch

from ..checkpoint import load, save
from ..errors import KdicError
from ..eval.metrics import estimate_rd
from ..fileio import atomic_write_bytes, lock_folder, remove_stale_temps
from ..models import LearnedImageCodec, ModelConfig, to_dict
from .data import CropSampler, load_validation
from .distributed import DistContext, init_distributed, parameters_identical_across_ranks, shutdown
from .engine import STATE_FILE, Phase, TrainConfig, Trainer
from .losses import rd_loss


def _run_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parent).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def prepare_run_dir(run_dir: Path, description: dict, resume: bool, ctx: DistContext) -> IO[str] | None:
    """Lock the run folder for this process (rank 0 only) and describe the run in it: the resolved
    config, git commit + diff and pip freeze. The caller closes the returned lock when the run ends.

    Only a checkpoint makes a folder hold a run: a run killed before its first one leaves a folder
    that a fresh start or ``resume`` (from step 0) takes over, rather than one neither accepts.
    """
    if not ctx.is_main:
        return None
    if resume and not run_dir.is_dir():
        raise KdicError(f"cannot resume: {run_dir} does not exist")
    if not run_dir.parent.is_dir():
        raise KdicError(f"folder {run_dir.parent} does not exist")
    run_dir.mkdir(exist_ok=True)
    lock = lock_folder(run_dir, "run folder")
    try:
        for folder in (run_dir, (run_dir / STATE_FILE).parent):
            remove_stale_temps(folder)
        if (run_dir / STATE_FILE).is_file():
            if not resume:
                raise KdicError(f"run folder {run_dir} already holds a run; use --resume or another --run-dir")
            return lock
        if resume:
            if not (run_dir / "config.json").is_file():
                raise KdicError(f"cannot resume: {run_dir} holds no run (no config.json)")
            print(f"kdic: notice: {run_dir} has no checkpoint yet; starting at step 0", file=sys.stderr)
        commit = _run_output(["git", "rev-parse", "HEAD"]).strip()
        for name, text in (("config.json", json.dumps(description, indent=2)),
                           ("git.txt", f"commit {commit or 'unknown'}\n\n" + _run_output(["git", "diff", "HEAD"])),
                           ("pip-freeze.txt", _run_output([sys.executable, "-m", "pip", "freeze"]))):
            atomic_write_bytes(run_dir / name, text.encode())
    except BaseException:
        lock.close()
        raise
    return lock


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
    lock = None
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
        lock = prepare_run_dir(run_dir, description, resume, ctx)
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
        if lock is not None:
            lock.close()
        shutdown(ctx)
