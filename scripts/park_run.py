#!/usr/bin/env python
"""Keep a long training run alive across sessions on fresh machines: park its small resume state in
the repository, restore it in the next session, resume.

    python scripts/park_run.py park runs/vr/teacher results/vr/resume/teacher     # before a session ends
    python scripts/park_run.py restore results/vr/resume/teacher runs/vr/teacher  # on a fresh clone
    kdic train ... --run-dir runs/vr/teacher --resume                              # same command as before

The parked state is the run's last checkpoint without the optimizer moments (a third of its size:
the fp32 weights, the data and noise RNG states and the position), plus the run's config and log.
A resumed run restarts Adam's moments from zero at that step and otherwise continues exactly:
the same data order, the same lambdas, the same learning-rate schedule.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save

from kdic.fileio import atomic_write_bytes
from kdic.train.engine import STATE_FILE, STATE_FORMAT

SMALL_FILES = ("config.json", "log.csv")


def park(run_dir: Path, out: Path) -> None:
    state = run_dir / STATE_FILE
    if not state.is_file():
        sys.exit(f"park: {state} does not exist (the run has not checkpointed yet)")
    with safe_open(str(state), framework="pt") as f:
        meta = json.loads(f.metadata()["kdic"])
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("optim/")}
    if meta.get("format") != STATE_FORMAT:
        sys.exit(f"park: {state} is not a kdic training state")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / "state.safetensors", save(tensors, metadata={"kdic": json.dumps({**meta, "param_groups": []})})
    )
    for name in SMALL_FILES:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out / name)
    size = (out / "state.safetensors").stat().st_size / 1e6
    print(f"parked {run_dir} at step {meta['global_step']} in {out} ({size:.1f} MB)")


def restore(parked: Path, run_dir: Path) -> None:
    if (run_dir / STATE_FILE).is_file():
        sys.exit(f"restore: {run_dir} already holds a checkpoint; resume it instead")
    (run_dir / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(parked / "state.safetensors", run_dir / STATE_FILE)
    for name in SMALL_FILES:
        if (parked / name).is_file():
            shutil.copyfile(parked / name, run_dir / name)
    print(f"restored {run_dir} from {parked}; resume it with the run's command and --resume")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("park")
    p.add_argument("run_dir", type=Path)
    p.add_argument("out", type=Path)
    r = sub.add_parser("restore")
    r.add_argument("parked", type=Path)
    r.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    park(args.run_dir, args.out) if args.action == "park" else restore(args.parked, args.run_dir)


if __name__ == "__main__":
    main()
