"""``kdic distill``: a student from a teacher checkpoint under a strategy, as a resumable run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..checkpoint import load, save
from ..errors import ConfigError
from ..models import LearnedImageCodec, ModelConfig, to_dict
from ..train.data import CropDataset, load_validation
from ..train.distributed import init_distributed, parameters_identical_across_ranks, shutdown
from ..train.engine import Phase, Runtime, TrainConfig, Trainer
from ..train.losses import phase_loss
from ..train.run import prepare_run_dir, rate_config, rd_validation
from .construct import init_from_teacher
from .hybrid import DistillationModule
from .strategy import Strategy


def build_distillation(teacher: LearnedImageCodec | None, student_config: ModelConfig, strategy: Strategy,
                       total_steps: int, seed: int = 0,
                       teacher_init: bool = False) -> tuple[DistillationModule, list[Phase]]:
    """The trained module (student + adapters) and its phases, before any step is taken."""
    if strategy.uses_teacher and teacher.config.variable_rate != student_config.variable_rate:
        raise ConfigError("teacher and student must both be fixed-rate or share one variable-rate config "
                          f"({teacher.config.variable_rate} vs {student_config.variable_rate})")
    torch.manual_seed(seed)
    student = LearnedImageCodec(student_config)
    module = DistillationModule(student, teacher if strategy.uses_teacher else None)
    strategy = strategy.expand(len(student.g_a.stages), len(student.g_s.stages), student_config.family)
    if strategy.uses_teacher:
        if teacher_init or strategy.teacher_init:
            init_from_teacher(student, teacher)
            module.slice_adapters()
        module.inherit(strategy.inherit)
    phases = []
    for spec, steps in zip(strategy.phases, strategy.steps(total_steps)):
        phases.append(Phase(spec.name, steps, module.trainable_paths(spec), phase_loss(spec.loss, spec.feature_weight),
                            setup=lambda spec=spec: module.set_phase(spec), info=asdict(spec)))
    return module, phases


def distill(teacher_path: str | Path | None, student_config: ModelConfig, strategy: Strategy,
            train_config: TrainConfig, data_dir: str | Path, run_dir: str | Path, val_dir: str | Path | None = None,
            val_images: int | None = None, teacher_init: bool = False, resume: bool = False,
            quiet: bool = False, device: str = "auto", runtime: Runtime = Runtime()) -> dict:
    """Run every phase of ``strategy`` on ``train_config.steps`` steps; exports the student once
    every step is done (see ``train.run.train`` for ``runtime.max_minutes``).

    A variable-rate pair trains every phase over the student's lambda range (one lambda per step).
    """
    train_config = rate_config(student_config, train_config)
    ctx = init_distributed(device)
    run_dir = Path(run_dir)
    lock = None
    try:
        teacher = load(teacher_path, ctx.device) if teacher_path is not None and strategy.uses_teacher else None
        if teacher is not None and ctx.device.type == "cuda":
            teacher.to(memory_format=torch.channels_last)
        module, phases = build_distillation(teacher, student_config, strategy, train_config.steps,
                                            train_config.seed, teacher_init)
        module.to(ctx.device)
        description = {"command": "distill", "teacher": str(teacher_path), "student": to_dict(student_config),
                       "strategy": asdict(strategy), "train": asdict(train_config), "teacher_init": teacher_init,  # the strategy may ask for it too (asdict)
                       "phase_steps": [p.steps for p in phases], "data": str(data_dir), "world_size": ctx.world_size}
        lock = prepare_run_dir(run_dir, description, resume, ctx)
        data = CropDataset(data_dir, train_config.crop, train_config.seed, ctx.rank, ctx.world_size)
        torch.manual_seed(train_config.seed + ctx.rank)
        validation = load_validation(val_dir, val_images) if val_dir and ctx.is_main else None
        student = module.student
        validate = rd_validation(student, student_config, train_config, validation, ctx.device) if validation else None
        summary = Trainer(module, phases, train_config, run_dir, data, ctx, validate, quiet, runtime).run(resume=resume)
        if not summary["complete"]:
            return summary
        module.assemble()  # a strategy that ends inside the teacher still exports a self-contained student
        summary["ranks_identical"] = parameters_identical_across_ranks(module, ctx)
        summary["strategy"] = strategy.name
        summary["phases"] = [{"name": p.name, "steps": p.steps} for p in phases]
        if ctx.is_main:
            save(student, run_dir / "model.safetensors", lmbda=None if student.variable_rate else train_config.lmbda,
                 extra={"teacher": str(teacher_path), "strategy": strategy.name, "steps": summary["global_step"]})
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary
    finally:
        if lock is not None:
            lock.close()
        shutdown(ctx)
