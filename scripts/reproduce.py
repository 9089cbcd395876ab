#!/usr/bin/env python
"""Reproduce the paper's claims at CPU scale (docs/reproduction.md) as resumable runs.

    python scripts/reproduce.py plan                     # every run, its steps and CPU cost
    python scripts/reproduce.py run --minutes 150        # start/resume runs that fit, 2 at a time
    python scripts/reproduce.py report                   # curves, BD-rate tables, plots, energy, bench

``run`` is safe to interrupt and to call again in a later session: a run with a checkpoint
resumes, a finished run is exported (float16), evaluated on Kodak with real bitstreams and never
repeated. Run folders live in runs/repro (not committed); what a run leaves for good is its
evaluation (results/repro/points), its log and summary (results/repro/logs) and, for the teacher,
vanilla and SMoDi students, its float16 weights (package data or results/repro/weights).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # every path below is relative to it (main() changes there)
SHARED = Path("..") / "shared" / "data"
TRAIN_DATA = SHARED / "train" / "bsds500"
KODAK = SHARED / "kodak"
VTM = f"{SHARED / 'anchors' / 'summary_psnr_rgb.json'}#kodak/compressai/vtm"
RUNS = Path("runs") / "repro"
RESULTS = Path("results") / "repro"
PACKAGE_WEIGHTS = Path("src") / "kdic" / "data" / "weights"
DOC = Path("docs") / "reproduction.md"
KDIC = [sys.executable, "-m", "kdic.cli"]

QUALITY_LAMBDAS = {1: 0.0035, 2: 0.0067, 3: 0.013, 4: 0.025}
TEACHER, STUDENT = "s2c-hybrid-tiny", "kdic-tiny"
TEACHER_STEPS, TEACHER_FINETUNE_STEPS, STUDENT_STEPS = 6000, 3000, 4000
STRATEGIES = ("vanilla", "e2e-feature", "two-stage", "stagewise-explicit", "smodi")
CONTROLS = ("prune-finetune",)  # teacher weights as the start, no teacher target: separates init from distillation
# Students that use a teacher start from its pruned weights (the paper's teacher-guided construction);
# vanilla is the paper's "trained alone" baseline, from scratch.
TEACHER_INIT = frozenset(STRATEGIES) - {"vanilla"}
ALL_QUALITIES = (1, 2, 3, 4)
SCRATCH_QUALITIES = (4, 2)  # teachers trained from scratch; the other two are fine-tuned from them
ABLATION_QUALITIES = (2, 3, 4)  # the ablations and the second vanilla seed run at 3 lambdas
# Measured seconds per step at batch 8 x 128^2, one thread, two runs side by side on 2 cores.
SECONDS_PER_STEP = {"teacher": 0.80, "vanilla": 0.38, "smodi": 0.42, "e2e-feature": 0.62, "two-stage": 0.42,
                    "stagewise-explicit": 0.40, "prune-finetune": 0.38}
EVAL_MINUTES = {"teacher": 3.0, "student": 2.0}
COMMON = ["--data", str(TRAIN_DATA), "--val", str(KODAK), "--val-images", "6", "--val-every", "2000",
          "--checkpoint-every", "500",
          "--batch-size", "8", "--crop", "128", "--quiet"]


@dataclass(frozen=True)
class Run:
    name: str
    kind: str  # "teacher" or a strategy name
    quality: int
    seed: int
    after: str | None  # run whose weights this one starts from or distills
    args: tuple[str, ...]
    steps: int
    keep: Path | None = None  # where the float16 weights are kept for good

    @property
    def run_dir(self) -> Path:
        return RUNS / self.name

    @property
    def weights(self) -> Path:
        return self.run_dir / "model.safetensors"

    @property
    def point(self) -> Path:
        return RESULTS / "points" / f"{self.name}.json"

    @property
    def minutes(self) -> float:
        return self.steps * SECONDS_PER_STEP[self.kind] / 60 + EVAL_MINUTES["teacher" if self.kind == "teacher" else "student"]

    def command(self, resume: bool) -> list[str]:
        return [*KDIC, *self.args, "--run-dir", str(self.run_dir), *COMMON, *(["--resume"] if resume else [])]


def teacher_name(quality: int) -> str:
    """The final teacher of a quality: every one has 6000 steps from scratch + 3000 of fine-tuning."""
    return f"teacher-q{quality}" + ("-ft" if quality in SCRATCH_QUALITIES else "")


def student_name(strategy: str, quality: int, seed: int) -> str:
    return f"{strategy}-q{quality}-s{seed}"


def build_plan() -> list[Run]:
    """Teachers: two lambdas from scratch, then every lambda fine-tuned from the nearest of them.
    Students: every strategy at the same step budget, data and seed, distilled from the teacher
    of their lambda. A run reads its predecessor's *kept* float16 weights (committed), so a later
    session on a fresh machine can go on where the last one stopped."""
    teachers = []
    for quality in SCRATCH_QUALITIES:
        teachers.append(Run(f"teacher-q{quality}", "teacher", quality, 0, None,
                            ("train", "--model", TEACHER, "--lmbda", str(QUALITY_LAMBDAS[quality]), "--steps",
                             str(TEACHER_STEPS), "--lr", "1e-3", "--decay-at", "0.85"), TEACHER_STEPS,
                            RESULTS / "weights" / f"teacher-q{quality}.safetensors"))
    kept = {r.name: r.keep for r in teachers}
    # Fine-tuning at lr 5e-4: the neighbour lambdas from the scratch models, and the scratch lambdas
    # themselves, so that all four teachers end with the same 9000 steps.
    for quality, source in ((3, 4), (1, 2), (4, 4), (2, 2)):
        kept[teacher_name(quality)] = PACKAGE_WEIGHTS / f"{TEACHER}-q{quality}.safetensors"
        teachers.append(Run(teacher_name(quality), "teacher", quality, 0, f"teacher-q{source}",
                            ("train", "--init", str(kept[f"teacher-q{source}"]), "--lmbda",
                             str(QUALITY_LAMBDAS[quality]), "--steps", str(TEACHER_FINETUNE_STEPS), "--lr", "5e-4",
                             "--decay-at", "0.8"), TEACHER_FINETUNE_STEPS, kept[teacher_name(quality)]))
    jobs = [(s, q, 0) for q in (3, 4, 2, 1) for s in ("smodi", "vanilla")]
    jobs += [(s, q, 0) for s in CONTROLS for q in ABLATION_QUALITIES]
    jobs += [("vanilla", q, 1) for q in ABLATION_QUALITIES]
    # Quality-major, the default lambda first: a plan cut short still compares all five strategies there.
    jobs += [(s, q, 0) for q in (3, 2, 4) for s in STRATEGIES if s not in ("vanilla", "smodi")]
    students = []
    for strategy, quality, seed in jobs:
        keep = {"smodi": PACKAGE_WEIGHTS / f"{STUDENT}-q{quality}.safetensors",
                "vanilla": RESULTS / "weights" / f"{student_name(strategy, quality, seed)}.safetensors"}.get(strategy)
        args = ("distill", "--teacher", str(kept[teacher_name(quality)]), "--student", STUDENT,
                "--strategy", strategy, "--lmbda", str(QUALITY_LAMBDAS[quality]), "--steps", str(STUDENT_STEPS),
                "--lr", "1e-3", "--decay-at", "0.85", "--seed", str(seed),
                *(["--teacher-init"] if strategy in TEACHER_INIT else []))
        students.append(Run(student_name(strategy, quality, seed), strategy, quality, seed, teacher_name(quality),
                            args, STUDENT_STEPS, keep if seed == 0 else None))
    # Scheduling order: the quality-3 students (the shipped default) before the last teacher fine-tunes.
    first = [r for r in students if r.quality == 3 and r.seed == 0 and r.kind in ("smodi", "vanilla", *CONTROLS)]
    return [*teachers[:4], *first, *teachers[4:], *[r for r in students if r not in first]]


def is_done(run: Run) -> bool:
    return run.point.is_file()


def finalize(run: Run) -> None:
    """Export float16 weights, evaluate them on Kodak (real bitstreams), keep the small artefacts."""
    half = run.run_dir / "model-fp16.safetensors"
    subprocess.run([*KDIC, "export", str(run.weights), "-o", str(half), "--half", "--force", "--quiet"], check=True)
    run.point.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*KDIC, "eval", "--weights", str(half), "--data", str(KODAK), "-o", str(run.point), "--name",
                    run.name, "--quiet"], check=True)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    shutil.copy(run.run_dir / "log.csv", logs / f"{run.name}.csv")
    summary = {"config": json.loads((run.run_dir / "config.json").read_text()),
               "summary": json.loads((run.run_dir / "summary.json").read_text())}
    (logs / f"{run.name}.json").write_text(json.dumps(summary, indent=2))
    if run.keep is not None:
        run.keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(half, run.keep)


def launch(run: Run) -> subprocess.Popen:
    """Train/resume (unless already trained), then finalize, in one single-threaded child process."""
    RUNS.mkdir(parents=True, exist_ok=True)
    commands = []
    if not run.weights.is_file():
        commands.append(run.command(resume=(run.run_dir / "checkpoints" / "state.safetensors").is_file()))
    commands.append([sys.executable, str(Path(__file__).resolve()), "finalize", run.name])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(RUNS / f"{run.name}.out", "a")
    proc = subprocess.Popen(" && ".join(shlex.join(c) for c in commands), shell=True, cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    _lock(run).write_text(str(proc.pid))
    return proc


def _lock(run: Run) -> Path:
    return RUNS / f"{run.name}.pid"


def is_running(run: Run) -> bool:
    """Whether some ``run`` invocation (this one or another) has this run going right now."""
    try:
        os.kill(int(_lock(run).read_text()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


def cmd_plan(_: argparse.Namespace) -> None:
    runs = build_plan()
    total = 0.0
    print("| run | after | steps | CPU-min (1 thread) | done | measured training min |\n|---|---|---|---|---|---|")
    for run in runs:
        total += run.minutes
        measured = _measured_minutes(run)
        print(f"| {run.name} | {run.after or '-'} | {run.steps} | {run.minutes:.0f} | {'yes' if is_done(run) else ''} | "
              f"{f'{measured:.0f}' if measured else ''} |")
    left = sum(r.minutes for r in runs if not is_done(r))
    print(f"\n{len(runs)} runs, {total / 60:.1f} CPU-hours in all ({total / 120:.1f} h on 2 cores, two runs at a time); "
          f"{left / 60:.1f} CPU-hours left.")


def _measured_minutes(run: Run) -> float | None:
    """Training minutes of a finished run from its kept log: mean logged seconds per step x steps."""
    log = RESULTS / "logs" / f"{run.name}.csv"
    if not log.is_file():
        return None
    seconds = [float(r["seconds"]) for r in csv.DictReader(log.open()) if r["kind"] == "train" and r["seconds"]]
    return sum(seconds) / len(seconds) * run.steps / 60 if seconds else None


def cmd_run(args: argparse.Namespace) -> None:
    """Keep ``--jobs`` runs going (counting those another ``run`` started); start a run only if its
    estimate fits in the minutes left."""
    deadline = time.time() + args.minutes * 60
    plan = build_plan()
    runs = [r for r in plan if not args.only or r.name in args.only]
    by_name = {r.name: r for r in plan}
    running: dict[str, subprocess.Popen] = {}
    failed: set[str] = set()
    while True:
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see runs/repro/{name}.out)"
                if proc.returncode:
                    failed.add(name)
                print(f"{time.strftime('%H:%M:%S')} {name}: {status}", flush=True)
        elsewhere = sum(1 for r in plan if r.name not in running and is_running(r))
        ready = [r for r in runs if not is_done(r) and r.name not in running and r.name not in failed
                 and not is_running(r) and (r.after is None or is_done(by_name[r.after]))]
        minutes_left = (deadline - time.time()) / 60
        fitting = [r for r in ready if r.minutes * (1 - _progress(r)) <= minutes_left]
        while fitting and len(running) + elsewhere < args.jobs:
            run = fitting.pop(0)
            print(f"{time.strftime('%H:%M:%S')} {run.name}: starting (~{run.minutes * (1 - _progress(run)):.0f} min)",
                  flush=True)
            running[run.name] = launch(run)
        if not running and not elsewhere:  # runs another invocation started may free a slot: wait for them
            pending = [r.name for r in runs if not is_done(r)]
            print(f"nothing more fits or is ready; pending: {', '.join(pending) or 'none'}", flush=True)
            return
        time.sleep(10)


def _progress(run: Run) -> float:
    """Fraction of a run's steps already checkpointed (0 when not started)."""
    if run.weights.is_file():
        return 1.0
    log = run.run_dir / "log.csv"
    if not (run.run_dir / "checkpoints" / "state.safetensors").is_file() or not log.is_file():
        return 0.0
    lines = log.read_text().strip().splitlines()
    step = int(lines[-1].split(",")[0]) if len(lines) > 1 else 0
    return min(step / run.steps, 1.0) * 0.9  # the checkpoint lags the log by up to one interval


