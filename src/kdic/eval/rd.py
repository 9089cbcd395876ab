"""``kdic eval``: real bitstreams for every image and checkpoint, CompressAI-format results."""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from ..checkpoint import load, weights_digest
from ..codec import decode_bytes, encode_image
from ..data import DEFAULT_RATES
from .metrics import ms_ssim_uint8, psnr_uint8

POINT_KEYS = ("bpp", "estimated_bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")


def evaluate_model(
    model,
    images: list[tuple[str, np.ndarray]],
    bitstream_dir: Path,
    quiet: bool = False,
    lmbda: float | None = None,
    refine_steps: int = 0,
) -> dict:
    """One rate point (``lmbda`` of a variable-rate model): every image compressed to a file (its
    latent refined ``refine_steps`` steps), read back, decoded (at the lambda its header records) and
    measured."""
    rows = []
    for name, image in tqdm(images, desc=model.config.name, disable=quiet, leave=False, unit="image"):
        start = time.perf_counter()
        data, _, report = encode_image(model, image, lmbda=lmbda, refine_steps=refine_steps)
        encode_seconds = time.perf_counter() - start
        path = bitstream_dir / (Path(name).stem + ".kdic")
        path.write_bytes(data)
        start = time.perf_counter()
        decoded, _ = decode_bytes(model, path.read_bytes())
        decode_seconds = time.perf_counter() - start
        h, w = image.shape[:2]
        rows.append(
            {
                "name": name,
                "bpp": 8 * path.stat().st_size / (h * w),
                "estimated_bpp": report.estimated_bits_per_pixel,
                "psnr-rgb": psnr_uint8(decoded, image),
                "ms-ssim-rgb": ms_ssim_uint8(decoded, image),
                "encoding_time": encode_seconds,
                "decoding_time": decode_seconds,
            }
        )
    mean = {k: _mean([r[k] for r in rows]) for k in POINT_KEYS}
    return {"mean": mean, "images": rows}


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def rate_points(model, rates: tuple[float, ...] | int) -> tuple[float | None, ...]:
    """The lambdas to code ``model`` at: its own (None) if fixed-rate; for a variable-rate model the
    given lambdas, or that many log-spaced over its range."""
    if not model.variable_rate:
        return (None,)
    lmbdas = model.config.variable_rate.spread(rates) if isinstance(rates, int) else rates
    for lmbda in lmbdas:
        model.check_lmbda(lmbda)
    return lmbdas


def evaluate_weights(
    weights: list[str | Path],
    images: list[tuple[str, np.ndarray]],
    name: str | None = None,
    dataset: str = "",
    bitstream_root: Path | None = None,
    quiet: bool = False,
    rates: tuple[float, ...] | int = DEFAULT_RATES,
    refine_steps: int = 0,
) -> dict:
    """A CompressAI-format RD curve, sorted by rate: one point per fixed-rate weights file and one
    per lambda of ``rates`` (see ``rate_points``) of a variable-rate one."""
    points = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, path in enumerate(weights):
            model = load(path)
            for lmbda in rate_points(model, rates):
                suffix = "" if lmbda is None else f"-lambda{lmbda:.5g}"
                folder = (bitstream_root or Path(scratch)) / f"{index:02d}-{model.config.name}{suffix}"
                folder.mkdir(parents=True, exist_ok=True)
                point = evaluate_model(model, images, folder, quiet, lmbda, refine_steps)
                point.update(
                    weights=str(path),
                    lmbda=model.lmbda if lmbda is None else float(np.float32(lmbda)),
                    model=model.config.name,
                    weights_digest=weights_digest(model).hex()[:16],
                )
                points.append(point)
    points.sort(key=lambda p: p["mean"]["bpp"])
    return {
        "name": name or points[0]["model"],
        "description": f"kdic eval of {len(points)} checkpoint(s) on {len(images)} image(s) of {dataset or 'a folder'}",
        "results": {k: [p["mean"][k] for p in points] for k in POINT_KEYS},
        "meta": {
            "bpp": "8 x bytes of the .kdic file (header included) / pixels, per image, then averaged",
            "psnr-rgb": "PSNR over the 8-bit RGB reconstruction, per image, then averaged",
            "kdic_version": __version__,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
            "dataset": dataset,
            "images": len(images),
            "refine_steps": refine_steps,
            "lmbda": [p["lmbda"] for p in points],
            "weights": [p["weights"] for p in points],
            "weights_digest": [p["weights_digest"] for p in points],
        },
        "per_image": [{"weights": p["weights"], "images": p["images"]} for p in points],
    }


def merge_curves(curves: list[dict], name: str) -> dict:
    """One curve from several ``kdic eval`` results (e.g. one file per checkpoint), sorted by rate."""
    if not curves:
        raise ValueError("nothing to merge")
    datasets = {c["meta"]["dataset"] for c in curves}
    images = {c["meta"]["images"] for c in curves}
    if len(datasets) > 1 or len(images) > 1:
        raise ValueError(f"curves come from different data ({sorted(datasets)}, {sorted(images)} images)")
    refine = {c["meta"].get("refine_steps", 0) for c in curves}
    if len(refine) > 1:
        raise ValueError(f"curves were coded with different --refine steps ({sorted(refine)})")
    points = []
    for curve in curves:
        for i in range(len(curve["results"]["bpp"])):
            points.append(
                (
                    {k: curve["results"][k][i] for k in POINT_KEYS},
                    {k: curve["meta"][k][i] for k in ("lmbda", "weights", "weights_digest")},
                    curve["per_image"][i],
                )
            )
    points.sort(key=lambda p: p[0]["bpp"])
    first = curves[0]["meta"]
    meta = {k: v for k, v in first.items() if k not in ("lmbda", "weights", "weights_digest")}
    meta.update({k: [p[1][k] for p in points] for k in ("lmbda", "weights", "weights_digest")})
    return {
        "name": name,
        "description": f"kdic eval of {len(points)} checkpoint(s) on {first['images']} image(s) of {first['dataset']}",
        "results": {k: [p[0][k] for p in points] for k in POINT_KEYS},
        "meta": meta,
        "per_image": [p[2] for p in points],
    }
