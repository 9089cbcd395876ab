"""Shared test procedures (not fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest


def train_killed_then_resumed(make_trainer: Callable[[Path], tuple], run_dir: Path, kill_at_batch: int,
                              move: Callable[[Path], Path] | None = None):
    """Start ``make_trainer(run_dir)``, kill it while it draws its ``kill_at_batch``-th batch, then
    resume a fresh one from the folder (or from the folder ``move(run_dir)`` returns: a session's
    state carried to another machine) to the end; the resumed model."""
    _, trainer = make_trainer(run_dir)
    calls = {"n": 0}
    batch = trainer.sampler.batch

    def interrupted(size):
        calls["n"] += 1
        if calls["n"] == kill_at_batch:
            raise KeyboardInterrupt
        return batch(size)

    trainer.sampler.batch = interrupted
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    resumed, trainer = make_trainer(move(run_dir) if move else run_dir)
    trainer.run(resume=True)
    return resumed