def cmd_finalize(args: argparse.Namespace) -> None:
    finalize({r.name: r for r in build_plan()}[args.name])


# -- report ------------------------------------------------------------------------------------
CURVES = {"teacher": ("teacher", 0), "vanilla": ("vanilla", 0), "vanilla-seed1": ("vanilla", 1),
          **{s: (s, 0) for s in (*STRATEGIES, *CONTROLS) if s != "vanilla"}}


def curve_points(kind: str, seed: int, qualities: tuple[int, ...]) -> list[Path]:
    names = [teacher_name(q) if kind == "teacher" else student_name(kind, q, seed) for q in qualities]
    return [RESULTS / "points" / f"{n}.json" for n in names if (RESULTS / "points" / f"{n}.json").is_file()]


def write_curves() -> dict[str, Path]:
    """results/repro/kodak/<curve>.json from the per-run points (all lambdas) and <curve>-3.json
    (the three ablation lambdas, for like-for-like strategy comparisons)."""
    from kdic.eval.rd import merge_curves

    out = RESULTS / "kodak"
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for curve, (kind, seed) in CURVES.items():
        for suffix, qualities in (("", ALL_QUALITIES), ("-3", ABLATION_QUALITIES)):
            points = curve_points(kind, seed, qualities)
            if len(points) < (2 if suffix == "" else len(qualities)):  # like-for-like curves need every lambda
                continue
            merged = merge_curves([json.loads(p.read_text()) for p in points], f"{curve}{suffix}")
            path = out / f"{curve}{suffix}.json"
            path.write_text(json.dumps(merged, indent=2) + "\n")
            written[f"{curve}{suffix}"] = path
    return written


