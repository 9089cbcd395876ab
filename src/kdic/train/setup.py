"""Run set-up shared by every training run (``kdic.distill.pipeline``): the run folder with everything
needed to trust and resume it, the lambda range, validation, and starting from trained weights."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO

from ..errors import ConfigError, KdicError
from ..eval.metrics import estimate_rd
from ..fileio import atomic_write_bytes, lock_folder, remove_stale_temps
from ..models import LearnedImageCodec, ModelConfig
from .distributed import DistContext
from .engine import STATE_FILE, TrainConfig


def _run_output(command: list[str]) -> str:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent
        ).stdout
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
        for name, text in (
            ("config.json", json.dumps(description, indent=2)),
            ("git.txt", f"commit {commit or 'unknown'}\n\n" + _run_output(["git", "diff", "HEAD"])),
            ("pip-freeze.txt", _run_output([sys.executable, "-m", "pip", "freeze"])),
        ):
            atomic_write_bytes(run_dir / name, text.encode())
    except BaseException:
        lock.close()
        raise
    return lock


VALIDATION_RATES = 3  # lambdas a variable-rate model is validated at: both ends and the middle


def rate_config(config: ModelConfig, train_config: TrainConfig) -> TrainConfig:
    """``train_config`` with the model's lambda range for a variable-rate model (checked)."""
    vr = config.variable_rate
    if vr is None:
        if train_config.lmbda_range is not None:
            raise ConfigError(f"{config.name} is fixed-rate: it trains at one lambda, not a range")
        if train_config.lmbda is None:
            raise ConfigError(f"{config.name} is fixed-rate: pass its lambda")
        return train_config
    if train_config.lmbda_range not in (None, vr.range):
        raise ConfigError(f"lambda range {train_config.lmbda_range} differs from the model's {vr.range}")
    if train_config.lmbda is not None and not vr.range[0] <= train_config.lmbda <= vr.range[1]:
        raise ConfigError(
            f"lambda {train_config.lmbda} is outside the model's range {vr.range[0]:g} to {vr.range[1]:g}"
        )
    return replace(train_config, lmbda_range=vr.range)


def validation_lmbdas(config: ModelConfig, train_config: TrainConfig) -> tuple[float | None, ...]:
    """The rate points validation reports: the run's lambda first (None: the fixed-rate model's own)."""
    vr = config.variable_rate
    if vr is None:
        return (None,)
    spread = vr.spread(VALIDATION_RATES)
    return (train_config.lmbda, *spread) if train_config.lmbda is not None else (spread[len(spread) // 2], *spread)


def rd_validation(
    model: LearnedImageCodec, config: ModelConfig, train_config: TrainConfig, images: list, device
) -> Callable[[], dict[str, float]]:
    """Validation of ``model``: ``bpp``/``psnr`` at the first rate point, plus ``bpp@L``/``psnr@L`` at
    every rate point L of a variable-rate model (to tensorboard and the summary)."""
    rates = validation_lmbdas(config, train_config)

    def validate() -> dict[str, float]:
        metrics: dict[str, float] = {}
        for lmbda in rates:
            forward = model if lmbda is None else (lambda x, lmbda=lmbda: model(x, lmbda))
            point = estimate_rd(forward, images, model.padding_multiple, device)
            metrics = metrics or dict(point)
            if lmbda is not None:
                metrics.update({f"{k}@{lmbda:g}": v for k, v in point.items()})
        return metrics

    return validate


def init_from(model: LearnedImageCodec, initial: LearnedImageCodec, source: str | Path) -> None:
    """Start ``model`` from ``initial``: the same model, its fixed-rate version (then the gain units
    are centred on the lambda it was trained at, so the new model first codes there as it did), or
    the same variable-rate model over other anchors (``--lmbdas``) or by another rate method
    (``--rate-method``; the tables both methods have are carried over by ``GainUnits.adopt``)."""
    mine, theirs = model.config, initial.config
    starts_vr = theirs.variable_rate is None and mine.variable_rate is not None
    reanchors = (
        mine.variable_rate is not None
        and theirs.variable_rate is not None
        and replace(theirs, variable_rate=mine.variable_rate) == mine
    )
    same_codec = (theirs.transform, theirs.entropy) == (mine.transform, mine.entropy)
    if theirs != mine and not (starts_vr and same_codec) and not reanchors:
        raise KdicError(
            f"{source} holds a {theirs.name!r} model, not {mine.name!r} (or its fixed-rate version, or the same "
            "model over other anchor lambdas or by another rate method)"
        )
    if reanchors and theirs != mine:
        assert model.rate is not None and initial.rate is not None  # both configs are variable-rate
        shared = {k: v for k, v in initial.state_dict().items() if not k.startswith("rate.")}
        model.load_state_dict(shared, strict=False)
        model.rate.adopt(initial.rate)
        return
    model.load_state_dict(initial.state_dict(), strict=not starts_vr)
    if starts_vr and initial.lmbda is not None:
        assert model.rate is not None  # starts_vr: the config is variable-rate
        low, high = model.rate.range
        if not low <= initial.lmbda <= high:
            raise KdicError(f"{source} was trained at lambda {initial.lmbda}, outside the range {low:g} to {high:g}")
        model.rate.centre(initial.lmbda)
