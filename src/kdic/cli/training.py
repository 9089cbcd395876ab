"""``kdic train`` and ``kdic distill``: one run pipeline (``kdic.distill.pipeline``); ``train`` is the
``vanilla`` strategy without a teacher. ``--recipe`` takes a recipe's settings as defaults."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..configs import bundled_names
from ..data import LAMBDA_RANGE
from ..distill.options import DEFAULT_WIDTH_SCALE
from ..errors import KdicError
from ..train.options import DEVICES, PRECISION_DTYPES
from .common import add_quiet, command, rank


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lmbda", type=float, help="rate-distortion trade-off: loss = bpp + lmbda*255^2*MSE")
    p.add_argument(
        "--data",
        required=True,
        help="training images: a folder (images and uncompressed .tar shards, "
        "searched recursively), a .txt/.lst file list, or one .tar shard; "
        "streamed, never loaded whole",
    )
    p.add_argument("--run-dir", required=True, help="run folder (config, logs, checkpoints, exported weights)")
    p.add_argument("--val", help="validation image folder, e.g. Kodak")
    p.add_argument("--val-images", type=int, help="use only the first N validation images")
    p.add_argument("--steps", type=int, default=2000, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step (per process under torchrun)")
    p.add_argument("--crop", type=int, default=128, help="square crop size, a multiple of 64")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--decay-at", type=float, nargs="+", default=[0.9], help="fractions of each phase where lr *= 0.1")
    p.add_argument("--seed", type=int, default=0, help="seed of the model, the crops and the lambda draws")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between resumable checkpoints")
    p.add_argument("--val-every", type=int, default=0, help="steps between validations (0: at the end only)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    add_quiet(p, "no progress bar")
    p.add_argument(
        "--device",
        default="auto",
        metavar="|".join(DEVICES),
        help="auto: CUDA when available (with or without torchrun), else the CPU",
    )
    p.add_argument(
        "--precision",
        choices=list(PRECISION_DTYPES),
        default="fp32",
        help="autocast precision of the transforms; rates, likelihoods and the loss stay float32 "
        "(fp16 adds a gradient scaler)",
    )
    p.add_argument("--accumulate", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader processes decoding and cropping images (0: in the training process)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the trained module")
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=0.0,
        help="also checkpoint every N minutes of wall time (0: only every --checkpoint-every steps)",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="checkpoint and stop after N minutes (inside a scheduler's wall time; 0: no limit); resume later",
    )
    p.add_argument(
        "--recipe",
        help=f"take this recipe's settings as defaults ({', '.join(bundled_names('recipes'))}, "
        "or a recipe JSON); options given explicitly win",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved run, its steps and device-hours (timing two steps here), then stop",
    )
    p.add_argument(
        "--throughput",
        type=float,
        metavar="SAMPLES_PER_S",
        help="with --dry-run: a measured training throughput (kdic bench) instead of timing here",
    )


def _apply_recipe(p: argparse.ArgumentParser, name: str, argv: Sequence[str]) -> None:
    """Load the recipe ``--recipe`` names in ``argv`` and make its values this parser's defaults."""
    spec = next(
        (
            argv[i + 1] if a == "--recipe" else a.split("=", 1)[1]
            for i, a in enumerate(argv)
            if (a == "--recipe" and i + 1 < len(argv)) or a.startswith("--recipe=")
        ),
        None,
    )
    if spec is None:
        return
    from ..train.recipes import load_recipe

    recipe = load_recipe(spec)
    if recipe.command != name:
        raise KdicError(f"recipe {recipe.name} is for 'kdic {recipe.command}', not 'kdic {name}'")
    unknown = sorted(set(recipe.args) - {action.dest for action in p._actions})
    if unknown:
        raise KdicError(f"recipe {recipe.name}: {', '.join(unknown)} are not options of 'kdic {recipe.command}'")
    p.set_defaults(**recipe.args, loaded_recipe=recipe)


