"""The training engine shared by ``kdic train`` and ``kdic distill``.

A run is a list of phases. Each phase names the sub-modules that train (everything else is
frozen), how many steps it takes and how its loss is computed (at the step's lambda: the run's,
or for a variable-rate model one drawn log-uniformly per step from a generator seeded by
(seed, global step), so a resumed run draws the same lambdas); it gets a fresh Adam optimizer
(the factorized prior's quantiles in their own group, trained by the aux loss in the same
backward pass) and a step learning-rate decay. Checkpoints hold the module, the optimizer, the
data and noise RNG states and the position (phase, step), written atomically as safetensors, so a
run killed at any moment resumes exactly where its last checkpoint was. The data need no saved
state: batch s is a pure function of (seed, rank, s) (``train.data``).

Precision: ``fp32``, or ``bf16``/``fp16`` autocast (fp16 with a gradient scaler, its state in the
checkpoint) with rates, likelihoods and the loss in float32 (``entropy.ops.in_float32``). A step can
accumulate gradients over several micro-batches; checkpoints are written every N steps and every N
minutes, and ``max_minutes`` stops a run cleanly (checkpointed, resumable) inside a scheduler's
wall time.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as serialize
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..codec.distortion import psnr
from ..errors import ConfigError, KdicError
from ..fileio import atomic_write_bytes
from .data import CropDataset, batches
from .distributed import DistContext
from .options import PRECISION_DTYPES

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

STATE_FORMAT = "kdic-train-state"
STATE_FILE = Path("checkpoints") / "state.safetensors"  # inside the run folder
PRECISIONS = {name: getattr(torch, dtype) for name, dtype in PRECISION_DTYPES.items()}


@dataclass(frozen=True)
class TrainConfig:
    """Optimization settings of a run (per phase, the learning rate decays at ``decay_at``).

    ``lmbda_range`` trains a variable-rate model over (low, high); ``lmbda`` is then optional and
    only the rate point validation reports first. One optimizer step sees ``batch_size x
    accumulate`` crops.
    """

    lmbda: float | None
    steps: int
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-4
    aux_lr: float = 1e-3
    decay_at: tuple[float, ...] = (0.9,)
    decay_factor: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 200
    val_every: int = 0
    log_every: int = 10
    lmbda_range: tuple[float, float] | None = None
    precision: str = "fp32"
    accumulate: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS or self.accumulate < 1:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} and accumulate >= 1")
        if self.lmbda_range is not None and not 0 < self.lmbda_range[0] < self.lmbda_range[1]:
            raise ConfigError(f"lmbda_range must be (low, high) with 0 < low < high, got {self.lmbda_range}")
        if self.lmbda is None and self.lmbda_range is None:
            raise ConfigError("need lmbda (or lmbda_range for a variable-rate model)")
        if (
            (self.lmbda is not None and self.lmbda <= 0)
            or self.steps <= 0
            or self.batch_size <= 0
            or self.crop < 64
            or self.crop % 64
        ):
            raise ConfigError("need lmbda > 0, steps > 0, batch_size > 0 and a crop that is a multiple of 64")
        if any(not 0 < f <= 1 for f in self.decay_at) or not 0 < self.decay_factor <= 1:
            raise ConfigError("decay_at fractions must be in (0, 1] and decay_factor in (0, 1]")

    def lr_factor(self, progress: float) -> float:
        return self.decay_factor ** sum(progress >= f for f in self.decay_at)

    def lmbda_at(self, global_step: int) -> float:
        """The lambda of a step: fixed, or log-uniform in ``lmbda_range`` from an RNG seeded by
        (seed, step), so it depends on nothing but the step (exact resume, same on every rank)."""
        if self.lmbda_range is None:
            assert self.lmbda is not None  # __post_init__ requires lmbda or lmbda_range
            return self.lmbda
        low, high = self.lmbda_range
        u = np.random.default_rng([self.seed, global_step]).random()
        return float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))


@dataclass(frozen=True)
class Runtime:
    """How a run executes, without changing what it computes: loader workers, ``torch.compile``,
    wall-clock checkpoints and a wall-time limit (0 = none)."""

    workers: int = 0
    compile: bool = False
    checkpoint_minutes: float = 0.0
    max_minutes: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 0 or self.checkpoint_minutes < 0 or self.max_minutes < 0:
            raise ConfigError("workers, checkpoint minutes and max minutes must not be negative")


LossFn = Callable[[nn.Module, Tensor, float], dict[str, Tensor]]  # (module, batch, lambda) -> losses


@dataclass
class Phase:
    """One block of steps: which sub-modules train, under which loss."""

    name: str
    steps: int
    trainable: list[str]
    loss: LossFn
    setup: Callable[[], None] | None = None


def set_trainable(module: nn.Module, paths: list[str]) -> list[str]:
    """Freeze ``module`` except the sub-modules at ``paths`` ("" = all); returns trainable names."""
    module.requires_grad_(False)
    for path in paths:
        try:
            module.get_submodule(path).requires_grad_(True)
        except AttributeError:
            raise ConfigError(f"no module {path!r} to train") from None
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    if not names:
        raise ConfigError(f"modules {paths} have no parameters to train")
    return names


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {f"optim/{idx}/{key}": value for idx, entry in state["state"].items() for key, value in entry.items()}
    return tensors, state["param_groups"]


def _optimizer_state(tensors: dict[str, Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split("/")
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


class Trainer:
    """Runs phases over a module, with checkpoints, logging and validation in ``run_dir``."""

    def __init__(
        self,
        module: nn.Module,
        phases: list[Phase],
        config: TrainConfig,
        run_dir: Path | None,
        data: CropDataset,
        ctx: DistContext = DistContext(),
        validate: Callable[[], dict[str, float]] | None = None,
        quiet: bool = False,
        runtime: Runtime = Runtime(),
    ) -> None:
        self.module, self.phases, self.config, self.run_dir = module, phases, config, run_dir
        self.data, self.ctx, self.validate, self.quiet, self.runtime = data, ctx, validate, quiet, runtime
        self.global_step = 0
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.precision == "fp16")
        self._tensorboard: SummaryWriter | bool | None = None  # False: tensorboard is not installed

    # -- checkpoints -------------------------------------------------------------------------
    @property
    def state_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / STATE_FILE

    def _rng_states(self) -> list[Tensor]:
        """Every rank's noise-RNG state, gathered on all ranks (each rank draws its own noise)."""
        state = torch.get_rng_state()
        if not self.ctx.enabled:
            return [state]
        gathered = [torch.empty_like(state) for _ in range(self.ctx.world_size)]
        torch.distributed.all_gather(gathered, state.to(self.ctx.device) if self.ctx.device.type == "cuda" else state)
        return [g.cpu() for g in gathered]

    def save_state(self, phase_index: int, phase_step: int, optimizer: torch.optim.Optimizer | None) -> None:
        if self.state_path is None:
            return
        rng_states = self._rng_states()  # a collective: every rank takes part
        if not self.ctx.is_main:
            return
        tensors = {f"module/{k}": v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        groups: list[dict] = []
        if optimizer is not None:
            optim_tensors, groups = _optimizer_tensors(optimizer)
            tensors.update({k: v.detach().cpu().contiguous() for k, v in optim_tensors.items()})
        tensors["rng/torch"] = rng_states[0]
        tensors.update({f"rng/torch/{rank}": state for rank, state in enumerate(rng_states) if rank})
        meta = {
            "format": STATE_FORMAT,
            "phase": phase_index,
            "phase_step": phase_step,
            "global_step": self.global_step,
            "param_groups": groups,
            "grad_scaler": self.scaler.state_dict(),
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.state_path, serialize(tensors, metadata={"kdic": json.dumps(meta)}))

    def load_state(self) -> tuple[int, int, dict | None]:
        """(phase, step within phase, optimizer state) from the last checkpoint."""
        path = self.state_path
        if path is None or not path.is_file():
            raise KdicError(f"nothing to resume: {path} does not exist")
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["kdic"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != STATE_FORMAT:
            raise KdicError(f"{path} is not a kdic training state")
        self.module.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("module/")})
        # this rank's noise RNG (older states hold rank 0's only, and an unused "rng/sampler")
        torch.set_rng_state(tensors.get(f"rng/torch/{self.ctx.rank}", tensors["rng/torch"]))
        if meta.get("grad_scaler"):
            self.scaler.load_state_dict(meta["grad_scaler"])
        self.global_step = meta["global_step"]
        optim = {k: v for k, v in tensors.items() if k.startswith("optim/")}
        return (
            meta["phase"],
            meta["phase_step"],
            (_optimizer_state(optim, meta["param_groups"]) if meta["param_groups"] else None),
        )

    # -- logging -----------------------------------------------------------------------------
    LOG_FIELDS = (
        "global_step",
        "phase",
        "kind",
        "loss",
        "rd",
        "bpp",
        "mse",
        "psnr",
        "feature",
        "aux",
        "lr",
        "seconds",
        "lmbda",
    )

    def _tensorboard_writer(self):
        """A SummaryWriter into the run folder when the optional tensorboard package is installed."""
        if self._tensorboard is None:
            assert self.run_dir is not None  # _log() writes only into a run folder
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self._tensorboard = False
        return self._tensorboard or None

    def _log(self, row: dict) -> None:
        if self.run_dir is None or not self.ctx.is_main:
            return
        writer = self._tensorboard_writer()
        if writer is not None:
            for key, value in row.items():
                if key not in ("global_step", "phase", "kind") and value is not None:
                    writer.add_scalar(f"{row['kind']}/{key}", value, row["global_step"])
        path = self.run_dir / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.LOG_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _truncate_log(self) -> None:
        """Drop log rows written after the checkpoint we start from (all of them when starting over)."""
        path = None if self.run_dir is None else self.run_dir / "log.csv"
        if path is None or not path.exists() or not self.ctx.is_main:
            return
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["global_step"]) <= self.global_step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(path, text.getvalue().encode())  # a kill here must not lose the whole log

    def _validate(self, phase: str) -> dict[str, float] | None:
        if self.validate is None or not self.ctx.is_main:
            return None
        was_training = self.module.training
        self.module.eval()
        metrics = self.validate()
        self.module.train(was_training)
        self._log({"global_step": self.global_step, "phase": phase, "kind": "val", **metrics})
        return metrics

    # -- the loop ----------------------------------------------------------------------------
    def _step(
        self, forward: nn.Module, phase: Phase, stream, optimizer: torch.optim.Optimizer, main: list[nn.Parameter]
    ) -> tuple[dict[str, Tensor], float]:
        """One optimizer step over ``accumulate`` micro-batches; (mean losses, lambda)."""
        cfg, device = self.config, self.ctx.device
        lmbda = cfg.lmbda_at(self.global_step)
        totals: dict[str, Tensor] = {}
        optimizer.zero_grad(set_to_none=True)
        for micro in range(cfg.accumulate):
            x = next(stream)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            last = micro == cfg.accumulate - 1
            ddp = getattr(forward, "_orig_mod", forward)  # under torch.compile
            with ddp.no_sync() if isinstance(ddp, DistributedDataParallel) and not last else contextlib.nullcontext():
                with torch.autocast(device.type, dtype=PRECISIONS[cfg.precision], enabled=cfg.precision != "fp32"):
                    losses = phase.loss(forward, x, lmbda)
                self.scaler.scale(losses["loss"] / cfg.accumulate).backward()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value.detach() / cfg.accumulate
        self.scaler.unscale_(optimizer)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(main, cfg.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        self.global_step += 1
        return totals, lmbda

    def run(self, resume: bool = False) -> dict:
        """Train every phase; ``resume`` continues from the last checkpoint, if the run got to write one
        (a run killed before its first checkpoint starts over, its log rows dropped). A run that
        reaches ``runtime.max_minutes`` checkpoints and returns with ``complete`` false."""
        began = last_checkpoint = time.monotonic()
        start_phase, start_step, optim_state = (0, 0, None)
        if self.run_dir is not None and self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.state_path is not None and self.state_path.is_file():
            start_phase, start_step, optim_state = self.load_state()
        self._truncate_log()
        cfg, runtime = self.config, self.runtime
        if self.ctx.device.type == "cuda":
            self.module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
        last_val: dict | None = None
        for phase_index, phase in enumerate(self.phases):
            if phase.setup is not None:
                phase.setup()
            if phase_index < start_phase:
                continue
            names = set_trainable(self.module, phase.trainable)
            params = dict(self.module.named_parameters())
            # the factorized prior's tails, trained by the aux loss (a trained module has aux_parameters())
            aux_parameters = cast(Callable[[], list[nn.Parameter]], self.module.aux_parameters)
            aux_ids = {id(p) for p in aux_parameters()}
            main = [params[n] for n in names if id(params[n]) not in aux_ids]
            aux = [params[n] for n in names if id(params[n]) in aux_ids]
            groups = [{"params": main, "lr": cfg.lr}] + ([{"params": aux, "lr": cfg.aux_lr}] if aux else [])
            optimizer = torch.optim.Adam(groups, lr=cfg.lr)
            first = start_step if phase_index == start_phase else 0
            if phase_index == start_phase and optim_state is not None:
                optimizer.load_state_dict(optim_state)
            forward = DistributedDataParallel(self.module) if self.ctx.enabled else self.module
            if runtime.compile:
                forward = cast(nn.Module, torch.compile(forward))  # an OptimizedModule, wrapping the module
            self.module.train()
            micro_first = self.global_step * cfg.accumulate
            stream = batches(
                self.data,
                cfg.batch_size,
                micro_first,
                micro_first + (phase.steps - first) * cfg.accumulate,
                runtime.workers,
                self.ctx.device,
            )
            bar = tqdm(
                range(first, phase.steps),
                desc=phase.name,
                disable=self.quiet or not self.ctx.is_main,
                initial=first,
                total=phase.steps,
            )
            for step in bar:
                started = time.perf_counter()
                optimizer.param_groups[0]["lr"] = cfg.lr * cfg.lr_factor(step / phase.steps)
                losses, lmbda = self._step(forward, phase, stream, optimizer, main)
                if step % cfg.log_every == 0 or step == phase.steps - 1:
                    row = {k: float(v) for k, v in losses.items()}
                    if "mse" in row:
                        row["psnr"] = psnr(row["mse"])
                    self._log(
                        {
                            "global_step": self.global_step,
                            "phase": phase.name,
                            "kind": "train",
                            **row,
                            "lr": optimizer.param_groups[0]["lr"],
                            "seconds": time.perf_counter() - started,
                            "lmbda": lmbda,
                        }
                    )
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                now = time.monotonic()
                out_of_time, timed = self._any_rank(
                    runtime.max_minutes > 0 and now - began >= runtime.max_minutes * 60,
                    runtime.checkpoint_minutes > 0 and now - last_checkpoint >= runtime.checkpoint_minutes * 60,
                )
                due = (step + 1) % cfg.checkpoint_every == 0 or out_of_time or timed
                if due and step + 1 < phase.steps:
                    self.save_state(phase_index, step + 1, optimizer)
                    last_checkpoint = now
                if cfg.val_every and self.global_step % cfg.val_every == 0:
                    last_val = self._validate(phase.name)
                if out_of_time and step + 1 < phase.steps:
                    bar.close()
                    return self._summary(last_val, complete=False)
            self.save_state(phase_index + 1, 0, None)
            last_checkpoint = time.monotonic()
            if self._any_rank(runtime.max_minutes > 0 and last_checkpoint - began >= runtime.max_minutes * 60)[
                0
            ] and phase_index + 1 < len(self.phases):
                return self._summary(last_val, complete=False)
        if not (cfg.val_every and self.global_step % cfg.val_every == 0):  # not validated at the last step yet
            last_val = self._validate(self.phases[-1].name) or last_val
        return self._summary(last_val, complete=True)

    def _any_rank(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag true if it is on any rank: wall-clock decisions (stop, checkpoint) must be taken
        by all ranks at the same step, or a collective hangs."""
        if not self.ctx.enabled or not (self.runtime.max_minutes or self.runtime.checkpoint_minutes):
            return flags
        value = torch.tensor([float(f) for f in flags], device=self.ctx.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return tuple(bool(v) for v in value.tolist())

    def _summary(self, validation: dict | None, complete: bool) -> dict:
        return {
            "global_step": self.global_step,
            "complete": complete,
            "validation": validation,
            "config": asdict(self.config),
        }
