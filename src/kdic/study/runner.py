"""Start, resume and finalize a study's runs as ``kdic`` commands (argument lists, never a shell),
up to ``jobs`` side by side, each single-threaded.

A run is *trained* once its folder holds ``model.safetensors`` and *done* once its evaluation
(``points/<run>.json``) exists; a done run is never started again, a trained one is only
finalized, one with a checkpoint resumes. While a run is worked on, an exclusive lock on
``<runs>/<run>.lock`` is held by this process and every command it starts for the run, so other
``run`` invocations on the machine count it against their ``jobs`` and never start it twice, even
after the invocation that started it has gone.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import KdicError
from ..fileio import atomic_write_bytes, read_json
from .plan import Run, Study

KDIC = (sys.executable, "-m", "kdic.cli")
CHECKPOINT = Path("checkpoints") / "state.safetensors"  # inside a run folder, as ``kdic train`` writes it
TRAINED = "model.safetensors"
HALF = "model-fp16.safetensors"
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # two 1-thread runs beat one 2-thread run
POLL_SECONDS = 10
Step = list[str] | Callable[[], None]  # a command, or quick bookkeeping done in this process


def is_done(study: Study, run: Run, root: Path) -> bool:
    return (root / study.point(run)).is_file()


def is_trained(study: Study, run: Run, root: Path) -> bool:
    return (root / study.run_dir(run) / TRAINED).is_file()


def train_command(study: Study, run: Run, root: Path) -> list[str]:
    """The ``kdic train`` (teacher) or ``kdic distill`` (student) command of ``run``, with
    ``--resume`` when its folder holds a checkpoint; paths are relative to ``root``, its cwd."""
    if run.is_teacher:
        start = ["--init", study.source_weights(run)] if run.after else ["--model", study.teacher]
        args = ["train", *start]
    else:
        args = [
            "distill",
            "--teacher",
            study.source_weights(run),
            "--student",
            study.student,
            "--strategy",
            run.kind,
            *(["--teacher-init"] if run.teacher_init else []),
        ]
    args += [
        "--lmbda",
        str(run.lmbda),
        "--steps",
        str(run.steps),
        "--lr",
        str(run.lr),
        "--decay-at",
        str(run.decay_at),
        "--seed",
        str(run.seed),
        "--run-dir",
        str(study.run_dir(run)),
        "--data",
        study.paths.train_data,
        "--val",
        study.paths.eval_data,
    ]
    for name, value in study.train_flags:
        args += [f"--{name.replace('_', '-')}", *([] if value is True else [str(value)])]
    resume = (root / study.run_dir(run) / CHECKPOINT).is_file()
    return [*KDIC, *args, *(["--resume"] if resume else [])]


def remaining_steps(study: Study, run: Run, root: Path) -> list[Step]:
    """What is left of ``run``: training (or resuming) unless trained, then the export to float16,
    keeping the small artefacts, and the Kodak evaluation, whose result marks the run done."""
    if is_done(study, run, root):
        return []
    half = str(study.run_dir(run) / HALF)
    export = [*KDIC, "export", str(study.run_dir(run) / TRAINED), "-o", half, "--half", "--force", "--quiet"]
    evaluate = [
        *KDIC,
        "eval",
        "--weights",
        half,
        "--data",
        study.paths.eval_data,
        "-o",
        str(study.point(run)),
        "--name",
        run.name,
        "--quiet",
    ]
    training = [] if is_trained(study, run, root) else [train_command(study, run, root)]
    return [*training, export, lambda: keep_artefacts(study, run, root), evaluate]


def keep_artefacts(study: Study, run: Run, root: Path) -> None:
    """Copy what a run leaves for good out of its (uncommitted) folder: its log, its config and
    summary, and its float16 weights where the plan keeps them."""
    run_dir = root / study.run_dir(run)
    for path in (study.log(run, ".csv"), study.point(run)):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(root / study.log(run, ".csv"), (run_dir / "log.csv").read_bytes())
    summary = {
        "config": read_json(run_dir / "config.json", "run config", KdicError),
        "summary": read_json(run_dir / "summary.json", "run summary", KdicError),
    }
    atomic_write_bytes(root / study.log(run, ".json"), json.dumps(summary, indent=2).encode())
    if run.keep is not None:  # later runs start from this file: never let them see half of it
        (root / run.keep).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(root / run.keep, (run_dir / HALF).read_bytes())


def finalize(study: Study, run: Run, root: Path) -> None:
    """Export, keep and evaluate one trained run here and now (the ``finalize`` command)."""
    if not is_trained(study, run, root):
        raise KdicError(f"run {run.name!r} is not trained ({study.run_dir(run) / TRAINED} missing)")
    for step in remaining_steps(study, run, root):
        if callable(step):
            step()
        else:
            subprocess.run(step, cwd=root, env={**os.environ, **SINGLE_THREAD}, check=True)


def progress(study: Study, run: Run, root: Path) -> float:
    """Fraction of ``run``'s steps already checkpointed (0 when not started, 1 once trained)."""
    if is_trained(study, run, root):
        return 1.0
    run_dir = root / study.run_dir(run)
    if not (run_dir / CHECKPOINT).is_file() or not (run_dir / "log.csv").is_file():
        return 0.0
    with (run_dir / "log.csv").open(newline="") as log:
        last = deque(csv.DictReader(log), maxlen=1)
    step = int(last[0]["global_step"]) if last else 0
    return min(step / run.steps, 1.0) * 0.9  # the checkpoint lags the log by up to one interval


