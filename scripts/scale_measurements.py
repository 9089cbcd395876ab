"""Issue 14's CPU measurements: loader throughput against what training consumes, peak memory as the
data folder grows, a full-size ``kdic`` student step at 256x256, and bf16 against fp32 loss curves.

    python scripts/scale_measurements.py --data ../shared/data/train/bsds500 -o results/scale/cpu.json

The big folders are made of symbolic links to ``--data`` under distinct names (2000, 8000 and 32000 entries),
so nothing is copied. Each memory measurement runs in a fresh process: its own peak resident memory
(``VmHWM``; ``ru_maxrss`` would carry the parent's peak over the exec) and the largest DataLoader
worker's (``ru_maxrss`` of the waited children: pages shared with the trainer included). ``--parts``
measures some parts again and keeps the others' results from the output file.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_RUN = """
import resource, sys
from pathlib import Path
from kdic.cli import main
code = main(["train", "--model", "kdic-tiny", "--lmbda", "0.013", "--data", sys.argv[1], "--run-dir", sys.argv[2],
             "--steps", "20", "--batch-size", "8", "--crop", "128", "--quiet", "--workers", "1"])
status = Path("/proc/self/status").read_text().splitlines()
own_kb = int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
print(own_kb / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
sys.exit(code)
"""
PARTS = ("loader", "consumption", "memory", "bf16", "full-size")


def linked_folder(source: Path, count: int, root: Path) -> Path:
    from kdic.codec.image_io import list_images

    files = list_images(source)
    folder = root / f"images-{count}"
    folder.mkdir()
    for i in range(count):
        target = files[i % len(files)]
        (folder / f"{i:06d}{target.suffix}").symlink_to(target.resolve())
    return folder


def loader_throughput(folder: Path, workers: int, crop: int, batches_timed: int = 60) -> float:
    from kdic.train.data import CropDataset, batches

    data = CropDataset(folder, crop, seed=0)
    stream = batches(data, 8, 0, batches_timed + 5, workers)
    for _ in range(5):  # workers start, prefetch fills
        next(stream)
    start = time.perf_counter()
    for _ in range(batches_timed):
        next(stream)
    return 8 * batches_timed / (time.perf_counter() - start)


def peak_memory(folder: Path, run_dir: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_RUN, str(folder), str(run_dir)], capture_output=True, text=True, check=True
    )
    main_mb, workers_mb = map(float, done.stdout.split()[-2:])
    return {
        "images": len(list(folder.iterdir())),
        "trainer_peak_mb": round(main_mb),
        "worker_peak_mb": round(workers_mb),
    }


def full_size_step() -> dict:
    import torch

    from kdic.bench.throughput import training_step_seconds
    from kdic.models import LearnedImageCodec, get_config

    torch.manual_seed(0)
    seconds = training_step_seconds(LearnedImageCodec(get_config("kdic")), batch=8, size=256, steps=2, warmup=1)
    return {
        "model": "kdic",
        "batch": 8,
        "crop": 256,
        "threads": torch.get_num_threads(),
        "seconds_per_step": seconds,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def training_consumption() -> dict:
    """Samples per second one optimizer step eats: the rate the loader must beat."""
    import torch

    from kdic.bench.throughput import training_step_seconds
    from kdic.models import build_model

    torch.manual_seed(0)
    rates = {
        f"{name}@{crop}": 8 / training_step_seconds(build_model(name), batch=8, size=crop, steps=4, warmup=1)
        for name, crop in (("kdic-tiny", 128), ("s2c-hybrid-tiny", 128), ("kdic-tiny", 256))
    }
    return {"batch": 8, "threads": torch.get_num_threads(), **rates}


def loss_curves(folder: Path, steps: int) -> dict:
    import torch

    from kdic.models import build_model
    from kdic.train.data import CropDataset
    from kdic.train.engine import Phase, TrainConfig, Trainer
    from kdic.train.losses import phase_loss

    curves = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        config = TrainConfig(
            lmbda=0.013, steps=steps, batch_size=8, crop=128, lr=1e-4, log_every=1, precision=precision
        )
        model = build_model("kdic-tiny")
        losses: list[float] = []
        trainer = Trainer(
            model, [Phase("p", steps, [""], phase_loss())], config, None, CropDataset(folder, 128), quiet=True
        )
        trainer._log = lambda row, losses=losses: losses.append(row["loss"]) if row.get("kind") == "train" else None
        start = time.perf_counter()
        trainer.run()
        curves[precision] = {"seconds": time.perf_counter() - start, "losses": losses}
    a, b = curves["fp32"]["losses"], curves["bf16"]["losses"]
    tail = max(1, len(a) // 4)
    return {
        "steps": steps,
        "fp32_seconds": curves["fp32"]["seconds"],
        "bf16_seconds": curves["bf16"]["seconds"],
        "fp32_last_quarter_mean": statistics.mean(a[-tail:]),
        "bf16_last_quarter_mean": statistics.mean(b[-tail:]),
        "fp32_step_to_step_stdev_last_quarter": statistics.stdev(a[-tail:]),
        "mean_relative_gap": statistics.mean(abs(x - y) / x for x, y in zip(a, b)),
        "curves": {"fp32": a, "bf16": b},
    }


def _progress(name: str) -> None:
    """Progress on stderr with this process's peak memory so far (a long measurement shows where it is)."""
    print(
        f"{time.strftime('%H:%M:%S')} {name} (peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--curve-steps", type=int, default=200)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    report: dict = json.loads(args.output.read_text()) if args.output.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = linked_folder(args.data, 2000, root)
        if "loader" in args.parts:
            _progress("loader throughput")
            report["loader_samples_per_second"] = {
                f"crop{crop}": {str(w): loader_throughput(big, w, crop) for w in (0, 1, 2)} for crop in (128, 256)
            }
        if "consumption" in args.parts:
            _progress("training consumption")
            report["training_consumes_samples_per_second"] = training_consumption()
        if "memory" in args.parts:
            _progress("peak memory")
            report["peak_memory"] = [
                peak_memory(linked_folder(args.data, n, root) if n != 2000 else big, root / f"run{n}")
                for n in (500, 2000, 8000, 32000)
            ]
        if "bf16" in args.parts:
            _progress("bf16 against fp32")
            report["bf16_vs_fp32"] = loss_curves(args.data, args.curve_steps)
    if "full-size" in args.parts:
        _progress("full-size step")
        report["full_size_kdic_step"] = full_size_step()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "bf16_vs_fp32"}, indent=2))
    if "bf16_vs_fp32" in report:
        print(json.dumps({k: v for k, v in report["bf16_vs_fp32"].items() if k != "curves"}, indent=2))


if __name__ == "__main__":
    main()
