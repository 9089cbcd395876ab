"""``kdic study`` and ``kdic report``: a study's runs (a plan file) started and resumed, and its tables
and plots rebuilt from the results it left."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..configs import bundled_names
from ..errors import KdicError
from .common import command


def _add_study(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help=f"a bundled study ({', '.join(bundled_names('studies'))}) or a plan file (.json)")
    p.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the checkout the study's paths are relative to (default: the current folder)",
    )


@command("study", "plan, start or resume a study's runs (e.g. the CPU-scale reproduction, cpu-repro)")
def _configure_study(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument(
        "action",
        choices=["plan", "run", "finalize"],
        help="plan: every run, its steps and CPU cost; run: start or resume what fits; finalize: "
        "export, keep and evaluate one trained run",
    )
    _add_study(p)
    p.add_argument("--minutes", type=float, default=150, help="run: wall-clock minutes this session can give")
    p.add_argument("--jobs", type=int, default=2, help="run: runs side by side (one thread each)")
    p.add_argument("--only", nargs="+", default=[], metavar="RUN", help="run: only these runs; finalize: the run")
    p.set_defaults(func=study)


def _failed_step(exc: subprocess.CalledProcessError) -> KdicError:
    return KdicError(f"a study step failed (exit status {exc.returncode}): {' '.join(map(str, exc.cmd))}")


def study(args: argparse.Namespace) -> int:
    try:
        return _study(args)
    except subprocess.CalledProcessError as exc:
        raise _failed_step(exc) from None


def _study(args: argparse.Namespace) -> int:
    from ..study import finalize, load_study, plan_table, run_study

    if args.jobs < 1 or args.minutes <= 0:
        raise KdicError("--jobs must be at least 1 and --minutes positive")
    plan = load_study(args.study)
    if args.action == "plan":
        print(plan_table(plan, args.root))
        return 0
    if args.action == "run":
        return 2 if run_study(plan, args.root, args.minutes, args.jobs, tuple(args.only)) else 0
    if len(args.only) != 1:
        raise KdicError("finalize takes one run: --only NAME")
    finalize(plan, plan.run(args.only[0]), args.root)
    return 0


@command("report", "rebuild a study's curves, BD-rate tables, plots and generated doc section from its results")
def _configure_report(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    _add_study(p)
    p.add_argument("--baselines", action="store_true", help="measure the live baselines first where missing")
    p.add_argument("--bench", action="store_true", help="run kdic bench first where missing")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    from ..eval.report import write_report
    from ..study import load_study, measure_missing

    plan = load_study(args.study)
    try:
        measure_missing(plan, args.root, args.baselines, args.bench)
    except subprocess.CalledProcessError as exc:
        raise _failed_step(exc) from None
    for path in write_report(plan, args.root):
        print(path)
    return 0