def measured_minutes(study: Study, run: Run, root: Path) -> float | None:
    """Training minutes of a finished run from its kept log: mean logged seconds per step x steps."""
    log = root / study.log(run, ".csv")
    if not log.is_file():
        return None
    with log.open(newline="") as rows:
        seconds = [float(r["seconds"]) for r in csv.DictReader(rows) if r["kind"] == "train" and r["seconds"]]
    return sum(seconds) / len(seconds) * run.steps / 60 if seconds else None


def plan_table(study: Study, root: Path) -> str:
    """Every run, what it starts from, its steps, its estimated and measured CPU minutes, and whether it is done."""
    lines = ["| run | after | steps | CPU-min (1 thread) | done | measured training min |", "|---|---|---|---|---|---|"]
    for run in study.runs:
        measured = measured_minutes(study, run, root)
        lines.append(
            f"| {run.name} | {run.after or '-'} | {run.steps} | {study.minutes(run):.0f} | "
            f"{'yes' if is_done(study, run, root) else ''} | {f'{measured:.0f}' if measured else ''} |"
        )
    total = sum(study.minutes(r) for r in study.runs)
    left = sum(study.minutes(r) for r in study.runs if not is_done(study, r, root))
    return "\n".join(lines) + (
        f"\n\n{len(study.runs)} runs, {total / 60:.1f} CPU-hours in all ({total / 120:.1f} h on "
        f"2 cores, two runs at a time); {left / 60:.1f} CPU-hours left."
    )


def _lock_path(study: Study, run: Run, root: Path) -> Path:
    return root / study.paths.runs / f"{run.name}.lock"


def _try_lock(path: Path, create: bool) -> int | None:
    """A descriptor holding an exclusive lock on ``path``, or None where another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o666)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_held(study: Study, run: Run, root: Path) -> bool:
    """Whether some process (a ``run`` invocation or a command it started) is working on ``run``."""
    path = _lock_path(study, run, root)
    if not path.is_file():
        return False
    fd = _try_lock(path, create=False)
    if fd is None:
        return True
    os.close(fd)
    return False


@dataclass
class _Job:
    """A run's remaining steps, one after another; its lock travels into every command it starts."""

    run: Run
    steps: list[Step]
    lock: int
    log: IO[bytes]
    root: Path
    process: subprocess.Popen | None = None
    status: int | None = None  # set once the job is over

    def poll(self) -> int | None:
        """Start the next step when the current one has succeeded; the exit status once the job is over."""
        while self.status is None and (self.process is None or self.process.poll() is not None):
            status = 0 if self.process is None else self.process.returncode
            if status or not self.steps:
                self._end(status)
                break
            step, self.process = self.steps.pop(0), None
            try:
                if callable(step):
                    step()
                else:
                    self.process = subprocess.Popen(
                        step,
                        cwd=self.root,
                        env={**os.environ, **SINGLE_THREAD},
                        stdout=self.log,
                        stderr=subprocess.STDOUT,
                        pass_fds=(self.lock,),
                    )
            except (OSError, ValueError) as exc:  # e.g. a run folder without its summary: this run fails, not all
                self.log.write(f"{self.run.name}: {exc}\n".encode())
                self._end(1)
        return self.status

    def _end(self, status: int) -> None:
        self.status = status
        self.log.close()
        os.close(self.lock)


