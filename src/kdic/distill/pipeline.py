"""One run pipeline for ``kdic train`` and ``kdic distill``: a model trained under a strategy, with or
without a teacher, as a resumable run folder. ``kdic train`` is the ``vanilla`` strategy (one RD
phase, no teacher); every line of set-up, state and export is shared."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from ..checkpoint import load, read_config, read_metadata, save
from ..errors import ConfigError, KdicError
from ..eval.validation import load_validation
from ..fileio import atomic_write_bytes, read_json
from ..models import LearnedImageCodec, ModelConfig, config_from_dict, get_config, to_dict, with_variable_rate
from ..train.data import CropDataset
from ..train.distributed import init_distributed, parameters_identical_across_ranks, shutdown
from ..train.engine import Phase, Runtime, TrainConfig, Trainer
from ..train.losses import phase_loss
from ..train.setup import init_from, prepare_run_dir, rate_config, rd_validation
from .construct import init_from_teacher, student_for
from .hybrid import DistillationModule
from .options import DEFAULT_WIDTH_SCALE
from .strategy import Strategy


@dataclass(frozen=True)
class RunSpec:
    """What one run trains (``model`` under ``strategy``), from what, on which data, into which folder.

    ``teacher`` is a checkpoint (ignored by a strategy without one); ``init`` starts the model from
    trained weights (the same model, or its fixed-rate version for a variable-rate model);
    ``teacher_init`` starts it from the pruned teacher (teacher-guided construction).
    """

    model: ModelConfig
    strategy: Strategy
    train: TrainConfig
    data: str | Path
    run_dir: str | Path
    teacher: str | Path | None = None
    init: str | Path | None = None
    teacher_init: bool = False
    val: str | Path | None = None
    val_images: int | None = None

    def __post_init__(self) -> None:
        if self.strategy.uses_teacher and self.teacher is None:
            raise ConfigError(f"strategy {self.strategy.name!r} distills from a teacher: pass one")
        if self.teacher_init and not self.strategy.uses_teacher:
            raise ConfigError(
                f"teacher init: strategy {self.strategy.name!r} trains without a teacher (try prune-finetune)"
            )
        if self.init is not None and (self.teacher_init or self.strategy.teacher_init):
            raise ConfigError("start from --init weights or from the pruned teacher, not both")

    @property
    def command(self) -> str:
        return "distill" if self.strategy.uses_teacher else "train"

    def phase_steps(self) -> list[tuple[str, int]]:
        """(name, steps) of every phase, as the run will take them."""
        t = self.model.transform
        expanded = self.strategy.expand(len(t.encoder), len(t.decoder), self.model.family)
        return [(p.name, n) for p, n in zip(expanded.phases, expanded.steps(self.train.steps))]

    def description(self, phases: list[Phase], world_size: int) -> dict:
        """The resolved run, as ``config.json`` records it."""
        return {
            "command": self.command,
            "model": to_dict(self.model),
            "strategy": asdict(self.strategy),
            "train": asdict(self.train),
            "teacher": str(self.teacher) if self.strategy.uses_teacher else None,
            "init": str(self.init) if self.init is not None else None,
            "teacher_init": self.teacher_init,
            "phase_steps": [p.steps for p in phases],
            "data": str(self.data),
            "val": str(self.val) if self.val else None,
            "world_size": world_size,
        }


def config_for(spec: str) -> ModelConfig:
    """A preset name, or a JSON file holding a model config (``kdic.models.to_dict`` form)."""
    if Path(spec).suffix == ".json":
        return config_from_dict(read_json(spec, "model config file", KdicError))
    return get_config(spec)


def model_to_train(
    model: str | None = None,
    init: str | Path | None = None,
    variable_rate: bool = False,
    lmbdas: tuple[float, ...] | None = None,
    padding: Literal["zeros", "replicate"] | None = None,
    rate_method: str | None = None,
) -> ModelConfig:
    """The model a training run trains: ``model`` (preset or JSON) or else the ``init`` weights' own,
    made variable-rate (over ``lmbdas``, by ``rate_method``) and given ``padding`` if asked."""
    if model is not None:
        config = config_for(model)
    elif init is not None:
        config = read_config(init)
    else:
        raise KdicError("pass --model PRESET (or a config JSON), or --init WEIGHTS to start from a trained model")
    if variable_rate or lmbdas or rate_method:
        config = with_variable_rate(config, lmbdas, rate_method)
    return replace(config, padding=padding) if padding is not None else config


def distillation_pair(
    teacher: str | Path,
    student: str | None = None,
    lmbda: float | None = None,
    stage1_channels: int | None = None,
    width_scale: float = DEFAULT_WIDTH_SCALE,
) -> tuple[ModelConfig, float | None]:
    """The student config (``student``: preset, JSON or ``"derive"``; see ``student_for``) and the
    lambda a distillation from ``teacher`` runs at (default: the one the teacher was trained at)."""
    teacher_config = read_config(teacher)
    lmbda = lmbda if lmbda is not None else read_metadata(teacher).get("lmbda")
    if lmbda is None and teacher_config.variable_rate is None:
        raise KdicError(f"{teacher} records no lambda; pass --lmbda")
    chosen: ModelConfig | Literal["derive"] | None = (
        None if student is None else "derive" if student == "derive" else config_for(student)
    )
    return student_for(teacher_config, chosen, stage1_channels, width_scale), lmbda


def build_distillation(
    teacher: LearnedImageCodec | None,
    student_config: ModelConfig,
    strategy: Strategy,
    total_steps: int,
    seed: int = 0,
    teacher_init: bool = False,
    init: tuple[LearnedImageCodec, str | Path] | None = None,
) -> tuple[DistillationModule, list[Phase]]:
    """The trained module (student + adapters) and its phases, before any step is taken; ``init`` is
    (trained model, where it came from) to start the student from."""
    if strategy.uses_teacher:
        assert teacher is not None  # a strategy that uses the teacher is given one
        if teacher.config.variable_rate != student_config.variable_rate:
            raise ConfigError(
                "teacher and student must both be fixed-rate or share one variable-rate config "
                f"({teacher.config.variable_rate} vs {student_config.variable_rate})"
            )
    torch.manual_seed(seed)
    student = LearnedImageCodec(student_config)
    if init is not None:
        init_from(student, *init)
    module = DistillationModule(student, teacher if strategy.uses_teacher else None)
    strategy = strategy.expand(len(student.g_a.stages), len(student.g_s.stages), student_config.family)
    if strategy.uses_teacher:
        if teacher_init or strategy.teacher_init:
            assert teacher is not None  # as checked above
            init_from_teacher(student, teacher)
            module.slice_adapters()
        module.inherit(strategy.inherit)
    phases = []
    for spec, steps in zip(strategy.phases, strategy.steps(total_steps)):
        phases.append(
            Phase(
                spec.name,
                steps,
                module.trainable_paths(spec),
                phase_loss(spec.loss, spec.feature_weight),
                setup=functools.partial(module.set_phase, spec),
            )
        )
    return module, phases


def run(
    spec: RunSpec, resume: bool = False, quiet: bool = False, device: str = "auto", runtime: Runtime = Runtime()
) -> dict:
    """Run every phase of ``spec.strategy`` on ``spec.train.steps`` steps, or resume the run.

    A variable-rate model trains every phase over its lambda range (one lambda per step). Exports
    ``model.safetensors`` once every step is done; a run stopped by ``runtime.max_minutes`` only
    checkpoints and its summary says ``complete: false``.
    """
    train_config = rate_config(spec.model, spec.train)
    ctx = init_distributed(device)
    run_dir = Path(spec.run_dir)
    lock = None
    try:
        # RunSpec requires a teacher where the strategy uses one
        teacher = load(spec.teacher, ctx.device) if spec.strategy.uses_teacher and spec.teacher is not None else None
        if teacher is not None and ctx.device.type == "cuda":
            teacher.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
        init = (load(spec.init), spec.init) if spec.init is not None else None
        module, phases = build_distillation(
            teacher, spec.model, spec.strategy, train_config.steps, train_config.seed, spec.teacher_init, init
        )
        module.to(ctx.device)
        lock = prepare_run_dir(run_dir, spec.description(phases, ctx.world_size), resume, ctx)
        data = CropDataset(spec.data, train_config.crop, train_config.seed, ctx.rank, ctx.world_size)
        torch.manual_seed(train_config.seed + ctx.rank)
        validation = load_validation(spec.val, spec.val_images) if spec.val and ctx.is_main else None
        student = module.student
        validate = rd_validation(student, spec.model, train_config, validation, ctx.device) if validation else None
        summary = Trainer(module, phases, train_config, run_dir, data, ctx, validate, quiet, runtime).run(resume=resume)
        if not summary["complete"]:
            return summary
        module.assemble()  # a strategy that ends inside the teacher still exports a self-contained student
        summary["ranks_identical"] = parameters_identical_across_ranks(module, ctx)
        summary["strategy"] = spec.strategy.name
        summary["phases"] = [{"name": p.name, "steps": p.steps} for p in phases]
        if ctx.is_main:
            provenance = {"run": str(run_dir), "strategy": spec.strategy.name, "steps": summary["global_step"]}
            if spec.strategy.uses_teacher:
                provenance["teacher"] = str(spec.teacher)
            # the summary first: a run folder with weights is a finished run (the study runner's test)
            atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
            save(
                student,
                run_dir / "model.safetensors",
                lmbda=None if student.variable_rate else train_config.lmbda,
                extra=provenance,
            )
        return summary
    finally:
        if lock is not None:
            lock.close()
        shutdown(ctx)
