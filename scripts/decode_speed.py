"""Encode and decode times of the shipped models on real images, split by stage (for before/after
comparisons across commits: it uses only kdic's public codec API).

    python scripts/decode_speed.py --data ../shared/data/kodak --limit 4 --threads 2 -o results/speed/now.json
    PYTHONPATH=<checkout of another commit>/src python scripts/decode_speed.py ...   # the same, for that commit
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from kdic.checkpoint import load
from kdic.codec import decode_bytes, encode_image, read_image
from kdic.codec.image_io import list_images
from kdic.data import DEFAULT_QUALITY, bundled_weights, quality_lmbda


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--runs", type=int, default=3, help="timed runs per image after one warm-up")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lmbda = quality_lmbda(DEFAULT_QUALITY)
    report: dict = {"threads": args.threads, "lmbda": lmbda, "models": {}}
    for role in ("teacher", "student"):
        model = load(bundled_weights(role))
        samples: dict[str, list[float]] = {}
        for path in list_images(args.data, recursive=False)[: args.limit]:
            image = read_image(path)
            for run in range(args.runs + 1):
                start = time.perf_counter()
                data, _, _ = encode_image(model, image, estimate=False, reconstruct=False, lmbda=lmbda)
                encoded = time.perf_counter() - start
                start = time.perf_counter()
                _, decode_report = decode_bytes(model, data)
                decoded = time.perf_counter() - start
                if run:  # the first run of each image is the warm-up
                    timings = {"encode": encoded, "decode": decoded, **decode_report.timings}
                    for key, value in timings.items():
                        samples.setdefault(key, []).append(value)
        report["models"][role] = {key: statistics.median(values) for key, values in samples.items()}
    student, teacher = report["models"]["student"], report["models"]["teacher"]
    report["student_over_teacher_decode"] = student["decode"] / teacher["decode"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