def _bd(test: Path | str, anchor: Path | str, psnr: bool = False) -> str:
    """BD-rate (%) or, with ``psnr``, BD-PSNR (dB) as table text; a dagger marks curves that share
    little of the axis integrated over (PSNR for BD-rate, bpp for BD-PSNR)."""
    import warnings

    from kdic.errors import KdicError
    from kdic.eval.bdrate import bd_quality, bd_rate, load_curve

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = f"{(bd_quality if psnr else bd_rate)(load_curve(str(test)), load_curve(str(anchor))):+.2f}"
        except (KdicError, ValueError):  # curves that do not overlap at all are reported, not fatal
            return "no overlap"
    return value + (" †" if caught else "")


def cmd_report(args: argparse.Namespace) -> None:
    curves = write_curves()
    baselines_dir = RESULTS / "kodak" / "baselines"
    if args.baselines and not any(baselines_dir.glob("*.json")):
        baselines_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([*KDIC, "baselines", "--data", str(KODAK), "-o", str(baselines_dir), "--quiet"], check=True)
    baselines = {p.stem: p for p in sorted(baselines_dir.glob("*.json"))}
    bench_json = RESULTS / "bench.json"
    if args.bench and not bench_json.is_file():
        subprocess.run([*KDIC, "bench", TEACHER, STUDENT, "--json", str(bench_json), "--markdown",
                        str(RESULTS / "bench.md")], check=True)
    lines = ["### Rate-distortion on Kodak (24 images, real bitstreams)", ""]
    lines += ["| curve | points | bpp range | PSNR range (dB) | BD-rate vs VTM (%) | "
              + " | ".join(f"vs {b} (%)" for b in baselines) + " |", "|" + "---|" * (5 + len(baselines))]
    for name, path in curves.items():
        if name.endswith("-3"):
            continue
        r = json.loads(path.read_text())["results"]
        row = [name, str(len(r["bpp"])), f"{min(r['bpp']):.3f}-{max(r['bpp']):.3f}",
               f"{min(r['psnr-rgb']):.2f}-{max(r['psnr-rgb']):.2f}", _bd(path, VTM)]
        row += [_bd(path, b) for b in baselines.values()]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "### Distillation strategies (BD-rate %, PSNR, pchip; lambdas "
              f"{', '.join(str(QUALITY_LAMBDAS[q]) for q in ABLATION_QUALITIES)})", "",
              "Each cell: BD-rate (%) / BD-PSNR (dB). BD-rate needs shared PSNR, BD-PSNR shared bpp.", "",
              "| curve | vs vanilla (seed 0) | vs prune-finetune | vs teacher |", "|---|---|---|---|"]

    def both(test: Path, anchor: Path | None) -> str:
        return f"{_bd(test, anchor)} / {_bd(test, anchor, psnr=True)}" if anchor else "pending"

    for name in ["vanilla-seed1", *[s for s in (*STRATEGIES, *CONTROLS) if s != "vanilla"]]:
        if f"{name}-3" in curves:
            path = curves[f"{name}-3"]
            anchors = [curves.get(f"{a}-3") for a in ("vanilla", *CONTROLS, "teacher")]
            lines.append(f"| {name} | " + " | ".join(both(path, a) for a in anchors) + " |")
    lines += ["", *_points_table(3)]
    if "smodi" in curves:
        lines += ["", "All four lambdas: " + ", ".join(
            f"{test} vs {anchor} {both(curves[test], curves.get(anchor))}"
            for test, anchor in (("smodi", "vanilla"), ("smodi", "teacher"), ("vanilla", "teacher"))
            if test in curves) + "."]
    if bench_json.is_file():
        lines += ["", *_table2(json.loads(bench_json.read_text()), curves, baselines)]
        lines += ["", "### Complexity and speed, in full (`kdic bench`)", "", (RESULTS / "bench.md").read_text().strip()]
    if curves:
        ours = [str(p) for n, p in curves.items() if not n.endswith("-3")]
        subprocess.run([*KDIC, "plot", *ours, "--anchors", *map(str, baselines.values()), VTM,
                        "--max-bpp", "0.8", "-o", str(RESULTS / "rd-kodak"), "--title",
                        "Kodak, CPU-scale reproduction"], check=True, stdout=subprocess.DEVNULL)
        lines += ["", "![RD curves](../results/repro/rd-kodak.png)"]
    energy = {"teacher": PACKAGE_WEIGHTS / f"{TEACHER}-q3.safetensors",
              "vanilla": RESULTS / "weights" / f"{student_name('vanilla', 3, 0)}.safetensors",
              "smodi": PACKAGE_WEIGHTS / f"{STUDENT}-q3.safetensors"}
    runs_done = all((RESULTS / "points" / f"{n}.json").is_file()
                    for n in (teacher_name(3), student_name("vanilla", 3, 0), student_name("smodi", 3, 0)))
    if runs_done and all(w.is_file() for w in energy.values()):  # the package student is SMoDi's only once its run is done
        subprocess.run([*KDIC, "energy", "--weights", *map(str, energy.values()), "--names", *energy,
                        "--data", str(KODAK), "-o", str(RESULTS / "energy-q3.json"), "--plot",
                        str(RESULTS / "energy-q3"), "--quiet"], check=True)
    if (RESULTS / "energy-q3.json").is_file():
        lines += ["", "### Channel energy (Figs. 4-5), lambda 0.013", "", "| model | " +
                  " | ".join(f"top 1/8 of channels, {f}" for f in ("stage1", "stage2", "stage3", "latent")) + " |",
                  "|---|---|---|---|---|"]
        for m in json.loads((RESULTS / "energy-q3.json").read_text())["models"]:
            lines.append(f"| {m['name']} | " + " | ".join(f"{100 * m['features'][f]['top_group_share']:.1f}%"
                                                          for f in ("stage1", "stage2", "stage3", "latent")) + " |")
        lines += ["", "![sorted](../results/repro/energy-q3-sorted.png)", "![unsorted](../results/repro/energy-q3-unsorted.png)"]
    lines += ["", *_training_section(3)]
    shipped = sorted(PACKAGE_WEIGHTS.glob("*.safetensors"))
    lines += ["", f"Shipped weights ({sum(p.stat().st_size for p in shipped) / 1e6:.1f} MB, float16): "
                  + (", ".join(f"`{p.stem}`" for p in shipped) or "none") + "."]
    pending = [r.name for r in build_plan() if not is_done(r)]
    lines += ["", "† the two curves share less than half of the narrower range integrated over (PSNR for BD-rate, bpp for "
                  "BD-PSNR): the BD numbers cover little."]
    lines += ["", f"Runs still pending: {', '.join(pending) if pending else 'none'}."]
    _replace_section("\n".join(lines))
    print("\n".join(lines))


