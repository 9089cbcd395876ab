"""What `kdic compress --target-bpp / --target-psnr` costs and how close it lands (issue 13.3), on Kodak.

For each target, every image is coded by ``kdic.codec.target.code_at_target`` (the root search in
log lambda on real coding that the CLI calls); the report gives, per target, the coding passes
(mean, max) and how far the chosen file lands from the target (mean and largest gap, on the
acceptable side unless the target is out of the model's reach, which is counted apart).

    python scripts/target_rate.py --data ../shared/data/kodak --bpp 0.25 0.5 --psnr 29 31 \
        -o results/vr/targets.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from tqdm import tqdm

from kdic.checkpoint import load
from kdic.codec import read_image
from kdic.codec.image_io import list_images
from kdic.codec.target import MAX_PASSES, code_at_target
from kdic.data import bundled_weights
from kdic.fileio import atomic_write_bytes


def measure(role: str, data: Path, targets: list[tuple[str, float]], limit: int) -> dict:
    model = load(bundled_weights(role))
    images = [(path.stem, read_image(path)) for path in list_images(data, recursive=False)[:limit]]
    summary = {}
    for metric, target in targets:
        rows = []
        for name, image in tqdm(images, desc=f"{role} {metric} {target:g}", leave=False):
            result = code_at_target(model, image, metric, target)
            row = {"image": name, "lmbda": result.lmbda, "value": result.value, "passes": result.passes}
            rows.append({**row, "met": result.met})
        met = [r for r in rows if r["met"]]
        gaps = [abs(r["value"] - target) for r in met]
        summary[f"{metric}={target:g}"] = {
            "images": len(rows),
            "met": len(met),
            "passes_mean": statistics.mean(r["passes"] for r in rows),
            "passes_max": max(r["passes"] for r in rows),
            "gap_mean": statistics.mean(gaps) if gaps else None,
            "gap_max": max(gaps) if gaps else None,
            "rows": rows,
        }
    return {"model": model.config.name, "max_passes": MAX_PASSES, "targets": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--role", default="student")
    parser.add_argument("--bpp", type=float, nargs="*", default=[0.25, 0.5])
    parser.add_argument("--psnr", type=float, nargs="*", default=[29.0, 31.0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    targets = [("bpp", b) for b in args.bpp] + [("psnr", p) for p in args.psnr]
    report = measure(args.role, args.data, targets, args.limit)
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())
    for key, entry in report["targets"].items():
        gap = "-" if entry["gap_mean"] is None else f"{entry['gap_mean']:.4f} (max {entry['gap_max']:.4f})"
        print(
            f"{key}: met {entry['met']}/{entry['images']}, passes {entry['passes_mean']:.1f} "
            f"(max {entry['passes_max']}), gap {gap}"
        )


if __name__ == "__main__":
    main()
