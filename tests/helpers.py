"""Shared test procedures (not fixtures)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# kdic 0.1's shipped fixed-rate weights, kept in the repository for the reproduction and the old fixtures
FIXED_RATE_WEIGHTS = Path(__file__).resolve().parents[1] / "results" / "repro" / "shipped-0.1"


class _KilledAt(torch.utils.data.Dataset):
    """A training data set that raises KeyboardInterrupt when its ``kill_at``-th sample is read."""

    def __init__(self, data, kill_at: int) -> None:
        self.data, self.kill_at, self.reads = data, kill_at, 0

    def __getitem__(self, sample: int):
        self.reads += 1
        if self.reads == self.kill_at:
            raise KeyboardInterrupt
        return self.data[sample]


def train_killed_then_resumed(
    make_trainer: Callable[[Path], tuple], run_dir: Path, kill_at_batch: int, move: Callable[[Path], Path] | None = None
):
    """Start ``make_trainer(run_dir)``, kill it while it draws its ``kill_at_batch``-th batch, then
    resume a fresh one from the folder (or from the folder ``move(run_dir)`` returns: a session's
    state carried to another machine) to the end; the resumed model."""
    _, trainer = make_trainer(run_dir)
    per_batch = trainer.config.batch_size
    trainer.data = _KilledAt(trainer.data, (kill_at_batch - 1) * per_batch + 1)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    resumed, trainer = make_trainer(move(run_dir) if move else run_dir)
    trainer.run(resume=True)
    return resumed


def run_kdic(*args: str) -> subprocess.CompletedProcess:
    """``kdic ARGS`` in this process (a subprocess would add only its start-up), output captured."""
    from kdic.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def train_tiny(data: Path, run: Path, options: str, *extra: str) -> int:
    """``kdic train --model kdic-tiny`` on ``data`` into ``run``, quiet, with space-separated ``options``."""
    from kdic.cli import main

    common = ["--model", "kdic-tiny", "--data", str(data), "--run-dir", str(run), "--quiet"]
    return main(["train", *common, *options.split(), *extra])


def torchrun_kdic(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=N -m kdic ARGS`` (one thread per rank), output captured."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return subprocess.run(
        [*command, "-m", "kdic", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
