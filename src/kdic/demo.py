"""``kdic demo``: the main job on the bundled default, with nothing downloaded.

It codes the bundled Kodak sample with the shipped variable-rate SMoDi student at three qualities
and at a target size, and with the shipped teacher (real files, decoded back and checked against the
encoder's reconstruction), then runs a short SMoDi distillation from the shipped teacher so users
see every phase of the engine run on their machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import load
from .codec import decode_bytes, read_image
from .codec.distortion import psnr_uint8
from .codec.target import choose_rate, code_at
from .data import DEFAULT_QUALITY, SAMPLES_DIR, bundled_weights, sample_image_path
from .errors import KdicError
from .fileio import atomic_write_bytes


@dataclass(frozen=True)
class DemoEncode:
    """One row of the codec table: a shipped role at a quality or at a bits-per-pixel target."""

    role: str
    quality: float | None = None
    target_bpp: float | None = None

    @property
    def setting(self) -> str:
        return f"quality {self.quality:g}" if self.quality is not None else f"<= {self.target_bpp:g} bpp"


DEMO_ENCODES = (
    DemoEncode("student", quality=2),
    DemoEncode("student", quality=DEFAULT_QUALITY),
    DemoEncode("student", quality=9),
    DemoEncode("student", target_bpp=0.3),
    DemoEncode("teacher", quality=DEFAULT_QUALITY),
)


def codec_demo(
    workdir: Path, image_path: Path | None = None, encodes: tuple[DemoEncode, ...] = DEMO_ENCODES
) -> list[dict]:
    """Encode to a file and decode it back for each of ``encodes``; one row of measurements each."""
    image_path = image_path or sample_image_path()
    image = read_image(image_path)
    models = {role: load(bundled_weights(role)) for role in {e.role for e in encodes}}
    rows = []
    for index, encode in enumerate(encodes):
        model = models[encode.role]
        choice = choose_rate(model, quality=encode.quality, target_bpp=encode.target_bpp)
        started = time.perf_counter()
        coded = code_at(model, image, choice)
        encode_seconds = time.perf_counter() - started
        bitstream = workdir / f"{image_path.stem}-{index}-{encode.role}.kdic"
        atomic_write_bytes(bitstream, coded.data)
        started = time.perf_counter()
        decoded, _ = decode_bytes(model, bitstream.read_bytes())
        decode_seconds = time.perf_counter() - started
        if coded.reconstruction is None or not (decoded == coded.reconstruction).all():
            raise KdicError(f"{encode.role}: decoded image differs from the encoder's reconstruction")
        rows.append(
            {
                "role": encode.role,
                "model": model.config.name,
                "setting": encode.setting,
                "lmbda": coded.lmbda,
                "passes": coded.passes,
                "params": model.num_parameters(),
                "bytes": len(coded.data),
                "bpp": coded.report.bits_per_pixel,
                "psnr": psnr_uint8(decoded, image),
                "encode_seconds": encode_seconds,
                "decode_seconds": decode_seconds,
            }
        )
    return rows


def distill_demo(run_dir: Path, steps: int, quiet: bool) -> dict:
    """A short SMoDi run (every phase, a few steps each) from the shipped teacher on the bundled sample:
    a variable-rate student, each step at a lambda drawn from the teacher's range."""
    from .distill import RunSpec, load_strategy, run
    from .distill.construct import student_for
    from .models import get_config
    from .train.engine import TrainConfig

    teacher = bundled_weights("teacher")
    student = student_for(load(teacher).config, get_config("kdic-tiny"))
    assert student.variable_rate is not None  # the shipped teacher is variable-rate, so is its student
    config = TrainConfig(
        None,
        steps,
        batch_size=4,
        crop=128,
        lr=1e-4,
        checkpoint_every=steps,
        log_every=1,
        lmbda_range=student.variable_rate.range,
    )
    return run(
        RunSpec(
            student,
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


def run_demo(distill_steps: int = 240, quiet: bool = False) -> None:
    """Print the codec table, then the distillation summary (the README's main job). Unless the user
    chose a thread count (``OMP_NUM_THREADS``), torch gets the cores other work leaves free."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(free_cores())
    with tempfile.TemporaryDirectory(prefix="kdic-demo-") as tmp:
        workdir = Path(tmp)
        print(f"1/2 coding {sample_image_path().name} with the shipped variable-rate models:")
        print(
            f"{'role':8s} {'model':19s} {'params':>8s} {'setting':>13s} {'lambda':>8s} {'bytes':>7s} {'bpp':>7s} "
            f"{'PSNR dB':>8s} {'encode s':>9s} {'decode s':>9s}"
        )
        for r in codec_demo(workdir):
            passes = f" ({r['passes']} passes)" if r["passes"] > 1 else ""
            print(
                f"{r['role']:8s} {r['model']:19s} {r['params'] / 1e6:7.2f}M {r['setting']:>13s} {r['lmbda']:8.5f} "
                f"{r['bytes']:7d} {r['bpp']:7.4f} {r['psnr']:8.2f} {r['encode_seconds']:9.3f} "
                f"{r['decode_seconds']:9.3f}{passes}"
            )
        print(
            f"\n2/2 distilling a kdic-tiny student from the shipped teacher with SMoDi ({distill_steps} steps, "
            "teacher-initialised, crops of the bundled sample, lambda drawn per step):"
        )
        started = time.perf_counter()
        summary = distill_demo(workdir / "distill", distill_steps, quiet)
        v = summary["validation"]
        print(
            f"done in {time.perf_counter() - started:.0f} s: {summary['global_step']} steps over the phases "
            f"{', '.join(p['name'] for p in summary['phases'])}; student on the sample: "
            f"{v['bpp']:.4f} bpp (estimate), PSNR {v['psnr']:.2f} dB."
        )
        print("Run `kdic distill --teacher W --data DIR ...` for a real distillation (see README).")