@command("train", "train a model (a run without a teacher: strategy vanilla; works under torchrun for DDP)")
def _configure_train(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--model", help="preset name or model-config JSON file (default: the --init model's)")
    p.add_argument(
        "--init",
        help="start from these weights (e.g. fine-tune another lambda from a trained model, "
        "or, with --variable-rate, a variable-rate model from a fixed-rate one)",
    )
    _add_training_args(p)
    p.add_argument(
        "--padding",
        choices=["zeros", "replicate"],
        help="how convolutions pad (default: the model's; replicate keeps flat borders flat)",
    )
    p.add_argument(
        "--variable-rate",
        action="store_true",
        help="one model for a range of lambdas (gain units; lambda drawn per step): the preset's "
        "'-vr' variant; --lmbda is then optional, the rate point validation reports first",
    )
    p.add_argument(
        "--lmbdas",
        type=float,
        nargs="+",
        metavar="L",
        help="anchor lambdas of --variable-rate, increasing (default: the shipped models' eleven, "
        f"{LAMBDA_RANGE[0]:g} to {LAMBDA_RANGE[1]:g})",
    )
    p.add_argument(
        "--rate-method",
        metavar="NAME",
        help="how a variable-rate model adapts to lambda, a registered rate method (default: the model's, "
        "else 'gain', gain units): 'modulated' "
        "adds lambda-conditioned channel modulation to both transforms (docs/variable_rate.md); from "
        "gain-unit weights it starts coding exactly as they do",
    )
    p.set_defaults(func=train)
    _apply_recipe(p, "train", argv)


@command("distill", "distill a student from a teacher checkpoint (SMoDi and its ablations)")
def _configure_distill(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--teacher", required=True, help="teacher weights (.safetensors written by kdic)")
    p.add_argument(
        "--student",
        help="student preset, model-config JSON, or 'derive' (teacher-guided construction); "
        "default: the teacher's registered student, else derived; a variable-rate "
        "teacher's student gets its lambda range",
    )
    p.add_argument(
        "--stage1-channels",
        type=int,
        help="width of the first (and mirrored last) stage of a derived student (default: 2/3 of the teacher's)",
    )
    p.add_argument(
        "--width-scale",
        type=float,
        default=DEFAULT_WIDTH_SCALE,
        help=f"width factor of plain conv/GDN stages of a derived student ({DEFAULT_WIDTH_SCALE:g}: about half "
        "the MACs)",
    )
    p.add_argument(
        "--strategy",
        default="smodi",
        help=f"strategy name ({', '.join(bundled_names('strategies'))}) or a strategy JSON file",
    )
    p.add_argument(
        "--teacher-init",
        action="store_true",
        help="initialise kept student blocks from the teacher (the teacher-using strategies do anyway)",
    )
    p.add_argument(
        "--final-fraction",
        type=float,
        help="share of the budget for the last (end-to-end) phase "
        "(default: the strategy's own, 0.75 for smodi as in the paper)",
    )
    _add_training_args(p)
    p.set_defaults(func=distill)
    _apply_recipe(p, "distill", argv)


def _train_config(args: argparse.Namespace, config, lmbda: float | None):
    from ..train.engine import TrainConfig

    vr = config.variable_rate
    return TrainConfig(
        lmbda=lmbda,
        steps=args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        decay_at=tuple(args.decay_at),
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        val_every=args.val_every,
        lmbda_range=vr.range if vr else None,
        precision=args.precision,
        accumulate=args.accumulate,
    )


def _execute(spec, args: argparse.Namespace) -> int:
    """Run (or with ``--dry-run`` plan) ``spec`` and say how it ended."""
    recipe = getattr(args, "loaded_recipe", None)
    if recipe is not None:
        recipe.check_lmbda(spec.train.lmbda)
    if args.dry_run:
        from ..train.recipes import run_plan
        from ..train.setup import rate_config

        print(
            json.dumps(
                run_plan(
                    spec.command,
                    spec.model,
                    rate_config(spec.model, spec.train),
                    spec.phase_steps(),
                    args.device,
                    recipe,
                    args.throughput,
                ),
                indent=2,
            )
        )
        return 0
    from ..distill.pipeline import run
    from ..train.engine import Runtime

    runtime = Runtime(
        workers=args.workers,
        compile=args.compile,
        checkpoint_minutes=args.checkpoint_minutes,
        max_minutes=args.max_minutes,
    )
    summary = run(spec, args.resume, args.quiet, args.device, runtime)
    if not summary.get("complete", True):
        print(
            f"kdic: stopped at step {summary['global_step']} (--max-minutes); continue with the same command and "
            f"--resume (run folder {args.run_dir})",
            file=sys.stderr,
        )
        return 0
    if not args.quiet and rank() == 0:
        v = summary.get("validation")
        rd = ""
        if v:
            points = "; ".join(
                f"lambda {k[4:]}: {v[k]:.4f} bpp, {v['psnr' + k[3:]]:.2f} dB" for k in v if k.startswith("bpp@")
            )
            rd = f"; validation bpp {v['bpp']:.4f}, PSNR {v['psnr']:.2f} dB{f' ({points})' if points else ''}"
        how = (
            f"distilled from {Path(str(spec.teacher)).name} with {spec.strategy.name}"
            if spec.strategy.uses_teacher
            else "trained"
        )
        print(
            f"done: {spec.model.name} {how} in {summary['global_step']} steps{rd}; "
            f"weights in {Path(args.run_dir) / 'model.safetensors'}"
        )
    return 0


def train(args: argparse.Namespace) -> int:
    from ..distill.pipeline import RunSpec, model_to_train
    from ..distill.strategy import load_strategy

    config = model_to_train(
        args.model,
        args.init,
        args.variable_rate,
        tuple(args.lmbdas) if args.lmbdas else None,
        args.padding,
        args.rate_method,
    )
    if args.lmbda is None and config.variable_rate is None:
        raise KdicError("pass --lmbda (or --variable-rate to train one model for a range of lambdas)")
    spec = RunSpec(
        config,
        load_strategy("vanilla"),
        _train_config(args, config, args.lmbda),
        args.data,
        args.run_dir,
        init=args.init,
        val=args.val,
        val_images=args.val_images,
    )
    return _execute(spec, args)


def distill(args: argparse.Namespace) -> int:
    from ..distill.pipeline import RunSpec, distillation_pair
    from ..distill.strategy import load_strategy

    strategy = load_strategy(args.strategy)
    if args.final_fraction is not None:
        strategy = strategy.with_final_fraction(args.final_fraction)
    student, lmbda = distillation_pair(args.teacher, args.student, args.lmbda, args.stage1_channels, args.width_scale)
    spec = RunSpec(
        student,
        strategy,
        _train_config(args, student, lmbda),
        args.data,
        args.run_dir,
        teacher=args.teacher,
        teacher_init=args.teacher_init,
        val=args.val,
        val_images=args.val_images,
    )
    return _execute(spec, args)
