"""Peak memory and time of coding big photos (issue 16): each size encoded and decoded in fresh processes.

    python scripts/big_image_memory.py --sizes 3000x2000 4243x2828 6000x4000 -o results/big_images.json

The test photo is a mosaic of the Kodak images, each upscaled 2x (bicubic), cropped to the size:
real photographic texture at 12-48 MP without shipping such files (../shared/data/kodak; the bundled
sample alone when that is absent). Peak memory is the process's VmHWM, torch and the model included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kdic.data import DEFAULT_QUALITY

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"

CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from kdic.checkpoint import load
from kdic.codec import decode_bytes, encode_image
from kdic.data import bundled_weights, quality_lmbda
role, quality, step, image_path, bitstream = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
model = load(bundled_weights(role))
start = time.perf_counter()
if step == "encode":
    image = np.load(image_path)
    data, _, report = encode_image(model, image, estimate=False, reconstruct=False, lmbda=quality_lmbda(quality))
    Path(bitstream).write_bytes(data)
    extra = {"bits_per_pixel": report.bits_per_pixel}
else:
    image, report = decode_bytes(model, Path(bitstream).read_bytes())
    extra = {"pixels_sum": int(image.sum(dtype=np.int64))}
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text()
peak = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:"))) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, **extra}))
"""


def mosaic(width: int, height: int) -> np.ndarray:
    """Kodak images upscaled 2x, laid out row by row until the canvas is full."""
    sources = sorted(KODAK.glob("*.png")) or [Path(__file__).resolve().parents[1] / "src/kdic/data/samples/kodim23.png"]
    canvas = np.zeros((height, width, 3), np.uint8)
    y = x = row_height = index = 0
    while y < height:
        with Image.open(sources[index % len(sources)]) as img:
            tile = np.asarray(img.convert("RGB").resize((img.width * 2, img.height * 2), Image.BICUBIC))
        index += 1
        h, w = min(tile.shape[0], height - y), min(tile.shape[1], width - x)
        canvas[y : y + h, x : x + w] = tile[:h, :w]
        row_height = max(row_height, tile.shape[0])
        x += tile.shape[1]
        if x >= width:
            x, y, row_height = 0, y + row_height, 0
    return canvas


def run(role: str, quality: float, width: int, height: int, folder: Path) -> dict:
    image_path, bitstream = folder / f"{width}x{height}.npy", folder / f"{width}x{height}.kdic"
    np.save(image_path, mosaic(width, height))
    row: dict = {
        "model": role,
        "quality": quality,
        "width": width,
        "height": height,
        "megapixels": width * height / 1e6,
    }
    for step in ("encode", "decode"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, role, str(quality), step, str(image_path), str(bitstream)],
            capture_output=True,
            text=True,
            check=True,
        )
        row[step] = json.loads(done.stdout.strip().splitlines()[-1])
    image_path.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["3000x2000", "4243x2828", "6000x4000"])
    parser.add_argument("--roles", nargs="+", default=["student"])
    parser.add_argument("--quality", type=float, default=DEFAULT_QUALITY)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for role in args.roles:
            for size in args.sizes:
                width, height = map(int, size.split("x"))
                started = time.perf_counter()
                rows.append(run(role, args.quality, width, height, Path(tmp)))
                r = rows[-1]
                print(
                    f"{role} {size}: encode {r['encode']['seconds']:.1f} s / {r['encode']['peak_mb']:.0f} MB, "
                    f"decode {r['decode']['seconds']:.1f} s / {r['decode']['peak_mb']:.0f} MB, "
                    f"{r['encode']['bits_per_pixel']:.4f} bpp ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    Path(args.output).write_text(
        json.dumps({"photo": "Kodak mosaic, each image upscaled 2x", "runs": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
