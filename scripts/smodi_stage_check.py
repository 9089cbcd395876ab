#!/usr/bin/env python
"""How well do SMoDi's student stages work inside the teacher, alone, chained and assembled?

Runs the teacher-hosted phases of SMoDi (stage 1..6, channel context, parameter aggregation) for
``--steps-per-phase`` steps each, then reports the likelihood bpp and PSNR on a few validation
images of: the teacher; the teacher with each student stage swapped in; the encoder and decoder
stages chained; and the assembled student (adapters folded). Use it before spending a SMoDi
budget: the fine-tuning phase should start from the assembled student, not from scratch.

    python scripts/smodi_stage_check.py --teacher results/repro/shipped-0.1/s2c-hybrid-tiny-q3.safetensors \
        --data ../shared/data/train/bsds500 --val ../shared/data/kodak --teacher-init
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from kdic import load
from kdic.distill import load_strategy
from kdic.distill.pipeline import build_distillation
from kdic.eval.metrics import estimate_rd
from kdic.eval.validation import load_validation
from kdic.models import get_config
from kdic.train.data import CropDataset
from kdic.train.engine import TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", default="kdic-tiny")
    parser.add_argument("--data", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--val-images", type=int, default=2)
    parser.add_argument("--steps-per-phase", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--teacher-init", action="store_true")
    args = parser.parse_args()

    teacher = load(args.teacher)
    student = get_config(args.student)
    strategy = load_strategy("smodi")
    t = student.transform
    phases_of = strategy.expand(len(t.encoder), len(t.decoder), student.family).phases  # stage1..6, ... each
    hosted = len(phases_of) - 1  # every phase but the last (end-to-end) one runs inside the teacher
    total = round(args.steps_per_phase * hosted / (1 - phases_of[-1].fraction))
    module, phases = build_distillation(teacher, student, strategy, total, seed=0, teacher_init=args.teacher_init)
    config = TrainConfig(lmbda=teacher.lmbda, steps=total, lr=args.lr)
    Trainer(module, phases[:hosted], config, None, CropDataset(args.data, 128), quiet=True).run()
    images = load_validation(args.val, args.val_images)
    print(f"teacher: {estimate_rd(teacher, images)}")
    for swap in (
        ["stage1"],
        ["stage2"],
        ["stage3"],
        ["stage4"],
        ["stage5"],
        ["stage6"],
        ["stage1", "stage2", "stage3"],
        ["stage4", "stage5", "stage6"],
    ):
        module.set_phase(replace(phases_of[0], name="check", swap=tuple(swap), train=tuple(swap)))
        module.eval()
        print(f"teacher with student {'+'.join(swap)}: {estimate_rd(module, images)}")
    module.set_phase(phases_of[-1])  # assembles the student
    module.eval()
    print(f"assembled student: {estimate_rd(module.student, images)}")


if __name__ == "__main__":
    main()