def _points_table(quality: int) -> list[str]:
    """Every finished run at one lambda side by side: the comparison that exists before a curve does."""
    lines = [f"Every run at lambda {QUALITY_LAMBDAS[quality]} (Kodak, real bits):", "",
             "| run | bpp | PSNR (dB) | MS-SSIM |", "|---|---|---|---|"]
    for run in build_plan():
        if run.quality == quality and is_done(run):
            r = json.loads(run.point.read_text())["results"]
            lines.append(f"| {run.name} | {r['bpp'][0]:.4f} | {r['psnr-rgb'][0]:.2f} | {r['ms-ssim-rgb'][0]:.4f} |")
    return lines


WHOLE_STUDENT_PHASES = ("train", "finetune", "e2e")  # phases whose logged RD loss is the whole student's
TRAINING_WINDOWS = ((1000, 1250), (2000, 2250), (3600, 4001))  # global steps; every strategy trains the whole student there


def _training_section(quality: int) -> list[str]:
    """RD loss of the whole student on training crops at equal global steps (logs of the runs at
    ``quality``): shows what the strategies' teacher phases cost or buy in steps, with a plot."""
    from kdic.eval.plot import pyplot, save_figure

    plt = pyplot()

    curves = {}
    for strategy in (*STRATEGIES, *CONTROLS):
        log = RESULTS / "logs" / f"{student_name(strategy, quality, 0)}.csv"
        if log.is_file():
            rows = [r for r in csv.DictReader(log.open()) if r["kind"] == "train" and r["phase"] in WHOLE_STUDENT_PHASES]
            curves[strategy] = [(int(r["global_step"]), float(r["rd"]), float(r["psnr"])) for r in rows]
    if not curves:
        return []
    lines = [f"### Training curves, lambda {QUALITY_LAMBDAS[quality]} (whole student, training crops)", "",
             "Mean RD loss / PSNR (dB) over the logged steps of each window; `-` where the strategy still trains "
             "single stages inside the teacher.", "",
             "| strategy | first logged step: RD loss | " + " | ".join(f"steps {a}-{min(b, STUDENT_STEPS + 1) - 1}" for a, b in TRAINING_WINDOWS) + " |",
             "|---|---|" + "---|" * len(TRAINING_WINDOWS)]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    for strategy, rows in curves.items():
        cells = [f"{rows[0][0]}: {rows[0][1]:.1f}"]
        for start, stop in TRAINING_WINDOWS:
            window = [r for r in rows if start <= r[0] < stop]
            cells.append(f"{sum(r[1] for r in window) / len(window):.2f} / {sum(r[2] for r in window) / len(window):.2f}"
                         if window else "-")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
        smooth = [sum(r[1] for r in rows[max(0, i - 9):i + 1]) / len(rows[max(0, i - 9):i + 1]) for i in range(len(rows))]
        axis.plot([r[0] for r in rows], smooth, label=strategy, linewidth=1)
    axis.set(xlabel="global step", ylabel="RD loss (10-point running mean)", yscale="log",
             title=f"Whole-student RD loss on training crops, lambda {QUALITY_LAMBDAS[quality]}")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    plot = RESULTS / f"training-q{quality}.png"
    save_figure(figure, plot, ("png",))
    return [*lines, "", f"![training](../{plot.as_posix()})"]