def _start(study: Study, run: Run, root: Path) -> _Job | None:
    """The job of ``run`` with its lock taken, or None if another invocation took the run meanwhile."""
    lock = _try_lock(_lock_path(study, run, root), create=True)
    if lock is None:
        return None
    log = (root / study.paths.runs / f"{run.name}.out").open("ab")
    job = _Job(run, remaining_steps(study, run, root), lock, log, root)
    job.poll()  # starts the first command now
    return job


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def run_study(study: Study, root: Path, minutes: float, jobs: int = 2, only: tuple[str, ...] = ()) -> list[str]:
    """Keep ``jobs`` runs going (counting those other invocations hold) until nothing more is ready
    or fits: a run starts only if its estimate fits in the ``minutes`` left and the run it starts
    from is done. The names of the runs that failed."""
    for name in only:
        study.run(name)  # refuses a name the study does not have
    for data in (study.paths.train_data, study.paths.eval_data):
        if not (root / data).is_dir():
            raise KdicError(f"study {study.name!r} needs {data} (relative to {root}); not found")
    (root / study.paths.runs).mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + minutes * 60
    selected = [r for r in study.runs if not only or r.name in only]
    running: dict[str, _Job] = {}
    failed: list[str] = []
    while True:
        for name, job in list(running.items()):
            status = job.poll()
            if status is None:
                continue
            del running[name]
            if status:
                failed.append(name)
            _say(f"{name}: " + (f"FAILED (exit {status}, see {study.paths.runs}/{name}.out)" if status else "done"))
        elsewhere = sum(1 for r in study.runs if r.name not in running and is_held(study, r, root))
        minutes_left = (deadline - time.monotonic()) / 60
        for run in selected:
            if len(running) + elsewhere >= jobs:
                break
            if (
                run.name in running
                or run.name in failed
                or is_done(study, run, root)
                or (run.after is not None and not is_done(study, study.run(run.after), root))
            ):
                continue
            estimate = study.minutes(run) * (1 - progress(study, run, root))
            if estimate > minutes_left or (started := _start(study, run, root)) is None:
                continue
            _say(f"{run.name}: starting (~{estimate:.0f} min)")
            running[run.name] = started
        if not running and not elsewhere:  # runs another invocation holds may free a slot: wait for them
            pending = [r.name for r in selected if not is_done(study, r, root)]
            _say(f"nothing more fits or is ready; pending: {', '.join(pending) or 'none'}")
            return failed
        time.sleep(POLL_SECONDS)


def measure_missing(study: Study, root: Path, baselines: bool = False, bench: bool = False) -> None:
    """Measure what the report reads and the results lack: the classical baselines and the bench
    only when asked (minutes of CPU each), the channel energy once the runs it compares are done.
    What is committed is never measured again, so the report rebuilds from committed files."""
    eval_data = study.paths.eval_data
    if baselines and not any((root / study.baselines_dir).glob("*.json")):
        (root / study.baselines_dir).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*KDIC, "baselines", "--data", eval_data, "-o", str(study.baselines_dir), "--quiet"], cwd=root, check=True
        )
    if bench and not (root / study.bench(".json")).is_file():
        compared = list(dict.fromkeys(row.model for row in study.report.complexity))
        subprocess.run(
            [*KDIC, "bench", *compared, "--json", str(study.bench(".json")), "--markdown", str(study.bench(".md"))],
            cwd=root,
            check=True,
        )
    models = study.energy_models()
    if (
        not (root / study.energy(".json")).is_file()
        and all(is_done(study, study.run(name), root) for name in study.report.energy_runs)
        and all((root / weights).is_file() for _, weights in models)
    ):
        subprocess.run(
            [
                *KDIC,
                "energy",
                "--weights",
                *(w for _, w in models),
                "--names",
                *(n for n, _ in models),
                "--data",
                eval_data,
                "-o",
                str(study.energy(".json")),
                "--quiet",
            ],
            cwd=root,
            check=True,
        )
