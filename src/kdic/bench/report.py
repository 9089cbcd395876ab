"""``kdic bench``: a Table-1/2-style complexity and speed report, every model measured the same way.

Each model is measured in a fresh child process (so peak memory is its own): encode and decode
latency of a real bitstream of a real image (warm-up, then the median of N runs, split into
transform and entropy coding), its rate and PSNR, training throughput, peak resident memory. Params
and MACs come from the meta-device counter. Decode time is also set against a compute bound: the
decoder's MACs divided by the machine's measured peak float32 matmul rate with the same threads.
The CLI adds the classical codecs' rows on the same image (``kdic.eval.baselines.timed_codecs``).
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .complexity import PAPER_INPUT, count_complexity


def _build(spec: str):
    from ..checkpoint import load
    from ..models import build_model

    if spec.endswith(".safetensors") or Path(spec).is_file():
        return load(spec)
    torch.manual_seed(0)
    return build_model(spec).eval()


def peak_matmul_macs_per_second(size: int = 1024, repeats: int = 5) -> float:
    """Best observed float32 matmul rate (MAC/s) with the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return size**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_timings(samples: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def sized_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at ``width`` x ``height``: cropped, or mirrored out beyond its edges (no resampling)."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((0, max(height - h, 0)), (0, max(width - w, 0)), (0, 0)), mode="symmetric")
    return np.ascontiguousarray(padded[:height, :width])


def measure(
    spec: str, image: np.ndarray, runs: int, train_batch: int, train_size: int, train_steps: int, threads: int
) -> dict:
    """All measurements of one model (runs in a child process); variable-rate weights are coded at the
    default quality."""
    from ..codec import decode_bytes, encode_image
    from ..codec.distortion import psnr_uint8
    from ..codec.target import choose_rate
    from .throughput import training_step_seconds

    torch.set_num_threads(threads)
    model = _build(spec)
    lmbda = choose_rate(model).lmbda  # the command line's default rate (None for fixed-rate weights)
    height, width = image.shape[:2]
    encode_samples, decode_samples = [], []
    for run in range(runs + 1):  # first run is the warm-up
        data, _, encode_report = encode_image(model, image, estimate=False, reconstruct=False, lmbda=lmbda)
        decoded, decode_report = decode_bytes(model, data)
        if run:
            encode_samples.append({**encode_report.timings, "total": sum(encode_report.timings.values())})
            decode_samples.append({**decode_report.timings, "total": sum(decode_report.timings.values())})
    m = model.config.transform.latent_channels
    g_s = count_complexity(model.g_s, (1, m, -(-height // 64) * 4, -(-width // 64) * 4))
    latent = count_complexity(model.latent_codec, (1, m, -(-height // 64) * 4, -(-width // 64) * 4))
    result = {
        "model": spec,
        "name": model.config.name,
        "encode": _median_timings(encode_samples),
        "decode": _median_timings(decode_samples),
        "decoder_macs": g_s.macs_total + latent.macs_total,
        "bpp": encode_report.bits_per_pixel,
        "psnr": psnr_uint8(decoded, image),
    }
    if train_steps > 0:
        step = training_step_seconds(_build(spec), train_batch, train_size, steps=train_steps, warmup=1)
        result["train_samples_per_s"] = train_batch / step
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def bench(
    specs: list[str],
    image: np.ndarray,
    runs: int = 3,
    train_batch: int = 8,
    train_size: int = 256,
    train_steps: int = 2,
    threads: int | None = None,
) -> dict:
    """Report for each preset or weights file on ``image`` (H, W, 3 uint8); ratios are to the first model."""
    from ..entropy.coder import fixed_threads

    threads = threads or torch.get_num_threads()
    with fixed_threads(threads):  # every stage of the codec runs on all its threads
        matmul_rate = peak_matmul_macs_per_second()
    height, width = image.shape[:2]
    context = multiprocessing.get_context("spawn")
    rows = []
    for spec in specs:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            row = pool.submit(measure, spec, image, runs, train_batch, train_size, train_steps, threads).result()
        with torch.device("meta"):
            meta = _build_meta(spec)
            complexity = count_complexity(meta, PAPER_INPUT, meta.rate.range[0] if meta.variable_rate else None)
        row.update(
            params_paper=complexity.params_paper,
            params_total=complexity.params_total,
            macs_paper_2k=complexity.macs_paper,
            macs_total_2k=complexity.macs_total,
            decode_compute_bound_s=row["decoder_macs"] / matmul_rate,
        )
        rows.append(row)
    return {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": threads,
            "torch": torch.__version__,
            "peak_matmul_gmacs": matmul_rate / 1e9,
        },
        "settings": {
            "resolution": f"{width}x{height}",
            "runs": runs,
            "warmup": 1,
            "train_batch": train_batch,
            "train_size": train_size,
            "train_steps": train_steps,
        },
        "models": rows,
    }


def _build_meta(spec: str):
    from ..checkpoint import read_config
    from ..models import LearnedImageCodec, get_config

    if spec.endswith(".safetensors") or Path(spec).is_file():
        return LearnedImageCodec(read_config(spec))
    return LearnedImageCodec(get_config(spec))


def render_markdown(report: dict) -> str:
    """Two tables: complexity (Table 1/2 columns) and the latency split, with ratios to the first model."""
    rows = report["models"]
    first = rows[0]
    s = report["settings"]
    m = report["machine"]
    lines = [
        f"Machine: {m['processor']}, {m['threads']} threads, torch {m['torch']}; peak float32 matmul "
        f"{m['peak_matmul_gmacs']:.1f} GMAC/s on those threads (every codec stage runs on all of them). Latency on "
        f"a {s['resolution']} image: median of {s['runs']} runs after {s['warmup']} warm-up, real bitstreams. "
        f"Training throughput at batch {s['train_batch']} x {s['train_size']}^2.",
        "",
        "| model | params M (paper / all) | MACs T @2048x1024 (paper / all) | encode s | decode s | "
        "train samples/s | peak RSS MB | params ratio | MACs ratio | decode ratio | throughput ratio |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        throughput = r.get("train_samples_per_s")
        ratio_tp = (
            (throughput / first["train_samples_per_s"]) if throughput and first.get("train_samples_per_s") else None
        )
        lines.append(
            f"| {r['name']} | {r['params_paper'] / 1e6:.2f} / {r['params_total'] / 1e6:.2f} "
            f"| {r['macs_paper_2k'] / 1e12:.3f} / {r['macs_total_2k'] / 1e12:.3f} | {r['encode']['total']:.3f} "
            f"| {r['decode']['total']:.3f} | {'-' if throughput is None else f'{throughput:.2f}'} "
            f"| {r['peak_rss_mb']:.0f} "
            f"| {r['params_paper'] / first['params_paper']:.2f} | {r['macs_paper_2k'] / first['macs_paper_2k']:.2f} "
            f"| {r['decode']['total'] / first['decode']['total']:.2f} "
            f"| {'-' if ratio_tp is None else f'{ratio_tp:.2f}'} |"
        )
    lines += [
        "",
        "| model | encode: analysis / entropy s | decode: entropy / synthesis s "
        "| decoder GMACs | compute-bound decode s | decode / bound |",
        "|" + "---|" * 6,
    ]
    for r in rows:
        e, d = r["encode"], r["decode"]
        lines.append(
            f"| {r['name']} | {e['analysis transform']:.3f} / {e['entropy coding']:.3f} "
            f"| {d['entropy decoding']:.3f} / {d['synthesis transform']:.3f} "
            f"| {r['decoder_macs'] / 1e9:.1f} | {r['decode_compute_bound_s']:.3f} "
            f"| {d['total'] / r['decode_compute_bound_s']:.1f}x |"
        )
    lines += _side_by_side(report)
    return "\n".join(lines)


def _side_by_side(report: dict) -> list[str]:
    """kdic's models and the classical codecs (if the report has them) on the same image."""
    rows = [
        (r["name"], "default", r["bpp"], r["psnr"], r["encode"]["total"], r["decode"]["total"])
        for r in report["models"]
    ]
    rows += [
        (c["name"], f"{c['quality']:g}", c["bpp"], c["psnr"], c["encode_s"], c["decode_s"])
        for c in report.get("classical", [])
    ]
    lines = ["", "| codec | quality | bpp | PSNR dB | encode s | decode s |", "|" + "---|" * 6]
    lines += [f"| {n} | {q} | {b:.3f} | {p:.2f} | {e:.4f} | {d:.4f} |" for n, q, b, p, e, d in rows]
    return lines
