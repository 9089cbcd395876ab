"""Rate and quality cost of entropy tiling (issue 16): default tiles against one tile for the whole latent.

    python scripts/tiling_cost.py --images 6 --scale 3 -o results/hardening/tiling_cost.json

Kodak images upscaled ``--scale`` times (bicubic; 3x gives 2304 x 1536, two entropy tiles by default),
each coded with the shipped student twice: ``ENTROPY_TILE`` (the default) and ``MAX_ENTROPY_TILE``
(a single tile here). At Kodak's own size both are one tile and the files are identical.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from kdic.checkpoint import load
from kdic.codec.bitstream import MAX_ENTROPY_TILE, unpack
from kdic.codec.distortion import psnr_uint8
from kdic.codec.pipeline import ENTROPY_TILE, encode_image
from kdic.data import DEFAULT_QUALITY, bundled_weights, quality_lmbda

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--role", default="student")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    model = load(bundled_weights(args.role))
    rows = []
    for path in sorted(KODAK.glob("*.png"))[: args.images]:
        with Image.open(path) as img:
            image = np.asarray(
                img.convert("RGB").resize((img.width * args.scale, img.height * args.scale), Image.BICUBIC)
            )
        row = {"image": path.name, "width": image.shape[1], "height": image.shape[0]}
        for name, tile in (("tiled", ENTROPY_TILE), ("one_tile", MAX_ENTROPY_TILE)):
            data, reconstruction, report = encode_image(
                model, image, estimate=False, entropy_tile=tile, lmbda=quality_lmbda(DEFAULT_QUALITY)
            )
            row[name] = {
                "tiles": len(unpack(data)[1]) // 2,
                "bpp": report.bits_per_pixel,
                "psnr": psnr_uint8(reconstruction, image),
            }
        row["bpp_cost_pct"] = 100 * (row["tiled"]["bpp"] / row["one_tile"]["bpp"] - 1)
        row["psnr_cost_db"] = row["one_tile"]["psnr"] - row["tiled"]["psnr"]
        rows.append(row)
        print(
            f"{path.name} {image.shape[1]}x{image.shape[0]}: {row['tiled']['tiles']} tiles "
            f"{row['tiled']['bpp']:.4f} bpp {row['tiled']['psnr']:.3f} dB, "
            f"one tile {row['one_tile']['bpp']:.4f} bpp {row['one_tile']['psnr']:.3f} dB "
            f"({row['bpp_cost_pct']:+.2f}% bpp, {row['psnr_cost_db']:+.3f} dB)",
            flush=True,
        )
    summary = {
        "mean_bpp_cost_pct": float(np.mean([r["bpp_cost_pct"] for r in rows])),
        "mean_psnr_cost_db": float(np.mean([r["psnr_cost_db"] for r in rows])),
    }
    print(f"mean: {summary['mean_bpp_cost_pct']:+.2f}% bpp, {summary['mean_psnr_cost_db']:+.3f} dB")
    Path(args.output).write_text(
        json.dumps({"model": args.role, "scale": args.scale, **summary, "images": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
