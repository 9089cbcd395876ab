"""``kdic demo``: the main job on the bundled default, with nothing downloaded.

It codes the bundled Kodak sample with the shipped teacher and SMoDi student (real files, decoded
back and checked against the encoder's reconstruction), then runs a short SMoDi distillation from
the shipped teacher so users see every phase of the engine run on their machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from .checkpoint import load
from .codec import decode_bytes, encode_image, read_image
from .data import DEFAULT_QUALITY, ROLES, SAMPLES_DIR, bundled_weights, sample_image_path
from .errors import KdicError
from .eval.metrics import psnr_uint8
from .fileio import atomic_write_bytes


def codec_demo(quality: int, workdir: Path, image_path: Path | None = None) -> list[dict]:
    """Encode to a file and decode it back with each shipped role; one row of measurements per role."""
    image_path = image_path or sample_image_path()
    image = read_image(image_path)
    rows = []
    for role in ROLES:
        path = bundled_weights(role, quality)
        model = load(path)
        started = time.perf_counter()
        data, reconstruction, report = encode_image(model, image)
        encode_seconds = time.perf_counter() - started
        bitstream = workdir / f"{image_path.stem}-{role}.kdic"
        atomic_write_bytes(bitstream, data)
        started = time.perf_counter()
        decoded, _ = decode_bytes(load(path), bitstream.read_bytes())
        decode_seconds = time.perf_counter() - started
        if not (decoded == reconstruction).all():
            raise KdicError(f"{role}: decoded image differs from the encoder's reconstruction")
        rows.append(
            {
                "role": role,
                "model": model.config.name,
                "lmbda": model.lmbda,
                "params": model.num_parameters(),
                "bytes": report.num_bytes,
                "bpp": report.bits_per_pixel,
                "estimated_bpp": report.estimated_bits_per_pixel,
                "psnr": psnr_uint8(decoded, image),
                "encode_seconds": encode_seconds,
                "decode_seconds": decode_seconds,
            }
        )
    return rows


def distill_demo(quality: int, run_dir: Path, steps: int, quiet: bool) -> dict:
    """A short SMoDi run (every phase, a few steps each) from the shipped teacher on the bundled sample."""
    from .distill import RunSpec, load_strategy, run
    from .models import get_config
    from .train.engine import TrainConfig

    teacher = bundled_weights("teacher", quality)
    lmbda = load(teacher).lmbda
    config = TrainConfig(lmbda=lmbda, steps=steps, batch_size=4, crop=128, lr=1e-4, checkpoint_every=steps, log_every=1)
    return run(
        RunSpec(
            get_config(ROLES["student"]),
            load_strategy("smodi"),
            config,
            SAMPLES_DIR,
            run_dir,
            teacher=teacher,
            teacher_init=True,
            val=SAMPLES_DIR,
        ),
        quiet=quiet,
    )


def free_cores() -> int:
    """Cores not already busy (the 1-minute load average taken off): more torch threads than that only
    make the threads wait on each other, which turned a 2-minute demo into 10 on a shared machine."""
    cores = len(os.sched_getaffinity(0))
    return max(1, min(cores, round(cores - os.getloadavg()[0])))


def run_demo(quality: int = DEFAULT_QUALITY, distill_steps: int = 240, quiet: bool = False) -> None:
    """Print the codec table, then the distillation summary (the README's main job). Unless the user
    chose a thread count (``OMP_NUM_THREADS``), torch gets the cores other work leaves free."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(free_cores())
    with tempfile.TemporaryDirectory(prefix="kdic-demo-") as tmp:
        workdir = Path(tmp)
        print(f"1/2 coding {sample_image_path().name} with the shipped models (quality {quality}):")
        print(
            f"{'role':8s} {'model':16s} {'params':>8s} {'bytes':>7s} {'bpp':>7s} {'PSNR dB':>8s} "
            f"{'encode s':>9s} {'decode s':>9s}"
        )
        for r in codec_demo(quality, workdir):
            print(
                f"{r['role']:8s} {r['model']:16s} {r['params'] / 1e6:7.2f}M {r['bytes']:7d} {r['bpp']:7.4f} "
                f"{r['psnr']:8.2f} {r['encode_seconds']:9.3f} {r['decode_seconds']:9.3f}"
            )
        print(
            f"\n2/2 distilling {ROLES['student']} from the shipped teacher with SMoDi ({distill_steps} steps, "
            "teacher-initialised, crops of the bundled sample):"
        )
        started = time.perf_counter()
        summary = distill_demo(quality, workdir / "distill", distill_steps, quiet)
        v = summary["validation"]
        print(
            f"done in {time.perf_counter() - started:.0f} s: {summary['global_step']} steps over the phases "
            f"{', '.join(p['name'] for p in summary['phases'])}; student on the sample: "
            f"{v['bpp']:.4f} bpp (estimate), PSNR {v['psnr']:.2f} dB."
        )
        print("Run `kdic distill --teacher W --data DIR ...` for a real distillation (see README).")