def _table2(bench: dict, curves: dict[str, Path], baselines: dict[str, Path]) -> list[str]:
    """Table-2 style: each model's size, cost and speed beside its BD-rates (all four lambdas)."""
    rows = {r["name"]: r for r in bench["models"]}
    header = ("| model | params M | MACs T @2048x1024 | CPU decode s | train samples/s | BD vs VTM (%) | "
              + " | ".join(f"vs {b} (%)" for b in baselines) + " |")
    lines = ["### Table 2 style: complexity and BD-rate (Kodak, all four lambdas)", "",
             f"Decode latency at {bench['settings']['resolution']}, {bench['machine']['threads']} threads; training "
             f"throughput at batch {bench['settings']['train_batch']} x {bench['settings']['train_size']}^2.", "",
             header, "|" + "---|" * (6 + len(baselines))]
    for label, curve, preset in (("teacher", "teacher", TEACHER), ("SMoDi student", "smodi", STUDENT),
                                 ("vanilla student", "vanilla", STUDENT)):
        r = rows[preset]
        cells = [label, f"{r['params_paper'] / 1e6:.2f}", f"{r['macs_paper_2k'] / 1e12:.3f}",
                 f"{r['decode']['total']:.3f}", f"{r.get('train_samples_per_s', float('nan')):.1f}"]
        path = curves.get(curve)
        cells += [_bd(path, anchor) if path else "pending" for anchor in (VTM, *baselines.values())]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _replace_section(text: str) -> None:
    begin, end = "<!-- report:begin -->", "<!-- report:end -->"
    doc = DOC.read_text()
    head, _, rest = doc.partition(begin)
    _, _, tail = rest.partition(end)
    DOC.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plan", help="print the runs and their CPU budget").set_defaults(func=cmd_plan)
    run = sub.add_parser("run", help="start or resume the runs that fit in the time given")
    run.add_argument("--minutes", type=float, default=150, help="wall-clock minutes this session can give")
    run.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    run.add_argument("--only", nargs="+", help="only these runs")
    run.set_defaults(func=cmd_run)
    fin = sub.add_parser("finalize", help="export, evaluate and keep one finished run")
    fin.add_argument("name")
    fin.set_defaults(func=cmd_finalize)
    rep = sub.add_parser("report", help="curves, tables, plots and energy into results/repro and the docs")
    rep.add_argument("--baselines", action="store_true", help="measure the live baselines first if missing")
    rep.add_argument("--bench", action="store_true", help="run kdic bench first if missing")
    rep.set_defaults(func=cmd_report)
    args = parser.parse_args()
    os.chdir(ROOT)
    if not SHARED.is_dir():
        sys.exit(f"reproduce: {SHARED} not found; the study needs ../shared/data (BSDS500 and Kodak)")
    args.func(args)


if __name__ == "__main__":
    main()
