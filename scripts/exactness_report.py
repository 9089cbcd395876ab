"""The exact formats' (3 and 4) exactness across thread counts and instruction sets, and its rate cost, on Kodak.

Each configuration (ATEN_CPU_CAPABILITY x threads) runs in its own process: it encodes every image
with each model (recording the file's hash), and decodes the files the first configuration wrote
(recording the decoded latent's hash and the pixels). The report says how many files each
configuration writes identically to the first, whether the latents decoded from the same files
agree, the largest pixel difference between any two decodes of the same file, and the size of
the written format's (4) streams against the float32 entropy parameters of formats 1-2 (same latents, same coder).

    python scripts/exactness_report.py --data ../shared/data/kodak -o results/exactness/kodak.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kdic.data import DEFAULT_QUALITY, LAMBDA_RANGE, quality_lmbda

# the shipped variable-rate models at the ends and the default of their lambda range
DEFAULT_LMBDA = float(f"{quality_lmbda(DEFAULT_QUALITY):.3g}")
MODELS = {
    **{f"student@{lmbda:g}": ("student", lmbda) for lmbda in (LAMBDA_RANGE[0], DEFAULT_LMBDA, LAMBDA_RANGE[1])},
    f"teacher@{DEFAULT_LMBDA:g}": ("teacher", DEFAULT_LMBDA),
}
CONFIGS = (("default", 1), ("avx2", 1), ("avx2", 2), ("avx512", 1), ("avx512", 2))  # those this CPU runs


def run_config(data: Path, limit: int, out: Path, files: Path, measure_rate: bool) -> None:
    import torch

    from kdic.checkpoint import load
    from kdic.codec import decode_bytes, encode_image, read_image, unpack
    from kdic.codec.image_io import list_images
    from kdic.codec.pipeline import latent_size
    from kdic.data import bundled_weights
    from kdic.entropy.latent import ParameterPath

    float_path = ParameterPath(exact=False, packed=False)  # formats 1 and 2

    rows, pixels = [], {}
    for name, (role, lmbda) in MODELS.items():
        model = load(bundled_weights(role))
        for path in list_images(data, recursive=False)[:limit]:
            image = read_image(path)
            file = encode_image(model, image, estimate=False, reconstruct=False, lmbda=lmbda)[0]
            reference = files / f"{name}-{path.stem}.kdic"
            if measure_rate:  # the first configuration writes the files every configuration decodes
                reference.write_bytes(file)
            decoded, _ = decode_bytes(model, reference.read_bytes())
            streams = unpack(reference.read_bytes())[1]
            y_shape = (1, model.config.transform.latent_channels, *latent_size(model, *image.shape[:2]))
            y_hat = model.decompress_latent(streams, y_shape)["y_hat"]
            row = {
                "model": name,
                "image": path.name,
                "file": hashlib.sha256(file).hexdigest(),
                "latent": hashlib.sha256(y_hat.numpy().tobytes()).hexdigest(),
                "bytes": len(file),
            }
            if measure_rate:
                from kdic.codec.pipeline import _analyse  # the encoder's own analysis of the (single) tile

                y = _analyse(model, image, (0, y_shape[2], 0, y_shape[3]), y_shape[2:], lmbda)
                row["float_stream_bytes"] = sum(map(len, model.latent_codec.compress(y, float_path)["strings"]))
                row["exact_stream_bytes"] = sum(map(len, streams))
            rows.append(row)
            pixels[f"{name}/{path.name}"] = decoded
        print(f"{name}: {len(rows)} files", file=sys.stderr)
    np.savez_compressed(out.with_suffix(".npz"), **pixels)
    out.write_text(
        json.dumps(
            {"threads": torch.get_num_threads(), "capability": torch.backends.cpu.get_cpu_capability(), "rows": rows}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure-rate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_config(args.data, args.limit, args.worker, args.files, args.measure_rate)
        return
    from kdic.bench.machine import runnable_capabilities

    runnable = runnable_capabilities()
    configs = [(capability, threads) for capability, threads in CONFIGS if capability in runnable]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, (capability, threads) in enumerate(configs):
            out = Path(tmp) / f"{capability}-{threads}.json"
            env = {
                **os.environ,
                "ATEN_CPU_CAPABILITY": capability,
                "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads),
            }
            command = [
                sys.executable,
                __file__,
                "--data",
                str(args.data),
                "-o",
                "-",
                "--worker",
                str(out),
                "--files",
                tmp,
            ]
            command += (["--limit", str(args.limit)] if args.limit else []) + (["--measure-rate"] if index == 0 else [])
            subprocess.run(command, env=env, check=True)
            results[f"{capability}/{threads}"] = (json.loads(out.read_text()), np.load(out.with_suffix(".npz")))
        names = list(results)
        first_rows = results[names[0]][0]["rows"]
        files_as_first = {
            n: sum(r["file"] == s["file"] for r, s in zip(first_rows, results[n][0]["rows"])) for n in names[1:]
        }
        same_latents = all(
            r["latent"] == s["latent"] for n in names[1:] for r, s in zip(first_rows, results[n][0]["rows"])
        )
        pixel_diff = max(
            int(np.abs(results[a][1][k].astype(np.int16) - results[b][1][k]).max())
            for a in names
            for b in names
            for k in results[a][1].files
        )
        same_pixels_per_capability = {
            n: bool(all(np.array_equal(results[n][1][k], results[m][1][k]) for k in results[n][1].files))
            for n in names
            for m in names
            if n != m and n.split("/")[0] == m.split("/")[0]
        }
    float_bytes = sum(r["float_stream_bytes"] for r in first_rows)
    exact_bytes = sum(r["exact_stream_bytes"] for r in first_rows)
    per_model = {
        m: sum(r["exact_stream_bytes"] for r in first_rows if r["model"] == m)
        / sum(r["float_stream_bytes"] for r in first_rows if r["model"] == m)
        - 1
        for m in MODELS
    }
    report = {
        "configurations": [
            {"capability": results[n][0]["capability"], "threads": results[n][0]["threads"]} for n in names
        ],
        "not_runnable_here": sorted({c for c, _ in CONFIGS} - set(runnable)),
        "files": len(first_rows),
        "files_written_identically_to_the_first": files_as_first,
        "latents_decoded_from_the_same_files_identical": same_latents,
        "max_pixel_difference": pixel_diff,
        "pixels_identical_across_threads": same_pixels_per_capability,
        "rate_cost_exact_vs_float": exact_bytes / float_bytes - 1,
        "rate_cost_per_model": per_model,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
